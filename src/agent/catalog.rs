//! The catalog of provisioned agent versions (`ci/agents.txt`): what `prometheus@3.5` and `prometheus@latest`
//! resolve to.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::version::{AgentRef, Version, VersionError, VersionReq};

/// The catalog shipped with azrw, one version a line.
const DEFAULT_CATALOG: &str = include_str!("../../ci/agents.txt");

/// The agent versions a run may resolve references against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCatalog {
    /// Known versions, sorted ascending and without duplicates.
    pub versions: Vec<Version>,
}

/// Why a catalog could not be read or a reference could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The catalog file could not be read.
    #[error("agent catalog {}: {error}", path.display())]
    Read {
        /// The catalog file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A line of the catalog is not a version.
    #[error("agent catalog {origin}:{line}: {error}")]
    Parse {
        /// Where the catalog came from (a file, or `built-in`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        error: VersionError,
    },
    /// `prometheus@MAJOR.MINOR` names a line the catalog has no version of.
    #[error(
        "prometheus@{major}.{minor}: no {major}.{minor}.x version in the agent catalog (it has {})",
        list(available)
    )]
    NoSuchLine {
        /// Major.
        major: u32,
        /// Minor.
        minor: u32,
        /// What the catalog has.
        available: Vec<Version>,
    },
    /// `prometheus@latest` against an empty catalog.
    #[error("prometheus@latest: the agent catalog is empty")]
    Empty,
}

fn list(versions: &[Version]) -> String {
    if versions.is_empty() {
        return "no versions".to_owned();
    }
    versions.iter().map(Version::to_string).collect::<Vec<_>>().join(", ")
}

impl AgentCatalog {
    /// The built-in catalog, `ci/agents.txt` as compiled in.
    pub fn default_catalog() -> AgentCatalog {
        // The file is part of the crate and covered by a test, so a parse failure is a build defect.
        AgentCatalog::parse(DEFAULT_CATALOG, "built-in").expect("ci/agents.txt is a valid catalog")
    }

    /// Reads a catalog file: one version a line, blank lines and `#` comments ignored.
    pub fn from_file(path: &Path) -> Result<AgentCatalog, CatalogError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| CatalogError::Read { path: path.to_owned(), error })?;
        AgentCatalog::parse(&text, &path.display().to_string())
    }

    /// Parses catalog text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<AgentCatalog, CatalogError> {
        let mut versions = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            // A trailing comment is allowed too (`3.5.1  # LTS`).
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let version = line.parse::<Version>().map_err(|error| CatalogError::Parse {
                origin: origin.to_owned(),
                line: i + 1,
                error,
            })?;
            versions.push(version);
        }
        versions.sort();
        versions.dedup();
        Ok(AgentCatalog { versions })
    }

    /// The version a reference names: an exact version as is (even if not provisioned — the runner reports a
    /// missing binary), a line as its newest patch in the catalog, `latest` as the newest version.
    pub fn resolve(&self, agent: &AgentRef) -> Result<Version, CatalogError> {
        match agent.req {
            VersionReq::Exact(v) => Ok(v),
            VersionReq::Line { major, minor } => self
                .versions
                .iter()
                .copied()
                .filter(|v| agent.req.matches(*v))
                .max()
                .ok_or_else(|| CatalogError::NoSuchLine { major, minor, available: self.versions.clone() }),
            VersionReq::Latest => self.versions.iter().copied().max().ok_or(CatalogError::Empty),
        }
    }
}

impl fmt::Display for AgentCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&list(&self.versions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AgentRef {
        s.parse().unwrap()
    }

    fn catalog() -> AgentCatalog {
        AgentCatalog::parse("# comment\n3.5.0\n\n2.53.3\n3.5.1  # newest 3.5\n3.16.0\n", "test").unwrap()
    }

    #[test]
    fn default_catalog_parses_and_is_sorted() {
        let c = AgentCatalog::default_catalog();
        assert!(!c.versions.is_empty());
        assert!(c.versions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn parse_skips_blanks_and_comments() {
        assert_eq!(
            catalog().versions,
            vec![Version::new(2, 53, 3), Version::new(3, 5, 0), Version::new(3, 5, 1), Version::new(3, 16, 0)]
        );
    }

    #[test]
    fn parse_error_names_origin_and_line() {
        let err = AgentCatalog::parse("3.5.1\nthree\n", "agents.txt").unwrap_err();
        assert!(err.to_string().starts_with("agent catalog agents.txt:2: `three`"), "{err}");
    }

    #[test]
    fn line_resolves_to_newest_patch() {
        assert_eq!(catalog().resolve(&r("prometheus@3.5")).unwrap(), Version::new(3, 5, 1));
    }

    #[test]
    fn exact_resolves_even_outside_the_catalog() {
        assert_eq!(catalog().resolve(&r("prometheus@3.9.0")).unwrap(), Version::new(3, 9, 0));
    }

    #[test]
    fn latest_is_the_max() {
        assert_eq!(catalog().resolve(&r("prometheus@latest")).unwrap(), Version::new(3, 16, 0));
        assert!(matches!(AgentCatalog { versions: vec![] }.resolve(&r("prometheus@latest")), Err(CatalogError::Empty)));
    }

    #[test]
    fn missing_line_names_line_and_catalog() {
        let err = catalog().resolve(&r("prometheus@3.9")).unwrap_err().to_string();
        assert!(err.contains("prometheus@3.9"), "{err}");
        assert!(err.contains("2.53.3, 3.5.0, 3.5.1, 3.16.0"), "{err}");
    }

    #[test]
    fn from_file_reads_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.txt");
        std::fs::write(&path, "3.5.1\n").unwrap();
        assert_eq!(AgentCatalog::from_file(&path).unwrap().versions, vec![Version::new(3, 5, 1)]);
        let err = AgentCatalog::from_file(&dir.path().join("nope.txt")).unwrap_err().to_string();
        assert!(err.contains("nope.txt"), "{err}");
    }
}
