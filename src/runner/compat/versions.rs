//! Which Prometheus versions the matrix covers: the newest served patch of every minor from 2.45 (the first with
//! `azuread`) to the newest.
//!
//! The Go module proxy's version list omits tags (2.45–2.53.4, the 3.5 LTS patches …), so the list is completed
//! from the release headings of the newest release's CHANGELOG.md and by asking for the next patch of every minor
//! until the proxy refuses one. What was asked and answered is kept in a file (`ci/compat/versions.json`), so every
//! shard of a run, and the tests, plan the same versions without the proxy.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::version::Version;

/// The first version with `azuread`.
pub const FIRST: Version = Version::new(2, 45, 0);

/// The module Prometheus publishes its releases under.
pub const MODULE: &str = "github.com/prometheus/prometheus";

/// What the module proxy was asked and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionList {
    /// Releases `go list -m -versions` lists (from 2.45, no pre-releases).
    pub listed: Vec<Version>,
    /// Releases the newest listed version's CHANGELOG.md names (from 2.45).
    pub changelog: Vec<Version>,
    /// Versions the list omits, asked for one by one, and whether the proxy serves each.
    pub asked: Vec<Asked>,
}

/// One explicit question to the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// The version asked for.
    pub version: Version,
    /// Whether the proxy serves it.
    pub served: bool,
}

/// Why the version list could not be read or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VersionsError {
    /// The cache file is unreadable or malformed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The `go` command failed for another reason than "not served".
    #[error("go {args}: {message}")]
    Go {
        /// The arguments.
        args: String,
        /// stderr, trimmed.
        message: String,
    },
}

/// The questions asked of the module proxy; [`GoProxy`] asks `go`, tests answer from a table.
pub trait ModuleProxy {
    /// Every module version the proxy lists.
    fn list(&mut self) -> Result<Vec<String>, VersionsError>;
    /// Whether the proxy serves this module version.
    fn served(&mut self, module_version: &str) -> Result<bool, VersionsError>;
    /// CHANGELOG.md of this module version.
    fn changelog(&mut self, module_version: &str) -> Result<String, VersionsError>;
}

/// `3.5.1` from `v0.305.1`, `2.53.3` from `v0.53.3`; `None` for pre-releases and other schemes.
pub fn from_module_version(module_version: &str) -> Option<Version> {
    let rest = module_version.strip_prefix("v0.")?;
    if rest.contains('-') || rest.contains('+') {
        return None;
    }
    let (minor, patch) = rest.split_once('.')?;
    let (minor, patch): (u32, u32) = (minor.parse().ok()?, patch.parse().ok()?);
    match minor {
        0..=99 => Some(Version::new(2, minor, patch)),
        300..=399 => Some(Version::new(3, minor - 300, patch)),
        _ => None,
    }
}

/// Release headings (`## 3.16.0 / 2026-11-04`) of a CHANGELOG.md.
pub fn changelog_releases(text: &str) -> Vec<Version> {
    let mut out: Vec<Version> = text
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|v| v.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Asks the proxy: its list, the CHANGELOG of the newest listed release, then every version the list omits.
pub fn query(proxy: &mut impl ModuleProxy) -> Result<VersionList, VersionsError> {
    let mut listed: Vec<Version> =
        proxy.list()?.iter().filter_map(|m| from_module_version(m)).filter(|v| *v >= FIRST).collect();
    listed.sort();
    listed.dedup();
    let changelog = match listed.last() {
        Some(newest) => changelog_releases(&proxy.changelog(&newest.module_version())?),
        None => Vec::new(),
    };
    let changelog: Vec<Version> = changelog.into_iter().filter(|v| *v >= FIRST).collect();
    let mut list = VersionList { listed, changelog, asked: Vec::new() };
    let omitted: Vec<Version> = list.changelog.iter().copied().filter(|v| !list.listed.contains(v)).collect();
    for v in omitted {
        list.ask(proxy, v)?;
    }
    // Patches on release branches (2.53.4, 3.5.1–3.5.5) appear in neither: ask for the next one until refused.
    for (major, minor) in list.minors() {
        let mut next = list.newest_served(major, minor).map_or(0, |v| v.patch + 1);
        while list.ask(proxy, Version::new(major, minor, next))? {
            next += 1;
        }
    }
    list.asked.sort_by_key(|a| a.version);
    Ok(list)
}

impl VersionList {
    /// Asks once per version; returns whether it is served.
    fn ask(&mut self, proxy: &mut impl ModuleProxy, version: Version) -> Result<bool, VersionsError> {
        if self.listed.contains(&version) {
            return Ok(true);
        }
        if let Some(a) = self.asked.iter().find(|a| a.version == version) {
            return Ok(a.served);
        }
        let served = proxy.served(&version.module_version())?;
        self.asked.push(Asked { version, served });
        Ok(served)
    }

    /// Every minor the list or the CHANGELOG names, oldest first.
    pub fn minors(&self) -> Vec<(u32, u32)> {
        let mut m: Vec<(u32, u32)> = self.listed.iter().chain(&self.changelog).map(|v| (v.major, v.minor)).collect();
        m.sort();
        m.dedup();
        m
    }

    /// Every served version: listed, or asked for and served.
    pub fn served(&self) -> Vec<Version> {
        let mut s: Vec<Version> =
            self.listed.iter().copied().chain(self.asked.iter().filter(|a| a.served).map(|a| a.version)).collect();
        s.sort();
        s.dedup();
        s
    }

    /// Released versions (the CHANGELOG names them) the proxy refuses. The refused patch after each minor's newest
    /// (`asked`) only says there is no later one.
    pub fn not_served(&self) -> Vec<Version> {
        self.asked.iter().filter(|a| !a.served && self.changelog.contains(&a.version)).map(|a| a.version).collect()
    }

    /// Served versions the list omits.
    pub fn unlisted_served(&self) -> Vec<Version> {
        self.asked.iter().filter(|a| a.served).map(|a| a.version).collect()
    }

    fn newest_served(&self, major: u32, minor: u32) -> Option<Version> {
        self.served().into_iter().filter(|v| v.major == major && v.minor == minor).max()
    }

    /// The matrix's versions: the newest served patch of every minor, oldest first.
    pub fn plan(&self) -> Vec<Version> {
        let mut newest: BTreeMap<(u32, u32), Version> = BTreeMap::new();
        for v in self.served() {
            newest.insert((v.major, v.minor), v);
        }
        newest.into_values().collect()
    }

    /// Minors of which the proxy serves no version at all.
    pub fn unserved_minors(&self) -> Vec<(u32, u32)> {
        self.minors().into_iter().filter(|(a, b)| self.newest_served(*a, *b).is_none()).collect()
    }

    /// Reads the cache file.
    pub fn read(path: &Path) -> Result<VersionList, VersionsError> {
        let file = |message: String| VersionsError::File { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| file(format!("line {}, column {}: {e}", e.line(), e.column())))
    }

    /// Writes the cache file.
    pub fn write(&self, path: &Path) -> Result<(), VersionsError> {
        let file = |message: String| VersionsError::File { path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| file(e.to_string()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| file(e.to_string()))? + "\n";
        std::fs::write(path, text).map_err(|e| file(e.to_string()))
    }
}

/// The module proxy through the `go` command (GOPROXY, GOFLAGS and the module cache as the environment sets them).
#[derive(Debug, Default)]
pub struct GoProxy;

impl GoProxy {
    fn go(args: &[&str]) -> Result<std::process::Output, VersionsError> {
        // Outside any module, so no go.mod nearby decides what is resolved.
        let dir = std::env::temp_dir();
        std::process::Command::new("go")
            .args(args)
            .current_dir(dir)
            .env("GO111MODULE", "on")
            .output()
            .map_err(|e| VersionsError::Go { args: args.join(" "), message: e.to_string() })
    }

    fn failed(args: &[&str], out: &std::process::Output) -> VersionsError {
        VersionsError::Go { args: args.join(" "), message: String::from_utf8_lossy(&out.stderr).trim().to_owned() }
    }
}

impl ModuleProxy for GoProxy {
    fn list(&mut self) -> Result<Vec<String>, VersionsError> {
        let args = ["list", "-m", "-versions", MODULE];
        let out = GoProxy::go(&args)?;
        if !out.status.success() {
            return Err(GoProxy::failed(&args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().skip(1).map(str::to_owned).collect())
    }

    fn served(&mut self, module_version: &str) -> Result<bool, VersionsError> {
        let target = format!("{MODULE}@{module_version}");
        let args = ["list", "-m", "-json", target.as_str()];
        let out = GoProxy::go(&args)?;
        if out.status.success() {
            return Ok(true);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The proxy's own refusals (403 "not available", 404/410, unknown revision); anything else is an error.
        let refused = ["not available", "404", "410", "unknown revision", "invalid version"];
        if refused.iter().any(|r| stderr.contains(r)) { Ok(false) } else { Err(GoProxy::failed(&args, &out)) }
    }

    fn changelog(&mut self, module_version: &str) -> Result<String, VersionsError> {
        let target = format!("{MODULE}@{module_version}");
        let args = ["mod", "download", "-json", target.as_str()];
        let out = GoProxy::go(&args)?;
        if !out.status.success() {
            return Err(GoProxy::failed(&args, &out));
        }
        let info: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| VersionsError::Go { args: args.join(" "), message: e.to_string() })?;
        let dir = info["Dir"].as_str().unwrap_or_default();
        std::fs::read_to_string(Path::new(dir).join("CHANGELOG.md"))
            .map_err(|e| VersionsError::Go { args: args.join(" "), message: format!("{dir}/CHANGELOG.md: {e}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy that lists some versions, serves others only when asked, and counts the questions.
    struct Fake {
        listed: Vec<&'static str>,
        unlisted: Vec<&'static str>,
        changelog: &'static str,
        asked: Vec<String>,
    }

    impl ModuleProxy for Fake {
        fn list(&mut self) -> Result<Vec<String>, VersionsError> {
            Ok(self.listed.iter().map(|s| s.to_string()).collect())
        }
        fn served(&mut self, m: &str) -> Result<bool, VersionsError> {
            self.asked.push(m.to_owned());
            Ok(self.listed.contains(&m) || self.unlisted.contains(&m))
        }
        fn changelog(&mut self, m: &str) -> Result<String, VersionsError> {
            assert_eq!(m, "v0.316.0", "the newest listed release's CHANGELOG");
            Ok(self.changelog.to_owned())
        }
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn module_versions_map_back() {
        assert_eq!(from_module_version("v0.305.1"), Some(v("3.5.1")));
        assert_eq!(from_module_version("v0.53.3"), Some(v("2.53.3")));
        assert_eq!(from_module_version("v0.312.0-rc.0"), None);
        assert_eq!(from_module_version("v1.8.2"), None);
        for s in ["2.45.6", "3.16.0"] {
            assert_eq!(from_module_version(&v(s).module_version()), Some(v(s)));
        }
    }

    #[test]
    fn omitted_tags_are_asked_for_and_refusals_recorded() {
        let mut proxy = Fake {
            listed: vec!["v0.44.0", "v0.47.2", "v0.53.3", "v0.305.0", "v0.312.0-rc.0", "v0.316.0"],
            unlisted: vec!["v0.45.0", "v0.45.1", "v0.53.4", "v0.305.1"],
            changelog: "## main / unreleased\n## 3.16.0 / 2026-11-04\n## 3.5.0 / x\n## 2.53.5 / x\n## 2.53.4 / x\n\
                        ## 2.53.3 / x\n## 2.46.0 / x\n## 2.45.0 / x\n## 2.44.0 / x\n",
            asked: Vec::new(),
        };
        let list = query(&mut proxy).unwrap();
        assert_eq!(list.listed, vec![v("2.47.2"), v("2.53.3"), v("3.5.0"), v("3.16.0")]);
        assert_eq!(list.plan(), vec![v("2.45.1"), v("2.47.2"), v("2.53.4"), v("3.5.1"), v("3.16.0")]);
        assert_eq!(list.not_served(), vec![v("2.46.0"), v("2.53.5")]);
        let refused: Vec<Version> = list.asked.iter().filter(|a| !a.served).map(|a| a.version).collect();
        assert_eq!(refused, vec![v("2.45.2"), v("2.46.0"), v("2.47.3"), v("2.53.5"), v("3.5.2"), v("3.16.1")]);
        assert_eq!(list.unlisted_served(), vec![v("2.45.0"), v("2.45.1"), v("2.53.4"), v("3.5.1")]);
        assert_eq!(list.unserved_minors(), vec![(2, 46)]);
        // Each version is asked once, however many rules name it (2.53.5: the CHANGELOG and the next patch).
        let mut asked = proxy.asked.clone();
        asked.sort();
        asked.dedup();
        assert_eq!(asked.len(), proxy.asked.len(), "{:?}", proxy.asked);
    }

    #[test]
    fn the_file_round_trips_and_errors_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("versions.json");
        let list = VersionList {
            listed: vec![v("3.16.0")],
            changelog: vec![],
            asked: vec![Asked { version: v("3.5.5"), served: true }],
        };
        list.write(&path).unwrap();
        assert_eq!(VersionList::read(&path).unwrap(), list);
        std::fs::write(&path, "{\"listed\": [\"three\"]}").unwrap();
        let err = VersionList::read(&path).unwrap_err().to_string();
        assert!(err.contains("versions.json: line 1") && err.contains("three"), "{err}");
    }

    #[test]
    fn the_recorded_list_plans_every_minor_from_2_45() {
        let list = VersionList::read(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/compat/versions.json")))
            .expect("ci/compat/versions.json");
        let plan = list.plan();
        assert_eq!(plan.first().map(|v| (v.major, v.minor)), Some((2, 45)));
        assert!(plan.len() >= 20, "{plan:?}");
        assert!(plan.contains(&v("2.53.4")) && plan.contains(&v("3.16.0")), "{plan:?}");
    }
}
