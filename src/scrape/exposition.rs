//! What the target answers on a scrape, in the format negotiated with the agent: the classic text format 0.0.4,
//! OpenMetrics 1.0.0 (units, exemplars, `# EOF`) or length-delimited protobuf `MetricFamily` messages (native
//! histograms). One description of each family ([`super::family`]) feeds all three, so the formats differ only
//! in what they can carry.

use prost::Message;

use super::family::{self, FamilyMeta, RawHistogram, RawSeries, format_value};
use super::proto;
use crate::remote_write::{Exemplar, HistogramCount};
use crate::scenario::{Exposition, Family};

/// One metric family as served: its metadata, float series, native histograms and (OpenMetrics) exemplars.
struct Block {
    meta: FamilyMeta,
    series: Vec<(RawSeries, Option<Exemplar>)>,
    histograms: Vec<RawHistogram>,
}

/// The harness's own families (also served when the scenario declares none).
pub fn builtin_metas() -> [FamilyMeta; 2] {
    [
        FamilyMeta {
            name: super::SCRAPES_METRIC,
            kind: "COUNTER",
            help: "Scrapes served by the azrw target.",
            unit: "",
        },
        FamilyMeta {
            name: "azrw_target_info",
            kind: "GAUGE",
            help: "Constant series with a label, to check labels arrive.",
            unit: "",
        },
    ]
}

fn blocks(families: &[Family], n: u64) -> Vec<Block> {
    let builtin = super::builtin_series(n);
    let mut out: Vec<Block> = builtin_metas()
        .into_iter()
        .map(|meta| {
            let series = builtin.iter().filter(|s| meta.owns(&s.labels[0].1)).map(|s| (s.clone(), None)).collect();
            Block { meta, series, histograms: Vec::new() }
        })
        .collect();
    for f in families {
        let raw = family::raw_series(*f, n);
        let native = family::native_histograms(*f, n);
        for meta in family::metas(*f) {
            let series = raw
                .iter()
                .filter(|s| meta.owns(&s.labels[0].1))
                .map(|s| (s.clone(), family::exemplar(*f, n, &s.labels)))
                .collect();
            let histograms = native.iter().filter(|h| meta.owns(&h.labels[0].1)).cloned().collect();
            out.push(Block { meta, series, histograms });
        }
    }
    out
}

/// The body of scrape `n` in `format`, with `load_series` gauges of [`super::LOAD_METRIC`] appended.
pub fn render(format: Exposition, families: &[Family], n: u64, load_series: usize) -> Vec<u8> {
    if let Some(f) = families.iter().find(|f| family::fails_scrape(**f)) {
        // Broken whatever the format: text the agent cannot parse (as protobuf neither).
        return broken(*f, n).into_bytes();
    }
    let blocks = blocks(families, n);
    match format {
        Exposition::Text => {
            let mut out = String::new();
            for b in &blocks {
                text_block(&mut out, b);
            }
            if load_series > 0 {
                super::load_exposition(&mut out, n, load_series);
            }
            out.into_bytes()
        }
        Exposition::OpenMetrics => {
            let mut out = String::new();
            for b in &blocks {
                openmetrics_block(&mut out, b);
            }
            if load_series > 0 {
                // The load gauges in OpenMetrics differ from text only in the TYPE/HELP order.
                let mut load = String::new();
                super::load_exposition(&mut load, n, load_series);
                let (help, rest) = load.split_once('\n').unwrap_or_default();
                let (ty, samples) = rest.split_once('\n').unwrap_or_default();
                out.push_str(&format!("{ty}\n{help}\n{samples}"));
            }
            out.push_str("# EOF\n");
            out.into_bytes()
        }
        Exposition::Protobuf => {
            let mut out = Vec::new();
            for b in &blocks {
                protobuf_family(b).encode_length_delimited(&mut out).expect("encoding into a Vec");
            }
            if load_series > 0 {
                load_family(n, load_series).encode_length_delimited(&mut out).expect("encoding into a Vec");
            }
            out
        }
    }
}

fn broken(family: Family, n: u64) -> String {
    match family {
        Family::RepeatedLabels => format!("# TYPE azrw_repeated gauge\nazrw_repeated{{a=\"1\",a=\"1\"}} {n}\n"),
        _ => "azrw_invalid{ this is not exposition format\n".into(),
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn labels_text(labels: &[(String, String)]) -> String {
    let rest: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_value(v))).collect();
    if rest.is_empty() { String::new() } else { format!("{{{}}}", rest.join(",")) }
}

fn series_line(out: &mut String, s: &RawSeries) {
    out.push_str(&format!("{}{} {}", s.labels[0].1, labels_text(&s.labels[1..]), format_value(s.value)));
}

fn text_block(out: &mut String, b: &Block) {
    let m = &b.meta;
    out.push_str(&format!("# HELP {} {}\n", m.name, escape_help(m.help)));
    out.push_str(&format!("# TYPE {} {}\n", m.name, m.kind.to_ascii_lowercase()));
    for (s, _) in &b.series {
        series_line(out, s);
        out.push('\n');
    }
}

/// Milliseconds as OpenMetrics seconds, written from the integer so nothing is lost to float formatting.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn openmetrics_block(out: &mut String, b: &Block) {
    let m = &b.meta;
    let name = m.openmetrics_name();
    out.push_str(&format!("# TYPE {name} {}\n", m.kind.to_ascii_lowercase()));
    if !m.unit.is_empty() {
        out.push_str(&format!("# UNIT {name} {}\n", m.unit));
    }
    out.push_str(&format!("# HELP {name} {}\n", escape_help(m.help).replace('"', "\\\"")));
    for (s, exemplar) in &b.series {
        series_line(out, s);
        if let Some(e) = exemplar {
            out.push_str(&format!(" # {} {} {}", labels_text(&e.labels), format_value(e.value), seconds(e.timestamp)));
        }
        out.push('\n');
    }
}

fn pairs(labels: &[(String, String)]) -> Vec<proto::LabelPair> {
    labels
        .iter()
        .filter(|(k, _)| k != "__name__")
        .map(|(k, v)| proto::LabelPair { name: k.clone(), value: v.clone() })
        .collect()
}

/// Labels without `__name__` and the label a histogram bucket or summary quantile adds.
fn base(labels: &[(String, String)], extra: &str) -> Vec<(String, String)> {
    labels.iter().filter(|(k, _)| k != "__name__" && k != extra).cloned().collect()
}

fn protobuf_family(b: &Block) -> proto::MetricFamily {
    let m = &b.meta;
    let (kind, metric) = match m.kind {
        "COUNTER" => (proto::MetricType::Counter, scalar(b, |v| (None, Some(proto::Counter { value: v })))),
        "HISTOGRAM" => (proto::MetricType::Histogram, histograms(b)),
        "SUMMARY" => (proto::MetricType::Summary, summaries(b)),
        _ => (proto::MetricType::Gauge, scalar(b, |v| (Some(proto::Gauge { value: v }), None))),
    };
    proto::MetricFamily { name: m.name.into(), help: m.help.into(), r#type: kind as i32, metric, unit: String::new() }
}

type Scalar = (Option<proto::Gauge>, Option<proto::Counter>);

fn scalar(b: &Block, value: impl Fn(f64) -> Scalar) -> Vec<proto::Metric> {
    b.series
        .iter()
        .map(|(s, _)| {
            let (gauge, counter) = value(s.value);
            proto::Metric { label: pairs(&s.labels), gauge, counter, ..Default::default() }
        })
        .collect()
}

/// Groups `_bucket`/`_sum`/`_count` series by their labels into one message per label set; native histograms
/// become messages of their own.
fn histograms(b: &Block) -> Vec<proto::Metric> {
    let mut groups: Vec<(Vec<(String, String)>, proto::Histogram)> = Vec::new();
    for (s, _) in &b.series {
        let key = base(&s.labels, "le");
        let i = groups.iter().position(|(k, _)| *k == key).unwrap_or_else(|| {
            groups.push((key.clone(), proto::Histogram::default()));
            groups.len() - 1
        });
        let h = &mut groups[i].1;
        let name = &s.labels[0].1;
        if name.ends_with("_bucket") {
            let le = crate::remote_write::label(&s.labels, "le").unwrap_or("+Inf");
            // The +Inf bucket is implied by the count.
            if let Ok(upper_bound) = le.parse::<f64>()
                && upper_bound.is_finite()
            {
                h.bucket.push(proto::Bucket { cumulative_count: s.value as u64, upper_bound });
            }
        } else if name.ends_with("_sum") {
            h.sample_sum = s.value;
        } else if name.ends_with("_count") {
            h.sample_count = s.value as u64;
        }
    }
    let mut out: Vec<proto::Metric> = groups
        .into_iter()
        .map(|(labels, h)| proto::Metric { label: pairs(&labels), histogram: Some(h), ..Default::default() })
        .collect();
    for raw in &b.histograms {
        let h = &raw.histogram;
        let int = |c: Option<HistogramCount>| match c {
            Some(HistogramCount::Int(n)) => n,
            Some(HistogramCount::Float(v)) => v as u64,
            None => 0,
        };
        let spans = |s: &[(i32, u32)]| s.iter().map(|&(offset, length)| proto::BucketSpan { offset, length }).collect();
        let message = proto::Histogram {
            sample_count: int(h.count),
            sample_sum: h.sum,
            bucket: Vec::new(),
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: int(h.zero_count),
            negative_span: spans(&h.negative_spans),
            negative_delta: h.negative_deltas.clone(),
            positive_span: spans(&h.positive_spans),
            positive_delta: h.positive_deltas.clone(),
        };
        out.push(proto::Metric { label: pairs(&raw.labels), histogram: Some(message), ..Default::default() });
    }
    out
}

fn summaries(b: &Block) -> Vec<proto::Metric> {
    let mut groups: Vec<(Vec<(String, String)>, proto::Summary)> = Vec::new();
    for (s, _) in &b.series {
        let key = base(&s.labels, "quantile");
        let i = groups.iter().position(|(k, _)| *k == key).unwrap_or_else(|| {
            groups.push((key.clone(), proto::Summary::default()));
            groups.len() - 1
        });
        let summary = &mut groups[i].1;
        let name = &s.labels[0].1;
        if let Some(q) = crate::remote_write::label(&s.labels, "quantile").and_then(|q| q.parse().ok()) {
            summary.quantile.push(proto::Quantile { quantile: q, value: s.value });
        } else if name.ends_with("_sum") {
            summary.sample_sum = s.value;
        } else if name.ends_with("_count") {
            summary.sample_count = s.value as u64;
        }
    }
    groups
        .into_iter()
        .map(|(labels, s)| proto::Metric { label: pairs(&labels), summary: Some(s), ..Default::default() })
        .collect()
}

fn load_family(n: u64, series: usize) -> proto::MetricFamily {
    proto::MetricFamily {
        name: super::LOAD_METRIC.into(),
        help: "Load series of the azrw target.".into(),
        r#type: proto::MetricType::Gauge as i32,
        metric: (0..series)
            .map(|i| proto::Metric {
                label: vec![proto::LabelPair { name: "series".into(), value: i.to_string() }],
                gauge: Some(proto::Gauge { value: n as f64 }),
                ..Default::default()
            })
            .collect(),
        unit: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(format: Exposition, families: &[Family], n: u64) -> String {
        String::from_utf8(render(format, families, n, 0)).unwrap()
    }

    #[test]
    fn text_escapes_label_values() {
        let t = text(Exposition::Text, &[Family::Labels], 3);
        assert!(t.contains(r#"escaped="quote \" backslash \\ newline \n end""#), "{t}");
        assert!(t.contains("azrw_labels{empty=\"\","), "{t}");
        assert!(t.contains("# TYPE azrw_target_scrapes_total counter\nazrw_target_scrapes_total 3e0\n"), "{t}");
    }

    #[test]
    fn openmetrics_has_units_exemplars_and_eof() {
        let t = text(Exposition::OpenMetrics, &[Family::Counter, Family::Exemplars, Family::Unit], 3);
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert!(t.contains("# TYPE azrw_counter counter\n"), "{t}");
        assert!(t.contains("# TYPE azrw_latency_seconds gauge\n# UNIT azrw_latency_seconds seconds\n"), "{t}");
        assert!(t.contains("azrw_exemplar_total 3e0 # {trace_id=\"c0002\"} 1e0 1764000002.500\n"), "{t}");
        assert!(t.contains("azrw_exemplar_hist_bucket{le=\"1.0\"} 3e0 # {trace_id=\"h0002\"} 5e-1 1764000002.600\n"));
    }

    #[test]
    fn protobuf_groups_histograms_and_carries_native_buckets() {
        let body = render(Exposition::Protobuf, &[Family::Histogram, Family::Summary, Family::NativeHistogram], 2, 0);
        let mut buf = body.as_slice();
        let mut families = Vec::new();
        while !buf.is_empty() {
            families.push(proto::MetricFamily::decode_length_delimited(&mut buf).unwrap());
        }
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["azrw_target_scrapes_total", "azrw_target_info", "azrw_histogram", "azrw_summary", "azrw_native"]
        );
        let classic = families[2].metric[0].histogram.as_ref().unwrap();
        assert_eq!((classic.bucket.len(), classic.sample_count, classic.sample_sum), (2, 6, 2.5));
        assert_eq!(families[3].metric[0].summary.as_ref().unwrap().quantile.len(), 3);
        let native = families[4].metric[0].histogram.as_ref().unwrap();
        assert_eq!((native.schema, native.zero_count, native.sample_count), (0, 2, 12));
        assert_eq!(native.positive_delta, [2, 2, -2]);
    }

    #[test]
    fn broken_families_break_every_format() {
        for format in [Exposition::Text, Exposition::OpenMetrics, Exposition::Protobuf] {
            let t = text(format, &[Family::Counter, Family::Invalid], 1);
            assert!(t.starts_with("azrw_invalid{"), "{t}");
        }
    }
}
