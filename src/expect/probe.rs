//! After the decision, the agent itself is a witness: its `/metrics` and config endpoints, read while it still
//! runs, and its log (and its sidecars'), read once it stopped. The runner only fetches what [`wanted`] asks for
//! and hands it over as [`AgentReadings`]; every finding about it is drawn here, by [`judge_agent`].

use super::secrets::{self, Secret};
use super::{CaseFacts, Evaluation, Finding, Observed, conclude, skipped};
use crate::Check;
use crate::agent::metrics::{AgentMetrics, RemoteWriteStats};
use crate::cloud::recorder::{Exchange, IssuedToken};
use crate::scenario::{Outcome, RecordMode};

/// What to read from the agent before it is stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Its `/metrics`: for the cross-check with the mock (a delivered or dropped outcome) and under load.
    pub metrics: bool,
    /// Its config endpoints ([`secrets::CONFIG_ENDPOINTS`]): once it accepted its config.
    pub config: bool,
}

/// What a decided case needs read from an agent that is still `running` (nothing after an interruption).
pub fn wanted(facts: &CaseFacts<'_>, evaluation: &Evaluation, running: bool, interrupted: bool) -> Wanted {
    if !running || interrupted {
        return Wanted::default();
    }
    Wanted {
        metrics: cross_checked(evaluation) || facts.load.is_some(),
        config: evaluation.observed.is_some_and(|o| !matches!(o, Outcome::ConfigRejected | Outcome::NoAzuread)),
    }
}

fn cross_checked(evaluation: &Evaluation) -> bool {
    matches!(evaluation.observed, Some(Outcome::Delivered | Outcome::Dropped))
}

/// The agent's `/metrics` and what the mock had recorded when it was read (the cross-check compares the two at
/// that moment; the agent keeps sending afterwards).
#[derive(Debug, Clone)]
pub struct MetricsReading {
    /// The exposition, or why it could not be read.
    pub text: Result<String, String>,
    /// Every exchange recorded by then.
    pub exchanges: Vec<Exchange>,
    /// Every token issued by then.
    pub tokens: Vec<IssuedToken>,
}

/// Everything read from the agent after the decision.
#[derive(Debug, Clone, Default)]
pub struct AgentReadings {
    /// Its `/metrics`, when [`Wanted::metrics`].
    pub metrics: Option<MetricsReading>,
    /// Each config endpoint's body, when [`Wanted::config`].
    pub config: Vec<(&'static str, Result<String, String>)>,
    /// Its log and each sidecar's, by file name, once they stopped.
    pub logs: Vec<(String, String)>,
    /// What the case gave the agent to keep to itself ([`secrets::given`]) and every token the mock issued.
    pub secrets: Vec<Secret>,
}

/// The findings the agent's own testimony gives: `agent.metrics`, `load.agent`, `security.config-redaction`,
/// `security.log-secrets` — concluded like every other finding (advisories, `expect.failing`).
pub fn judge_agent(
    facts: &CaseFacts<'_>,
    seen: &Observed<'_>,
    evaluation: &Evaluation,
    read: &AgentReadings,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(reading) = &read.metrics {
        let parsed = reading.text.as_ref().ok().map(|text| AgentMetrics::parse_without(text, facts.plain_writes));
        if facts.load.is_some() {
            findings.push(load_agent(&reading.text, parsed.as_ref()));
        }
        if cross_checked(evaluation) {
            findings.push(match (&reading.text, parsed) {
                (Err(e), _) => {
                    Finding::fail(Check::AgentMetrics, format!("could not scrape the agent's /metrics: {e}"))
                }
                (Ok(_), _) if facts.record == RecordMode::Accounting => skipped(
                    Check::AgentMetrics,
                    "accepted bodies are folded into per-series accounting (`record: accounting`); the cross-check \
                     needs full bodies (see load.agent for the agent's own counters)",
                ),
                (Ok(_), metrics) => {
                    let at_reading = Observed {
                        exchanges: &reading.exchanges,
                        tokens: &reading.tokens,
                        accounting: None,
                        sidecar_exit: None,
                        ..*seen
                    };
                    super::metrics::cross_check(facts, &at_reading, &metrics.unwrap_or_default())
                }
            });
        }
    }
    if !read.config.is_empty() {
        findings.push(secrets::config_redaction(&read.secrets, &read.config));
    }
    let logs: Vec<(&str, &str)> = read.logs.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    findings.push(secrets::log_secrets(&read.secrets, &logs));
    conclude(facts, findings)
}

/// The agent's own view of its remote-write queue (shards, send latency) at the end of a load; reported, not
/// judged.
fn load_agent(text: &Result<String, String>, parsed: Option<&AgentMetrics>) -> Finding {
    let check = Check::LoadAgent;
    match (text, parsed) {
        (Ok(_), Some(metrics)) => {
            let mut f = Finding::pass(check, "the agent's own remote-write metrics, at the end of the load");
            f.evidence = RemoteWriteStats::from_metrics(metrics).describe();
            f
        }
        (Err(e), _) => skipped(check, format!("could not scrape the agent's /metrics: {e}")),
        (Ok(_), None) => skipped(check, "the agent's /metrics could not be parsed"),
    }
}
