//! The protobuf exposition messages (`io.prometheus.client.MetricFamily`, prometheus/client_model
//! `io/prometheus/client/metrics.proto`), written by hand with prost derives like `remote_write::proto`, so the
//! crate needs no `protoc`. Only what the target serves is declared; proto2 defaults are the zero values, so
//! prost's omission of zero fields reads back the same.

/// `io.prometheus.client.MetricFamily`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    /// Family name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// HELP text.
    #[prost(string, tag = "2")]
    pub help: String,
    /// [`MetricType`] as i32.
    #[prost(enumeration = "MetricType", tag = "3")]
    pub r#type: i32,
    /// The family's metrics.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    /// Unit (newer client_model).
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `io.prometheus.client.MetricType` (not the remote-write numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// `COUNTER`.
    Counter = 0,
    /// `GAUGE`.
    Gauge = 1,
    /// `SUMMARY`.
    Summary = 2,
    /// `UNTYPED`.
    Untyped = 3,
    /// `HISTOGRAM` (classic, native, or both).
    Histogram = 4,
}

/// `io.prometheus.client.LabelPair`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `io.prometheus.client.Metric`: one label set and its value of the family's type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Labels (without `__name__`).
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// Gauge value.
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    /// Counter value.
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    /// Summary.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    /// Histogram.
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

/// `io.prometheus.client.Gauge`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Gauge {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
}

/// `io.prometheus.client.Counter`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Counter {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
}

/// `io.prometheus.client.Quantile`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Quantile {
    /// Quantile (0.5 …).
    #[prost(double, tag = "1")]
    pub quantile: f64,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
}

/// `io.prometheus.client.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Observation count.
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    /// Sum of observations.
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    /// Quantiles.
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
}

/// `io.prometheus.client.Histogram`: classic buckets, native buckets, or both.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Observation count.
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    /// Sum of observations.
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    /// Classic buckets, increasing `upper_bound`; the `+Inf` bucket is optional.
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    /// Native schema.
    #[prost(sint32, tag = "5")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "6")]
    pub zero_threshold: f64,
    /// Zero bucket count.
    #[prost(uint64, tag = "7")]
    pub zero_count: u64,
    /// Negative bucket spans.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Negative bucket deltas.
    #[prost(sint64, repeated, tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Positive bucket spans.
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Positive bucket deltas.
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
}

/// `io.prometheus.client.Bucket` (classic).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Bucket {
    /// Cumulative count.
    #[prost(uint64, tag = "1")]
    pub cumulative_count: u64,
    /// Upper bound, inclusive.
    #[prost(double, tag = "2")]
    pub upper_bound: f64,
}

/// `io.prometheus.client.BucketSpan`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span (or the first bucket index).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Consecutive buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}
