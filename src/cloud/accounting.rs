//! Per-series accounting of accepted samples, for load scenarios: counts, first/last timestamps, gaps,
//! duplicates and stale markers per series instead of every decoded request, so the recorder's memory depends on
//! the number of series, not on how many samples arrive.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::remote_write::Series;

/// The bit pattern Prometheus uses for stale markers (a NaN with a payload).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Timestamps remembered per series to recognise a resent sample (a duplicate) when it arrives again.
const RECENT: usize = 8;

/// How many timestamps one series received, and what was wrong with them.
#[derive(Debug, Clone)]
pub struct SeriesTally {
    /// Labels in the order first sent (shared with the accounting's index: stored once).
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
    // Fx: label sets are hashed for every accepted sample, and SipHash was the fold's largest cost.
    series: FxHashMap<Arc<[(String, String)]>, SeriesTally>,
    /// Accepted writes folded in.
    pub writes: u64,
    /// Samples folded in.
    pub samples: u64,
    /// Mock-clock time (ms) of the first accepted write folded in.
    pub first_write_ms: Option<u64>,
    /// Mock-clock time (ms) of the latest.
    pub last_write_ms: Option<u64>,
}

impl Accounting {
    /// Folds the series of accepted write `seq`, received at `at_ms` on the mock clock; takes them to avoid copies.
    pub fn fold(&mut self, seq: usize, at_ms: u64, series: Vec<Series>) {
        self.writes += 1;
        self.first_write_ms.get_or_insert(at_ms);
        self.last_write_ms = Some(at_ms);
        for s in series {
            let Some(first) = s.samples.first() else { continue };
            self.samples += s.samples.len() as u64;
            let tally = match self.series.get_mut(s.labels.as_slice()) {
                Some(t) => t,
                None => {
                    let labels: Arc<[(String, String)]> = s.labels.into();
                    let t = SeriesTally::new(labels.clone(), first.timestamp, first.value);
                    self.series.entry(labels).or_insert(t)
                }
            };
            for p in &s.samples {
                tally.add(p.timestamp, p.value, seq);
            }
        }
    }

    /// Every series, in no particular order.
    pub fn series(&self) -> impl Iterator<Item = &SeriesTally> {
        self.series.values()
    }

    /// Number of distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Duplicates over every series.
    pub fn duplicates(&self) -> u64 {
        self.series.values().map(|t| t.duplicates).sum()
    }

    /// The last value of the first series whose labels include all of `want`.
    pub fn last_value(&self, want: &[(&str, &str)]) -> Option<f64> {
        self.series.values().find(|t| want.iter().all(|(k, v)| t.label(k) == Some(v))).map(|t| t.last_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::Sample;

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
        a.fold(1, 10, vec![series("a", &[(1000, 1.0), (2000, 2.0)]), series("b", &[(1000, 1.0)])]);
        a.fold(2, 20, vec![series("a", &[(2000, 2.0), (5000, f64::from_bits(STALE_NAN_BITS))])]);
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
            a.fold(i, i as u64, vec![series("c", &[(i as i64 * 1000 + (i as i64 % 3), i as f64)])]);
        }
        let t = a.series().next().unwrap();
        assert_eq!((t.missing(1000), t.duplicates, t.out_of_order), (0, 0, 0));
        assert_eq!(a.last_value(&[("__name__", "c")]), Some(99.0));
    }
}
