//! What each metric family serves on the `n`-th scrape: the series as the target exposes them (before Prometheus
//! adds target labels) and their exposition text. Everything is a pure function of the scrape number.

use crate::remote_write::{Exemplar, HistogramCount, NativeHistogram};
use crate::scenario::Family;

/// Prometheus' stale marker: a NaN with this exact bit pattern, used for nothing else.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// A series as the target serves it: labels as written in the exposition (`__name__` first, empty values and
/// target-supplied `job`/`instance` included) and its value on this scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    /// Labels as exposed.
    pub labels: Vec<(String, String)>,
    /// Value on this scrape.
    pub value: f64,
}

/// A native histogram as the target serves it: labels as exposed and the histogram (timestamp 0: the agent stamps
/// it).
#[derive(Debug, Clone, PartialEq)]
pub struct RawHistogram {
    /// Labels as exposed.
    pub labels: Vec<(String, String)>,
    /// The histogram on this scrape.
    pub histogram: NativeHistogram,
}

/// A metric family's `# TYPE`/`# HELP`/`# UNIT` lines, as Prometheus must forward them as metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMeta {
    /// Family name as in the text format's `# TYPE` line (OpenMetrics drops a counter's `_total`).
    pub name: &'static str,
    /// Remote-write type name (`COUNTER`, `GAUGE`, `HISTOGRAM`, `SUMMARY`).
    pub kind: &'static str,
    /// HELP text, unescaped.
    pub help: &'static str,
    /// Unit (OpenMetrics `# UNIT`), empty when none.
    pub unit: &'static str,
}

impl FamilyMeta {
    /// Whether a series named `series` belongs to this family (`_bucket`, `_sum`, `_count` of histograms and
    /// summaries).
    pub fn owns(&self, series: &str) -> bool {
        series == self.name
            || (matches!(self.kind, "HISTOGRAM" | "SUMMARY")
                && ["_bucket", "_sum", "_count"].iter().any(|sfx| series.strip_suffix(sfx) == Some(self.name)))
    }

    /// The family name in OpenMetrics, where a counter's name has no `_total`.
    pub fn openmetrics_name(&self) -> &'static str {
        if self.kind == "COUNTER" { self.name.strip_suffix("_total").unwrap_or(self.name) } else { self.name }
    }
}

/// Where exemplar timestamps start: fixed, so each exemplar is known before the agent runs (ms, a whole second
/// plus 500 ms, so OpenMetrics' seconds parse back to the same milliseconds).
pub const EXEMPLAR_BASE_MS: i64 = 1_764_000_000_500;

/// Gauge values, one per scrape in turn: negative, zero, fractional, integral, scientific, large with a fraction.
const GAUGE_VALUES: [f64; 6] = [-15.5, 0.0, 123.45, 42.0, 1.23e-4, 1.0e10 + 0.5];

/// `azrw_special` cases: NaN, ±Inf, zero, negative, the largest and the smallest (subnormal) float.
const SPECIAL_VALUES: [(&str, f64); 7] = [
    ("nan", f64::NAN),
    ("pos_inf", f64::INFINITY),
    ("neg_inf", f64::NEG_INFINITY),
    ("zero", 0.0),
    ("negative", -273.15),
    ("huge", f64::MAX),
    ("tiny", 5e-324),
];

/// Label values that test escaping and non-ASCII text; `empty` must be dropped by the agent.
pub const LABELS_VALUES: [(&str, &str); 4] = [
    ("empty", ""),
    ("escaped", "quote \" backslash \\ newline \n end"),
    ("path", "/a b?c=d&e"),
    ("unicode", "Grüße, 世界 ✓"),
];

/// The `job` label `azrw_honor` brings itself.
pub const HONOR_JOB: &str = "from-target";
/// The `instance` label `azrw_honor` brings itself.
pub const HONOR_INSTANCE: &str = "from-target:9999";

/// Whether a family makes the whole scrape fail (so only `up == 0` and its siblings arrive).
pub fn fails_scrape(family: Family) -> bool {
    matches!(family, Family::Invalid | Family::RepeatedLabels)
}

/// Whether a family's series break one of Azure's per-series label limits.
pub fn breaks_azure_limits(family: Family) -> bool {
    matches!(
        family,
        Family::TooManyLabels | Family::LongLabelName | Family::LongLabelValue | Family::CaseDuplicateLabels
    )
}

/// The family's metadata lines (none for the scrape-failing families); some families serve two.
pub fn metas(family: Family) -> Vec<FamilyMeta> {
    match family {
        Family::Exemplars => vec![
            FamilyMeta {
                name: "azrw_exemplar_total",
                kind: "COUNTER",
                help: "A counter with an exemplar that changes every other scrape.",
                unit: "",
            },
            FamilyMeta {
                name: "azrw_exemplar_hist",
                kind: "HISTOGRAM",
                help: "A classic histogram with exemplars on two buckets.",
                unit: "",
            },
        ],
        Family::Unit => vec![FamilyMeta {
            name: "azrw_latency_seconds",
            kind: "GAUGE",
            help: "A gauge with a unit.",
            unit: "seconds",
        }],
        _ => meta(family).into_iter().collect(),
    }
}

fn meta(family: Family) -> Option<FamilyMeta> {
    let m = |name, kind, help| Some(FamilyMeta { name, kind, help, unit: "" });
    match family {
        Family::Counter => m("azrw_counter_total", "COUNTER", "Counts scrapes from zero: 0, 1, 2, …"),
        Family::Gauge => m("azrw_gauge", "GAUGE", "A gauge cycling through six values, with a \\ backslash."),
        Family::SpecialValues => m("azrw_special", "GAUGE", "Special float values, one per case label."),
        Family::Histogram => m("azrw_histogram", "HISTOGRAM", "A classic histogram growing each scrape."),
        Family::Summary => m("azrw_summary", "SUMMARY", "A summary with three quantiles."),
        Family::Labels => m("azrw_labels", "GAUGE", "Label values with escapes, non-ASCII text and an empty value."),
        Family::HonorLabels => m("azrw_honor", "GAUGE", "Brings its own job and instance labels."),
        Family::Staleness => m("azrw_stale", "GAUGE", "Present on two scrapes out of four."),
        Family::TooManyLabels => m("azrw_wide", "GAUGE", "64 labels, one more than Azure allows."),
        Family::LongLabelName => m("azrw_long_name", "GAUGE", "A 512-character label name."),
        Family::LongLabelValue => m("azrw_long_value", "GAUGE", "A 1024-character label value."),
        Family::CaseDuplicateLabels => m("azrw_case", "GAUGE", "Two label names differing only by case."),
        Family::NativeHistogram => m("azrw_native", "HISTOGRAM", "An integer native histogram growing each scrape."),
        Family::Invalid | Family::RepeatedLabels | Family::Exemplars | Family::Unit => None,
    }
}

fn series(name: &str, labels: &[(&str, &str)], value: f64) -> RawSeries {
    let mut all = vec![("__name__".to_owned(), name.to_owned())];
    all.extend(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    RawSeries { labels: all, value }
}

/// Whether `azrw_stale` is served on scrape `n`: on scrapes 1, 2, 5, 6, 9, 10, …
pub fn stale_present(n: u64) -> bool {
    (n - 1) % 4 < 2
}

/// The series a (well-formed) family serves on scrape `n` (from 1).
pub fn raw_series(family: Family, n: u64) -> Vec<RawSeries> {
    let k = n as f64;
    match family {
        Family::Counter => vec![series("azrw_counter_total", &[], k - 1.0)],
        Family::Gauge => vec![series("azrw_gauge", &[], GAUGE_VALUES[((n - 1) % GAUGE_VALUES.len() as u64) as usize])],
        Family::SpecialValues => {
            SPECIAL_VALUES.iter().map(|(c, v)| series("azrw_special", &[("case", c)], *v)).collect()
        }
        Family::Histogram => vec![
            series("azrw_histogram_bucket", &[("le", "0.5")], k),
            series("azrw_histogram_bucket", &[("le", "2.5")], 2.0 * k),
            series("azrw_histogram_bucket", &[("le", "+Inf")], 3.0 * k),
            series("azrw_histogram_sum", &[], 1.25 * k),
            series("azrw_histogram_count", &[], 3.0 * k),
        ],
        Family::Summary => vec![
            series("azrw_summary", &[("quantile", "0.5")], 0.5 * k),
            series("azrw_summary", &[("quantile", "0.9")], 0.9 * k),
            series("azrw_summary", &[("quantile", "0.99")], 0.99 * k),
            series("azrw_summary_sum", &[], 2.5 * k),
            series("azrw_summary_count", &[], k),
        ],
        Family::Labels => vec![series("azrw_labels", &LABELS_VALUES, k)],
        Family::HonorLabels => {
            vec![series("azrw_honor", &[("instance", HONOR_INSTANCE), ("job", HONOR_JOB)], 1.0)]
        }
        Family::Staleness => {
            if stale_present(n) {
                vec![series("azrw_stale", &[], k)]
            } else {
                vec![]
            }
        }
        Family::TooManyLabels => {
            let names: Vec<String> = (1..=63).map(|i| format!("l{i:02}")).collect();
            let labels: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
            vec![series("azrw_wide", &labels, 1.0)]
        }
        Family::LongLabelName => {
            let name = format!("l{}", "x".repeat(511));
            vec![series("azrw_long_name", &[(name.as_str(), "v")], 1.0)]
        }
        Family::LongLabelValue => {
            let value = "v".repeat(1024);
            vec![series("azrw_long_value", &[("long", value.as_str())], 1.0)]
        }
        Family::CaseDuplicateLabels => vec![series("azrw_case", &[("AZRW_CASE", "b"), ("azrw_case", "a")], 1.0)],
        Family::Exemplars => vec![
            series("azrw_exemplar_total", &[], k),
            series("azrw_exemplar_hist_bucket", &[("le", "1.0")], k),
            series("azrw_exemplar_hist_bucket", &[("le", "+Inf")], 2.0 * k),
            series("azrw_exemplar_hist_sum", &[], 2.75 * k),
            series("azrw_exemplar_hist_count", &[], 2.0 * k),
        ],
        Family::Unit => vec![series("azrw_latency_seconds", &[], 0.25 * k)],
        Family::Invalid | Family::RepeatedLabels | Family::NativeHistogram => vec![],
    }
}

/// The native histograms a family serves on scrape `n`: `azrw_native` has a zero bucket, one negative and three
/// positive buckets in two spans (a gap of two), counts `n, n | n, 2n, n` (deltas `n, n, -n`), sum `3.75 n`.
pub fn native_histograms(family: Family, n: u64) -> Vec<RawHistogram> {
    if family != Family::NativeHistogram {
        return Vec::new();
    }
    let k = n as i64;
    let histogram = NativeHistogram {
        count: Some(HistogramCount::Int(6 * n)),
        sum: 3.75 * n as f64,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: Some(HistogramCount::Int(n)),
        negative_spans: vec![(0, 1)],
        negative_deltas: vec![k],
        positive_spans: vec![(0, 2), (2, 1)],
        positive_deltas: vec![k, k, -k],
        ..NativeHistogram::empty(0)
    };
    vec![RawHistogram { labels: vec![("__name__".into(), "azrw_native".into())], histogram }]
}

/// Which exemplar of a series a scrape carries: the `e`-th from scrape `2e - 1` on, so each one is served twice
/// and the agent's exemplar storage must keep it once.
pub fn exemplar_number(n: u64) -> u64 {
    n.div_ceil(2)
}

/// The exemplar the target attaches to a series on scrape `n` (`None` for series without one): the counter and
/// the `le="1.0"` and `+Inf` buckets of `azrw_exemplar_hist`.
pub fn exemplar(family: Family, n: u64, labels: &[(String, String)]) -> Option<Exemplar> {
    if family != Family::Exemplars {
        return None;
    }
    let e = exemplar_number(n);
    let name = crate::remote_write::label(labels, "__name__")?;
    let le = crate::remote_write::label(labels, "le");
    let l = |pairs: &[(&str, String)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let (labels, value, offset) = match (name, le) {
        ("azrw_exemplar_total", None) => (l(&[("trace_id", format!("c{e:04}"))]), 1.0, 0),
        ("azrw_exemplar_hist_bucket", Some("1.0")) => (l(&[("trace_id", format!("h{e:04}"))]), 0.5, 100),
        ("azrw_exemplar_hist_bucket", Some("+Inf")) => {
            (l(&[("span_id", format!("s{e}")), ("trace_id", format!("i{e:04}"))]), 7.25, 200)
        }
        _ => return None,
    };
    Some(Exemplar { labels, value, timestamp: EXEMPLAR_BASE_MS + 1000 * e as i64 + offset })
}

/// A float as the exposition format writes it, so that parsing it back gives the same bits.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Shortest representation that round-trips; exponent form keeps huge and tiny values short.
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_text() {
        for v in GAUGE_VALUES.iter().chain(SPECIAL_VALUES.iter().map(|(_, v)| v)) {
            let back: f64 = format_value(*v).replace("+Inf", "inf").replace("-Inf", "-inf").parse().unwrap();
            assert!(back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()), "{v} → {}", format_value(*v));
        }
    }

    #[test]
    fn staleness_schedule() {
        let present: Vec<u64> = (1..=8).filter(|n| stale_present(*n)).collect();
        assert_eq!(present, [1, 2, 5, 6]);
    }

    #[test]
    fn native_histogram_counts_add_up() {
        let h = &native_histograms(Family::NativeHistogram, 3)[0].histogram;
        let mut buckets = 0i64;
        for deltas in [&h.negative_deltas, &h.positive_deltas] {
            let mut c = 0;
            for d in deltas {
                c += d;
                buckets += c;
            }
        }
        let zero = match h.zero_count {
            Some(HistogramCount::Int(z)) => z as i64,
            _ => 0,
        };
        assert_eq!(Some(HistogramCount::Int((buckets + zero) as u64)), h.count);
    }

    #[test]
    fn each_exemplar_is_served_on_two_scrapes() {
        let counter = |n| {
            let s = &raw_series(Family::Exemplars, n)[0];
            exemplar(Family::Exemplars, n, &s.labels).unwrap()
        };
        assert_eq!(counter(1), counter(2));
        assert_ne!(counter(2), counter(3));
        assert_eq!(counter(3).timestamp - counter(1).timestamp, 1000);
        let sum = &raw_series(Family::Exemplars, 1)[3];
        assert!(exemplar(Family::Exemplars, 1, &sum.labels).is_none());
    }
}
