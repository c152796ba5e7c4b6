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
    if series.labels.len() > MAX_LABELS {
        return Some(format!("{} labels (Azure allows at most {MAX_LABELS} per series)", series.labels.len()));
    }
    for (i, (name, value)) in series.labels.iter().enumerate() {
        let name_chars = name.chars().count();
        if name_chars > MAX_NAME_CHARS {
            let short: String = name.chars().take(16).collect();
            return Some(format!(
                "label name {short}… has {name_chars} characters (Azure allows at most {MAX_NAME_CHARS})"
            ));
        }
        let value_chars = value.chars().count();
        if value_chars > MAX_VALUE_CHARS {
            return Some(format!(
                "label {name} has a value of {value_chars} characters (Azure allows at most {MAX_VALUE_CHARS})"
            ));
        }
        if let Some((other, _)) = series.labels[..i].iter().find(|(o, _)| o.eq_ignore_ascii_case(name) && o != name) {
            return Some(format!(
                "label names {other} and {name} differ only by case (Azure's label names are case-insensitive)"
            ));
        }
    }
    None
}

/// A short, bounded description of a series for evidence and error bodies (long names and values cut).
pub fn short_describe(series: &Series) -> String {
    let d = series.describe();
    if d.chars().count() <= 200 { d } else { format!("{}…", d.chars().take(200).collect::<String>()) }
}
