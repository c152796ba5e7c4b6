//! Load checks, read from the per-series accounting: the agent sustained the load for the stated time, at the
//! stated rate, every target series arrived, no sample is missing between a series' first and last, none came twice.

use crate::Check;
use std::time::Duration;

use super::{CaseFacts, Finding, Observed, pending};
use crate::cloud::accounting::{Accounting, SeriesTally};
use crate::scrape::{JOB, LOAD_METRIC};

/// Series named in evidence when many are affected.
const EXAMPLES: usize = 3;

pub(super) fn checks(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Vec<Finding> {
    let Some(load) = facts.load else { return Vec::new() };
    let names =
        [Check::LoadSustained, Check::LoadRate, Check::LoadComplete, Check::LoadNoLoss, Check::LoadNoDuplicates];
    let Some(acc) = seen.accounting else {
        let why = "no per-series accounting: a load scenario needs `record: accounting`";
        return names.iter().map(|c| Finding::fail(*c, why).with_evidence("record: full")).collect();
    };
    let span = acc
        .first_write_ms
        .zip(acc.last_write_ms)
        .map_or(Duration::ZERO, |(first, last)| Duration::from_millis(last - first));
    if acc.writes == 0 || span < load.duration {
        let msg = format!(
            "{:.0}s of {}s sustained so far ({} samples in {} accepted writes)",
            span.as_secs_f64(),
            load.duration.as_secs(),
            acc.samples,
            acc.writes
        );
        return names.iter().map(|&c| pending(c, msg.clone())).collect();
    }
    let per_minute = acc.samples as f64 * 60.0 / span.as_secs_f64().max(0.001);
    let mut out = vec![
        Finding::pass(
            Check::LoadSustained,
            format!("accepted writes for {:.0}s (≥ {}s)", span.as_secs_f64(), load.duration.as_secs()),
        )
        .with_evidence(format!(
            "{} samples of {} series in {} accepted writes",
            acc.samples,
            acc.series_count(),
            acc.writes
        )),
    ];
    out.push(rate(load.min_samples_per_minute, per_minute, acc, span));
    out.push(complete(load.series, acc));
    out.push(no_loss(acc, facts.scrape_interval));
    out.push(no_duplicates(acc));
    out
}

fn rate(min: Option<u64>, per_minute: f64, acc: &Accounting, span: Duration) -> Finding {
    let check = Check::LoadRate;
    let evidence = format!("{} samples accepted over {:.1}s", acc.samples, span.as_secs_f64());
    match min {
        Some(min) if per_minute < min as f64 => {
            Finding::fail(check, format!("{per_minute:.0} samples/min accepted, below the required {min}"))
                .with_evidence(evidence)
        }
        Some(min) => {
            Finding::pass(check, format!("{per_minute:.0} samples/min accepted (≥ {min})")).with_evidence(evidence)
        }
        None => Finding::pass(check, format!("{per_minute:.0} samples/min accepted")).with_evidence(evidence),
    }
}

/// Every `azrw_load_series{series="0".."N-1"}` arrived.
fn complete(want: usize, acc: &Accounting) -> Finding {
    let check = Check::LoadComplete;
    let mut got = vec![false; want];
    for t in acc.series().filter(|t| t.label("__name__") == Some(LOAD_METRIC)) {
        if let Some(i) = t.label("series").and_then(|s| s.parse::<usize>().ok()).filter(|i| *i < want) {
            got[i] = true;
        }
    }
    let missing: Vec<usize> = got.iter().enumerate().filter(|(_, g)| !**g).map(|(i, _)| i).collect();
    if missing.is_empty() {
        return Finding::pass(check, format!("all {want} load series arrived"));
    }
    let names: Vec<String> =
        missing.iter().take(EXAMPLES).map(|i| format!("{LOAD_METRIC}{{series=\"{i}\"}}")).collect();
    Finding::fail(check, format!("{} of {want} load series never arrived", missing.len())).with_evidence(format!(
        "missing: {}{}",
        names.join(", "),
        if missing.len() > EXAMPLES { ", …" } else { "" }
    ))
}

/// Between its first and last sample, every target series has one sample per scrape interval.
fn no_loss(acc: &Accounting, interval: Duration) -> Finding {
    let check = Check::LoadNoLoss;
    let interval_ms = interval.as_millis() as i64;
    let mut lossy: Vec<(&SeriesTally, u64)> = acc
        .series()
        .filter(|t| t.label("job") == Some(JOB))
        .map(|t| (t, t.missing(interval_ms)))
        .filter(|(_, m)| *m > 0)
        .collect();
    if lossy.is_empty() {
        return Finding::pass(check, format!("no sample missing in any target series (one due every {interval_ms}ms)"));
    }
    lossy.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.describe().cmp(&b.0.describe())));
    let total: u64 = lossy.iter().map(|(_, m)| m).sum();
    let mut f = Finding::fail(check, format!("{total} sample(s) missing across {} series", lossy.len()));
    for (t, missing) in lossy.iter().take(EXAMPLES) {
        let step = t.widest_step.map_or_else(String::new, |(from, to, seq)| {
            format!("; widest step {from} → {to} ({}ms), the later one in request #{seq}", to - from)
        });
        f = f.with_evidence(format!("{}: {missing} missing between {} and {}{step}", t.describe(), t.first, t.last));
    }
    f
}

/// No accepted sample arrived twice.
fn no_duplicates(acc: &Accounting) -> Finding {
    let check = Check::LoadNoDuplicates;
    let total = acc.duplicates();
    if total == 0 {
        return Finding::pass(check, "no accepted sample arrived twice");
    }
    let mut dup: Vec<&SeriesTally> = acc.series().filter(|t| t.duplicates > 0).collect();
    dup.sort_by_key(|t| t.first_duplicate.map(|(_, seq)| seq));
    let mut f = Finding::fail(check, format!("{total} accepted sample(s) arrived again, in {} series", dup.len()));
    for t in dup.iter().take(EXAMPLES) {
        if let Some((ts, seq)) = t.first_duplicate {
            f = f.with_evidence(format!("{} @{ts} again in request #{seq}", t.describe()));
        }
    }
    f
}
