//! Which outcome the case reached, in words a person can act on, and whether the capability table held.

use crate::Check;
use std::collections::HashSet;

use super::{CaseFacts, Finding, Observed};
use crate::agent::capability;
use crate::cloud::recorder::{Detail, Exchange, WriteAuth};
use crate::runtime::AgentState;
use crate::scenario::Outcome;

/// Refused writes (or failed token requests) needed before a negative outcome is called.
const NEGATIVE_EVIDENCE: usize = 2;

/// The observed outcome, if one is reached, and its explanation.
pub(super) fn observe(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> (Option<Outcome>, String) {
    if let AgentState::Exited { code, error } = seen.agent
        && !seen.agent_was_ready
    {
        // Go's YAML errors span lines ("unmarshal errors:\n  line 5: field …"): one line for the verdict.
        let said = error.as_deref().map_or_else(
            || format!("exit code {code:?}, no error line"),
            |e| e.lines().map(str::trim).collect::<Vec<_>>().join(" "),
        );
        // Not a capability a version lacks: the build has no azuread at all, whatever its version.
        if facts.sidecar.is_none() && crate::agent::source::lacks_azuread(&said) {
            return (
                Some(Outcome::NoAzuread),
                format!(
                    "this build of prometheus {} has no azuread support (config field azuread unknown); the agent \
                     said: {said}",
                    facts.version
                ),
            );
        }
        let missing = if facts.sidecar.is_some() { None } else { capability::missing(facts.auth, facts.version) };
        let text = match missing {
            Some(c) => format!(
                "{} not supported by prometheus {} (needs ≥ {}); the agent said: {said}",
                c.name(),
                facts.version,
                c.since()
            ),
            None => format!("prometheus {} rejected its config: {said}", facts.version),
        };
        return (Some(Outcome::ConfigRejected), text);
    }

    let writes: Vec<&Exchange> = seen.writes().collect();
    // Metadata-only writes (RW 1.0) are accepted even when every sample is refused: they prove no delivery.
    // In accounting mode accepted bodies are folded away (series emptied): which carried series is unknown here,
    // and `all_present` reads the accounting instead.
    let accounting = seen.accounting.is_some();
    let accepted: Vec<&Exchange> = writes
        .iter()
        .copied()
        .filter(|w| (200..300).contains(&w.status) && (accounting || carries_series(w)))
        .collect();
    if !accepted.is_empty() && super::series::all_present(facts, seen, &accepted) {
        let first = accepted[0];
        return (
            Some(Outcome::Delivered),
            format!(
                "{} accepted write(s); the first was {} at +{:.1}s",
                accepted.len(),
                first.describe(),
                first.at.as_secs_f64()
            ),
        );
    }

    // Any 4xx but 429 is non-recoverable: the agent must drop the batch (auth 401/403, payload 400, RW2 415).
    let refused: Vec<&Exchange> =
        writes.iter().copied().filter(|w| (400..500).contains(&w.status) && w.status != 429).collect();
    if accepted.is_empty() && refused.len() >= NEGATIVE_EVIDENCE && distinct_batches(&refused) >= NEGATIVE_EVIDENCE {
        return (Some(Outcome::Dropped), explain_refusal(facts, seen, refused[0]));
    }

    let failed_tokens: Vec<&Exchange> = seen
        .exchanges
        .iter()
        .filter(|e| matches!(&e.detail, Detail::Token { issued: None, error: Some(_), .. }))
        .filter(|e| {
            !matches!(&e.detail, Detail::Token { request: crate::cloud::recorder::TokenRequest::ImdsProbe, .. })
        })
        // Refusals a recovering fault plan injected say nothing about the agent's identity.
        .filter(|e| e.fault.is_none() || !facts.faults.recovers())
        .collect();
    let issued_any = seen.exchanges.iter().any(|e| matches!(&e.detail, Detail::Token { issued: Some(_), .. }));
    if writes.is_empty() && !issued_any && failed_tokens.len() >= NEGATIVE_EVIDENCE {
        let first = failed_tokens[0];
        let code = match &first.detail {
            Detail::Token { error: Some(e), .. } => e.clone(),
            _ => String::new(),
        };
        let who = facts.sidecar.map_or_else(|| "the agent".to_owned(), |s| format!("sidecar {}", s.name));
        return (
            Some(Outcome::AuthFailed),
            format!(
                "the token service refused {who} ({code}) — {} answered {}; {} failed token requests, no write reached the DCR",
                first.describe(),
                first.status,
                failed_tokens.len()
            ),
        );
    }
    (None, String::new())
}

fn carries_series(w: &Exchange) -> bool {
    !matches!(&w.detail, Detail::Write { body: Ok(b), .. } if b.series.is_empty())
}

/// Why the DCR refused a write, naming the identity, the role and the DCR — or the payload rule it broke.
fn explain_refusal(facts: &CaseFacts<'_>, seen: &Observed<'_>, write: &Exchange) -> String {
    let Detail::Write { auth, body } = &write.detail else {
        return format!("{} answered {}", write.describe(), write.status);
    };
    if !matches!(write.status, 401 | 403) {
        let why = match body {
            Ok(b) if write.status == 415 => {
                format!("the DCR does not accept {:?} bodies", b.version.map(|v| format!("{v:?}")).unwrap_or_default())
            }
            Ok(b) => b
                .series
                .iter()
                .find_map(|s| {
                    crate::remote_write::limits::violation(s)
                        .map(|v| format!("{}: {v}", crate::remote_write::limits::short_describe(s)))
                })
                .unwrap_or_else(|| "the payload was refused".into()),
            Err(e) => format!("the body does not decode: {e}"),
        };
        return format!("{} answered {} ({why}); the agent dropped the batch", write.describe(), write.status);
    }
    match auth {
        WriteAuth::Token { id, problem } => {
            let who = seen.token(*id).map_or_else(|| id.to_string(), |t| t.principal.describe());
            let problem = problem.clone().unwrap_or_default();
            if write.status == 403 {
                format!(
                    "{who} lacks Monitoring Metrics Publisher on DCR {}: {} answered 403 and the agent dropped the batch ({problem})",
                    facts.dcr_id,
                    write.describe()
                )
            } else {
                format!(
                    "the DCR refused {id} of {who}: {problem} — {} answered 401; the agent dropped the batch",
                    write.describe()
                )
            }
        }
        WriteAuth::Missing => format!("{} carried no bearer token and was answered {}", write.describe(), write.status),
        WriteAuth::Invalid { reason } => format!("{} carried an invalid token ({reason})", write.describe()),
    }
}

/// How many refused writes carried different samples (a resent batch counts once).
fn distinct_batches(writes: &[&Exchange]) -> usize {
    let keys: HashSet<Vec<(String, i64)>> = writes.iter().map(|w| batch_key(w)).collect();
    keys.len()
}

/// The (series, timestamp) pairs a write carried, sorted: two writes with the same key are one batch sent twice.
pub(crate) fn batch_key(write: &Exchange) -> Vec<(String, i64)> {
    let mut key = Vec::new();
    if let Detail::Write { body: Ok(body), .. } = &write.detail {
        for s in &body.series {
            for p in &s.samples {
                key.push((s.describe(), p.timestamp));
            }
        }
    }
    key.sort();
    key
}

/// Whether the capability table's prediction held against the real agent.
pub(super) fn capability(facts: &CaseFacts<'_>, seen: &Observed<'_>, observed: Option<Outcome>) -> Option<Finding> {
    if facts.sidecar.is_some() {
        // The agent has no azuread block to accept or reject: the sidecar authenticates.
        return None;
    }
    let missing = capability::missing(facts.auth, facts.version);
    let check = Check::CapabilityTable;
    match (missing, observed) {
        (Some(c), Some(Outcome::ConfigRejected)) => Some(Finding::pass(
            check,
            format!("prometheus {} rejects {} as the table says (needs ≥ {})", facts.version, c.name(), c.since()),
        )),
        (Some(c), _) if seen.agent_was_ready => Some(
            Finding::fail(
                check,
                format!(
                    "the table says prometheus {} lacks {} (needs ≥ {}), but the agent accepted the config",
                    facts.version,
                    c.name(),
                    c.since()
                ),
            )
            .with_evidence("the agent logged \"Server is ready to receive web requests.\""),
        ),
        (None, Some(Outcome::ConfigRejected)) => Some(Finding::fail(
            check,
            format!(
                "the table says prometheus {} supports {}, but the agent rejected the config",
                facts.version,
                crate::agent::prometheus::auth_summary(facts.auth)
            ),
        )),
        (None, _) if seen.agent_was_ready => {
            Some(Finding::pass(check, format!("prometheus {} accepted the config, as the table says", facts.version)))
        }
        _ => None,
    }
}
