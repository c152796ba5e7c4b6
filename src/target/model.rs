//! What the agent must send for each scrape: the target's series with the labels Prometheus must give them
//! (empty values dropped, `job`/`instance` added or `exported_*` on conflict, external labels, sorted), the
//! series Prometheus itself adds per scrape (`up` …), and the stale markers for series that disappeared.

use super::family::{self, FamilyMeta, RawSeries, STALE_NAN};
use crate::scenario::{Family, TargetSpec};

/// Scrapes that must arrive complete when the scenario does not say.
pub const DEFAULT_SCRAPES: u64 = 4;

/// The value a sample must carry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expected {
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

    /// Whether `v` is this value.
    pub fn matches(self, v: f64) -> bool {
        match self {
            Expected::Bits(b) => v.to_bits() == b,
            Expected::NaN => v.is_nan() && v.to_bits() != STALE_NAN,
            Expected::Stale => v.to_bits() == STALE_NAN,
            Expected::Any => true,
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

/// The scrape target of one case as the agent sees it, and the labels Prometheus must attach. Kept in a capture
/// bundle (`case.json`) so a replay re-judges the payload checks without the live target.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TargetModel {
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
}

impl TargetModel {
    /// The model for a scenario's `target` block.
    pub fn new(spec: &TargetSpec, instance: &str, external_labels: Vec<(String, String)>, interval_ms: i64) -> Self {
        TargetModel {
            families: spec.families(),
            honor_labels: spec.honor_labels,
            job: super::JOB.to_owned(),
            instance: instance.to_owned(),
            external_labels,
            scrapes: spec.scrapes.unwrap_or(DEFAULT_SCRAPES),
            interval_ms,
        }
    }

    /// Whether every scrape fails (an invalid family is served).
    pub fn scrape_fails(&self) -> bool {
        self.families.iter().any(|f| family::fails_scrape(*f))
    }

    /// Metadata of the families served (empty when scrapes fail).
    pub fn metadata(&self) -> Vec<FamilyMeta> {
        if self.scrape_fails() {
            return Vec::new();
        }
        self.families.iter().filter_map(|f| family::meta(*f)).collect()
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
        let mut out: Vec<ExpectedSample> = now
            .iter()
            .map(|s| ExpectedSample { labels: self.labels(&s.labels), value: Expected::of(s.value) })
            .collect();
        // Series served last scrape but not this one get a stale marker at this scrape's timestamp.
        for gone in self.raw(n - 1).iter().filter(|p| !now.iter().any(|s| s.labels == p.labels)) {
            out.push(ExpectedSample { labels: self.labels(&gone.labels), value: Expected::Stale });
        }
        let failed = self.scrape_fails();
        let count = if failed { Expected::Any } else { Expected::of(now.len() as f64) };
        for (name, value) in [
            ("up", Expected::of(if failed { 0.0 } else { 1.0 })),
            ("scrape_duration_seconds", Expected::Any),
            ("scrape_samples_scraped", count),
            ("scrape_samples_post_metric_relabeling", count),
            ("scrape_series_added", Expected::Any),
        ] {
            let raw = [("__name__".to_owned(), name.to_owned())];
            out.push(ExpectedSample { labels: self.labels(&raw), value });
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

    fn model(families: Vec<Family>, honor: bool) -> TargetModel {
        let spec = TargetSpec { families, honor_labels: honor, ..Default::default() };
        TargetModel::new(&spec, "127.0.0.1:9", vec![("cluster".into(), "azrw".into())], 1000)
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
    fn invalid_target_expects_up_zero_only() {
        let m = model(vec![Family::Invalid, Family::Counter], false);
        let e = m.expected(2);
        assert_eq!(find(&e, "up")[0].value, Expected::of(0.0));
        assert!(find(&e, "azrw_counter_total").is_empty());
    }
}
