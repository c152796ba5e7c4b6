//! The Docker engine as azrw uses it: a connection whose API version the daemon accepts, the labels that mark
//! everything azrw creates, and garbage collection by those labels.
//!
//! testcontainers' runner is not used: it always speaks the API version its bollard was built for (1.53), and
//! Debian's docker.io 20.10 refuses anything above 1.41. azrw drives the same bollard (testcontainers'
//! re-export) with a version agreed with the daemon.

use std::collections::HashMap;
use std::time::Duration;

pub use testcontainers::bollard;

use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, RemoveContainerOptions};
use bollard::{ClientVersion, Docker};

/// Label naming the `azrw run` invocation that created a container or network.
pub const LABEL_RUN: &str = "azrw.run";
/// Label naming the case (its slug).
pub const LABEL_CASE: &str = "azrw.case";
/// Label holding the pid of the azrw process that owns the resource, so `azrw gc` spares live runs.
pub const LABEL_PID: &str = "azrw.pid";

/// Seconds bollard waits for one API call.
const API_TIMEOUT_SECS: u64 = 120;
/// How long "is Docker there?" may take before the answer is no.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Why Docker cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No daemon answers on the socket.
    #[error(
        "Docker is not available at {socket}: {message} (start dockerd, e.g. ci/setup.sh, or use --runtime process)"
    )]
    Unavailable {
        /// The socket tried.
        socket: String,
        /// What failed.
        message: String,
    },
    /// A Docker API call failed.
    #[error("docker: {0}")]
    Api(#[from] bollard::errors::Error),
    /// Listing or removing host firewall rules failed.
    #[error("host firewall: {0}")]
    Firewall(std::io::Error),
}

/// A connection to the Docker daemon.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects to `$DOCKER_HOST` (a `unix://` socket) or `/var/run/docker.sock`, agrees on an API version and
    /// checks the daemon answers, within a few seconds.
    pub async fn connect() -> Result<Engine, EngineError> {
        let socket = socket_path();
        let unavailable = |message: String| EngineError::Unavailable { socket: socket.clone(), message };
        let connect = |version: &ClientVersion| {
            Docker::connect_with_unix(&socket, API_TIMEOUT_SECS, version).map_err(|e| unavailable(e.to_string()))
        };
        let docker = connect(bollard::API_DEFAULT_VERSION)?;
        let docker = match tokio::time::timeout(PING_TIMEOUT, docker.version()).await {
            Err(_) => return Err(unavailable(format!("no answer within {}s", PING_TIMEOUT.as_secs()))),
            Ok(Ok(_)) => docker.negotiate_version().await.map_err(|e| unavailable(e.to_string()))?,
            // An older daemon names the newest version it speaks; use that.
            Ok(Err(bollard::errors::Error::DockerResponseServerError { message, .. })) => {
                match max_supported_version(&message) {
                    Some(version) => connect(&version)?,
                    None => return Err(unavailable(message)),
                }
            }
            Ok(Err(e)) => return Err(unavailable(e.to_string())),
        };
        docker.ping().await.map_err(|e| unavailable(e.to_string()))?;
        Ok(Engine { docker })
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The API version in use, e.g. `1.41`.
    pub fn api_version(&self) -> String {
        let v = self.docker.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    /// Removes azrw's containers, networks and host firewall rules: those of runs whose azrw process is gone, or
    /// all with `all`. Returns what was removed (`container NAME` / `network NAME` / `firewall rules TAG`).
    pub async fn gc(&self, all: bool) -> Result<Vec<String>, EngineError> {
        // Rules are listed before the networks: a case adds its rules after creating its network and removes them
        // before removing it, so a rule seen here whose run has no live network afterwards is stale — while a
        // rule listed after the networks could belong to a case that started in between.
        let tags = tokio::task::spawn_blocking(super::firewall::list_tags)
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(EngineError::Firewall)?;
        let filters = HashMap::from([("label".to_owned(), vec![LABEL_RUN.to_owned()])]);
        let stale = |labels: Option<&HashMap<String, String>>| {
            all || !labels.and_then(|l| l.get(LABEL_PID)).and_then(|p| p.parse::<u32>().ok()).is_some_and(alive)
        };
        let mut removed = Vec::new();
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await?;
        for c in containers.iter().filter(|c| stale(c.labels.as_ref())) {
            let Some(id) = &c.id else { continue };
            let name = c.names.as_ref().and_then(|n| n.first()).map_or(id.as_str(), |n| n.trim_start_matches('/'));
            self.docker
                .remove_container(id, Some(RemoveContainerOptions { force: true, v: true, ..Default::default() }))
                .await?;
            removed.push(format!("container {name}"));
        }
        let networks = self.docker.list_networks(Some(ListNetworksOptions { filters: Some(filters) })).await?;
        for n in networks.iter().filter(|n| stale(n.labels.as_ref())) {
            let Some(id) = n.id.as_ref().or(n.name.as_ref()) else { continue };
            self.docker.remove_network(id).await?;
            removed.push(format!("network {}", n.name.as_deref().unwrap_or(id)));
        }
        let live: std::collections::HashSet<String> = networks
            .iter()
            .filter(|n| !stale(n.labels.as_ref()))
            .filter_map(|n| n.labels.as_ref()?.get(LABEL_RUN).cloned())
            .collect();
        let stale_tags: std::collections::HashSet<String> = tags
            .into_iter()
            .filter(|t| all || !super::firewall::tag_run(t).is_some_and(|run| live.contains(run)))
            .collect();
        if !stale_tags.is_empty() {
            let doomed = stale_tags.clone();
            tokio::task::spawn_blocking(move || super::firewall::remove_where(|t| doomed.contains(t)))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(EngineError::Firewall)?;
            let mut stale_tags: Vec<String> = stale_tags.into_iter().collect();
            stale_tags.sort();
            removed.extend(stale_tags.into_iter().map(|t| format!("firewall rules {t}")));
        }
        Ok(removed)
    }
}

/// Whether the process `pid` is running. A zombie (killed, not yet reaped) counts as gone, so `azrw gc` right
/// after a `kill -9` already cleans up.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain spaces or parentheses.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

fn socket_path() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => host.trim_start_matches("unix://").to_owned(),
        _ => "/var/run/docker.sock".to_owned(),
    }
}

/// Parses "… Maximum supported API version is 1.41" out of a daemon's refusal.
fn max_supported_version(message: &str) -> Option<ClientVersion> {
    let (_, tail) = message.split_once("Maximum supported API version is ")?;
    let version = tail.split_whitespace().next()?.trim_end_matches('.');
    let (major, minor) = version.split_once('.')?;
    Some(ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

/// Runs `f` against a fresh connection on a thread of its own, blocking until it finishes: for clean-up from
/// `Drop`, which may run outside any tokio runtime or inside one that must not block.
pub fn blocking_cleanup<F, Fut>(f: F)
where
    F: FnOnce(Engine) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            if let Ok(engine) = Engine::connect().await {
                f(engine).await;
            }
        });
    });
    let _ = worker.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_daemons_maximum_version() {
        let v = max_supported_version("client version 1.53 is too new. Maximum supported API version is 1.41")
            .expect("parsed");
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(max_supported_version("something else").is_none());
    }
}
