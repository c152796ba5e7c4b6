//! Turning a remote-write body (snappy block + protobuf) into a [`DecodedWrite`], and back for fake senders.

use prost::Message;

use super::proto::{self, MetricType, v2};
use super::{DecodedWrite, Exemplar, HistogramCount, Metadata, NativeHistogram, RwVersion, Sample, Series};

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Start of a snappy *framed* stream: the stream identifier chunk `ff 06 00 00` + "sNaPpY" (0x70 is `p`).
/// Remote-write requires the block format.
const SNAPPY_FRAMED_MAGIC: [u8; 10] = [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59];

/// The content-type parameter that selects remote-write 2.0.
const RW2_PROTO: &str = "io.prometheus.write.v2.Request";

/// Which message a `Content-Type` announces: RW 2.0 only when it names `io.prometheus.write.v2.Request`.
///
/// ```
/// use azrw::remote_write::{version_of, RwVersion};
/// assert_eq!(version_of(Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")), RwVersion::V2);
/// assert_eq!(version_of(Some("application/x-protobuf")), RwVersion::V1);
/// ```
pub fn version_of(content_type: Option<&str>) -> RwVersion {
    let is_v2 = content_type.is_some_and(|ct| {
        ct.split(';').skip(1).any(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.trim().eq_ignore_ascii_case("proto") && v.trim().trim_matches('"') == RW2_PROTO
        })
    });
    if is_v2 { RwVersion::V2 } else { RwVersion::V1 }
}

/// Decodes a snappy-block protobuf remote-write body; the content type picks RW 1.0 or 2.0.
///
/// ```
/// use azrw::remote_write::{decode, encode, DecodedWrite, RwVersion};
/// let body = encode(&DecodedWrite::default(), RwVersion::V1);
/// let write = decode(&body, Some("application/x-protobuf")).unwrap();
/// assert_eq!(write.sample_count(), 0);
/// ```
pub fn decode(body: &[u8], content_type: Option<&str>) -> Result<DecodedWrite, DecodeError> {
    match version_of(content_type) {
        // One RW 1.0 parser: the borrowed view, copied out.
        RwVersion::V1 => super::view::with_view(body, |view| view.map(|v| v.to_owned())),
        RwVersion::V2 => {
            let mut raw = Vec::new();
            uncompressed(body, &mut raw)?;
            let mut write = decode_v2(&raw)?;
            write.uncompressed_len = raw.len();
            Ok(write)
        }
    }
}

/// Snappy-block decompresses `body` into `raw` (its allocation reused), naming the framed format if sent.
pub(super) fn uncompressed(body: &[u8], raw: &mut Vec<u8>) -> Result<(), DecodeError> {
    if body.starts_with(&SNAPPY_FRAMED_MAGIC) {
        return Err(DecodeError(
            "body is snappy *framed* (stream format); remote-write requires snappy block format".into(),
        ));
    }
    let not_snappy = |e: snap::Error| DecodeError(format!("body is not snappy block-compressed: {e}"));
    let len = snap::raw::decompress_len(body).map_err(not_snappy)?;
    // The length is the sender's claim: check it before allocating (and zeroing) that much.
    if len > super::limits::MAX_UNCOMPRESSED_BYTES {
        return Err(DecodeError(format!(
            "the snappy header declares {len} uncompressed bytes, more than the {} the DCR accepts",
            super::limits::MAX_UNCOMPRESSED_BYTES
        )));
    }
    raw.clear();
    raw.resize(len, 0);
    let n = snap::raw::Decoder::new().decompress(body, raw).map_err(not_snappy)?;
    raw.truncate(n);
    Ok(())
}

/// The normalised form of a metadata entry.
pub(super) fn metadata_of(m: proto::MetricMetadata) -> Metadata {
    Metadata {
        family: m.metric_family_name,
        kind: MetricType::name_of(m.r#type).to_owned(),
        help: m.help,
        unit: m.unit,
    }
}

fn decode_v2(raw: &[u8]) -> Result<DecodedWrite, DecodeError> {
    let req =
        v2::Request::decode(raw).map_err(|e| DecodeError(format!("not an io.prometheus.write.v2.Request: {e}")))?;
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(DecodeError(format!("symbols[0] must be the empty string, got {:?}", req.symbols[0])));
    }
    let symbol = |i: usize, what: &str, r: u32| -> Result<String, DecodeError> {
        req.symbols.get(r as usize).cloned().ok_or_else(|| {
            DecodeError(format!(
                "series {i}: {what} refers to symbol {r}, but the table has {} symbols",
                req.symbols.len()
            ))
        })
    };
    let mut series = Vec::with_capacity(req.timeseries.len());
    let mut metadata = Vec::new();
    for (i, ts) in req.timeseries.iter().enumerate() {
        if ts.labels_refs.len() % 2 != 0 {
            return Err(DecodeError(format!(
                "series {i}: labels_refs has odd length {} (must be name/value pairs)",
                ts.labels_refs.len()
            )));
        }
        let mut labels = Vec::with_capacity(ts.labels_refs.len() / 2);
        for pair in ts.labels_refs.chunks(2) {
            labels.push((symbol(i, "label name", pair[0])?, symbol(i, "label value", pair[1])?));
        }
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for ex in &ts.exemplars {
            if ex.labels_refs.len() % 2 != 0 {
                return Err(DecodeError(format!(
                    "series {i}: an exemplar's labels_refs has odd length {} (must be name/value pairs)",
                    ex.labels_refs.len()
                )));
            }
            let mut labels = Vec::with_capacity(ex.labels_refs.len() / 2);
            for pair in ex.labels_refs.chunks(2) {
                labels.push((symbol(i, "exemplar label", pair[0])?, symbol(i, "exemplar label", pair[1])?));
            }
            exemplars.push(Exemplar { labels, value: ex.value, timestamp: ex.timestamp });
        }
        let s = Series {
            labels,
            samples: ts.samples.iter().map(|s| Sample { timestamp: s.timestamp, value: s.value }).collect(),
            histograms: ts.histograms.iter().map(histogram_of).collect(),
            exemplars,
        };
        if let Some(m) = ts.metadata {
            let help = symbol(i, "metadata help", m.help_ref)?;
            let unit = symbol(i, "metadata unit", m.unit_ref)?;
            if m.r#type != 0 || !help.is_empty() || !unit.is_empty() {
                metadata.push(Metadata {
                    family: s.label("__name__").unwrap_or_default().to_owned(),
                    kind: MetricType::name_of(m.r#type).to_owned(),
                    help,
                    unit,
                });
            }
        }
        series.push(s);
    }
    Ok(DecodedWrite { version: Some(RwVersion::V2), series, metadata, uncompressed_len: 0 })
}

pub(super) fn histogram_of(h: &proto::Histogram) -> NativeHistogram {
    use proto::histogram::{Count, ZeroCount};
    let spans = |s: &[proto::BucketSpan]| s.iter().map(|s| (s.offset, s.length)).collect();
    NativeHistogram {
        timestamp: h.timestamp,
        count: h.count.map(|c| match c {
            Count::CountInt(n) => HistogramCount::Int(n),
            Count::CountFloat(v) => HistogramCount::Float(v),
        }),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count.map(|c| match c {
            ZeroCount::ZeroCountInt(n) => HistogramCount::Int(n),
            ZeroCount::ZeroCountFloat(v) => HistogramCount::Float(v),
        }),
        negative_spans: spans(&h.negative_spans),
        negative_deltas: h.negative_deltas.clone(),
        negative_counts: h.negative_counts.clone(),
        positive_spans: spans(&h.positive_spans),
        positive_deltas: h.positive_deltas.clone(),
        positive_counts: h.positive_counts.clone(),
        reset_hint: h.reset_hint,
        custom_values: h.custom_values.clone(),
    }
}

fn histogram_proto(h: &NativeHistogram) -> proto::Histogram {
    use proto::histogram::{Count, ZeroCount};
    let spans = |s: &[(i32, u32)]| s.iter().map(|&(offset, length)| proto::BucketSpan { offset, length }).collect();
    proto::Histogram {
        count: h.count.map(|c| match c {
            HistogramCount::Int(n) => Count::CountInt(n),
            HistogramCount::Float(v) => Count::CountFloat(v),
        }),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count.map(|c| match c {
            HistogramCount::Int(n) => ZeroCount::ZeroCountInt(n),
            HistogramCount::Float(v) => ZeroCount::ZeroCountFloat(v),
        }),
        negative_spans: spans(&h.negative_spans),
        negative_deltas: h.negative_deltas.clone(),
        negative_counts: h.negative_counts.clone(),
        positive_spans: spans(&h.positive_spans),
        positive_deltas: h.positive_deltas.clone(),
        positive_counts: h.positive_counts.clone(),
        reset_hint: h.reset_hint,
        timestamp: h.timestamp,
        custom_values: h.custom_values.clone(),
    }
}

/// Encodes a write as the given protobuf message and snappy-block compresses it — what a sender puts on the wire.
///
/// Histograms and exemplars are encoded field by field, so a round trip keeps them. For RW 2.0, metadata is attached to the first series whose `__name__` is the metadata's family.
///
/// ```
/// use azrw::remote_write::{decode, encode, DecodedWrite, RwVersion, Sample, Series};
/// let write = DecodedWrite {
///     version: Some(RwVersion::V2),
///     series: vec![Series {
///         labels: vec![("__name__".into(), "up".into())],
///         samples: vec![Sample { timestamp: 1, value: 1.0 }],
///         histograms: vec![],
///         exemplars: vec![],
///     }],
///     ..Default::default()
/// };
/// let body = encode(&write, RwVersion::V2);
/// let back = decode(&body, Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")).unwrap();
/// assert_eq!(back.series, write.series);
/// ```
pub fn encode(write: &DecodedWrite, version: RwVersion) -> Vec<u8> {
    let raw = match version {
        RwVersion::V1 => encode_v1(write),
        RwVersion::V2 => encode_v2(write),
    };
    snap::raw::Encoder::new().compress_vec(&raw).expect("snappy compression of an in-memory buffer")
}

fn encode_v1(write: &DecodedWrite) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: write
            .series
            .iter()
            .map(|s| proto::TimeSeries {
                labels: s.labels.iter().map(|(n, v)| proto::Label { name: n.clone(), value: v.clone() }).collect(),
                samples: s.samples.iter().map(|x| proto::Sample { value: x.value, timestamp: x.timestamp }).collect(),
                exemplars: s
                    .exemplars
                    .iter()
                    .map(|e| proto::Exemplar {
                        labels: e
                            .labels
                            .iter()
                            .map(|(n, v)| proto::Label { name: n.clone(), value: v.clone() })
                            .collect(),
                        value: e.value,
                        timestamp: e.timestamp,
                    })
                    .collect(),
                histograms: s.histograms.iter().map(histogram_proto).collect(),
            })
            .collect(),
        metadata: write
            .metadata
            .iter()
            .map(|m| proto::MetricMetadata {
                r#type: MetricType::from_name(&m.kind) as i32,
                metric_family_name: m.family.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
    };
    req.encode_to_vec()
}

fn encode_v2(write: &DecodedWrite) -> Vec<u8> {
    let mut symbols = vec![String::new()];
    let mut index = std::collections::HashMap::from([(String::new(), 0u32)]);
    let mut intern = |s: &str| -> u32 {
        if let Some(&i) = index.get(s) {
            return i;
        }
        let i = symbols.len() as u32;
        symbols.push(s.to_owned());
        index.insert(s.to_owned(), i);
        i
    };
    let mut used_metadata = vec![false; write.metadata.len()];
    let mut timeseries = Vec::with_capacity(write.series.len());
    for s in &write.series {
        let labels_refs = s.labels.iter().flat_map(|(n, v)| [intern(n), intern(v)]).collect();
        let name = s.label("__name__").unwrap_or_default();
        let metadata =
            write.metadata.iter().enumerate().find(|(i, m)| !used_metadata[*i] && m.family == name).map(|(i, m)| {
                used_metadata[i] = true;
                v2::Metadata {
                    r#type: MetricType::from_name(&m.kind) as i32,
                    help_ref: intern(&m.help),
                    unit_ref: intern(&m.unit),
                }
            });
        timeseries.push(v2::TimeSeries {
            labels_refs,
            samples: s
                .samples
                .iter()
                .map(|x| v2::Sample { value: x.value, timestamp: x.timestamp, start_timestamp: 0 })
                .collect(),
            histograms: s.histograms.iter().map(histogram_proto).collect(),
            exemplars: s
                .exemplars
                .iter()
                .map(|e| v2::Exemplar {
                    labels_refs: e.labels.iter().flat_map(|(n, v)| [intern(n), intern(v)]).collect(),
                    value: e.value,
                    timestamp: e.timestamp,
                })
                .collect(),
            metadata,
        });
    }
    v2::Request { symbols, timeseries }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_CT: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    fn sample_write(version: RwVersion) -> DecodedWrite {
        DecodedWrite {
            version: Some(version),
            series: vec![
                Series {
                    labels: vec![("__name__".into(), "up".into()), ("job".into(), "azrw".into())],
                    samples: vec![
                        Sample { timestamp: 1000, value: 1.0 },
                        Sample { timestamp: 2000, value: f64::from_bits(STALE_NAN) },
                    ],
                    histograms: vec![NativeHistogram {
                        negative_spans: vec![(1, 1)],
                        negative_deltas: vec![3],
                        positive_spans: vec![(-2, 2), (3, 1)],
                        positive_deltas: vec![1, -1, 4],
                        zero_threshold: 0.001,
                        sum: 7.5,
                        ..NativeHistogram::empty(3000)
                    }],
                    exemplars: vec![Exemplar {
                        labels: vec![("trace_id".into(), "abc".into())],
                        value: 0.5,
                        timestamp: 1500,
                    }],
                },
                Series {
                    labels: vec![("__name__".into(), "temp".into())],
                    samples: vec![Sample { timestamp: 1000, value: -3.5 }],
                    histograms: vec![],
                    exemplars: vec![],
                },
            ],
            metadata: vec![Metadata {
                family: "up".into(),
                kind: "GAUGE".into(),
                help: "Is it up".into(),
                unit: "".into(),
            }],
            uncompressed_len: 0,
        }
    }

    fn assert_same(a: &DecodedWrite, b: &DecodedWrite) {
        assert_eq!(a.version, b.version);
        assert_eq!(a.metadata, b.metadata);
        assert_eq!(a.series.len(), b.series.len());
        for (x, y) in a.series.iter().zip(&b.series) {
            assert_eq!(x.labels, y.labels);
            assert_eq!((&x.histograms, &x.exemplars), (&y.histograms, &y.exemplars));
            let bits = |s: &Series| s.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(x), bits(y));
        }
    }

    #[test]
    fn v1_round_trip_keeps_stale_nan_bits() {
        let write = sample_write(RwVersion::V1);
        let back = decode(&encode(&write, RwVersion::V1), Some("application/x-protobuf")).unwrap();
        assert_same(&write, &back);
        assert_eq!(back.series[0].samples[1].value.to_bits(), STALE_NAN);
        assert!(back.uncompressed_len > 0);
    }

    #[test]
    fn v2_round_trip_resolves_symbols() {
        let write = sample_write(RwVersion::V2);
        let back = decode(&encode(&write, RwVersion::V2), Some(V2_CT)).unwrap();
        assert_same(&write, &back);
        assert_eq!(back.series[0].samples[1].value.to_bits(), STALE_NAN);
    }

    #[test]
    fn framed_snappy_is_named() {
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(&encode_v1(&sample_write(RwVersion::V1))).unwrap();
        }
        let err = decode(&framed, None).unwrap_err();
        assert!(err.0.contains("framed"), "{err}");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(decode(b"definitely not snappy", None).is_err());
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 16]).unwrap();
        assert!(decode(&not_proto, None).is_err());
        assert!(decode(&not_proto, Some(V2_CT)).is_err());
    }

    fn v2_body(req: v2::Request) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap()
    }

    #[test]
    fn v2_bad_symbol_references_name_the_series() {
        let ok = v2::TimeSeries { labels_refs: vec![1, 2], ..Default::default() };
        let symbols = vec!["".to_owned(), "__name__".to_owned(), "up".to_owned()];
        let out_of_range = v2::TimeSeries { labels_refs: vec![1, 9], ..Default::default() };
        let err = decode(
            &v2_body(v2::Request { symbols: symbols.clone(), timeseries: vec![ok.clone(), out_of_range] }),
            Some(V2_CT),
        )
        .unwrap_err();
        assert!(err.0.contains("series 1") && err.0.contains("symbol 9"), "{err}");

        let odd = v2::TimeSeries { labels_refs: vec![1], ..Default::default() };
        let err =
            decode(&v2_body(v2::Request { symbols: symbols.clone(), timeseries: vec![odd] }), Some(V2_CT)).unwrap_err();
        assert!(err.0.contains("series 0") && err.0.contains("odd"), "{err}");

        let err =
            decode(&v2_body(v2::Request { symbols: vec!["x".into()], timeseries: vec![] }), Some(V2_CT)).unwrap_err();
        assert!(err.0.contains("symbols[0]"), "{err}");
    }

    #[test]
    fn metadata_only_v1_request() {
        let write = DecodedWrite {
            version: Some(RwVersion::V1),
            metadata: sample_write(RwVersion::V1).metadata,
            ..Default::default()
        };
        let back = decode(&encode(&write, RwVersion::V1), None).unwrap();
        assert!(back.series.is_empty());
        assert_eq!(back.metadata, write.metadata);
    }
}
