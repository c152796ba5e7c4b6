//! Payload checks: every sample the target produced arrives exactly once, bit-exact, in order, with the labels
//! Prometheus must give it — judged against the scrape target's model ([`ScrapeModel`]) and its log of served
//! scrapes, which ties each sample's timestamp to the scrape that produced it. Evidence names the request, the
//! series and the sample.

use crate::Check;
use std::collections::{BTreeMap, HashMap};

use super::{CaseFacts, Finding, Observed, pending, skipped};
use crate::cloud::recorder::{Detail, Exchange};
use crate::remote_write::{DecodedWrite, NativeHistogram, Series, limits};
use crate::scenario::Outcome;
use crate::scrape::family::{HONOR_INSTANCE, HONOR_JOB, STALE_NAN, format_value};
use crate::scrape::{Expected, ExpectedSample, Scrape, ScrapeModel};

/// Every payload check, in report order.
pub const CHECKS: &[Check] = &[
    Check::PayloadExposition,
    Check::PayloadSamples,
    Check::PayloadDuplicates,
    Check::PayloadValues,
    Check::PayloadTimestamps,
    Check::PayloadOrder,
    Check::PayloadLabels,
    Check::PayloadTargetLabels,
    Check::PayloadMetadata,
    Check::PayloadExemplars,
    Check::PayloadAzureLimits,
];

/// How much earlier than the target served a scrape the agent may stamp it (it stamps the scrape's start, and may
/// align it by up to 2 ms); generous for a loaded machine.
const EARLY_MS: i64 = 50;

type Labels = Vec<(String, String)>;

/// What a received sample carries: a float, or a native histogram.
#[derive(Clone, Copy)]
enum Got<'a> {
    Float(f64),
    Histogram(&'a NativeHistogram),
}

impl Got<'_> {
    fn describe(self) -> String {
        match self {
            Got::Float(v) => format!("{v} (bits {:#018x})", v.to_bits()),
            Got::Histogram(h) => format!("the native histogram {}", h.shape()),
        }
    }

    fn matches(self, want: &Expected) -> bool {
        match self {
            Got::Float(v) => want.matches(v),
            Got::Histogram(h) => want.matches_histogram(h),
        }
    }

    /// How the snapshot writes it.
    fn normalised(self) -> String {
        match self {
            Got::Float(v) if v.to_bits() == STALE_NAN => "StaleNaN".to_owned(),
            Got::Float(v) => format_value(v),
            Got::Histogram(h) if h.sum.to_bits() == STALE_NAN => "StaleNaN histogram".to_owned(),
            Got::Histogram(h) => format!("{} reset_hint={}", h.shape(), h.reset_hint),
        }
    }
}

/// One received sample (float or histogram) of an accepted write.
struct Arrival<'a> {
    write: &'a Exchange,
    series: &'a Series,
    timestamp: i64,
    value: Got<'a>,
}

impl Arrival<'_> {
    fn describe(&self) -> String {
        format!(
            "{} @ {} = {} in {}",
            limits::short_describe(self.series),
            self.timestamp,
            self.value.describe(),
            self.write.describe()
        )
    }
}

fn body(w: &Exchange) -> Option<&DecodedWrite> {
    match &w.detail {
        Detail::Write { body: Ok(b), .. } => Some(b),
        _ => None,
    }
}

fn accepted<'a>(seen: &Observed<'a>) -> Vec<&'a Exchange> {
    seen.exchanges
        .iter()
        .filter(|e| e.service == crate::cloud::recorder::Service::Dcr && (200..300).contains(&e.status))
        .collect()
}

fn arrivals<'a>(writes: &[&'a Exchange]) -> Vec<Arrival<'a>> {
    let mut out = Vec::new();
    for w in writes {
        for s in body(w).map(|b| b.series.as_slice()).unwrap_or_default() {
            for p in &s.samples {
                out.push(Arrival { write: w, series: s, timestamp: p.timestamp, value: Got::Float(p.value) });
            }
            for h in &s.histograms {
                out.push(Arrival { write: w, series: s, timestamp: h.timestamp, value: Got::Histogram(h) });
            }
        }
    }
    out
}

/// The scrape a timestamp belongs to: the first one served at or after it (allowing [`EARLY_MS`]), served within
/// one interval (the scrape timeout) of it.
pub fn scrape_of(scrapes: &[Scrape], timestamp: i64, interval_ms: i64) -> Option<u64> {
    let s = scrapes.iter().find(|s| s.served_at_ms + EARLY_MS >= timestamp)?;
    (s.served_at_ms - timestamp < interval_ms).then_some(s.n)
}

/// The model's expectations, computed once per scrape.
struct Expectations<'m> {
    model: &'m ScrapeModel,
    by_scrape: HashMap<u64, Vec<ExpectedSample>>,
}

impl Expectations<'_> {
    fn of(&mut self, n: u64) -> &[ExpectedSample] {
        self.by_scrape.entry(n).or_insert_with(|| self.model.expected(n))
    }

    fn find(&mut self, n: u64, labels: &Labels) -> Option<ExpectedSample> {
        self.of(n).iter().find(|e| &e.labels == labels).cloned()
    }
}

fn describe_labels(labels: &Labels) -> String {
    let s = Series { labels: labels.clone(), samples: vec![], histograms: vec![], exemplars: vec![] };
    limits::short_describe(&s)
}

/// Every scrape was served in the format the scenario asks for: the agent's `Accept` offered it.
fn exposition(model: &ScrapeModel, scrapes: &[Scrape]) -> Finding {
    let check = Check::PayloadExposition;
    if let Some(s) = scrapes.iter().find(|s| s.format != model.exposition) {
        return Finding::fail(
            check,
            format!("scrape {} was served as {}: the agent did not ask for {}", s.n, s.format, model.exposition),
        )
        .with_evidence(format!("Accept: {}", if s.accept.is_empty() { "<absent>" } else { s.accept.as_str() }));
    }
    match scrapes.first() {
        None => pending(check, "no scrape served yet"),
        Some(s) => Finding::pass(check, format!("every scrape was served as {}", model.exposition))
            .with_evidence(format!("Accept: {}", s.accept)),
    }
}

/// Runs the payload checks (only for scenarios with a `target` block).
pub(super) fn checks(facts: &CaseFacts<'_>, seen: &Observed<'_>, observed: Option<Outcome>) -> Vec<Finding> {
    let Some(model) = facts.target else { return Vec::new() };
    let all: Vec<&Exchange> = seen.writes().collect();
    let ok = accepted(seen);
    let mut out = vec![exposition(model, seen.scrapes), labels(&all), azure_limits(&all)];
    if matches!(observed, Some(Outcome::Dropped | Outcome::AuthFailed)) {
        for check in CHECKS
            .iter()
            .filter(|c| !matches!(**c, Check::PayloadExposition | Check::PayloadLabels | Check::PayloadAzureLimits))
        {
            out.push(skipped(*check, "nothing is delivered in this outcome"));
        }
        return out;
    }
    let arrived = arrivals(&ok);
    let target: Vec<&Arrival> = arrived.iter().filter(|a| model.owns(&a.series.labels)).collect();
    let mut exp = Expectations { model, by_scrape: HashMap::new() };
    out.insert(1, samples(model, seen.scrapes, &target, &mut exp));
    out.insert(2, duplicates(&arrived));
    out.insert(3, values(model, seen.scrapes, &target, &mut exp));
    out.insert(4, timestamps(model, seen.scrapes, &target));
    out.insert(5, order(&arrived));
    out.insert(7, target_labels(model, &target));
    out.insert(8, metadata(model, &ok));
    out.insert(9, exemplars(model, seen.scrapes, &ok));
    out
}

/// No loss and nothing extra: every expected sample of scrapes 1..=N arrived; no target series arrived that the
/// target did not produce.
fn samples(model: &ScrapeModel, scrapes: &[Scrape], target: &[&Arrival], exp: &mut Expectations) -> Finding {
    let check = Check::PayloadSamples;
    // Arrivals by (labels, scrape).
    let mut got: BTreeMap<(Labels, u64), &Arrival> = BTreeMap::new();
    let mut latest: HashMap<&Labels, u64> = HashMap::new();
    for a in target {
        let Some(n) = scrape_of(scrapes, a.timestamp, model.interval_ms) else { continue };
        if exp.find(n, &a.series.labels).is_none() {
            return Finding::fail(check, format!("a series the target did not produce on scrape {n} arrived"))
                .with_evidence(a.describe())
                .with_evidence(format!(
                    "scrape {n} must produce: {}",
                    exp.of(n).iter().map(|e| describe_labels(&e.labels)).collect::<Vec<_>>().join(", ")
                ));
        }
        got.entry((a.series.labels.clone(), n)).or_insert(a);
        let l = latest.entry(&a.series.labels).or_insert(n);
        *l = (*l).max(n);
    }
    let mut missing = Vec::new();
    for n in 1..=model.scrapes {
        let Some(served) = scrapes.iter().find(|s| s.n == n) else {
            return pending(check, format!("scrape {n} of {} not served yet", model.scrapes));
        };
        for e in exp.of(n).to_vec() {
            if got.contains_key(&(e.labels.clone(), n)) {
                continue;
            }
            let later = latest.get(&e.labels).copied().filter(|m| *m > n);
            missing.push((e, n, served.served_at_ms, later));
        }
    }
    if let Some((e, n, at, Some(m))) = missing.iter().find(|m| m.3.is_some()) {
        return Finding::fail(check, format!("a sample was lost: {} of scrape {n} never arrived", describe_labels(&e.labels)))
            .with_evidence(format!(
                "expected {} = {} stamped just before {at} (scrape {n}); the series' scrape {m} sample arrived, so it will not come",
                describe_labels(&e.labels),
                e.value
            ));
    }
    if let Some((e, n, at, _)) = missing.first() {
        let mut f = pending(check, format!("{} expected sample(s) not arrived yet", missing.len()));
        f = f.with_evidence(format!(
            "first: {} = {} of scrape {n} (served at {at})",
            describe_labels(&e.labels),
            e.value
        ));
        return f;
    }
    Finding::pass(
        check,
        format!("every sample of scrapes 1–{} arrived, and nothing the target did not produce", model.scrapes),
    )
}

/// No sample (series, timestamp) accepted twice.
fn duplicates(arrived: &[Arrival]) -> Finding {
    let check = Check::PayloadDuplicates;
    let mut first: HashMap<(&Labels, i64), &Arrival> = HashMap::new();
    for a in arrived {
        if let Some(prev) = first.insert((&a.series.labels, a.timestamp), a) {
            return Finding::fail(check, "a sample was delivered twice")
                .with_evidence(format!("first: {}", prev.describe()))
                .with_evidence(format!("again: {}", a.describe()));
        }
    }
    if arrived.is_empty() {
        return pending(check, "no sample delivered yet");
    }
    Finding::pass(check, format!("{} samples delivered, each once", arrived.len()))
}

/// Every target sample has exactly the value the model gives it (bits compared; stale markers included).
fn values(model: &ScrapeModel, scrapes: &[Scrape], target: &[&Arrival], exp: &mut Expectations) -> Finding {
    let check = Check::PayloadValues;
    let mut checked = 0;
    for a in target {
        let Some(n) = scrape_of(scrapes, a.timestamp, model.interval_ms) else { continue };
        let Some(e) = exp.find(n, &a.series.labels) else { continue };
        if !a.value.matches(&e.value) {
            return Finding::fail(check, format!("wrong value on scrape {n}: expected {}", e.value))
                .with_evidence(a.describe());
        }
        checked += 1;
    }
    if checked == 0 {
        return pending(check, "no target sample delivered yet");
    }
    Finding::pass(check, format!("{checked} target samples carried exactly the scraped value"))
}

/// Timestamps are milliseconds since the epoch and each belongs to a scrape the target served.
fn timestamps(model: &ScrapeModel, scrapes: &[Scrape], target: &[&Arrival]) -> Finding {
    let check = Check::PayloadTimestamps;
    for a in target {
        if !(1_000_000_000_000..10_000_000_000_000).contains(&a.timestamp) {
            return Finding::fail(check, "timestamp is not in milliseconds since the epoch")
                .with_evidence(a.describe());
        }
        if scrape_of(scrapes, a.timestamp, model.interval_ms).is_none() {
            let nearest = scrapes.iter().min_by_key(|s| (s.served_at_ms - a.timestamp).abs());
            return Finding::fail(check, "timestamp matches no scrape the target served")
                .with_evidence(a.describe())
                .with_evidence(match nearest {
                    Some(s) => format!("nearest: scrape {} served at {}", s.n, s.served_at_ms),
                    None => "no scrape served".into(),
                });
        }
    }
    if target.is_empty() {
        return pending(check, "no target sample delivered yet");
    }
    Finding::pass(check, "every target sample is stamped with the time of a served scrape (ms)")
}

/// Per series, timestamps never go backwards across the accepted writes (in arrival order).
fn order(arrived: &[Arrival]) -> Finding {
    let check = Check::PayloadOrder;
    let mut last: HashMap<&Labels, &Arrival> = HashMap::new();
    for a in arrived {
        if let Some(prev) = last.get(&a.series.labels)
            && a.timestamp < prev.timestamp
        {
            return Finding::fail(check, "a series' samples went back in time")
                .with_evidence(format!("earlier: {}", prev.describe()))
                .with_evidence(format!("then: {}", a.describe()));
        }
        last.insert(&a.series.labels, a);
    }
    if arrived.is_empty() {
        return pending(check, "no sample delivered yet");
    }
    Finding::pass(check, "every series' timestamps are non-decreasing")
}

/// The first structural label rule a series breaks: sorted by name, no repeated or empty names, no empty values,
/// `__name__` present.
pub fn label_violation(series: &Series) -> Option<String> {
    if series.label("__name__").is_none_or(str::is_empty) {
        return Some("no __name__ label".into());
    }
    for (i, (name, value)) in series.labels.iter().enumerate() {
        if name.is_empty() {
            return Some(format!("label {i} has an empty name"));
        }
        if value.is_empty() {
            return Some(format!("label {name} has an empty value (must be dropped)"));
        }
        if let Some((prev, _)) = i.checked_sub(1).map(|j| &series.labels[j]) {
            if prev == name {
                return Some(format!("label name {name} is repeated"));
            }
            if prev > name {
                return Some(format!("labels are not sorted: {prev} before {name}"));
            }
        }
    }
    None
}

fn labels(all: &[&Exchange]) -> Finding {
    per_series(
        all,
        Check::PayloadLabels,
        label_violation,
        "every series' labels are sorted, unique, non-empty, with __name__",
    )
}

fn azure_limits(all: &[&Exchange]) -> Finding {
    per_series(all, Check::PayloadAzureLimits, limits::violation, "every series is within Azure's label limits")
}

fn per_series(all: &[&Exchange], check: Check, rule: impl Fn(&Series) -> Option<String>, ok: &str) -> Finding {
    let mut seen_any = false;
    for w in all {
        for s in body(w).map(|b| b.series.as_slice()).unwrap_or_default() {
            seen_any = true;
            if let Some(v) = rule(s) {
                return Finding::fail(check, v).with_evidence(format!(
                    "{} in {} (answered {})",
                    limits::short_describe(s),
                    w.describe(),
                    w.status
                ));
            }
        }
    }
    if seen_any { Finding::pass(check, ok) } else { pending(check, "no series sent yet") }
}

/// `job`, `instance`, `exported_*` and external labels are what Prometheus must attach.
fn target_labels(model: &ScrapeModel, target: &[&Arrival]) -> Finding {
    let check = Check::PayloadTargetLabels;
    for a in target {
        let s = a.series;
        let honor = s.label("__name__") == Some("azrw_honor") && model.honor_labels;
        let (job, instance) =
            if honor { (HONOR_JOB, HONOR_INSTANCE) } else { (model.job.as_str(), model.instance.as_str()) };
        let mut problems = Vec::new();
        if s.label("job") != Some(job) {
            problems.push(format!("job is {:?}, expected {job:?}", s.label("job")));
        }
        if s.label("instance") != Some(instance) {
            problems.push(format!("instance is {:?}, expected {instance:?}", s.label("instance")));
        }
        for (k, v) in &model.external_labels {
            if s.label(k) != Some(v.as_str()) {
                problems.push(format!("external label {k} is {:?}, expected {v:?}", s.label(k)));
            }
        }
        let want_exported = s.label("__name__") == Some("azrw_honor") && !model.honor_labels;
        for (k, v) in [("exported_job", HONOR_JOB), ("exported_instance", HONOR_INSTANCE)] {
            let got = s.label(k);
            if want_exported && got != Some(v) {
                problems.push(format!("{k} is {got:?}, expected {v:?} (the target's own label, renamed)"));
            }
            if !want_exported && got.is_some() {
                problems.push(format!("unexpected {k}={:?}", got.unwrap_or_default()));
            }
        }
        if let Some(p) = problems.first() {
            return Finding::fail(check, p.clone()).with_evidence(a.describe());
        }
    }
    if target.is_empty() {
        return pending(check, "no target sample delivered yet");
    }
    Finding::pass(check, "job, instance, exported_* and external labels are as Prometheus must set them")
}

/// Metadata (`# TYPE`, `# HELP`) of every family arrives, with the right type and help text.
fn metadata(model: &ScrapeModel, ok: &[&Exchange]) -> Finding {
    let check = Check::PayloadMetadata;
    let want = model.metadata();
    if want.is_empty() {
        return Finding::pass(check, "the target serves no metadata");
    }
    let entries: Vec<(&Exchange, &crate::remote_write::Metadata)> = ok
        .iter()
        .flat_map(|w| body(w).map(|b| b.metadata.iter().map(move |m| (*w, m)).collect::<Vec<_>>()).unwrap_or_default())
        .collect();
    // RW 2.0 names metadata by its series: an OpenMetrics counter's series keeps the `_total` its family drops.
    let belongs = |m: &crate::scrape::family::FamilyMeta, name: &str| {
        m.owns(name) || (m.kind == "COUNTER" && name.strip_suffix("_total") == Some(m.name))
    };
    let mut missing = Vec::new();
    for m in &want {
        let mine: Vec<_> = entries.iter().filter(|(_, e)| belongs(m, &e.family)).collect();
        if let Some((w, e)) = mine.iter().find(|(_, e)| e.kind != m.kind || e.help != m.help || e.unit != m.unit) {
            return Finding::fail(
                check,
                format!("metadata of {} is wrong: expected {} {:?} unit {:?}", m.name, m.kind, m.help, m.unit),
            )
            .with_evidence(format!(
                "{}: {} {:?} unit {:?} in {}",
                e.family,
                e.kind,
                e.help,
                e.unit,
                w.describe()
            ));
        }
        if mine.is_empty() {
            missing.push(m.name);
        }
    }
    if !missing.is_empty() {
        return pending(check, format!("no metadata yet for {}", missing.join(", ")));
    }
    Finding::pass(check, format!("metadata of all {} families arrived with the right type, help and unit", want.len()))
}

/// Every exemplar the target served in scrapes 1..=N arrives exactly once, on the series it was served with, with
/// its labels, value and timestamp; nothing else arrives as an exemplar of a target series.
fn exemplars(model: &ScrapeModel, scrapes: &[Scrape], ok: &[&Exchange]) -> Finding {
    let check = Check::PayloadExemplars;
    let served = scrapes.iter().map(|s| s.n).max().unwrap_or(0);
    // Everything served so far may legitimately arrive; scrapes 1..=N must.
    let known = model.exemplars(served.max(model.scrapes));
    let got: Vec<(&Exchange, &Series, &crate::remote_write::Exemplar)> = ok
        .iter()
        .flat_map(|w| {
            body(w)
                .map(|b| b.series.iter().flat_map(|s| s.exemplars.iter().map(move |e| (*w, s, e))).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .filter(|(_, s, _)| model.owns(&s.labels))
        .collect();
    let describe = |w: &Exchange, s: &Series, e: &crate::remote_write::Exemplar| {
        format!("exemplar {e} on {} in {}", limits::short_describe(s), w.describe())
    };
    let mut first: HashMap<usize, (&Exchange, &Series, &crate::remote_write::Exemplar)> = HashMap::new();
    for (w, s, e) in &got {
        let Some(i) = known.iter().position(|k| k.series == s.labels && k.exemplar == **e) else {
            let mut f = Finding::fail(check, "an exemplar the target did not serve on this series arrived")
                .with_evidence(describe(w, s, e));
            if let Some(k) = known.iter().find(|k| k.exemplar.labels == e.labels) {
                f = f.with_evidence(format!(
                    "the target served {} on {} (scrape {})",
                    k.exemplar,
                    describe_labels(&k.series),
                    k.scrape
                ));
            }
            return f;
        };
        if let Some((pw, ps, pe)) = first.insert(i, (w, s, e)) {
            return Finding::fail(check, "an exemplar was delivered twice")
                .with_evidence(format!("first: {}", describe(pw, ps, pe)))
                .with_evidence(format!("again: {}", describe(w, s, e)));
        }
    }
    let due: Vec<(usize, &crate::scrape::ExpectedExemplar)> =
        known.iter().enumerate().filter(|(_, k)| k.scrape <= model.scrapes).collect();
    if due.is_empty() {
        return Finding::pass(check, "the target serves no exemplars, and none arrived on its series");
    }
    for (i, k) in &due {
        if first.contains_key(i) {
            continue;
        }
        // A later exemplar of the same series arrived: this one was lost, not late (they go out in order).
        let later = first.iter().find(|(j, _)| **j > *i && known[**j].series == k.series);
        if let Some((_, (w, s, e))) = later {
            return Finding::fail(
                check,
                format!("an exemplar was lost: {} of scrape {} never arrived", k.exemplar, k.scrape),
            )
            .with_evidence(format!("expected on {}", describe_labels(&k.series)))
            .with_evidence(format!("a later one arrived: {}", describe(w, s, e)));
        }
        if scrapes.iter().any(|s| s.n == model.scrapes) || served >= k.scrape {
            return pending(check, format!("exemplar {} of scrape {} not arrived yet", k.exemplar, k.scrape))
                .with_evidence(format!("expected on {}", describe_labels(&k.series)));
        }
        return pending(check, format!("scrape {} not served yet", k.scrape));
    }
    Finding::pass(
        check,
        format!("all {} exemplars of scrapes 1–{} arrived once, on their series, exact", due.len(), model.scrapes),
    )
}

/// The delivered payload, normalised so that two runs of one agent version give the same text and two versions
/// differ only where what they send differs: the scrape's `Accept` header, the protocol headers, the metadata,
/// scrapes 1..=N of the target's series (sorted, `instance` and run-specific values redacted, timestamps replaced
/// by scrape numbers; native histograms field by field) and the exemplars (their timestamps are the target's own).
pub fn snapshot(model: &ScrapeModel, scrapes: &[Scrape], exchanges: &[Exchange]) -> String {
    let writes: Vec<&Exchange> = exchanges
        .iter()
        .filter(|e| e.service == crate::cloud::recorder::Service::Dcr && (200..300).contains(&e.status))
        .collect();
    let mut out = String::new();
    // What the agent asks the target for differs between versions (formats offered, their q-values).
    if let Some(s) = scrapes.first() {
        out.push_str(&format!("Scrape Accept: {}\nScrape served as: {}\n", s.accept, s.format));
    }
    if let Some(w) = writes.iter().find(|w| body(w).is_some_and(|b| !b.series.is_empty())) {
        for h in ["Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent"] {
            out.push_str(&format!("{h}: {}\n", w.header(h).unwrap_or("<absent>")));
        }
    }
    let mut meta: Vec<String> = writes
        .iter()
        .filter_map(|w| body(w))
        .flat_map(|b| b.metadata.iter().map(|m| format!("  {} {} {:?} unit={:?}", m.family, m.kind, m.help, m.unit)))
        .collect();
    meta.sort();
    meta.dedup();
    out.push_str("metadata:\n");
    for m in meta {
        out.push_str(&m);
        out.push('\n');
    }
    let mut exp = Expectations { model, by_scrape: HashMap::new() };
    let mut series: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in arrivals(&writes).iter().filter(|a| model.owns(&a.series.labels)) {
        let Some(n) = scrape_of(scrapes, a.timestamp, model.interval_ms).filter(|n| *n <= model.scrapes) else {
            continue;
        };
        let redacted = without_instance(model, &a.series.labels);
        let value = match exp.find(n, &a.series.labels).map(|e| e.value) {
            Some(Expected::Any) => "[run-specific]".to_owned(),
            _ => a.value.normalised(),
        };
        series.entry(describe_labels(&redacted)).or_default().push(format!("{n}: {value}"));
    }
    out.push_str("series:\n");
    for (name, samples) in series {
        out.push_str(&format!("  {name}: [{}]\n", samples.join(", ")));
    }
    let mut exemplars = snapshot_exemplars(model, &writes);
    if !exemplars.is_empty() {
        // Exemplar timestamps are the target's own (fixed), so they stay in; order them for a stable diff.
        exemplars.sort();
        out.push_str("exemplars:\n");
        for e in exemplars {
            out.push_str(&e);
            out.push('\n');
        }
    }
    out
}

/// `labels` with the target's address (a free port, different each run) as `[target]`.
fn without_instance(model: &ScrapeModel, labels: &Labels) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.clone(), if *v == model.instance { "[target]".to_owned() } else { v.clone() }))
        .collect()
}

/// The exemplars of [`snapshot`], one line each. Only those of the scrapes the series are shown for: how many more
/// went out before the case was decided is timing, not behaviour.
fn snapshot_exemplars(model: &ScrapeModel, writes: &[&Exchange]) -> Vec<String> {
    let in_window = model.exemplars(model.scrapes);
    writes
        .iter()
        .filter_map(|w| body(w))
        .flat_map(|b| b.series.iter())
        .filter(|s| model.owns(&s.labels))
        .flat_map(|s| {
            let redacted = without_instance(model, &s.labels);
            let in_window = &in_window;
            s.exemplars
                .iter()
                .filter(move |e| in_window.iter().any(|k| k.series == s.labels && k.exemplar == **e))
                .map(move |e| format!("  {}: {e}", describe_labels(&redacted)))
        })
        .collect()
}
