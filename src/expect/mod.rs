//! Expectations: each check reads what the mock cloud recorded and produces a [`Finding`] with evidence, never
//! just a bool. [`evaluate`] runs them all; the runner calls it whenever the recorder or the agent changes, and the
//! case ends as soon as the outcome is observed and no check is still undecided.

mod advisory;
mod auth;
mod exposure;
mod load;
pub mod metrics;
mod outcome;
pub(crate) use outcome::batch_key;
pub mod payload;
pub(crate) mod probe;
pub(crate) mod retry;
pub mod secrets;
mod series;
pub use series::default_expected;
mod tokens;
pub(crate) mod verdict;
mod write;

pub use verdict::{Finding, Status, Verdict};

use std::time::Duration;

use crate::Check;
use crate::agent::Version;
use crate::agent::vulnerability::VulnerabilityTable;
use crate::cloud::FaultConfig;
use crate::cloud::accounting::Accounting;
use crate::cloud::recorder::{Exchange, IssuedToken, Service};
use crate::runtime::AgentState;
use crate::scenario::{AuthSpec, AzureCloud, ExpectSpec, LoadSpec, Outcome, RecordMode, Scenario};
use crate::scrape::{Scrape, ScrapeModel};
pub use retry::RetryPolicy;
pub use tokens::earliest_refresh;

/// What the checks need to know about the case.
#[derive(Debug, Clone)]
pub struct CaseFacts<'a> {
    /// The auth block the agent was given.
    pub auth: &'a AuthSpec,
    /// Agent version.
    pub version: Version,
    /// The scenario's expectations.
    pub expect: &'a ExpectSpec,
    /// The outcome the case must reach.
    pub expected: Outcome,
    /// DCR immutable id.
    pub dcr_id: &'a str,
    /// The cloud whose audience the DCR accepts.
    pub dcr_cloud: AzureCloud,
    /// The scenario's sustained load, if any.
    pub load: Option<&'a LoadSpec>,
    /// How often the harness target is scraped (one sample per series is due per interval).
    pub scrape_interval: Duration,
    /// The scrape target's model, when the scenario declares a `target` block (the payload checks need it).
    pub target: Option<&'a ScrapeModel>,
    /// The fault plan the mock cloud follows.
    pub faults: &'a FaultConfig,
    /// The agent's retry settings (from the scenario's `queue_config`, else Prometheus' defaults).
    pub retry: RetryPolicy,
    /// Lifetime of the tokens the mock issues.
    pub token_lifetime: std::time::Duration,
    /// The sidecar that takes the agent's remote-write and authenticates in its place, if any: the auth checks then
    /// judge the sidecar's traffic by what Azure accepts rather than by what Prometheus' own SDK sends.
    pub sidecar: Option<&'a crate::scenario::SidecarSpec>,
    /// Known vulnerabilities: a check that fires on an affected version is `known-vulnerable`, not a failure…
    pub vulnerabilities: &'a VulnerabilityTable,
    /// …unless the run gates a release (`--strict-security`): then it fails like any other finding.
    pub strict_security: bool,
    /// What the recorder keeps of accepted bodies: the agent cross-check needs them whole.
    pub record: RecordMode,
    /// Hosts of the plain `remote_write` entries (no `azuread`) beside the one that authenticates.
    pub plain_writes: &'a [String],
}

impl<'a> CaseFacts<'a> {
    /// The facts of a case of `scenario` on agent `version` that must reach `expected`, against a mock DCR with
    /// immutable id `dcr_id` in `dcr_cloud` following `faults` — the one constructor of the runner, replay and
    /// the self-tests. Without [`CaseFacts::with_target`] the payload checks have no model; without
    /// [`CaseFacts::judged_by`] the built-in vulnerability table applies, not strictly.
    pub fn new(
        scenario: &'a Scenario,
        version: Version,
        expected: Outcome,
        (dcr_id, dcr_cloud): (&'a str, AzureCloud),
        faults: &'a FaultConfig,
    ) -> CaseFacts<'a> {
        CaseFacts {
            auth: &scenario.auth,
            version,
            expect: &scenario.expect,
            expected,
            dcr_id,
            dcr_cloud,
            load: scenario.load.as_ref(),
            scrape_interval: crate::agent::prometheus::scrape_interval(scenario),
            target: None,
            faults,
            retry: RetryPolicy::from_queue_config(&scenario.prometheus.queue_config),
            token_lifetime: scenario.cloud.token_lifetime,
            sidecar: scenario.remote_write_sidecar(),
            vulnerabilities: VulnerabilityTable::builtin(),
            strict_security: false,
            record: scenario.record,
            plain_writes: &scenario.prometheus.plain_remote_writes,
        }
    }

    /// The scrape target's model the payload checks judge against.
    pub fn with_target(self, target: Option<&'a ScrapeModel>) -> CaseFacts<'a> {
        CaseFacts { target, ..self }
    }

    /// Known vulnerabilities from `table`, failing the case when `strict` (`--strict-security`).
    pub fn judged_by(self, table: &'a VulnerabilityTable, strict: bool) -> CaseFacts<'a> {
        CaseFacts { vulnerabilities: table, strict_security: strict, ..self }
    }
}

/// Everything observed so far.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Every exchange, in order.
    pub exchanges: &'a [Exchange],
    /// Every token the mock issued.
    pub tokens: &'a [IssuedToken],
    /// The agent's state.
    pub agent: &'a AgentState,
    /// Whether the agent ever became ready.
    pub agent_was_ready: bool,
    /// Per-series accounting of accepted samples, when the recorder keeps it instead of bodies.
    pub accounting: Option<&'a Accounting>,
    /// The scrapes the target served so far.
    pub scrapes: &'a [Scrape],
    /// A sidecar that has exited, if any.
    pub sidecar_exit: Option<&'a SidecarExit>,
}

/// A sidecar that exited, in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarExit {
    /// The scenario's name for it.
    pub name: String,
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Its last error line.
    pub error: Option<String>,
}

impl SidecarExit {
    /// `sidecar X exited (code 2): <its last error line>`.
    pub fn describe(&self) -> String {
        format!(
            "sidecar {} exited (code {}): {}",
            self.name,
            self.code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            self.error.as_deref().unwrap_or("no error line")
        )
    }
}

impl Observed<'_> {
    /// DCR write exchanges: the HTTP requests that reached the DCR host, not the tunnels whose TLS handshake a
    /// `tls_failure` rule failed (recorded as `CONNECT` exchanges).
    pub fn writes(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges.iter().filter(|e| e.service == Service::Dcr && e.method != "CONNECT")
    }

    /// A token by id.
    pub fn token(&self, id: crate::cloud::recorder::TokenId) -> Option<&IssuedToken> {
        self.tokens.iter().find(|t| t.id == id)
    }
}

/// The state of a case's checks at one moment.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Every check.
    pub findings: Vec<Finding>,
    /// The outcome, once observed.
    pub observed: Option<Outcome>,
    /// Why that outcome came about.
    pub explanation: String,
}

impl Evaluation {
    /// Decided: an outcome is observed and no check is still open.
    pub fn decided(&self) -> bool {
        self.observed.is_some() && !self.findings.iter().any(|f| f.status == Status::Undecided)
    }
}

/// Minimum writes before per-write rules (token reuse) are decided, unless the scenario says otherwise: two are the
/// fewest that show a token reused, and every further one costs a case a whole send interval.
pub const DEFAULT_MIN_WRITES: usize = 2;

/// Runs every check against what was observed.
pub fn evaluate(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Evaluation {
    let (mut observed, mut explanation) = outcome::observe(facts, seen);
    let mut findings = Vec::new();
    findings.extend(outcome::capability(facts, seen, observed));
    if matches!(observed, Some(Outcome::ConfigRejected | Outcome::NoAzuread)) {
        return Evaluation { findings, observed, explanation };
    }
    // A sidecar that died before an outcome leaves the agent nowhere to write: its configuration (or build) is at
    // fault, and its own words say why.
    if let Some(exit) = seen.sidecar_exit
        && observed.is_none()
    {
        observed = Some(Outcome::ConfigRejected);
        explanation = exit.describe();
    }
    findings.extend(auth::checks(facts, seen));
    findings.extend(write::checks(facts, seen));
    findings.extend(retry::checks(facts, seen));
    findings.extend(tokens::checks(facts, seen));
    findings.push(series::present(facts, seen, observed));
    findings.extend(load::checks(facts, seen));
    findings.extend(payload::checks(facts, seen, observed));
    findings.extend(exposure::checks(facts, seen));
    if let Some(sidecar) = facts.sidecar {
        findings.push(match seen.sidecar_exit {
            Some(exit) => Finding::fail(Check::SidecarRunning, format!("sidecar {} exited", exit.name))
                .with_evidence(format!("exit code {}", exit.code.map_or_else(|| "none".to_owned(), |c| c.to_string())))
                .with_evidence(format!("its last error line: {}", exit.error.as_deref().unwrap_or("none"))),
            None => Finding::pass(Check::SidecarRunning, format!("sidecar {} kept running", sidecar.name)),
        });
    }
    if let Some(reason) = &facts.expect.reason {
        findings.push(if explanation.contains(reason.as_str()) {
            Finding::pass(Check::VerdictReason, format!("the explanation names \"{reason}\""))
        } else if observed.is_some() {
            Finding::fail(Check::VerdictReason, format!("the explanation does not name \"{reason}\""))
                .with_evidence(explanation.clone())
        } else {
            pending(Check::VerdictReason, "no outcome yet")
        });
    }
    if observed == Some(Outcome::AuthFailed) {
        for f in findings.iter_mut().filter(|f| f.status == Status::Undecided) {
            f.status = Status::Skipped;
            f.message = format!("not applicable: no write reached the DCR ({})", f.message);
        }
    }
    if let Some(exit) = seen.sidecar_exit {
        for f in findings.iter_mut().filter(|f| f.status == Status::Undecided) {
            f.status = Status::Skipped;
            f.message = format!("not applicable: sidecar {} exited ({})", exit.name, f.message);
        }
    }
    let findings = conclude(facts, findings);
    Evaluation { findings, observed, explanation }
}

/// The last step for every finding, made during the watch or after the decision (probes of the agent, its log):
/// the known-vulnerability table, then the scenario's `expect.failing`.
pub fn conclude(facts: &CaseFacts<'_>, mut findings: Vec<Finding>) -> Vec<Finding> {
    advisory::apply(facts, &mut findings);
    apply_expected_failures(facts, &mut findings);
    findings
}

/// Checks a scenario names in `expect.failing` must fail; their failure is the expected cause, not a defect.
fn apply_expected_failures(facts: &CaseFacts<'_>, findings: &mut [Finding]) {
    for name in &facts.expect.failing {
        let Some(f) = findings.iter_mut().find(|f| f.check == *name) else { continue };
        match f.status {
            Status::Fail | Status::KnownVulnerable => {
                f.status = Status::Pass;
                f.message = format!("failed as the scenario expects: {}", f.message);
            }
            Status::Pass | Status::Skipped => {
                f.status = Status::Fail;
                f.message = format!("the scenario expects this check to fail, but: {}", f.message);
            }
            Status::Undecided => {}
        }
    }
}

/// An open check.
fn pending(check: Check, message: impl Into<String>) -> Finding {
    Finding { check, status: Status::Undecided, message: message.into(), evidence: Vec::new() }
}

/// A check that does not apply.
fn skipped(check: Check, message: impl Into<String>) -> Finding {
    Finding { check, status: Status::Skipped, message: message.into(), evidence: Vec::new() }
}
