//! Remote-write payloads: protobuf types for RW 1.0 and 2.0 (prost), snappy-block decoding, a normalised view.

mod decode;
pub mod limits;
pub mod proto;
mod view;

pub use decode::{DecodeError, decode, encode, version_of};
pub use view::{SeriesView, WriteView, with_view};

use serde::Serialize;

/// Which remote-write message a body carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RwVersion {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// A decoded write request, labels resolved (RW 2.0 symbols already applied).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecodedWrite {
    /// Message version (`None` only for the default value).
    pub version: Option<RwVersion>,
    /// Series in the order sent.
    pub series: Vec<Series>,
    /// Metadata entries (RW 1.0 metadata-only requests, or RW 2.0 per-series metadata).
    pub metadata: Vec<Metadata>,
    /// Uncompressed protobuf size.
    pub uncompressed_len: usize,
}

impl DecodedWrite {
    /// Total float samples.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// Total native histogram samples.
    pub fn histogram_count(&self) -> usize {
        self.series.iter().map(|s| s.histograms.len()).sum()
    }

    /// Total exemplars.
    pub fn exemplar_count(&self) -> usize {
        self.series.iter().map(|s| s.exemplars.len()).sum()
    }

    /// About how many heap bytes the series hold (what the recorder charges against its budget): a write of tiny
    /// series takes dozens of times its wire size once every label is an owned string.
    pub fn heap_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|s| {
                series_heap_bytes(
                    s.labels.iter().map(|(n, v)| (n.len(), v.len())),
                    s.samples.len(),
                    &s.histograms,
                    &s.exemplars,
                )
            })
            .sum()
    }
}

/// The heap bytes of one owned [`Series`] with labels of these `(name, value)` lengths (allocator rounding
/// ignored): the estimate behind [`DecodedWrite::heap_bytes`], also made from a borrowed view before copying it.
pub(crate) fn series_heap_bytes(
    labels: impl Iterator<Item = (usize, usize)>,
    samples: usize,
    histograms: &[NativeHistogram],
    exemplars: &[Exemplar],
) -> usize {
    use std::mem::size_of;
    // What malloc hands out for `n` bytes: 8 bytes of header, rounded to 16, at least 32 (glibc); label strings
    // are short, so this is most of their cost.
    let alloc = |n: usize| if n == 0 { 0 } else { (n + 8).next_multiple_of(16).max(32) };
    let labels: usize = labels.map(|(n, v)| size_of::<(String, String)>() + alloc(n) + alloc(v)).sum();
    let histograms: usize = histograms
        .iter()
        .map(|h| {
            size_of::<NativeHistogram>()
                + 8 * (h.negative_spans.len() + h.positive_spans.len())
                + 8 * (h.negative_deltas.len() + h.positive_deltas.len())
                + 8 * (h.negative_counts.len() + h.positive_counts.len() + h.custom_values.len())
        })
        .sum();
    let exemplars: usize = exemplars
        .iter()
        .map(|e| {
            size_of::<Exemplar>()
                + e.labels.iter().map(|(n, v)| size_of::<(String, String)>() + n.len() + v.len()).sum::<usize>()
        })
        .sum();
    size_of::<Series>() + alloc(1) * 2 + labels + samples * size_of::<Sample>() + histograms + exemplars
}

/// One series in a write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Labels in the order sent (the sender must sort them).
    pub labels: Vec<(String, String)>,
    /// Float samples `(timestamp ms, value)`, values kept bit-exact.
    pub samples: Vec<Sample>,
    /// Native histogram samples, as sent.
    pub histograms: Vec<NativeHistogram>,
    /// Exemplars, as sent.
    pub exemplars: Vec<Exemplar>,
}

impl Series {
    /// Value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        label(&self.labels, name)
    }

    /// `name{a="b",…}` for evidence.
    pub fn describe(&self) -> String {
        describe_labels(&self.labels)
    }
}

/// Value of a label in a label set.
pub fn label<'a, N: AsRef<str>, V: AsRef<str>>(labels: &'a [(N, V)], name: &str) -> Option<&'a str> {
    labels.iter().find(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref())
}

/// `name{a="b",…}`: how evidence names a series, whoever holds its labels.
pub fn describe_labels<N: AsRef<str>, V: AsRef<str>>(labels: &[(N, V)]) -> String {
    let name = label(labels, "__name__").unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_ref() != "__name__")
        .map(|(k, v)| format!("{}={:?}", k.as_ref(), v.as_ref()))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// A float sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The value; compare with `to_bits` where bit patterns matter (stale markers).
    pub value: f64,
}

/// A count of a native histogram: integer histograms count in `u64`, float histograms in `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum HistogramCount {
    /// `count_int` / `zero_count_int`.
    Int(u64),
    /// `count_float` / `zero_count_float`.
    Float(f64),
}

impl std::fmt::Display for HistogramCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistogramCount::Int(n) => write!(f, "{n}"),
            HistogramCount::Float(v) => write!(f, "{v}f"),
        }
    }
}

/// One native histogram sample, every field as sent (the same in RW 1.0 and 2.0). Bucket spans are
/// `(offset, length)`; integer histograms carry deltas, float histograms absolute counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NativeHistogram {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Observation count (`None` when the sender set neither field).
    pub count: Option<HistogramCount>,
    /// Sum of observations (a stale marker is a histogram whose sum has the stale-NaN bits).
    pub sum: f64,
    /// Resolution schema.
    pub schema: i32,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Zero bucket count.
    pub zero_count: Option<HistogramCount>,
    /// Negative bucket spans `(offset, length)`.
    pub negative_spans: Vec<(i32, u32)>,
    /// Negative bucket deltas (integer histograms).
    pub negative_deltas: Vec<i64>,
    /// Negative bucket counts (float histograms).
    pub negative_counts: Vec<f64>,
    /// Positive bucket spans `(offset, length)`.
    pub positive_spans: Vec<(i32, u32)>,
    /// Positive bucket deltas (integer histograms).
    pub positive_deltas: Vec<i64>,
    /// Positive bucket counts (float histograms).
    pub positive_counts: Vec<f64>,
    /// Counter reset hint (0 unknown, 1 yes, 2 no, 3 gauge).
    pub reset_hint: i32,
    /// Custom bucket bounds (schema -53).
    pub custom_values: Vec<f64>,
}

impl NativeHistogram {
    /// The histogram without its timestamp, in one line: what evidence and snapshots show and the expectations
    /// compare (float fields by their bits, through `{:?}`, which round-trips).
    pub fn shape(&self) -> String {
        let spans = |s: &[(i32, u32)]| s.iter().map(|(o, l)| format!("{o}:{l}")).collect::<Vec<_>>().join(",");
        let count = |c: Option<HistogramCount>| c.map_or_else(|| "none".to_owned(), |c| c.to_string());
        let mut out = format!(
            "{{count={} sum={:?} schema={} zero_threshold={:?} zero_count={}",
            count(self.count),
            self.sum,
            self.schema,
            self.zero_threshold,
            count(self.zero_count)
        );
        for (sign, spans_, deltas, counts) in [
            ("negative", &self.negative_spans, &self.negative_deltas, &self.negative_counts),
            ("positive", &self.positive_spans, &self.positive_deltas, &self.positive_counts),
        ] {
            if !spans_.is_empty() || !deltas.is_empty() || !counts.is_empty() {
                out.push_str(&format!(" {sign}=[{}]", spans(spans_)));
                if !deltas.is_empty() {
                    out.push_str(&format!(" deltas={deltas:?}"));
                }
                if !counts.is_empty() {
                    out.push_str(&format!(" counts={counts:?}"));
                }
            }
        }
        if !self.custom_values.is_empty() {
            out.push_str(&format!(" custom_values={:?}", self.custom_values));
        }
        out.push('}');
        out
    }

    /// A histogram with only a timestamp and zero counts (what fake senders start from).
    pub fn empty(timestamp: i64) -> NativeHistogram {
        NativeHistogram {
            timestamp,
            count: Some(HistogramCount::Int(0)),
            sum: 0.0,
            schema: 0,
            zero_threshold: 0.0,
            zero_count: Some(HistogramCount::Int(0)),
            negative_spans: vec![],
            negative_deltas: vec![],
            negative_counts: vec![],
            positive_spans: vec![],
            positive_deltas: vec![],
            positive_counts: vec![],
            reset_hint: 0,
            custom_values: vec![],
        }
    }
}

/// An exemplar attached to a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exemplar {
    /// Its own labels (`trace_id` …), in the order sent.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

impl std::fmt::Display for Exemplar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        write!(f, "{{{}}} {} @ {}", labels.join(","), self.value, self.timestamp)
    }
}

/// A metadata entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// Metric family name.
    pub family: String,
    /// Type as sent (`COUNTER`, `GAUGE`, …).
    pub kind: String,
    /// HELP text.
    pub help: String,
    /// Unit.
    pub unit: String,
}
