//! What each metric family serves on the `n`-th scrape: the series as the target exposes them (before Prometheus
//! adds target labels) and their exposition text. Everything is a pure function of the scrape number.

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

/// A metric family's `# TYPE`/`# HELP` lines, as Prometheus must forward them as metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMeta {
    /// Family name as in the `# TYPE` line.
    pub name: &'static str,
    /// Remote-write type name (`COUNTER`, `GAUGE`, `HISTOGRAM`, `SUMMARY`).
    pub kind: &'static str,
    /// HELP text, unescaped.
    pub help: &'static str,
}

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

/// The family's metadata lines (`None` for the scrape-failing families).
pub fn meta(family: Family) -> Option<FamilyMeta> {
    let m = |name, kind, help| Some(FamilyMeta { name, kind, help });
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
        Family::Invalid | Family::RepeatedLabels => None,
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
        Family::Invalid | Family::RepeatedLabels => vec![],
    }
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

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The text exposition (format 0.0.4) of a family on scrape `n`.
pub fn exposition(family: Family, n: u64) -> String {
    match family {
        Family::Invalid => return "azrw_invalid{ this is not exposition format\n".into(),
        Family::RepeatedLabels => {
            return format!("# TYPE azrw_repeated gauge\nazrw_repeated{{a=\"1\",a=\"1\"}} {n}\n");
        }
        _ => {}
    }
    let mut out = String::new();
    if let Some(m) = meta(family) {
        let type_name = m.kind.to_ascii_lowercase();
        out.push_str(&format!("# HELP {} {}\n# TYPE {} {type_name}\n", m.name, escape_help(m.help), m.name));
    }
    for s in raw_series(family, n) {
        let name = &s.labels[0].1;
        let rest: Vec<String> = s.labels[1..].iter().map(|(k, v)| format!("{k}=\"{}\"", escape_value(v))).collect();
        if rest.is_empty() {
            out.push_str(&format!("{name} {}\n", format_value(s.value)));
        } else {
            out.push_str(&format!("{name}{{{}}} {}\n", rest.join(","), format_value(s.value)));
        }
    }
    out
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
    fn exposition_escapes_label_values() {
        let text = exposition(Family::Labels, 3);
        assert!(text.contains(r#"escaped="quote \" backslash \\ newline \n end""#), "{text}");
        assert!(text.contains("azrw_labels{empty=\"\","), "{text}");
    }
}
