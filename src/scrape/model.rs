//! What the agent must send for each scrape: the target's series with the labels Prometheus must give them
//! (empty values dropped, `job`/`instance` added or `exported_*` on conflict, external labels, sorted), the
//! series Prometheus itself adds per scrape (`up` …), and the stale markers for series that disappeared.

use super::family::{self, FamilyMeta, RawHistogram, RawSeries, STALE_NAN};
use crate::remote_write::{Exemplar, NativeHistogram};
use crate::scenario::{Exposition, Family, ScrapeSpec};

/// Scrapes that must arrive complete when the scenario does not say.
pub const DEFAULT_SCRAPES: u64 = 4;

/// The value a sample must carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// This native histogram (every field but the timestamp and the counter-reset hint, which Prometheus sets).
    Histogram(Box<NativeHistogram>),
    /// Exactly these bits.
    Bits(u64),
    /// A NaN that is not the stale marker.
    NaN,
    /// Prometheus' stale marker, `0x7ff0000000000002`.
    Stale,
    /// Any value (run-dependent, e.g. `scrape_duration_seconds`).
    Any,
}

impl Expected {
    fn of(v: f64) -> Expected {
        if v.is_nan() { Expected::NaN } else { Expected::Bits(v.to_bits()) }
    }

    /// Whether the float `v` is this value.
    pub fn matches(&self, v: f64) -> bool {
        match self {
            Expected::Bits(b) => v.to_bits() == *b,
            Expected::NaN => v.is_nan() && v.to_bits() != STALE_NAN,
            Expected::Stale => v.to_bits() == STALE_NAN,
            Expected::Any => true,
            Expected::Histogram(_) => false,
        }
    }

    /// Whether the native histogram `h` is this value (a histogram's stale marker is one whose sum is the stale
    /// NaN).
    pub fn matches_histogram(&self, h: &NativeHistogram) -> bool {
        match self {
            Expected::Histogram(want) => want.shape() == h.shape(),
            Expected::Stale => h.sum.to_bits() == STALE_NAN,
            Expected::Any => true,
            Expected::Bits(_) | Expected::NaN => false,
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Bits(b) => write!(f, "{} (bits {b:#018x})", f64::from_bits(*b)),
            Expected::NaN => f.write_str("NaN (not the stale marker)"),
            Expected::Stale => write!(f, "the stale marker (bits {STALE_NAN:#018x})"),
            Expected::Any => f.write_str("any value"),
            Expected::Histogram(h) => write!(f, "the native histogram {}", h.shape()),
        }
    }
}

/// One sample the agent must send for a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedSample {
    /// The complete, sorted label set.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: Expected,
}

/// An exemplar the agent must send once, attached to one series.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedExemplar {
    /// The complete, sorted labels of the series it belongs to.
    pub series: Vec<(String, String)>,
    /// The exemplar as served.
    pub exemplar: Exemplar,
    /// The first scrape that served it.
    pub scrape: u64,
}

/// The scrape target of one case as the agent sees it, and the labels Prometheus must attach. Kept in a capture
/// bundle (`case.json`) so a replay re-judges the payload checks without the live target.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScrapeModel {
    /// Families served.
    pub families: Vec<Family>,
    /// `honor_labels` of the scrape job.
    pub honor_labels: bool,
    /// Scrape job name.
    pub job: String,
    /// `instance` label (the target address as the agent reaches it).
    pub instance: String,
    /// External labels of the agent's config.
    pub external_labels: Vec<(String, String)>,
    /// Scrapes 1..=this must arrive complete.
    pub scrapes: u64,
    /// Scrape interval in milliseconds.
    pub interval_ms: i64,
    /// The format the target serves (when the agent offers it).
    pub exposition: Exposition,
}

impl ScrapeModel {
    /// The model for a scenario's `target` block.
    pub fn new(spec: &ScrapeSpec, instance: &str, external_labels: Vec<(String, String)>, interval_ms: i64) -> Self {
        ScrapeModel {
            families: spec.families(),
            honor_labels: spec.honor_labels,
            job: super::JOB.to_owned(),
            instance: instance.to_owned(),
            external_labels,
            scrapes: spec.scrapes.unwrap_or(DEFAULT_SCRAPES),
            interval_ms,
            exposition: spec.exposition(),
        }
    }

    /// Whether every scrape fails (an invalid family is served).
    pub fn scrape_fails(&self) -> bool {
        self.families.iter().any(|f| family::fails_scrape(*f))
    }

    /// Metadata of the families served, as the agent must forward it (empty when scrapes fail): OpenMetrics names
    /// counters without `_total` and is the only format here that carries units.
    pub fn metadata(&self) -> Vec<FamilyMeta> {
        if self.scrape_fails() {
            return Vec::new();
        }
        let om = self.exposition == Exposition::OpenMetrics;
        self.families
            .iter()
            .flat_map(|f| family::metas(*f))
            .map(|m| if om { FamilyMeta { name: m.openmetrics_name(), ..m } } else { FamilyMeta { unit: "", ..m } })
            .collect()
    }

    /// The native histograms served on scrape `n`.
    fn raw_histograms(&self, n: u64) -> Vec<RawHistogram> {
        if self.scrape_fails() || n == 0 {
            return Vec::new();
        }
        self.families.iter().flat_map(|f| family::native_histograms(*f, n)).collect()
    }

    /// Every exemplar scrapes 1..=`upto` served, each once (the agent keeps an exemplar served again unchanged
    /// once), with the series it must be attached to. Only OpenMetrics carries them here.
    pub fn exemplars(&self, upto: u64) -> Vec<ExpectedExemplar> {
        if self.exposition != Exposition::OpenMetrics || self.scrape_fails() {
            return Vec::new();
        }
        let mut out: Vec<ExpectedExemplar> = Vec::new();
        for n in 1..=upto {
            for f in &self.families {
                for s in family::raw_series(*f, n) {
                    let Some(exemplar) = family::exemplar(*f, n, &s.labels) else { continue };
                    let series = self.labels(&s.labels);
                    let last = out.iter().rev().find(|e| e.series == series);
                    if last.is_none_or(|l| l.exemplar != exemplar) {
                        out.push(ExpectedExemplar { series, exemplar, scrape: n });
                    }
                }
            }
        }
        out
    }

    /// Every series served on scrape `n`, as exposed, including the harness's own scrape counter.
    fn raw(&self, n: u64) -> Vec<RawSeries> {
        if self.scrape_fails() || n == 0 {
            return Vec::new();
        }
        let mut out = super::builtin_series(n);
        for f in &self.families {
            out.extend(family::raw_series(*f, n));
        }
        out
    }

    /// The labels Prometheus must send for a series the target exposes with `raw` labels.
    pub fn labels(&self, raw: &[(String, String)]) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = raw.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
        for (name, value) in [("job", &self.job), ("instance", &self.instance)] {
            match labels.iter().position(|(k, _)| k == name) {
                Some(_) if self.honor_labels => {}
                Some(i) => {
                    labels[i].0 = format!("exported_{name}");
                    labels.push((name.to_owned(), value.clone()));
                }
                None => labels.push((name.to_owned(), value.clone())),
            }
        }
        for (k, v) in &self.external_labels {
            if !labels.iter().any(|(name, _)| name == k) {
                labels.push((k.clone(), v.clone()));
            }
        }
        labels.sort();
        labels
    }

    /// Every sample the agent must send for scrape `n` (from 1).
    pub fn expected(&self, n: u64) -> Vec<ExpectedSample> {
        let now = self.raw(n);
        let histograms = self.raw_histograms(n);
        let mut out: Vec<ExpectedSample> = now
            .iter()
            .map(|s| ExpectedSample { labels: self.labels(&s.labels), value: Expected::of(s.value) })
            .collect();
        out.extend(histograms.iter().map(|h| ExpectedSample {
            labels: self.labels(&h.labels),
            value: Expected::Histogram(Box::new(h.histogram.clone())),
        }));
        // Series served last scrape but not this one get a stale marker at this scrape's timestamp.
        let before = self.raw(n - 1).into_iter().map(|s| s.labels);
        let before = before.chain(self.raw_histograms(n - 1).into_iter().map(|h| h.labels));
        for gone in before.filter(|l| !now.iter().any(|s| s.labels == *l) && !histograms.iter().any(|h| h.labels == *l))
        {
            out.push(ExpectedSample { labels: self.labels(&gone), value: Expected::Stale });
        }
        let failed = self.scrape_fails();
        // A native histogram is one sample of the scrape.
        let count = if failed { Expected::Any } else { Expected::of((now.len() + histograms.len()) as f64) };
        for (name, value) in [
            ("up", Expected::of(if failed { 0.0 } else { 1.0 })),
            ("scrape_duration_seconds", Expected::Any),
            ("scrape_samples_scraped", count.clone()),
            ("scrape_samples_post_metric_relabeling", count),
            ("scrape_series_added", Expected::Any),
        ] {
            let raw = [("__name__".to_owned(), name.to_owned())];
            out.push(ExpectedSample { labels: self.labels(&raw), value: value.clone() });
        }
        out
    }

    /// Whether a received series comes from this target: its `instance` or `job` says so, or (with
    /// `honor_labels`) it carries the job the target supplies itself.
    pub fn owns(&self, labels: &[(String, String)]) -> bool {
        labels.iter().any(|(k, v)| {
            (k == "instance" && *v == self.instance)
                || (k == "job" && (*v == self.job || (self.honor_labels && v == family::HONOR_JOB)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(families: Vec<Family>, honor: bool) -> ScrapeModel {
        let spec = ScrapeSpec { families, honor_labels: honor, ..Default::default() };
        ScrapeModel::new(&spec, "127.0.0.1:9", vec![("cluster".into(), "azrw".into())], 1000)
    }

    fn find<'a>(samples: &'a [ExpectedSample], name: &str) -> Vec<&'a ExpectedSample> {
        samples.iter().filter(|s| s.labels.iter().any(|(k, v)| k == "__name__" && v == name)).collect()
    }

    #[test]
    fn conflicting_target_labels_become_exported() {
        let m = model(vec![Family::HonorLabels], false);
        let e = m.expected(1);
        let s = &find(&e, "azrw_honor")[0].labels;
        let names: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["__name__", "cluster", "exported_instance", "exported_job", "instance", "job"]);
        let honored = model(vec![Family::HonorLabels], true);
        let e = honored.expected(1);
        let s = &find(&e, "azrw_honor")[0].labels;
        assert!(s.contains(&("job".into(), "from-target".into())));
    }

    #[test]
    fn empty_values_are_dropped_and_stale_markers_expected() {
        let m = model(vec![Family::Labels, Family::Staleness], false);
        assert!(!find(&m.expected(1), "azrw_labels")[0].labels.iter().any(|(k, _)| k == "empty"));
        assert_eq!(find(&m.expected(3), "azrw_stale")[0].value, Expected::Stale);
        assert!(find(&m.expected(4), "azrw_stale").is_empty());
        assert_eq!(find(&m.expected(5), "azrw_stale")[0].value, Expected::of(5.0));
    }

    #[test]
    fn native_histograms_are_one_sample_each() {
        let spec = ScrapeSpec { families: vec![Family::NativeHistogram], ..Default::default() };
        let m = ScrapeModel::new(&spec, "127.0.0.1:9", vec![], 1000);
        let e = m.expected(2);
        assert!(matches!(&find(&e, "azrw_native")[0].value, Expected::Histogram(h) if h.zero_count.is_some()));
        assert_eq!(find(&e, "scrape_samples_scraped")[0].value, Expected::of(3.0));
        assert_eq!(m.metadata()[0].kind, "HISTOGRAM");
    }

    #[test]
    fn each_exemplar_is_expected_once_on_its_series() {
        let spec = ScrapeSpec { families: vec![Family::Counter, Family::Exemplars], ..Default::default() };
        let m = ScrapeModel::new(&spec, "127.0.0.1:9", vec![], 1000);
        assert_eq!(m.exposition, Exposition::OpenMetrics);
        let ex = m.exemplars(4);
        // Three series with exemplars, a new exemplar on scrapes 1 and 3.
        assert_eq!(ex.len(), 6);
        assert_eq!(ex.iter().filter(|e| e.scrape == 3).count(), 3);
        assert!(ex[0].series.contains(&("job".into(), "azrw-target".into())));
        let names: Vec<&str> = m.metadata().iter().map(|m| m.name).collect();
        assert_eq!(names, ["azrw_counter", "azrw_exemplar", "azrw_exemplar_hist"]);
    }

    #[test]
    fn invalid_target_expects_up_zero_only() {
        let m = model(vec![Family::Invalid, Family::Counter], false);
        let e = m.expected(2);
        assert_eq!(find(&e, "up")[0].value, Expected::of(0.0));
        assert!(find(&e, "azrw_counter_total").is_empty());
    }
}
