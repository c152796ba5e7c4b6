//! Scaling out: `--shard I/N` judges a deterministic slice of the plan, and `azrw compat merge` joins the shards'
//! `compatibility.json` files into the one a single machine would have written.

use std::fmt;
use std::str::FromStr;

use super::Compatibility;
use crate::version::Version;

/// `I/N`: the I-th of N slices (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1..=count.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

/// Why `--shard` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard `{0}`: expected I/N with 1 ≤ I ≤ N, e.g. 1/4")]
pub struct ShardError(pub String);

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let err = || ShardError(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(err)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| err())?, n.trim().parse().map_err(|_| err())?);
        if index == 0 || index > count { Err(err()) } else { Ok(Shard { index, count }) }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Its versions: every N-th of the sorted list, so old and new minors (whose builds differ in cost) spread
    /// evenly and every shard derives the same slices from the same list.
    pub fn slice(&self, versions: &[Version]) -> Vec<Version> {
        let mut sorted = versions.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.into_iter().enumerate().filter(|(i, _)| i % self.count == self.index - 1).map(|(_, v)| v).collect()
    }
}

/// Why shards could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no compatibility.json to merge")]
    Empty,
    /// The shards were judged by different azrw versions, scenarios or plans.
    #[error("shard {shard} differs from the first in {what}: {theirs} vs {ours}")]
    Mismatch {
        /// Which file (its shard, or its position).
        shard: String,
        /// `azrw`, `scenario_revision` or `plan`.
        what: &'static str,
        /// Its value.
        theirs: String,
        /// The first file's.
        ours: String,
    },
    /// Two shards judged the same version differently.
    #[error("prometheus {0} is judged differently by two shards")]
    Conflict(Version),
}

/// Joins shards: one result per version, sorted; the plan, revision and azrw version must agree.
pub fn merge(docs: Vec<Compatibility>) -> Result<Compatibility, MergeError> {
    let mut docs = docs.into_iter();
    let mut merged = docs.next().ok_or(MergeError::Empty)?;
    merged.shard = None;
    for (i, doc) in docs.enumerate() {
        let shard = doc.shard.clone().unwrap_or_else(|| format!("#{}", i + 2));
        let same = |what: &'static str, theirs: String, ours: String| {
            if theirs == ours { Ok(()) } else { Err(MergeError::Mismatch { shard: shard.clone(), what, theirs, ours }) }
        };
        same("azrw", doc.azrw.clone(), merged.azrw.clone())?;
        same("scenario_revision", doc.scenario_revision.clone(), merged.scenario_revision.clone())?;
        same("plan", format!("{:?}", doc.plan), format!("{:?}", merged.plan))?;
        merged.selected.extend(doc.selected);
        for result in doc.results {
            match merged.results.iter().find(|r| r.version == result.version) {
                Some(r) if r.cells != result.cells => return Err(MergeError::Conflict(result.version)),
                Some(_) => {}
                None => merged.results.push(result),
            }
        }
    }
    merged.selected.sort();
    merged.selected.dedup();
    merged.results.sort_by_key(|r| r.version);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::compat::run::{document, selection};
    use crate::runner::compat::testdata::recorded;
    use crate::runner::compat::{VersionList, VersionResult, table};

    fn judged(list: &VersionList, results: &[VersionResult], shard: Option<Shard>) -> Compatibility {
        let versions: Vec<Version> = results.iter().map(|r| r.version).collect();
        let selected = selection(list, Some(&versions), shard);
        let mine = results.iter().filter(|r| selected.contains(&r.version)).cloned().collect();
        document(list, "rev", &selected, shard, mine)
    }

    #[test]
    fn merged_shards_write_the_unsharded_file() {
        let (list, results) = recorded();
        assert!(results.len() >= 3, "a small version set, not one version");
        let whole = judged(&list, &results, None);
        let one = judged(&list, &results, Some(Shard { index: 1, count: 2 }));
        let two = judged(&list, &results, Some(Shard { index: 2, count: 2 }));
        assert!(!one.results.is_empty() && !two.results.is_empty());
        assert_ne!(table::render(&one), table::render(&whole));
        // Either order: the merge sorts.
        for docs in [vec![one.clone(), two.clone()], vec![two, one]] {
            let merged = merge(docs).unwrap();
            assert_eq!(table::render(&merged), table::render(&whole));
            assert_eq!(merged, whole);
        }
    }

    #[test]
    fn shards_of_other_runs_do_not_merge() {
        let (list, results) = recorded();
        let one = judged(&list, &results, Some(Shard { index: 1, count: 2 }));
        let mut two = judged(&list, &results, Some(Shard { index: 2, count: 2 }));
        two.scenario_revision = "other".into();
        let err = merge(vec![one.clone(), two]).unwrap_err().to_string();
        assert_eq!(err, "shard 2/2 differs from the first in scenario_revision: other vs rev");
        let mut again = one.clone();
        again.results[0].cells[0].reason = "something else".into();
        let v = one.results[0].version;
        assert_eq!(merge(vec![one, again]).unwrap_err(), MergeError::Conflict(v));
        assert_eq!(merge(vec![]).unwrap_err(), MergeError::Empty);
    }

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
        for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn slices_cover_every_version_once() {
        let versions: Vec<Version> = (45..56).map(|m| Version::new(2, m, 0)).collect();
        let mut all: Vec<Version> = (1..=3).flat_map(|i| Shard { index: i, count: 3 }.slice(&versions)).collect();
        all.sort();
        assert_eq!(all, versions);
        assert_eq!(
            Shard { index: 1, count: 3 }.slice(&versions)[..2],
            [Version::new(2, 45, 0), Version::new(2, 48, 0)]
        );
    }
}
