//! Series checks: the series the scenario names arrive in accepted writes.

use crate::Check;
use std::collections::BTreeMap;

use super::{CaseFacts, Finding, Observed, pending, skipped};
use crate::cloud::recorder::{Detail, Exchange};
use crate::remote_write::Series;
use crate::scenario::Outcome;

/// Series expected when a scenario names none: the target's `up` and one of its own metrics.
pub fn default_expected() -> Vec<BTreeMap<String, String>> {
    let one = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    vec![
        one(&[("__name__", "up"), ("job", crate::scrape::JOB)]),
        one(&[("__name__", crate::scrape::SCRAPES_METRIC), ("job", crate::scrape::JOB)]),
    ]
}

fn expected(facts: &CaseFacts<'_>) -> Vec<BTreeMap<String, String>> {
    if facts.expect.series.is_empty() { default_expected() } else { facts.expect.series.clone() }
}

fn matches(series: &Series, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| series.label(k) == Some(v.as_str()))
}

fn accepted_series<'a>(accepted: &[&'a Exchange]) -> impl Iterator<Item = (&'a Exchange, &'a Series)> {
    accepted.iter().flat_map(|w| match &w.detail {
        Detail::Write { body: Ok(b), .. } => b.series.iter().map(move |s| (*w, s)).collect::<Vec<_>>(),
        _ => Vec::new(),
    })
}

/// Where a series with `want`'s labels arrived: in an accepted write's body, or (bodies folded) in the accounting.
fn find(seen: &Observed<'_>, accepted: &[&Exchange], want: &BTreeMap<String, String>) -> Option<String> {
    if let Some((w, s)) = accepted_series(accepted).find(|(_, s)| matches(s, want)) {
        return Some(format!("{} in {}", s.describe(), w.describe()));
    }
    let tally = seen.accounting?.series().find(|t| want.iter().all(|(k, v)| t.label(k) == Some(v.as_str())))?;
    Some(format!("{} in {} accepted sample(s) (per-series accounting)", tally.describe(), tally.samples))
}

/// Whether every expected series arrived in these accepted writes.
pub(super) fn all_present(facts: &CaseFacts<'_>, seen: &Observed<'_>, accepted: &[&Exchange]) -> bool {
    expected(facts).iter().all(|want| find(seen, accepted, want).is_some())
}

pub(super) fn present(facts: &CaseFacts<'_>, seen: &Observed<'_>, observed: Option<Outcome>) -> Finding {
    let check = Check::SeriesPresent;
    if matches!(observed, Some(Outcome::Dropped | Outcome::AuthFailed)) {
        return skipped(check, "nothing is delivered in this outcome");
    }
    let accepted: Vec<&Exchange> = seen.writes().filter(|w| (200..300).contains(&w.status)).collect();
    let mut evidence = Vec::new();
    for want in expected(facts) {
        match find(seen, &accepted, &want) {
            Some(found) => evidence.push(found),
            None => {
                let label = format!("{want:?}");
                let seen_names: Vec<String> = accepted_series(&accepted).map(|(_, s)| s.describe()).take(5).collect();
                let mut f = pending(check, format!("no accepted write carried a series with {label}"));
                if !seen_names.is_empty() {
                    f = f.with_evidence(format!("series that did arrive include: {}", seen_names.join(", ")));
                }
                return f;
            }
        }
    }
    let mut f = Finding::pass(check, "every expected series arrived");
    f.evidence = evidence;
    f
}
