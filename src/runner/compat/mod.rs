//! The compatibility matrix (`azrw compat`): every served Prometheus minor since 2.45 × every auth scenario (each auth
//! type, the three clouds, the negative cases, the security checks), judged by the ordinary runner and written as
//! `COMPATIBILITY.md` and `compatibility.json`.
//!
//! Above `runner` (it runs cases) and below `cli`. One file per job: [versions] (which versions), [run] (provision,
//! run, resume), [cell] (a verdict as a table cell, checked against the capability table), [table] (the Markdown),
//! [shard] (slices and merging).

pub mod cell;
pub mod run;
pub mod shard;
pub mod table;
pub mod versions;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use cell::{Blame, Cell, CellState, Contradiction, Group};
pub use shard::Shard;
pub use versions::VersionList;

use crate::version::Version;

/// The azrw version a result was judged with (a result judged by another one is judged again).
pub const AZRW_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The scenario directories the matrix runs.
pub const SCENARIOS: [&str; 2] = ["scenarios/auth", "scenarios/security"];

/// One version's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionResult {
    /// The Prometheus version.
    pub version: Version,
    /// The azrw version that judged it.
    pub azrw: String,
    /// [`revision`] of the scenarios and mock data it was judged with.
    pub scenario_revision: String,
    /// Seconds its build took here (`None`: it was already provisioned).
    #[serde(default)]
    pub build_seconds: Option<f64>,
    /// Seconds its cases took.
    #[serde(default)]
    pub run_seconds: f64,
    /// One cell per scenario, in scenario order.
    pub cells: Vec<Cell>,
}

impl VersionResult {
    /// Whether this result may stand for a run with this azrw and scenario revision.
    pub fn is_current(&self, revision: &str) -> bool {
        self.azrw == AZRW_VERSION && self.scenario_revision == revision
    }
}

/// `compatibility.json`: the plan, what was judged, and what the proxy does not serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compatibility {
    /// The azrw version.
    pub azrw: String,
    /// [`revision`] of the scenarios and mock data.
    pub scenario_revision: String,
    /// Every version the full matrix covers (the newest served patch of each minor).
    pub plan: Vec<Version>,
    /// Versions asked for and not served by the module proxy.
    pub not_served: Vec<Version>,
    /// Minors of which no version is served.
    pub unserved_minors: Vec<String>,
    /// The versions this file judged (a shard's slice, `--versions`, or the whole plan).
    pub selected: Vec<Version>,
    /// The shard that wrote it (`1/2`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// One result per judged version, oldest first.
    pub results: Vec<VersionResult>,
}

/// Why a compatibility file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FileError {
    /// The file.
    pub path: String,
    /// What is wrong (with line and column for malformed JSON).
    pub message: String,
}

impl Compatibility {
    /// Reads a `compatibility.json`.
    pub fn read(path: &Path) -> Result<Compatibility, FileError> {
        read_json(path)
    }

    /// Writes it (pretty, with a final newline).
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        write_json(path, self)
    }

    /// Every cell contradicting the capability table.
    pub fn contradictions(&self) -> Vec<Contradiction> {
        self.results.iter().flat_map(|r| cell::contradictions(r.version, &r.cells)).collect()
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let err = |message: String| FileError { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(format!("line {}, column {}: {e}", e.line(), e.column())))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let err = |message: String| FileError { path: path.display().to_string(), message };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| err(e.to_string()))? + "\n";
    std::fs::write(path, text).map_err(|e| err(e.to_string()))
}

/// A short hash of every file under `paths` (scenarios, their configs, the mock data), by relative path and content:
/// a result judged with other files is judged again.
pub fn revision(paths: &[PathBuf]) -> std::io::Result<String> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    files.sort();
    files.dedup();
    let mut hash = sha2::Sha256::new();
    for f in &files {
        hash.update(f.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(std::fs::read(f)?);
        hash.update([0]);
    }
    Ok(hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), out)?;
        }
    } else if path.is_file() {
        out.push(path.to_owned());
    }
    Ok(())
}

/// Recorded per-version results (`src/runner/compat/testdata/results/*.json`, copied from a real `azrw compat` run) for tests
/// that must not start agents.
#[cfg(test)]
pub(crate) mod testdata {
    use super::*;

    pub(crate) fn recorded() -> (VersionList, Vec<VersionResult>) {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/runner/compat/testdata"));
        let list = VersionList::read(&dir.join("versions.json")).unwrap();
        let mut results: Vec<VersionResult> =
            std::fs::read_dir(dir.join("results")).unwrap().map(|e| read_json(&e.unwrap().path()).unwrap()).collect();
        results.sort_by_key(|r| r.version);
        (list, results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_follows_content_and_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/configs")).unwrap();
        std::fs::write(dir.path().join("a/x.yaml"), "name: x").unwrap();
        std::fs::write(dir.path().join("a/configs/c.yml"), "global: {}").unwrap();
        let paths = [dir.path().join("a")];
        let first = revision(&paths).unwrap();
        assert_eq!(first.len(), 16);
        assert_eq!(revision(&paths).unwrap(), first);
        std::fs::write(dir.path().join("a/configs/c.yml"), "global: {scrape_interval: 1s}").unwrap();
        assert_ne!(revision(&paths).unwrap(), first, "a config changed");
    }
}
