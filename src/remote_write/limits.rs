//! Azure Monitor's per-series rules (metrics overview, "Metric names, label names & label values"): at most 63
//! labels, names ≤ 511 characters, values ≤ 1023, and label names are case-insensitive, so two names differing
//! only by case are duplicates. The DCR mock refuses a write that breaks them and the payload check names the
//! series; both use this one definition.

use super::Series;

/// Most labels a series may carry, `__name__` included.
pub const MAX_LABELS: usize = 63;
/// Longest label name, in characters.
pub const MAX_NAME_CHARS: usize = 511;
/// Longest label value, in characters.
pub const MAX_VALUE_CHARS: usize = 1023;

/// The first Azure rule a series breaks, in words that name the label, or `None`.
///
/// ```
/// use azrw::remote_write::{limits, Series};
/// let s = Series {
///     labels: vec![("__name__".into(), "x".into()), ("Pod".into(), "a".into()), ("pod".into(), "b".into())],
///     samples: vec![], histograms: vec![], exemplars: vec![],
/// };
/// assert!(limits::violation(&s).unwrap().contains("differ only by case"));
/// ```
pub fn violation(series: &Series) -> Option<String> {
    labels_violation(&series.labels)
}

/// The first Azure rule a label set breaks (whoever holds the labels: owned, or borrowed from a body).
pub fn labels_violation<N: AsRef<str>, V: AsRef<str>>(labels: &[(N, V)]) -> Option<String> {
    if labels.len() > MAX_LABELS {
        return Some(format!("{} labels (Azure allows at most {MAX_LABELS} per series)", labels.len()));
    }
    for (i, (name, value)) in labels.iter().enumerate() {
        let (name, value) = (name.as_ref(), value.as_ref());
        // A string has at most as many characters as bytes: count them only when the bytes could be too many.
        let name_chars = if name.len() > MAX_NAME_CHARS { name.chars().count() } else { name.len() };
        if name_chars > MAX_NAME_CHARS {
            let short: String = name.chars().take(16).collect();
            return Some(format!(
                "label name {short}… has {name_chars} characters (Azure allows at most {MAX_NAME_CHARS})"
            ));
        }
        let value_chars = if value.len() > MAX_VALUE_CHARS { value.chars().count() } else { value.len() };
        if value_chars > MAX_VALUE_CHARS {
            return Some(format!(
                "label {name} has a value of {value_chars} characters (Azure allows at most {MAX_VALUE_CHARS})"
            ));
        }
        let mut earlier = labels[..i].iter().map(|(o, _)| o.as_ref());
        if let Some(other) = earlier.find(|o| o.eq_ignore_ascii_case(name) && *o != name) {
            return Some(format!(
                "label names {other} and {name} differ only by case (Azure's label names are case-insensitive)"
            ));
        }
    }
    None
}

/// A short, bounded description of a series for evidence and error bodies (long names and values cut).
pub fn short_describe(series: &Series) -> String {
    short_describe_labels(&series.labels)
}

/// [`short_describe`] of a label set.
pub fn short_describe_labels<N: AsRef<str>, V: AsRef<str>>(labels: &[(N, V)]) -> String {
    let d = super::describe_labels(labels);
    if d.chars().count() <= 200 { d } else { format!("{}…", d.chars().take(200).collect::<String>()) }
}

/// Largest remote-write request body the mock DCR (and a case's plain receivers) read, as sent. Azure documents no
/// request size for Prometheus remote-write; the documented limit of the same DCE/DCR ingestion gateway, for the
/// Logs Ingestion API, is "Maximum size of API call: 1 MB for both compressed and uncompressed data"
/// (`MicrosoftDocs/azure-docs` `includes/azure-monitor-limits-custom-logs.md`; /work/shared/reference
/// azure-protocols.md §3 calls it an analogy). Read as 1 MiB, the lenient reading of "1 MB": a sender the mock
/// refuses would be refused by Azure too. Prometheus' default batch (2,000 samples) is a few hundred KiB.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Largest uncompressed body (the length a snappy block declares) the DCR mock inflates: the same documented
/// 1 MB, which also bounds what a small body can make the mock allocate (a 7-byte body may declare 4 GiB).
pub const MAX_UNCOMPRESSED_BYTES: usize = 1 << 20;

/// The uncompressed length a snappy block declares in its header, if it has a readable one.
///
/// ```
/// let body = azrw::remote_write::encode(&Default::default(), azrw::remote_write::RwVersion::V1);
/// assert_eq!(azrw::remote_write::limits::declared_uncompressed_len(&body), Some(0));
/// assert_eq!(azrw::remote_write::limits::declared_uncompressed_len(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Some(u32::MAX as u64));
/// ```
pub fn declared_uncompressed_len(body: &[u8]) -> Option<u64> {
    // The header is a little-endian base-128 varint of at most 32 bits (five bytes).
    let mut len = 0u64;
    for (i, &b) in body.iter().take(5).enumerate() {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(len);
        }
    }
    None
}
