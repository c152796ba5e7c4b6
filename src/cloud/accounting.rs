//! Per-series accounting of accepted samples, for load scenarios: counts, first/last timestamps, gaps,
//! duplicates and stale markers per series instead of every decoded request, so the recorder's memory depends on
//! the number of series, not on how many samples arrive.

use std::sync::Arc;

use std::hash::Hasher;

use hashbrown::HashTable;
use rustc_hash::FxHasher;

use crate::remote_write::Sample;

/// The bit pattern Prometheus uses for stale markers (a NaN with a payload).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Timestamps remembered per series to recognise a resent sample (a duplicate) when it arrives again.
const RECENT: usize = 8;

/// How many timestamps one series received, and what was wrong with them.
#[derive(Debug, Clone)]
pub struct SeriesTally {
    /// Labels in the order first sent.
    pub labels: Arc<[(String, String)]>,
    /// Samples accepted, duplicates included.
    pub samples: u64,
    /// Earliest timestamp (ms).
    pub first: i64,
    /// Latest timestamp (ms).
    pub last: i64,
    /// Value of the sample at `last`.
    pub last_value: f64,
    /// Samples whose timestamp this series had already received.
    pub duplicates: u64,
    /// Samples older than the newest one received (not recognised as duplicates).
    pub out_of_order: u64,
    /// Stale markers.
    pub stale: u64,
    /// The first duplicate: timestamp and the request that carried it again.
    pub first_duplicate: Option<(i64, usize)>,
    /// The widest step between consecutive timestamps: (from, to, the request that carried `to`).
    pub widest_step: Option<(i64, i64, usize)>,
    recent: [i64; RECENT],
}

impl SeriesTally {
    fn new(labels: Arc<[(String, String)]>, timestamp: i64, value: f64) -> SeriesTally {
        SeriesTally {
            labels,
            samples: 0,
            first: timestamp,
            last: timestamp,
            last_value: value,
            duplicates: 0,
            out_of_order: 0,
            stale: 0,
            first_duplicate: None,
            widest_step: None,
            recent: [i64::MIN; RECENT],
        }
    }

    /// Value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        crate::remote_write::label(&self.labels, name)
    }

    /// `name{a="b",…}` for evidence (same shape as [`Series::describe`]).
    pub fn describe(&self) -> String {
        crate::remote_write::describe_labels(&self.labels)
    }

    /// Timestamps missing between `first` and `last` if one sample is due every `interval_ms`.
    pub fn missing(&self, interval_ms: i64) -> u64 {
        if interval_ms <= 0 {
            return 0;
        }
        // Scrape timestamps jitter by a few milliseconds: round to the nearest interval.
        let due = ((self.last - self.first + interval_ms / 2) / interval_ms + 1) as u64;
        due.saturating_sub(self.samples - self.duplicates)
    }

    fn add(&mut self, timestamp: i64, value: f64, seq: usize) {
        self.samples += 1;
        if value.to_bits() == STALE_NAN_BITS {
            self.stale += 1;
        }
        if self.samples > 1 && self.recent.contains(&timestamp) {
            self.duplicates += 1;
            self.first_duplicate.get_or_insert((timestamp, seq));
            return;
        }
        if self.samples > 1 && timestamp < self.last {
            self.out_of_order += 1;
        }
        if timestamp > self.last {
            let step = timestamp - self.last;
            if self.widest_step.is_none_or(|(from, to, _)| step > to - from) {
                self.widest_step = Some((self.last, timestamp, seq));
            }
            self.last = timestamp;
            self.last_value = value;
        }
        self.first = self.first.min(timestamp);
        self.recent.rotate_right(1);
        self.recent[0] = timestamp;
    }
}

/// Every accepted series, folded.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    // Found by the labels' own hash (Fx: label sets are hashed for every accepted series, SipHash was the fold's
    // largest cost), so borrowed labels can be looked up without building an owned key.
    series: HashTable<SeriesTally>,
    /// Accepted writes folded in.
    pub writes: u64,
    /// Samples folded in.
    pub samples: u64,
    /// Mock-clock time (ms) of the first accepted write folded in.
    pub first_write_ms: Option<u64>,
    /// Mock-clock time (ms) of the latest.
    pub last_write_ms: Option<u64>,
}

/// The hash of a label set, the same whether its strings are owned or borrowed.
fn labels_hash<N: AsRef<str>, V: AsRef<str>>(labels: &[(N, V)]) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(labels.len());
    for (n, v) in labels {
        h.write(n.as_ref().as_bytes());
        h.write_u8(0xff);
        h.write(v.as_ref().as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

impl Accounting {
    /// Folds the series of accepted write `seq`, received at `at_ms` on the mock clock: `(labels, samples)` per
    /// series, labels owned or borrowed; only a series seen for the first time has its labels copied.
    pub fn fold<'s, N, V>(
        &mut self,
        seq: usize,
        at_ms: u64,
        series: impl IntoIterator<Item = (&'s [(N, V)], &'s [Sample])>,
    ) where
        N: AsRef<str> + 's,
        V: AsRef<str> + 's,
    {
        self.writes += 1;
        self.first_write_ms.get_or_insert(at_ms);
        self.last_write_ms = Some(at_ms);
        for (labels, samples) in series {
            let Some(first) = samples.first() else { continue };
            self.samples += samples.len() as u64;
            let hash = labels_hash(labels);
            let same = |t: &SeriesTally| {
                t.labels.len() == labels.len()
                    && t.labels.iter().zip(labels).all(|((a, b), (n, v))| a == n.as_ref() && b == v.as_ref())
            };
            let tally = match self.series.find_mut(hash, same) {
                Some(t) => t,
                None => {
                    let owned: Arc<[(String, String)]> =
                        labels.iter().map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned())).collect();
                    let t = SeriesTally::new(owned, first.timestamp, first.value);
                    self.series.insert_unique(hash, t, |t| labels_hash(&t.labels)).into_mut()
                }
            };
            for p in samples {
                tally.add(p.timestamp, p.value, seq);
            }
        }
    }

    /// Every series, in no particular order.
    pub fn series(&self) -> impl Iterator<Item = &SeriesTally> {
        self.series.iter()
    }

    /// Number of distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Duplicates over every series.
    pub fn duplicates(&self) -> u64 {
        self.series.iter().map(|t| t.duplicates).sum()
    }

    /// The last value of the first series whose labels include all of `want`.
    pub fn last_value(&self, want: &[(&str, &str)]) -> Option<f64> {
        self.series.iter().find(|t| want.iter().all(|(k, v)| t.label(k) == Some(v))).map(|t| t.last_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::Series;

    fn fold(a: &mut Accounting, seq: usize, at_ms: u64, series: Vec<Series>) {
        a.fold(seq, at_ms, series.iter().map(|s| (s.labels.as_slice(), s.samples.as_slice())));
    }

    fn series(name: &str, points: &[(i64, f64)]) -> Series {
        Series {
            labels: vec![("__name__".into(), name.into())],
            samples: points.iter().map(|&(timestamp, value)| Sample { timestamp, value }).collect(),
            histograms: vec![],
            exemplars: vec![],
        }
    }

    #[test]
    fn counts_gaps_duplicates_and_stale_markers() {
        let mut a = Accounting::default();
        fold(&mut a, 1, 10, vec![series("a", &[(1000, 1.0), (2000, 2.0)]), series("b", &[(1000, 1.0)])]);
        fold(&mut a, 2, 20, vec![series("a", &[(2000, 2.0), (5000, f64::from_bits(STALE_NAN_BITS))])]);
        assert_eq!((a.writes, a.samples, a.series_count()), (2, 5, 2));
        let t = a.series().find(|t| t.label("__name__") == Some("a")).unwrap();
        assert_eq!((t.samples, t.duplicates, t.stale, t.first, t.last), (4, 1, 1, 1000, 5000));
        assert_eq!(t.first_duplicate, Some((2000, 2)));
        assert_eq!(t.widest_step, Some((2000, 5000, 2)));
        // 1000..=5000 at 1s is five samples; three distinct arrived.
        assert_eq!(t.missing(1000), 2);
        assert_eq!(a.duplicates(), 1);
        assert_eq!(t.describe(), "a{}");
    }

    #[test]
    fn in_order_contiguous_series_miss_nothing() {
        let mut a = Accounting::default();
        for i in 0..100 {
            fold(&mut a, i, i as u64, vec![series("c", &[(i as i64 * 1000 + (i as i64 % 3), i as f64)])]);
        }
        let t = a.series().next().unwrap();
        assert_eq!((t.missing(1000), t.duplicates, t.out_of_order), (0, 0, 0));
        assert_eq!(a.last_value(&[("__name__", "c")]), Some(99.0));
    }
}
