//! The user's own agent (a binary or a local image) and what it is: where it lives, its digest, the version and
//! revision it reports. The capability and vulnerability tables then apply by that version, as for the catalog.
//!
//! Reading the version means running the build (`--version`), which the runtime does in the case's isolation; this
//! module only parses what it printed and names the build in reports.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::version::{AgentSource, Version};

/// The flag every Prometheus answers with its version line.
pub const VERSION_FLAG: &str = "--version";

/// A build the user brought, identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentBuild {
    /// As given: `prometheus=/tmp/myprom` or `prometheus=image:REPO:TAG`.
    pub source: String,
    /// The binary's path or the image reference.
    pub location: String,
    /// `sha256:…` of the binary, or the image id.
    pub digest: String,
    /// The version the tables apply by.
    #[serde(with = "version_text")]
    pub version: Version,
    /// The version as the build printed it (`2.53.3+ds1`), if it printed one.
    pub reported: Option<String>,
    /// `revision:` of the version line.
    pub revision: Option<String>,
    /// `branch:` of the version line.
    pub branch: Option<String>,
    /// The version is the user's `--assume-version` / `assume_version`, not the build's own.
    pub assumed: bool,
}

impl AgentBuild {
    /// Whether it is a local image (else a binary).
    pub fn is_image(&self) -> bool {
        self.source.starts_with("prometheus=image:")
    }

    /// How reports name the agent column: `/tmp/myprom (3.5.5)`, `image my/prom:1 (3.5.5)`.
    pub fn label(&self) -> String {
        let what = if self.is_image() { format!("image {}", self.location) } else { self.location.clone() };
        format!("{what} ({})", self.version)
    }

    /// One line with everything that identifies the build.
    pub fn describe(&self) -> String {
        let reported = match (&self.reported, self.assumed) {
            (_, true) => format!("version {} (assumed: {})", self.version, self.reported_or_unreadable()),
            (Some(r), false) => format!("version {r}"),
            (None, false) => format!("version {}", self.version),
        };
        let revision = self.revision.as_deref().map(|r| format!(", revision {r}")).unwrap_or_default();
        let branch = self.branch.as_deref().map(|b| format!(", branch {b}")).unwrap_or_default();
        format!("{}, {}, {reported}{revision}{branch}", self.location, self.digest)
    }

    fn reported_or_unreadable(&self) -> String {
        match &self.reported {
            Some(r) => format!("the build reports {r}"),
            None => "the build reports no readable version".into(),
        }
    }
}

/// A version as its text (`3.5.5`) in JSON.
mod version_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::version::Version;

    pub fn serialize<S: Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What a `--version` output says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportedVersion {
    /// The version token as printed (`3.5.5`, `2.53.3+ds1`).
    pub text: String,
    /// Its leading `MAJOR.MINOR.PATCH`, if it has one.
    pub version: Option<Version>,
    /// `revision:`.
    pub revision: Option<String>,
    /// `branch:`.
    pub branch: Option<String>,
}

/// Parses `prometheus, version X (branch: B, revision: R)` from anywhere in `output`.
pub fn parse_version_output(output: &str) -> Option<ReportedVersion> {
    let line = output.lines().find(|l| l.trim_start().starts_with("prometheus, version "))?;
    let rest = line.trim_start().trim_start_matches("prometheus, version ");
    let text = rest.split_whitespace().next()?.to_owned();
    let field = |name: &str| {
        let start = rest.find(&format!("{name}: "))? + name.len() + 2;
        let value: String = rest[start..].chars().take_while(|c| *c != ',' && *c != ')').collect();
        (!value.trim().is_empty()).then(|| value.trim().to_owned())
    };
    Some(ReportedVersion {
        version: leading_version(&text),
        revision: field("revision"),
        branch: field("branch"),
        text,
    })
}

/// `v3.5.0-rc.0` → 3.5.0, `2.53.3+ds1` → 2.53.3: forks and distributions decorate the upstream version.
fn leading_version(text: &str) -> Option<Version> {
    let core: String = text.trim_start_matches('v').chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    core.trim_end_matches('.').parse().ok()
}

/// Why a build could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The binary or image is not there.
    #[error("{agent}: {message}")]
    Missing {
        /// As given.
        agent: String,
        /// What is wrong, with the command that fixes it where there is one.
        message: String,
    },
    /// Its `--version` output has no readable version, and none was assumed.
    #[error(
        "{agent}: cannot read a version from `{VERSION_FLAG}` (it printed: {printed}); pass --assume-version X.Y.Z \
         (assume_version: in a scenario) to say which version's capability and vulnerability tables apply"
    )]
    Unreadable {
        /// As given.
        agent: String,
        /// Its first output line, or what running it gave.
        printed: String,
    },
}

/// Identifies a build from its digest and what `--version` printed (or why it could not be run).
pub fn identify(
    source: &AgentSource,
    digest: String,
    version_output: Result<String, String>,
    assume: Option<Version>,
) -> Result<AgentBuild, SourceError> {
    let location = match source {
        AgentSource::Binary(path) => path.display().to_string(),
        AgentSource::Image(image) => image.clone(),
        AgentSource::Catalog(written) => written.clone(),
    };
    let reported = version_output.as_deref().ok().and_then(parse_version_output);
    let version = reported.as_ref().and_then(|r| r.version);
    let (version, assumed) = match (version, assume) {
        (Some(v), _) => (v, false),
        (None, Some(a)) => (a, true),
        (None, None) => {
            let printed = match &version_output {
                Ok(text) => format!("{:?}", text.lines().find(|l| !l.trim().is_empty()).unwrap_or("nothing")),
                Err(e) => e.clone(),
            };
            return Err(SourceError::Unreadable { agent: source.to_string(), printed });
        }
    };
    let reported = reported.unwrap_or_default();
    Ok(AgentBuild {
        source: source.to_string(),
        location,
        digest,
        version,
        reported: (!reported.text.is_empty()).then_some(reported.text),
        revision: reported.revision,
        branch: reported.branch,
        assumed,
    })
}

/// `sha256:<hex>` of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// The line a build without `azuread` (Debian's and Ubuntu's packages) fails its config with, as Go's YAML decoder
/// words an unknown field: `field azuread not found in type config.plain`.
pub fn lacks_azuread(error_line: &str) -> bool {
    error_line.contains("field azuread not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = "prometheus, version 3.5.5 (branch: HEAD, revision: 1f2a3b4c)\n  build user: root@x\n  \
                            go version: go1.24.1\n";

    #[test]
    fn upstream_debian_and_fork_version_lines_parse() {
        let r = parse_version_output(UPSTREAM).unwrap();
        assert_eq!((r.version, r.text.as_str()), (Some(Version::new(3, 5, 5)), "3.5.5"));
        assert_eq!((r.revision.as_deref(), r.branch.as_deref()), (Some("1f2a3b4c"), Some("HEAD")));
        let debian =
            parse_version_output("prometheus, version 2.53.3+ds1 (branch: debian/sid, revision: 2.53.3+ds1-1)")
                .unwrap();
        assert_eq!(debian.version, Some(Version::new(2, 53, 3)));
        assert_eq!(debian.revision.as_deref(), Some("2.53.3+ds1-1"));
        let fork = parse_version_output("prometheus, version v3.5.0-acme.2 (branch: release, revision: )").unwrap();
        assert_eq!((fork.version, fork.revision), (Some(Version::new(3, 5, 0)), None));
        assert_eq!(parse_version_output("prometheus, version unknown (branch: , revision: )").unwrap().version, None);
        assert!(parse_version_output("usage: prometheus [flags]").is_none());
    }

    #[test]
    fn identify_uses_the_reported_version_else_the_assumed_one_else_fails() {
        let src: AgentSource = "prometheus=/tmp/myprom".parse().unwrap();
        let b = identify(&src, "sha256:ab".into(), Ok(UPSTREAM.into()), Some(Version::new(9, 9, 9))).unwrap();
        assert_eq!((b.version, b.assumed), (Version::new(3, 5, 5), false));
        assert_eq!(b.describe(), "/tmp/myprom, sha256:ab, version 3.5.5, revision 1f2a3b4c, branch HEAD");
        assert_eq!(b.label(), "/tmp/myprom (3.5.5)");

        let silent = identify(&src, "sha256:ab".into(), Ok("oops\n".into()), Some(Version::new(3, 5, 0))).unwrap();
        assert_eq!((silent.version, silent.assumed), (Version::new(3, 5, 0), true));
        assert!(silent.describe().contains("version 3.5.0 (assumed: the build reports no readable version)"));

        let e = identify(&src, "sha256:ab".into(), Ok("oops\n".into()), None).unwrap_err().to_string();
        assert!(e.starts_with("prometheus=/tmp/myprom: cannot read a version"), "{e}");
        assert!(e.contains("\"oops\"") && e.contains("--assume-version X.Y.Z"), "{e}");
        let e = identify(&src, "d".into(), Err("exit status 2".into()), None).unwrap_err().to_string();
        assert!(e.contains("it printed: exit status 2"), "{e}");
    }

    #[test]
    fn images_are_labelled_as_images() {
        let src: AgentSource = "prometheus=image:acme/prom:1".parse().unwrap();
        let b = identify(&src, "sha256:cd".into(), Ok(UPSTREAM.into()), None).unwrap();
        assert_eq!(b.label(), "image acme/prom:1 (3.5.5)");
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
