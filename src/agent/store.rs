//! Where provisioned agent binaries live, and how to provision missing ones.
//!
//! Binaries are cached outside the work tree (`$AZRW_CACHE`, default `~/.cache/azrw`), keyed by version, so a
//! fresh clone on the same machine reuses them. Provisioning runs the same script CI runs
//! (`ci/provision-agents.sh`, embedded here so `azrw agents provision` works from any directory).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::version::Version;

/// The provisioning script, embedded.
const PROVISION_SCRIPT: &str = include_str!("../../ci/provision-agents.sh");

/// The agent binary cache.
#[derive(Debug, Clone)]
pub struct AgentStore {
    root: PathBuf,
}

/// Why an agent is not available.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The binary is not provisioned and provisioning was not allowed.
    #[error("prometheus {version} is not provisioned (no {path}); run: azrw agents provision {version}")]
    Missing {
        /// Version.
        version: Version,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Provisioning failed.
    #[error("provisioning prometheus {versions} failed: {message}")]
    Provision {
        /// Versions asked for.
        versions: String,
        /// What went wrong.
        message: String,
    },
}

impl Default for AgentStore {
    fn default() -> Self {
        AgentStore::from_env()
    }
}

impl AgentStore {
    /// The store at `$AZRW_CACHE/agents` (default `~/.cache/azrw/agents`).
    pub fn from_env() -> AgentStore {
        let cache = std::env::var_os("AZRW_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
            home.join(".cache/azrw")
        });
        AgentStore { root: cache.join("agents") }
    }

    /// A store rooted elsewhere (tests).
    pub fn at(root: &Path) -> AgentStore {
        AgentStore { root: root.to_owned() }
    }

    /// Where the binary of `version` lives (whether or not it exists).
    pub fn binary(&self, version: Version) -> PathBuf {
        self.root.join(format!("prometheus-{version}")).join("prometheus")
    }

    /// The binary, if provisioned.
    pub fn get(&self, version: Version) -> Result<PathBuf, StoreError> {
        let path = self.binary(version);
        if path.is_file() { Ok(path) } else { Err(StoreError::Missing { version, path }) }
    }

    /// Builds the missing ones among `versions` with the Go toolchain, streaming progress to stderr.
    pub async fn provision(&self, versions: &[Version]) -> Result<(), StoreError> {
        let missing: Vec<String> =
            versions.iter().filter(|v| !self.binary(**v).is_file()).map(Version::to_string).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let cache = self.root.parent().unwrap_or(&self.root).to_owned();
        let status = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(PROVISION_SCRIPT)
            .arg("provision-agents")
            .args(&missing)
            .env("AZRW_CACHE", &cache)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .await
            .map_err(|e| StoreError::Provision { versions: missing.join(" "), message: e.to_string() })?;
        if status.success() {
            Ok(())
        } else {
            Err(StoreError::Provision {
                versions: missing.join(" "),
                message: format!("the script exited with {status}"),
            })
        }
    }
}
