//! Retry checks: what Prometheus must do when the DCR misbehaves, per version (reference: remote-write.md §3.1,
//! azure-protocols.md §1.6). Recoverable answers (5xx, transport errors, 429 with `retry_on_http_429`) are retried
//! until the same samples land exactly once; other answers are dropped and never resent; `Retry-After` replaces the
//! backoff (on 5xx from 2.48, not capped by `max_backoff`); backoff doubles from `min_backoff` to `max_backoff`;
//! `Retry-Attempt: n` is sent on retries from 2.48.

use crate::Check;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::outcome::batch_key;
use super::{CaseFacts, Finding, Observed, pending, skipped};
use crate::agent::Version;
use crate::cloud::RetryAfter;
use crate::cloud::recorder::{Detail, Exchange};
use crate::scenario::FaultService;

/// First version that honours `Retry-After` on 5xx and sends `Retry-Attempt` (PRs #12677, #12729).
pub const RETRY_AFTER_5XX_SINCE: Version = Version::new(2, 48, 0);

/// Slack for "later than expected" on a loaded 2-core machine: scheduling, TLS, the proxy, the agent's GC.
const LATE_SLACK: Duration = Duration::from_millis(1500);
/// Slack for "earlier than expected": clock granularity between the agent's sleep and the mock's clock.
const EARLY_SLACK: Duration = Duration::from_millis(10);
/// Accepted writes after the plan is over before "nothing was lost" is decided.
const WRITES_AFTER_RECOVERY: usize = 3;

/// The agent's retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `queue_config.min_backoff` (default 30ms).
    pub min_backoff: Duration,
    /// `queue_config.max_backoff` (default 5s).
    pub max_backoff: Duration,
    /// `queue_config.retry_on_http_429` (default false).
    pub retry_on_429: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { min_backoff: Duration::from_millis(30), max_backoff: Duration::from_secs(5), retry_on_429: false }
    }
}

impl RetryPolicy {
    /// The policy a scenario's `queue_config` overrides give (Prometheus' defaults otherwise).
    ///
    /// ```
    /// let q = [("max_backoff".to_owned(), serde_json::json!("1s"))].into_iter().collect();
    /// assert_eq!(azrw::expect::RetryPolicy::from_queue_config(&q).max_backoff, std::time::Duration::from_secs(1));
    /// ```
    pub fn from_queue_config(queue: &BTreeMap<String, serde_json::Value>) -> RetryPolicy {
        let d = RetryPolicy::default();
        let duration = |k: &str, default| {
            queue.get(k).and_then(|v| v.as_str()).and_then(|s| humantime::parse_duration(s).ok()).unwrap_or(default)
        };
        RetryPolicy {
            min_backoff: duration("min_backoff", d.min_backoff),
            max_backoff: duration("max_backoff", d.max_backoff),
            retry_on_429: queue.get("retry_on_http_429").and_then(|v| v.as_bool()).unwrap_or(false),
        }
    }
}

/// How the agent must treat an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Accepted,
    /// Retry the same batch.
    Recoverable,
    /// Drop the batch.
    NonRecoverable,
}

/// How the agent must treat the answer to this write.
pub fn answer(facts: &CaseFacts<'_>, w: &Exchange) -> Answer {
    match w.status {
        0 | 500..=599 => Answer::Recoverable,
        200..=299 => Answer::Accepted,
        429 if facts.retry.retry_on_429 => Answer::Recoverable,
        _ => Answer::NonRecoverable,
    }
}

/// The `Retry-After` the agent must honour after this answer, if any.
fn honoured_retry_after<'a>(facts: &CaseFacts<'_>, w: &'a Exchange) -> Option<&'a RetryAfter> {
    let after = w.fault.as_ref()?.retry_after.as_ref()?;
    let honours = match w.status {
        429 => facts.retry.retry_on_429,
        500..=599 => facts.version >= RETRY_AFTER_5XX_SINCE,
        _ => false,
    };
    honours.then_some(after)
}

/// The shortest wait that still honours `r`. Prometheus turns an HTTP-date into whole seconds from the moment it
/// reads it, rounded down (storage/remote/client.go `retryAfterDuration`), so it may come back up to a second
/// before the date; delta-seconds it takes as they are.
fn shortest_honouring_wait(r: &RetryAfter) -> Duration {
    if r.is_date() { r.wait.saturating_sub(Duration::from_secs(1)) } else { r.wait }
}

fn plan_has(facts: &CaseFacts<'_>, pred: impl Fn(&crate::scenario::FaultRule) -> bool) -> bool {
    facts.faults.rules.iter().any(|r| r.rule.service == FaultService::Dcr && pred(&r.rule))
}

fn recoverable_rule(facts: &CaseFacts<'_>, r: &crate::scenario::FaultRule) -> bool {
    r.reset
        || r.delay.is_some_and(|d| d >= facts.faults.client_timeout)
        || r.status.is_some_and(|s| (500..600).contains(&s) || (s == 429 && facts.retry.retry_on_429))
}

pub(super) fn checks(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Vec<Finding> {
    if seen.accounting.is_some() && !facts.faults.is_empty() {
        // They tell a resend from a new batch by its samples, which `record: accounting` folds away; under load
        // (a throttling fault) load.no-loss and load.no-duplicates judge that every sample landed exactly once.
        let why = "accepted and throttled bodies are folded into per-series accounting (`record: accounting`), so \
                   resends cannot be matched to batches; load.no-loss and load.no-duplicates judge delivery";
        return Check::of_family("retry").map(|c| skipped(c, why)).collect();
    }
    let writes: Vec<&Exchange> = seen.writes().collect();
    let chains = chains(&writes);
    vec![
        recoverable_resent(facts, &writes),
        dropped(facts, &writes, seen),
        retry_after(facts, &chains),
        backoff(facts, seen, &chains),
        attempt_header(facts, seen, &chains),
        no_loss(facts, seen, &writes),
    ]
}

/// Consecutive sends of one batch (identical samples), in order. Only batches sent more than once.
fn chains<'a>(writes: &[&'a Exchange]) -> Vec<Vec<&'a Exchange>> {
    let mut by_key: BTreeMap<Vec<(String, i64)>, Vec<&Exchange>> = BTreeMap::new();
    for w in writes {
        let key = batch_key(w);
        if !key.is_empty() {
            by_key.entry(key).or_default().push(w);
        }
    }
    let mut out: Vec<Vec<&Exchange>> = by_key.into_values().filter(|c| c.len() > 1).collect();
    out.sort_by_key(|c| c[0].seq);
    out
}

fn samples(w: &Exchange) -> BTreeSet<(String, i64)> {
    batch_key(w).into_iter().collect()
}

fn describe_answer(w: &Exchange) -> String {
    let fault = w.fault.as_ref().map(|f| format!(" [fault {}]", f.rule)).unwrap_or_default();
    let status = if w.status == 0 { "no answer".to_owned() } else { w.status.to_string() };
    format!("{} at +{:.2}s → {status}{fault}", w.describe(), w.at.as_secs_f64())
}

/// Recoverably refused samples are sent again until accepted; a shard that moves on to newer samples of the same
/// series without them has abandoned the batch.
fn recoverable_resent(facts: &CaseFacts<'_>, writes: &[&Exchange]) -> Finding {
    let check = Check::RetryRecoverableResent;
    let mut refused = 0;
    let mut open = None;
    for (i, w) in writes.iter().enumerate() {
        if answer(facts, w) != Answer::Recoverable || batch_key(w).is_empty() {
            continue;
        }
        refused += 1;
        let mine = samples(w);
        let later = &writes[i + 1..];
        let landed = later.iter().find(|l| answer(facts, l) == Answer::Accepted && mine.is_subset(&samples(l)));
        if landed.is_some() {
            continue;
        }
        let newest: BTreeMap<&str, i64> = mine.iter().fold(BTreeMap::new(), |mut m, (s, t)| {
            let e = m.entry(s.as_str()).or_insert(*t);
            *e = (*e).max(*t);
            m
        });
        let moved_on = later.iter().find(|l| {
            answer(facts, l) == Answer::Accepted
                && samples(l).iter().any(|(s, t)| newest.get(s.as_str()).is_some_and(|n| t > n))
        });
        if let Some(m) = moved_on {
            return Finding::fail(
                check,
                format!(
                    "prometheus {} gave up on a batch refused with {} (recoverable): newer samples of the same series were sent, these never were",
                    facts.version,
                    if w.status == 0 { "no answer".into() } else { w.status.to_string() }
                ),
            )
            .with_evidence(format!("refused: {}", describe_answer(w)))
            .with_evidence(format!("moved on: {}", describe_answer(m)));
        }
        open.get_or_insert(*w);
    }
    match (refused, open) {
        (0, _) if !plan_has(facts, |r| recoverable_rule(facts, r)) => {
            skipped(check, "the fault plan has no recoverable DCR fault")
        }
        (0, _) => pending(check, "no recoverable refusal yet"),
        (_, Some(w)) => pending(check, format!("waiting for the samples refused by {} to land", w.describe())),
        (n, None) => Finding::pass(check, format!("all {n} recoverably refused batches were resent and accepted")),
    }
}

/// Non-recoverable refusals are dropped: never resent, and the agent moves on to newer samples.
fn dropped(facts: &CaseFacts<'_>, writes: &[&Exchange], seen: &Observed<'_>) -> Finding {
    let check = Check::RetryDropped;
    let latest = seen.exchanges.iter().map(|e| e.at).max().unwrap_or_default();
    let mut refused = 0;
    for (i, w) in writes.iter().enumerate() {
        if answer(facts, w) != Answer::NonRecoverable || w.fault.is_none() || batch_key(w).is_empty() {
            continue;
        }
        refused += 1;
        let mine = samples(w);
        if let Some(again) = writes[i + 1..].iter().find(|l| !mine.is_disjoint(&samples(l))) {
            let attempt = again.header("Retry-Attempt").map(|a| format!(" (Retry-Attempt: {a})")).unwrap_or_default();
            return Finding::fail(
                check,
                format!(
                    "samples refused with {} (non-recoverable for prometheus {}) were sent again",
                    w.status, facts.version
                ),
            )
            .with_evidence(format!("refused: {}", describe_answer(w)))
            .with_evidence(format!("resent: {}{attempt}", describe_answer(again)));
        }
        // The agent had its chance to (wrongly) retry: a full max_backoff and a newer batch since.
        let waited = latest >= w.at + facts.retry.max_backoff + LATE_SLACK;
        let moved_on = writes[i + 1..].iter().any(|l| !batch_key(l).is_empty());
        if !(waited && moved_on) {
            return pending(check, format!("watching whether {} is resent", w.describe()));
        }
    }
    if refused == 0 {
        if plan_has(facts, |r| r.status.is_some_and(|s| s < 500) && !recoverable_rule(facts, r)) {
            return pending(check, "no non-recoverable refusal yet");
        }
        return skipped(check, "the fault plan has no non-recoverable DCR fault");
    }
    Finding::pass(check, format!("{refused} non-recoverably refused batches were dropped and never resent"))
}

/// After an honoured `Retry-After: R`, the same batch comes back no sooner than R (up to a second earlier for the
/// HTTP-date form, see [`shortest_honouring_wait`]) and not much later; versions that ignore it come back sooner.
fn retry_after(facts: &CaseFacts<'_>, chains: &[Vec<&Exchange>]) -> Finding {
    let check = Check::RetryRetryAfter;
    let mut seen_pairs = Vec::new();
    for chain in chains {
        for pair in chain.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let Some(r) = a.fault.as_ref().and_then(|f| f.retry_after.as_ref()) else { continue };
            if answer(facts, a) != Answer::Recoverable {
                continue;
            }
            let gap = b.at.saturating_sub(a.at);
            let low = shortest_honouring_wait(r).saturating_sub(EARLY_SLACK);
            let asked = r.asked();
            let evidence = |f: Finding| {
                f.with_evidence(format!("answered: {} with {}", describe_answer(a), r.describe()))
                    .with_evidence(format!("retried: {} after {:.2}s", describe_answer(b), gap.as_secs_f64()))
            };
            match honoured_retry_after(facts, a) {
                Some(_) if gap < low => {
                    return evidence(Finding::fail(
                        check,
                        format!(
                            "prometheus {} retried {:.2}s after Retry-After {asked} (it must wait)",
                            facts.version,
                            gap.as_secs_f64(),
                        ),
                    ));
                }
                Some(_) if gap > r.wait + r.wait / 2 + LATE_SLACK => {
                    return evidence(Finding::fail(
                        check,
                        format!(
                            "prometheus {} waited {:.2}s after Retry-After {asked} (far longer than asked)",
                            facts.version,
                            gap.as_secs_f64(),
                        ),
                    ));
                }
                None if gap >= low && r.wait > facts.retry.max_backoff => {
                    return evidence(Finding::fail(
                        check,
                        format!(
                            "prometheus {} honoured Retry-After on {}, but versions before {RETRY_AFTER_5XX_SINCE} ignore it",
                            facts.version, a.status
                        ),
                    ));
                }
                _ => seen_pairs.push(format!("{asked} asked, {:.2}s waited", gap.as_secs_f64())),
            }
        }
    }
    let asked =
        plan_has(facts, |r| (r.retry_after.is_some() || r.retry_after_date.is_some()) && recoverable_rule(facts, r));
    match (seen_pairs.is_empty(), asked) {
        (true, false) => skipped(check, "the fault plan sends no Retry-After on a recoverable answer"),
        (true, true) => pending(check, "no retry after a Retry-After answer yet"),
        (false, _) => Finding::pass(
            check,
            format!("Retry-After treated as prometheus {} must: {}", facts.version, seen_pairs.join("; ")),
        ),
    }
}

/// Whether a token request failed between two exchanges (the agent then made attempts the DCR never saw).
fn token_failure_between(seen: &Observed<'_>, a: &Exchange, b: &Exchange) -> bool {
    seen.exchanges.iter().any(|e| {
        e.seq > a.seq && e.seq < b.seq && matches!(&e.detail, Detail::Token { issued: None, error: Some(_), .. })
    })
}

/// Waits between resends of one batch follow the backoff: `min_backoff`, doubling, capped at `max_backoff`; an
/// honoured Retry-After replaces one wait and the next is twice it (capped). Too short is a retry storm.
fn backoff(facts: &CaseFacts<'_>, seen: &Observed<'_>, chains: &[Vec<&Exchange>]) -> Finding {
    let check = Check::RetryBackoff;
    let p = facts.retry;
    let mut checked = Vec::new();
    for chain in chains {
        let mut next_backoff = p.min_backoff;
        for pair in chain.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if answer(facts, a) != Answer::Recoverable {
                break;
            }
            let honoured = honoured_retry_after(facts, a);
            let sleep = honoured.map_or(next_backoff, |r| r.wait);
            next_backoff = (sleep * 2).min(p.max_backoff);
            if token_failure_between(seen, a, b) {
                continue; // it tried in between without reaching the DCR
            }
            // The agent's wait starts when it gives up on the answer: at once for a reset, after its timeout for
            // an answer that never came in time (the exchange is recorded on arrival).
            let started = a.at + timed_out_after(facts, a);
            let gap = b.at.saturating_sub(started);
            let low = match honoured {
                Some(r) => shortest_honouring_wait(r),
                None => sleep.mul_f64(0.9),
            }
            .saturating_sub(EARLY_SLACK);
            let high = sleep + sleep / 2 + LATE_SLACK;
            let ev = |f: Finding| {
                f.with_evidence(format!("refused: {}", describe_answer(a))).with_evidence(format!(
                    "resent: {} after {:.3}s",
                    describe_answer(b),
                    gap.as_secs_f64()
                ))
            };
            if gap < low {
                return ev(Finding::fail(
                    check,
                    format!(
                        "retry storm: resent after {:.3}s, the backoff was {:.3}s (min_backoff {:?}, max_backoff {:?})",
                        gap.as_secs_f64(),
                        sleep.as_secs_f64(),
                        p.min_backoff,
                        p.max_backoff
                    ),
                ));
            }
            if gap > high {
                return ev(Finding::fail(
                    check,
                    format!(
                        "resent after {:.3}s, far beyond the {:.3}s backoff (max_backoff {:?})",
                        gap.as_secs_f64(),
                        sleep.as_secs_f64(),
                        p.max_backoff
                    ),
                ));
            }
            checked.push(format!("{:.2}s (backoff {:.2}s)", gap.as_secs_f64(), sleep.as_secs_f64()));
        }
    }
    if checked.is_empty() {
        return if plan_has(facts, |r| recoverable_rule(facts, r)) {
            pending(check, "no resend of a refused batch seen yet")
        } else {
            skipped(check, "the fault plan has no recoverable DCR fault")
        };
    }
    Finding::pass(check, format!("waits between resends followed the backoff: {}", checked.join(", ")))
}

/// How long after its arrival the agent gave up on this exchange: its timeout for a delayed answer, else zero.
fn timed_out_after(facts: &CaseFacts<'_>, w: &Exchange) -> Duration {
    let Some(mark) = w.fault.as_ref().filter(|f| f.unanswered) else { return Duration::ZERO };
    let reset = facts.faults.rules.iter().any(|r| r.name == mark.rule && r.rule.reset);
    if reset { Duration::ZERO } else { facts.faults.client_timeout }
}

/// `Retry-Attempt` counts resends of a batch from 2.48 (absent on the first send); older versions never send it.
fn attempt_header(facts: &CaseFacts<'_>, seen: &Observed<'_>, chains: &[Vec<&Exchange>]) -> Finding {
    let check = Check::RetryAttemptHeader;
    let sends = facts.version >= RETRY_AFTER_5XX_SINCE;
    let mut checked = 0;
    for chain in chains {
        for (k, w) in chain.iter().enumerate() {
            if k > 0 && token_failure_between(seen, chain[k - 1], w) {
                break; // attempts the DCR never saw also count
            }
            let got = w.header("Retry-Attempt");
            let want = (sends && k > 0).then(|| k.to_string());
            if got != want.as_deref() {
                return Finding::fail(
                    check,
                    format!(
                        "send {} of this batch carried Retry-Attempt {}, prometheus {} sends {}",
                        k + 1,
                        got.map_or("absent".to_owned(), |g| format!("{g:?}")),
                        facts.version,
                        want.map_or("none".to_owned(), |w| format!("{w:?}"))
                    ),
                )
                .with_evidence(format!(
                    "{} Retry-Attempt: {}",
                    describe_answer(w),
                    got.unwrap_or("<absent>")
                ));
            }
            checked += usize::from(k > 0);
        }
    }
    if checked == 0 {
        return if plan_has(facts, |r| recoverable_rule(facts, r)) {
            pending(check, "no resend seen yet")
        } else {
            skipped(check, "the fault plan has no recoverable DCR fault")
        };
    }
    Finding::pass(check, format!("{checked} resends carried the Retry-Attempt prometheus {} sends", facts.version))
}

/// After a plan that ends, every sample arrives exactly once: no sample accepted twice, and the target's scrape
/// counter arrives without gaps (a gap is allowed only where the DCR refused it non-recoverably or the scrape
/// itself failed, `up` = 0).
fn no_loss(facts: &CaseFacts<'_>, seen: &Observed<'_>, writes: &[&Exchange]) -> Finding {
    let check = Check::RetryNoLoss;
    if facts.faults.is_empty() {
        return skipped(check, "no fault plan");
    }
    if !facts.faults.recovers() {
        return skipped(check, "the fault plan never ends, so nothing has to arrive after it");
    }
    let accepted: Vec<&Exchange> = writes.iter().copied().filter(|w| answer(facts, w) == Answer::Accepted).collect();
    let mut first_seen: BTreeMap<(String, i64), &Exchange> = BTreeMap::new();
    for w in &accepted {
        for s in samples(w) {
            if let Some(before) = first_seen.get(&s) {
                return Finding::fail(check, format!("sample {} @{} was accepted twice", s.0, s.1))
                    .with_evidence(format!("first: {}", describe_answer(before)))
                    .with_evidence(format!("again: {}", describe_answer(w)));
            }
            first_seen.insert(s, w);
        }
    }
    // Counter values the DCR dropped on purpose, and scrape failures.
    let mut excused: BTreeSet<i64> = BTreeSet::new();
    for w in writes.iter().filter(|w| answer(facts, w) == Answer::NonRecoverable) {
        excused.extend(counter_samples(w).into_iter().map(|(_, v, _)| v));
    }
    let failed_scrapes: Vec<i64> =
        accepted.iter().flat_map(|w| series_samples(w, "up")).filter(|(_, v)| *v == 0.0).map(|(ts, _)| ts).collect();
    let mut counter: Vec<(i64, i64, &Exchange)> = accepted.iter().flat_map(|w| counter_samples(w)).collect();
    counter.sort_by_key(|(ts, _, _)| *ts);
    // The target counts from 1 and the agent's queue starts before its first scrape: value 1 must arrive too.
    if let Some(&(t0, v0, w0)) = counter.first() {
        let missing = (1..v0).filter(|v| !excused.contains(v)).count();
        if missing > failed_scrapes.iter().filter(|t| **t < t0).count() {
            return Finding::fail(
                check,
                format!("samples lost: {} values 1..{} never arrived", crate::scrape::SCRAPES_METRIC, v0 - 1),
            )
            .with_evidence(format!("the first value that arrived was {v0} @{t0}, in {}", describe_answer(w0)));
        }
    }
    for pair in counter.windows(2) {
        let ((t0, v0, _), (t1, v1, w1)) = (pair[0], pair[1]);
        let missing: Vec<i64> = (v0 + 1..v1).filter(|v| !excused.contains(v)).collect();
        let scrape_failures = failed_scrapes.iter().filter(|t| **t > t0 && **t < t1).count();
        if missing.len() > scrape_failures {
            return Finding::fail(
                check,
                format!(
                    "samples lost: {} values {}..{} (scraped between {t0} and {t1} ms) never arrived",
                    crate::scrape::SCRAPES_METRIC,
                    v0 + 1,
                    v1 - 1
                ),
            )
            .with_evidence(format!("value {v0} @{t0}, then value {v1} @{t1} in {}", describe_answer(w1)));
        }
    }
    let Some(over) = facts.faults.over_at(seen.exchanges) else {
        return pending(check, "the fault plan is still running");
    };
    let after = accepted.iter().filter(|w| w.at > over && !counter_samples(w).is_empty()).count();
    if after < WRITES_AFTER_RECOVERY {
        return pending(
            check,
            format!(
                "{after} of {WRITES_AFTER_RECOVERY} accepted writes after the faults ended (+{:.1}s)",
                over.as_secs_f64()
            ),
        );
    }
    let unlanded = writes
        .iter()
        .find(|w| answer(facts, w) == Answer::Recoverable && samples(w).iter().any(|s| !first_seen.contains_key(s)));
    if let Some(w) = unlanded {
        return Finding::fail(check, "samples refused recoverably never landed").with_evidence(describe_answer(w));
    }
    let (lo, hi) = (counter.first().map_or(0, |c| c.1), counter.last().map_or(0, |c| c.1));
    Finding::pass(
        check,
        format!(
            "faults over at +{:.1}s; {} values {lo}..{hi} arrived once each, no sample accepted twice",
            over.as_secs_f64(),
            crate::scrape::SCRAPES_METRIC
        ),
    )
}

/// (timestamp, value) of one series by name in a write.
fn series_samples(w: &Exchange, name: &str) -> Vec<(i64, f64)> {
    let Detail::Write { body: Ok(body), .. } = &w.detail else { return Vec::new() };
    body.series
        .iter()
        .filter(|s| s.label("__name__") == Some(name) && s.label("job") == Some(crate::scrape::JOB))
        .flat_map(|s| s.samples.iter().map(|p| (p.timestamp, p.value)))
        .collect()
}

/// (timestamp, counter value, write) of the target's scrape counter.
fn counter_samples(w: &Exchange) -> Vec<(i64, i64, &Exchange)> {
    series_samples(w, crate::scrape::SCRAPES_METRIC).into_iter().map(|(t, v)| (t, v as i64, w)).collect()
}
