//! A DCR throttle for load scenarios: every N-th acceptable write is answered 429 with `Retry-After`, the way
//! Azure Monitor answers a workspace over its ingestion limit. Kept apart from fault plans on purpose: it is one
//! stated rate, not a script.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `cloud.throttle` in a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSpec {
    /// Every N-th write that would be accepted is answered 429 instead (N ≥ 1; 1 refuses them all).
    pub every: u64,
    /// The `Retry-After` the 429 carries (whole seconds on the wire).
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
}

/// A throttle in action: counts acceptable writes.
#[derive(Debug)]
pub struct Throttle {
    spec: ThrottleSpec,
    seen: AtomicU64,
}

impl Throttle {
    /// A throttle that has seen no write yet.
    pub fn new(spec: ThrottleSpec) -> Throttle {
        Throttle { spec, seen: AtomicU64::new(0) }
    }

    /// Counts one acceptable write; `Some(retry-after seconds)` when this one is to be refused.
    pub fn refuse_next(&self) -> Option<u64> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        n.is_multiple_of(self.spec.every.max(1)).then(|| self.spec.retry_after.as_secs().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_nth_write() {
        let t = Throttle::new(ThrottleSpec { every: 3, retry_after: Duration::from_secs(2) });
        let refused: Vec<Option<u64>> = (0..6).map(|_| t.refuse_next()).collect();
        assert_eq!(refused, vec![None, None, Some(2), None, None, Some(2)]);
    }
}
