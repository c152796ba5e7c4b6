//! Prometheus versions (`3.5.1`) and the agent references scenarios and the command line use (`prometheus@3.5`,
//! `prometheus@latest`): a leaf, so that the scenario model and the agent catalog name versions alike.

use std::fmt;
use std::str::FromStr;

/// A released Prometheus version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// `Version::new(3, 5, 0)`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version { major, minor, patch }
    }

    /// The Go module version Prometheus publishes this release under (`3.5.1` → `v0.305.1`).
    pub fn module_version(&self) -> String {
        match self.major {
            2 => format!("v0.{}.{}", self.minor, self.patch),
            _ => format!("v0.{}{:02}.{}", self.major, self.minor, self.patch),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a version (expected MAJOR.MINOR.PATCH, e.g. 3.5.1)")]
pub struct VersionError(pub String);

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Version, VersionError> {
        let parts: Vec<&str> = s.trim_start_matches('v').split('.').collect();
        match parts.as_slice() {
            [a, b, c] => Ok(Version::new(
                a.parse().map_err(|_| VersionError(s.into()))?,
                b.parse().map_err(|_| VersionError(s.into()))?,
                c.parse().map_err(|_| VersionError(s.into()))?,
            )),
            _ => Err(VersionError(s.into())),
        }
    }
}

// As its string (`"3.5.1"`), so JSON files that record versions (compatibility.json) read like the rest of azrw.
impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which versions a scenario's `prometheus@…` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionReq {
    /// `prometheus@3.5.1`.
    Exact(Version),
    /// `prometheus@3.5`: the newest patch of that line in the catalog.
    Line {
        /// Major.
        major: u32,
        /// Minor.
        minor: u32,
    },
    /// `prometheus@latest`: the newest version in the catalog.
    Latest,
}

impl VersionReq {
    /// Whether `v` satisfies this requirement (`Latest` matches everything; pick the max).
    pub fn matches(&self, v: Version) -> bool {
        match *self {
            VersionReq::Exact(e) => e == v,
            VersionReq::Line { major, minor } => v.major == major && v.minor == minor,
            VersionReq::Latest => true,
        }
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionReq::Exact(v) => write!(f, "{v}"),
            VersionReq::Line { major, minor } => write!(f, "{major}.{minor}"),
            VersionReq::Latest => f.write_str("latest"),
        }
    }
}

/// A scenario's agent reference, `prometheus@3.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentRef {
    /// The version requirement (the only agent kind is Prometheus).
    pub req: VersionReq,
}

/// Why an agent reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an agent reference (expected prometheus@MAJOR.MINOR[.PATCH] or prometheus@latest)")]
pub struct AgentRefError(pub String);

impl FromStr for AgentRef {
    type Err = AgentRefError;

    fn from_str(s: &str) -> Result<AgentRef, AgentRefError> {
        let err = || AgentRefError(s.into());
        let rest = s.strip_prefix("prometheus@").ok_or_else(err)?;
        if rest == "latest" {
            return Ok(AgentRef { req: VersionReq::Latest });
        }
        let parts: Vec<&str> = rest.split('.').collect();
        let num = |p: &str| p.parse::<u32>().map_err(|_| err());
        let req = match parts.as_slice() {
            [a, b] => VersionReq::Line { major: num(a)?, minor: num(b)? },
            [a, b, c] => VersionReq::Exact(Version::new(num(a)?, num(b)?, num(c)?)),
            _ => return Err(err()),
        };
        Ok(AgentRef { req })
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "prometheus@{}", self.req)
    }
}

/// Where an agent comes from, as the command line writes it: the catalog (`prometheus@3.5`), a binary on this
/// machine (`prometheus=/usr/bin/prometheus`) or a local Docker image (`prometheus=image:REPO:TAG`, never pulled).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentSource {
    /// A catalog version, provisioned by azrw.
    Catalog(String),
    /// The user's own binary.
    Binary(std::path::PathBuf),
    /// The user's own local image, `REPO:TAG`.
    Image(String),
}

/// Why an `--agent` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an agent reference (expected prometheus@MAJOR.MINOR[.PATCH], prometheus@latest, \
     prometheus=/path/to/binary \
     or prometheus=image:REPO:TAG)"
)]
pub struct AgentSourceError(pub String);

impl AgentSource {
    /// The catalog reference, if this is one.
    pub fn catalog_ref(&self) -> Option<AgentRef> {
        match self {
            AgentSource::Catalog(written) => written.parse().ok(),
            _ => None,
        }
    }

    /// Whether the user brought it (a binary or an image), so its version must be read from it.
    pub fn is_own(&self) -> bool {
        !matches!(self, AgentSource::Catalog(_))
    }
}

impl FromStr for AgentSource {
    type Err = AgentSourceError;

    fn from_str(s: &str) -> Result<AgentSource, AgentSourceError> {
        let err = || AgentSourceError(s.into());
        if let Some(rest) = s.strip_prefix("prometheus=") {
            return match rest.strip_prefix("image:") {
                // REPO:TAG — a tag is required: without one Docker would mean `latest`, which azrw cannot pin.
                Some(image) if image.rsplit_once(':').is_some_and(|(r, t)| !r.is_empty() && !t.contains('/')) => {
                    Ok(AgentSource::Image(image.to_owned()))
                }
                Some(_) => Err(err()),
                None if rest.is_empty() => Err(err()),
                None => Ok(AgentSource::Binary(rest.into())),
            };
        }
        s.parse::<AgentRef>().map_err(|_| err())?;
        Ok(AgentSource::Catalog(s.to_owned()))
    }
}

impl fmt::Display for AgentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentSource::Catalog(written) => f.write_str(written),
            AgentSource::Binary(path) => write!(f, "prometheus={}", path.display()),
            AgentSource::Image(image) => write!(f, "prometheus=image:{image}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_versions_follow_the_published_scheme() {
        assert_eq!(Version::new(2, 53, 3).module_version(), "v0.53.3");
        assert_eq!(Version::new(3, 5, 1).module_version(), "v0.305.1");
        assert_eq!(Version::new(3, 16, 0).module_version(), "v0.316.0");
    }

    #[test]
    fn agent_refs_parse_lines_exact_and_latest() {
        assert_eq!("prometheus@3.5".parse::<AgentRef>().unwrap().req, VersionReq::Line { major: 3, minor: 5 });
        assert_eq!("prometheus@latest".parse::<AgentRef>().unwrap().req, VersionReq::Latest);
        assert_eq!("prometheus@2.53.3".parse::<AgentRef>().unwrap().req, VersionReq::Exact(Version::new(2, 53, 3)));
        assert!("vmagent@1.0".parse::<AgentRef>().is_err());
        assert!("prometheus@3".parse::<AgentRef>().is_err());
    }

    #[test]
    fn agent_sources_parse_catalog_binary_and_image() {
        let src = |s: &str| s.parse::<AgentSource>();
        assert_eq!(src("prometheus@3.5").unwrap(), AgentSource::Catalog("prometheus@3.5".into()));
        assert_eq!(src("prometheus=/tmp/myprom").unwrap(), AgentSource::Binary("/tmp/myprom".into()));
        assert_eq!(src("prometheus=image:my/prom:3.5").unwrap(), AgentSource::Image("my/prom:3.5".into()));
        assert_eq!(
            src("prometheus=image:localhost:5000/prom:v1").unwrap(),
            AgentSource::Image("localhost:5000/prom:v1".into())
        );
        for bad in ["prometheus=", "prometheus=image:noTag", "prometheus=image:host:5000/prom", "vmagent=/x"] {
            let e = src(bad).unwrap_err().to_string();
            assert!(e.contains("prometheus=image:REPO:TAG"), "{bad}: {e}");
        }
        assert_eq!(src("prometheus=image:my/prom:3.5").unwrap().to_string(), "prometheus=image:my/prom:3.5");
    }
}
