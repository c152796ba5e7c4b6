//! Remote-write payloads: protobuf types for RW 1.0 and 2.0 (prost), snappy-block decoding, a normalised view.

mod decode;
pub mod limits;
pub mod proto;

pub use decode::{DecodeError, decode, encode, version_of};

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
}

/// One series in a write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Labels in the order sent (the sender must sort them).
    pub labels: Vec<(String, String)>,
    /// Float samples `(timestamp ms, value)`, values kept bit-exact.
    pub samples: Vec<Sample>,
    /// Number of native histogram samples.
    pub histograms: usize,
    /// Number of exemplars.
    pub exemplars: usize,
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
pub fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `name{a="b",…}`: how evidence names a series, whoever holds its labels.
pub fn describe_labels(labels: &[(String, String)]) -> String {
    let name = label(labels, "__name__").unwrap_or("");
    let rest: Vec<String> = labels.iter().filter(|(k, _)| k != "__name__").map(|(k, v)| format!("{k}={v:?}")).collect();
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
