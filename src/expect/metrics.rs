//! Cross-check with the agent's own `/metrics` (remote-write.md §3.4): what Prometheus says it sent, retried,
//! failed and dropped must match what the mock cloud saw. Scraped once, when the case is decided.

use crate::Check;

use super::retry::{Answer, answer};
use super::{CaseFacts, Finding, Observed};
use crate::agent::metrics::AgentMetrics;
use crate::cloud::recorder::{Detail, Exchange};

fn sample_count(w: &Exchange) -> f64 {
    match &w.detail {
        Detail::Write { body: Ok(b), .. } => b.sample_count() as f64,
        _ => 0.0,
    }
}

/// What the mock saw, in the agent's terms.
#[derive(Debug, Default)]
struct MockCounts {
    sent: f64,
    failed: f64,
    retried: f64,
    largest_batch: f64,
    highest_ts: i64,
    token_failures: usize,
    /// Samples of writes the DCR answered with a redirect: failed to the agent if it did not follow, sent if it did
    /// (security.redirect judges which); either count is right.
    redirected: f64,
}

fn mock_counts(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> MockCounts {
    let mut c = MockCounts::default();
    let mut refused_before: std::collections::BTreeSet<Vec<(String, i64)>> = Default::default();
    for w in seen.writes() {
        let n = sample_count(w);
        let key = super::outcome::batch_key(w);
        c.sent += n;
        c.largest_batch = c.largest_batch.max(n);
        if refused_before.contains(&key) {
            c.retried += n;
        }
        match answer(facts, w) {
            Answer::NonRecoverable if w.fault.as_ref().is_some_and(|f| f.location.is_some()) => c.redirected += n,
            Answer::NonRecoverable => c.failed += n,
            Answer::Recoverable => {
                refused_before.insert(key.clone());
            }
            Answer::Accepted => {}
        }
        if let Some(t) = key.iter().map(|(_, t)| *t).max() {
            c.highest_ts = c.highest_ts.max(t);
        }
    }
    // Failed token fetches, and tokens issued already expired (the agent refuses them): attempts the DCR never saw.
    c.token_failures = seen
        .exchanges
        .iter()
        .filter(|e| match &e.detail {
            Detail::Token { issued: None, error: Some(_), .. } => true,
            Detail::Token { issued: Some(id), .. } => seen.token(*id).is_some_and(|t| t.expires_at <= t.issued_at),
            _ => false,
        })
        .count();
    c
}

/// Compares the agent's counters with the mock's record. Tolerances: one batch in flight either way (the agent
/// counts an attempt before sending it and a failure after the answer; the mock records before answering), and
/// attempts that failed at the token service never reach the DCR.
pub fn cross_check(facts: &CaseFacts<'_>, seen: &Observed<'_>, agent: &AgentMetrics) -> Finding {
    let check = Check::AgentMetrics;
    let mock = mock_counts(facts, seen);
    let slack = 2.0 * mock.largest_batch.max(1.0);
    let total = agent.get("samples_total");
    let failed = agent.get("samples_failed_total");
    let retried = agent.get("samples_retried_total");
    let dropped = agent.get("samples_dropped_total");
    let highest = agent.get("queue_highest_sent_timestamp_seconds");
    let summary = format!(
        "agent: samples_total {total}, failed {failed}, retried {retried}, dropped {dropped}, pending {}, highest sent {highest}s; mock: sent {}, failed {}, resent {}, highest {}s",
        agent.get("samples_pending"),
        mock.sent,
        mock.failed,
        mock.retried,
        mock.highest_ts / 1000
    ) + &if mock.redirected > 0.0 { format!(", redirected {}", mock.redirected) } else { String::new() };
    let token_attempts = mock.token_failures > 0;
    let mut problems = Vec::new();
    if total + slack < mock.sent || (!token_attempts && total > mock.sent + slack) {
        problems.push(format!("samples_total {total} but the DCR saw {} samples", mock.sent));
    }
    if failed + slack < mock.failed || failed > mock.failed + mock.redirected + slack {
        problems.push(format!("samples_failed_total {failed} but the DCR refused {} non-recoverably", mock.failed));
    }
    if retried + slack < mock.retried || (!token_attempts && retried > mock.retried + slack) {
        problems.push(format!("samples_retried_total {retried} but the DCR saw {} resent samples", mock.retried));
    }
    if dropped > 0.0 {
        problems.push(format!("samples_dropped_total {dropped}: the agent dropped samples before sending them"));
    }
    if mock.highest_ts > 0 && ((highest as i64) - mock.highest_ts / 1000).abs() > 2 {
        problems.push(format!(
            "queue_highest_sent_timestamp_seconds {highest} but the newest sample the DCR saw is {}s",
            mock.highest_ts / 1000
        ));
    }
    match problems.first() {
        Some(p) => {
            let mut f = Finding::fail(check, format!("the agent's own metrics disagree with the mock: {p}"));
            for p in &problems[1..] {
                f = f.with_evidence(p.clone());
            }
            f.with_evidence(summary)
        }
        None => Finding::pass(check, format!("the agent's metrics match what the mock saw ({summary})")),
    }
}
