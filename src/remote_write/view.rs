//! A remote-write 1.0 body read in place: labels borrow from the uncompressed buffer, so reading a write allocates
//! nothing per label. The DCR mock folds accepted writes straight from this view in accounting mode; the owned
//! [`DecodedWrite`] of RW 1.0 is built from it too, so one parser serves both.

use std::cell::Cell;
use std::ops::Range;

use prost::Message;

use super::decode::{DecodeError, histogram_of, metadata_of, uncompressed};
use super::proto;
use super::{DecodedWrite, Exemplar, Metadata, NativeHistogram, RwVersion, Sample, Series};

/// A decoded `prometheus.WriteRequest` whose label names and values point into the uncompressed body.
#[derive(Debug, Default)]
pub struct WriteView<'a> {
    /// Every series' labels, one after another (a series holds a range of them).
    labels: Vec<(&'a str, &'a str)>,
    /// Every series' float samples, one after another.
    samples: Vec<Sample>,
    series: Vec<Span>,
    /// Metadata entries, as sent.
    pub metadata: Vec<Metadata>,
    /// Uncompressed protobuf size.
    pub uncompressed_len: usize,
}

/// Where one series' labels and samples lie; histograms and exemplars (rare in load) are owned.
#[derive(Debug, Default)]
struct Span {
    labels: Range<usize>,
    samples: Range<usize>,
    histograms: Vec<NativeHistogram>,
    exemplars: Vec<Exemplar>,
}

/// One series of a [`WriteView`].
#[derive(Debug, Clone, Copy)]
pub struct SeriesView<'v, 'a> {
    /// Labels in the order sent.
    pub labels: &'v [(&'a str, &'a str)],
    /// Float samples.
    pub samples: &'v [Sample],
    /// Native histogram samples.
    pub histograms: &'v [NativeHistogram],
    /// Exemplars.
    pub exemplars: &'v [Exemplar],
}

impl<'a> WriteView<'a> {
    /// The series in the order sent.
    pub fn series(&self) -> impl Iterator<Item = SeriesView<'_, 'a>> {
        self.series.iter().map(|s| SeriesView {
            labels: &self.labels[s.labels.clone()],
            samples: &self.samples[s.samples.clone()],
            histograms: &s.histograms,
            exemplars: &s.exemplars,
        })
    }

    /// The owned write, labels copied.
    pub fn to_owned(&self) -> DecodedWrite {
        let series = self
            .series()
            .map(|s| Series {
                labels: s.labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
                samples: s.samples.to_vec(),
                histograms: s.histograms.to_vec(),
                exemplars: s.exemplars.to_vec(),
            })
            .collect();
        DecodedWrite { series, ..self.without_series() }
    }

    /// About how many heap bytes [`WriteView::to_owned`] would allocate for the series, without copying them.
    pub fn owned_heap_bytes(&self) -> usize {
        self.series()
            .map(|s| {
                let labels = s.labels.iter().map(|(n, v)| (n.len(), v.len()));
                super::series_heap_bytes(labels, s.samples.len(), s.histograms, s.exemplars)
            })
            .sum()
    }

    /// The owned write without its series (what the recorder keeps of a write it folded into its accounting).
    pub fn without_series(&self) -> DecodedWrite {
        DecodedWrite {
            version: Some(RwVersion::V1),
            series: Vec::new(),
            metadata: self.metadata.clone(),
            uncompressed_len: self.uncompressed_len,
        }
    }
}

/// Buffers kept per thread between writes: the uncompressed body and the view's vectors, so a steady stream of
/// writes reuses the same memory instead of allocating (and the kernel zeroing) fresh pages for each.
#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
    labels: Vec<(&'static str, &'static str)>,
    samples: Vec<Sample>,
    series: Vec<Span>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::default();
}

/// An empty vector of borrowed pairs on the allocation of another (safe code: the in-place `collect` keeps the
/// allocation because the layouts match; at worst it allocates anew).
fn recycle<'b>(mut v: Vec<(&str, &str)>) -> Vec<(&'b str, &'b str)> {
    v.clear();
    v.into_iter().map(|_| ("", "")).collect()
}

/// Decompresses a snappy-block RW 1.0 body and hands `f` a view of it (or why it could not be read). Buffers are
/// reused per thread.
///
/// ```
/// use azrw::remote_write::{encode, with_view, DecodedWrite, RwVersion, Sample, Series};
/// let write = DecodedWrite {
///     version: Some(RwVersion::V1),
///     series: vec![Series {
///         labels: vec![("__name__".into(), "up".into())],
///         samples: vec![Sample { timestamp: 1, value: 1.0 }],
///         histograms: vec![],
///         exemplars: vec![],
///     }],
///     ..Default::default()
/// };
/// let labels = with_view(&encode(&write, RwVersion::V1), |v| v.unwrap().series().next().unwrap().labels.to_vec()
///     .iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>());
/// assert_eq!(labels, ["__name__=up"]);
/// ```
pub fn with_view<R>(body: &[u8], f: impl FnOnce(Result<&WriteView<'_>, DecodeError>) -> R) -> R {
    // Taken out of the thread-local, not borrowed: `f` may decode again on this thread.
    let mut scratch = SCRATCH.take();
    let result = match uncompressed(body, &mut scratch.raw) {
        Err(e) => f(Err(e)),
        Ok(()) => {
            let mut view = WriteView {
                labels: recycle(std::mem::take(&mut scratch.labels)),
                samples: std::mem::take(&mut scratch.samples),
                series: std::mem::take(&mut scratch.series),
                metadata: Vec::new(),
                uncompressed_len: scratch.raw.len(),
            };
            view.labels.clear();
            view.samples.clear();
            view.series.clear();
            let result = match parse(&scratch.raw, &mut view) {
                Ok(()) => f(Ok(&view)),
                Err(e) => f(Err(DecodeError(format!("not a prometheus.WriteRequest: {e}")))),
            };
            let WriteView { labels, samples, mut series, .. } = view;
            series.clear();
            scratch.labels = recycle(labels);
            (scratch.samples, scratch.series) = (samples, series);
            result
        }
    };
    SCRATCH.set(scratch);
    result
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or("buffer underflow")?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err("invalid varint")
    }

    /// The next field's number and wire type, or `None` at the end.
    fn tag(&mut self) -> Result<Option<(u32, u8)>, &'static str> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = u32::try_from(tag >> 3).map_err(|_| "invalid tag value")?;
        if field == 0 {
            return Err("invalid tag value: 0");
        }
        Ok(Some((field, (tag & 7) as u8)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.buf.len() {
            return Err("buffer underflow");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| "buffer underflow")?)
    }

    fn fixed64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    /// Skips a field this parser does not read (unknown fields are ignored, as prost does).
    fn skip(&mut self, field: u32, wire: u8) -> Result<(), &'static str> {
        self.skip_nested(field, wire, 0)
    }

    /// [`Reader::skip`] inside `depth` groups: nested groups are refused past prost's recursion limit (100), as a
    /// body of nothing but group starts would otherwise overflow the stack (found by the fuzz suite).
    fn skip_nested(&mut self, field: u32, wire: u8, depth: u32) -> Result<(), &'static str> {
        if depth >= 100 {
            return Err("recursion limit reached");
        }
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            START_GROUP => loop {
                match self.tag()? {
                    None => return Err("unexpected end of group"),
                    Some((f, END_GROUP)) if f == field => return Ok(()),
                    Some((_, END_GROUP)) => return Err("unexpected end group tag"),
                    Some((f, w)) => self.skip_nested(f, w, depth + 1)?,
                }
            },
            _ => Err("invalid wire type value"),
        }
    }
}

/// A known field with the wrong wire type is an error, as in prost.
fn expect_wire(actual: u8, expected: u8) -> Result<(), &'static str> {
    if actual == expected { Ok(()) } else { Err("invalid wire type") }
}

fn utf8(bytes: &[u8]) -> Result<&str, &'static str> {
    std::str::from_utf8(bytes).map_err(|_| "invalid string value: data is not UTF-8 encoded")
}

/// `WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }`.
fn parse<'a>(raw: &'a [u8], view: &mut WriteView<'a>) -> Result<(), String> {
    let mut r = Reader { buf: raw };
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect_wire(wire, LEN)?;
                let series = parse_series(r.len_delimited()?, view).map_err(|e| format!("TimeSeries: {e}"))?;
                view.series.push(series);
            }
            3 => {
                expect_wire(wire, LEN)?;
                let m = proto::MetricMetadata::decode(r.len_delimited()?).map_err(|e| e.to_string())?;
                view.metadata.push(metadata_of(m));
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; repeated Exemplar exemplars = 3;
/// repeated Histogram histograms = 4; }`.
fn parse_series<'a>(buf: &'a [u8], view: &mut WriteView<'a>) -> Result<Span, String> {
    let (labels_from, samples_from) = (view.labels.len(), view.samples.len());
    let (mut histograms, mut exemplars) = (Vec::new(), Vec::new());
    let mut r = Reader { buf };
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect_wire(wire, LEN)?;
                view.labels.push(parse_label(r.len_delimited()?)?);
            }
            2 => {
                expect_wire(wire, LEN)?;
                view.samples.push(parse_sample(r.len_delimited()?)?);
            }
            3 => {
                expect_wire(wire, LEN)?;
                let e = proto::Exemplar::decode(r.len_delimited()?).map_err(|e| e.to_string())?;
                let labels = e.labels.into_iter().map(|l| (l.name, l.value)).collect();
                exemplars.push(Exemplar { labels, value: e.value, timestamp: e.timestamp });
            }
            4 => {
                expect_wire(wire, LEN)?;
                let h = proto::Histogram::decode(r.len_delimited()?).map_err(|e| e.to_string())?;
                histograms.push(histogram_of(&h));
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(Span {
        labels: labels_from..view.labels.len(),
        samples: samples_from..view.samples.len(),
        histograms,
        exemplars,
    })
}

/// `Label { string name = 1; string value = 2; }`; a repeated scalar field keeps its last value, as in prost.
fn parse_label(buf: &[u8]) -> Result<(&str, &str), &'static str> {
    let (mut name, mut value) = ("", "");
    let mut r = Reader { buf };
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect_wire(wire, LEN)?;
                name = utf8(r.len_delimited()?)?;
            }
            2 => {
                expect_wire(wire, LEN)?;
                value = utf8(r.len_delimited()?)?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((name, value))
}

/// `Sample { double value = 1; int64 timestamp = 2; }`.
fn parse_sample(buf: &[u8]) -> Result<Sample, &'static str> {
    let mut sample = Sample { timestamp: 0, value: 0.0 };
    let mut r = Reader { buf };
    while let Some((field, wire)) = r.tag()? {
        match field {
            1 => {
                expect_wire(wire, FIXED64)?;
                sample.value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                expect_wire(wire, VARINT)?;
                sample.timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever prost's generated types decode, the view decodes the same; whatever they refuse, it refuses.
    #[test]
    fn agrees_with_prost_on_odd_encodings() {
        let label = |n: &str, v: &str| proto::Label { name: n.into(), value: v.into() };
        let req = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![label("__name__", "up"), label("", "")],
                samples: vec![proto::Sample { value: -1.5, timestamp: -5 }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let mut raw = req.encode_to_vec();
        // An unknown varint field, an unknown group and an unknown fixed32 at the end: skipped.
        raw.extend_from_slice(&[0x78, 0x01, 0x7b, 0x08, 0x01, 0x7c, 0x7d, 1, 2, 3, 4]);
        let ours = read(&raw).expect("decodes");
        let theirs = proto::WriteRequest::decode(raw.as_slice()).expect("prost decodes");
        assert_eq!(ours.series.len(), theirs.timeseries.len());
        assert_eq!(
            ours.series[0].labels,
            vec![("__name__".to_owned(), "up".to_owned()), (String::new(), String::new())]
        );
        assert_eq!(ours.series[0].samples[0].timestamp, -5);
        assert_eq!(ours.series[0].samples[0].value, -1.5);

        for bad in [
            &[0x0a, 0x05, 0x0a][..],                     // truncated series
            &[0x08, 0x01],                               // timeseries as a varint
            &[0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x01],       // label name truncated
            &[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff], // label name not UTF-8
            &[0x0f],                                     // wire type 7
            &[0x00],                                     // field 0
        ] {
            assert!(read(bad).is_err(), "{bad:?} must be refused");
            assert!(proto::WriteRequest::decode(bad).is_err(), "{bad:?}: prost refuses it too");
        }
    }

    fn read(raw: &[u8]) -> Result<DecodedWrite, DecodeError> {
        let body = snap::raw::Encoder::new().compress_vec(raw).unwrap();
        with_view(&body, |v| v.map(|v| v.to_owned()))
    }

    #[test]
    fn buffers_are_reused_and_reentrancy_is_safe() {
        let body = snap::raw::Encoder::new()
            .compress_vec(
                &proto::WriteRequest {
                    timeseries: vec![proto::TimeSeries {
                        labels: vec![proto::Label { name: "a".into(), value: "b".into() }],
                        ..Default::default()
                    }],
                    metadata: vec![],
                }
                .encode_to_vec(),
            )
            .unwrap();
        let inner = with_view(&body, |outer| {
            let outer = outer.unwrap().to_owned();
            let inner = with_view(&body, |v| v.unwrap().to_owned());
            assert_eq!(outer, inner);
            inner
        });
        assert_eq!(with_view(&body, |v| v.unwrap().to_owned()), inner);
    }
}
