//! The Docker runtime: each case gets its own **internal** network (no route out of it), the mock cloud listens on
//! that network's gateway address only, and the agent is a container of a local image on that network.
//!
//! Internal is not enough on its own: the host answers on all its addresses, so each network also gets host
//! firewall rules ([`super::firewall`]) that let its containers reach only the mock listeners on its gateway.
//!
//! Everything created carries the run's labels ([`LABEL_RUN`], [`LABEL_CASE`], [`LABEL_PID`]) and is removed by
//! [`DockerAgent::stop`] / [`CaseNetwork::remove`] on the normal path, by `Drop` on early returns and panics, and
//! by `azrw gc` after a killed run; the firewall rules go with the network, first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::engine::bollard::container::LogOutput;
use super::engine::bollard::errors::Error as DockerError;
use super::engine::bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use super::engine::bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    UploadToContainerOptions,
};
use super::engine::{Engine, LABEL_CASE, LABEL_PID, LABEL_RUN, blocking_cleanup};
use super::firewall::{self, CaseFirewall};
use super::image::INPUT_DIR;
use super::{AgentState, STOP_GRACE, open_log, watch_log};

/// Docker names are limited; a case slug can be long.
const MAX_NAME: usize = 120;

/// Who a container or network belongs to.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The `azrw run` invocation.
    pub run: String,
    /// The case slug.
    pub case: String,
}

impl Owner {
    /// The labels every resource of this case carries.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_owned(), self.run.clone()),
            (LABEL_CASE.to_owned(), self.case.clone()),
            (LABEL_PID.to_owned(), std::process::id().to_string()),
        ])
    }

    /// A name unique to this run and case, e.g. `azrw-<run>-<case>-agent`.
    pub fn name(&self, role: &str) -> String {
        let case: String = self.case.chars().take(MAX_NAME).collect();
        format!("azrw-{}-{case}-{role}", self.run)
    }
}

/// A case's internal Docker network.
#[derive(Debug)]
pub struct CaseNetwork {
    engine: Engine,
    id: Option<String>,
    name: String,
    gateway: IpAddr,
    /// `None` only with `AZRW_DOCKER_NO_FIREWALL=1`, or before it is installed.
    firewall: Option<CaseFirewall>,
}

impl CaseNetwork {
    /// Creates an internal bridge network for `owner`, reads its gateway address and closes its bridge to the
    /// host ([`super::firewall`]); listeners are opened with [`CaseNetwork::allow_port`]. Fails if the firewall
    /// cannot be installed, unless `AZRW_DOCKER_NO_FIREWALL=1`.
    pub async fn create(engine: &Engine, owner: &Owner) -> std::io::Result<CaseNetwork> {
        let name = owner.name("net");
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            labels: Some(owner.labels()),
            ..Default::default()
        };
        let id = engine.docker().create_network(request).await.map_err(io)?.id;
        // From here on, Drop removes it whatever fails next.
        let mut network = CaseNetwork {
            engine: engine.clone(),
            id: Some(id.clone()),
            name,
            gateway: [0, 0, 0, 0].into(),
            firewall: None,
        };
        let inspect = engine.docker().inspect_network(&id, None).await.map_err(io)?;
        let gateway = inspect
            .ipam
            .and_then(|ipam| ipam.config)
            .into_iter()
            .flatten()
            .filter_map(|c| c.gateway)
            .find_map(|g| g.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4))
            .ok_or_else(|| std::io::Error::other(format!("network {} has no IPv4 gateway address", network.name)))?;
        network.gateway = gateway;
        if firewall::disabled_by_env() {
            tracing::warn!("{}", no_firewall_warning());
            return Ok(network);
        }
        // Docker names a bridge network's interface br-<first 12 hex digits of its id> unless told otherwise;
        // install() checks the interface exists, so a different naming fails here rather than matching nothing.
        let bridge = format!("br-{}", &id[..12.min(id.len())]);
        let tag = firewall::tag(&owner.run, &owner.case);
        let installed = tokio::task::spawn_blocking(move || CaseFirewall::install(&bridge, gateway, tag.clone()))
            .await
            .map_err(std::io::Error::other)?;
        match installed {
            Ok(f) => network.firewall = Some(f),
            Err(e) => {
                // Some rules may be in: remove whatever carries the tag, then the network (Drop).
                let tag = firewall::tag(&owner.run, &owner.case);
                let _ = tokio::task::spawn_blocking(move || firewall::remove_where(|t| t == tag)).await;
                return Err(std::io::Error::other(format!(
                    "host firewall for network {}: {e}; set {}=1 to run without it (the agent could then reach \
                     every address of this host)",
                    network.name,
                    firewall::NO_FIREWALL_ENV
                )));
            }
        }
        Ok(network)
    }

    /// Lets the network's containers reach `port` on the gateway (a mock listener). A no-op without a firewall.
    pub async fn allow_port(&self, port: u16) -> std::io::Result<()> {
        let Some(f) = self.firewall.clone() else { return Ok(()) };
        tokio::task::spawn_blocking(move || f.allow_port(port)).await.map_err(std::io::Error::other)?
    }

    /// What to tell the user when the network runs without its firewall (`AZRW_DOCKER_NO_FIREWALL=1`).
    pub fn firewall_warning(&self) -> Option<String> {
        self.firewall.is_none().then(no_firewall_warning)
    }

    /// The gateway address: the host's end of the network, where the mock cloud listens.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// The daemon it lives on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the firewall rules, then the network (after its containers). Idempotent.
    pub async fn remove(&mut self) {
        // Rules first: then a rule never outlives its network, which `azrw gc` relies on to tell stale rules.
        if let Some(f) = self.firewall.take() {
            match tokio::task::spawn_blocking(move || f.remove()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("removing firewall rules of network {}: {e}", self.name),
                Err(e) => tracing::warn!("removing firewall rules of network {}: {e}", self.name),
            }
        }
        if let Some(id) = self.id.take()
            && let Err(e) = self.engine.docker().remove_network(&id).await
        {
            tracing::warn!("removing network {}: {e}", self.name);
        }
    }
}

impl Drop for CaseNetwork {
    fn drop(&mut self) {
        if let Some(f) = self.firewall.take()
            && let Err(e) = f.remove()
        {
            tracing::warn!("removing firewall rules of network {}: {e}", self.name);
        }
        if let Some(id) = self.id.take() {
            blocking_cleanup(move |engine| async move {
                let _ = engine.docker().remove_network(&id).await;
            });
        }
    }
}

fn no_firewall_warning() -> String {
    format!(
        "WARNING: {}=1: no host firewall on the case network; the agent container can reach every address of this \
         host, not only its mock cloud",
        firewall::NO_FIREWALL_ENV
    )
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Local image (`repository:tag`); never pulled.
    pub image: String,
    /// Container name.
    pub name: String,
    /// Arguments to the image's entrypoint.
    pub cmd: Vec<String>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Network mode: the network to attach to (its only one), or `container:<name>` to share that container's
    /// network namespace.
    pub network: String,
    /// Host directory whose files are copied to [`INPUT_DIR`] before the container starts.
    pub input_dir: Option<PathBuf>,
}

/// A running container whose output feeds an [`AgentState`] channel like a process's does.
#[derive(Debug)]
pub struct DockerAgent {
    engine: Engine,
    name: String,
    id: Option<String>,
    network: String,
    state: watch::Receiver<AgentState>,
    supervisor: Option<JoinHandle<()>>,
}

impl DockerAgent {
    /// Creates the container, copies its inputs in, starts it and streams its output into `log_path`.
    pub async fn start(engine: &Engine, spec: &ContainerSpec, log_path: &Path) -> std::io::Result<DockerAgent> {
        let docker = engine.docker();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.cmd.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.clone()),
            host_config: Some(HostConfig { network_mode: Some(spec.network.clone()), ..Default::default() }),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(spec.name.clone()), ..Default::default() };
        let id = docker.create_container(Some(options), body).await.map_err(io)?.id;
        let (tx, rx) = watch::channel(AgentState::Starting);
        // From here on, Drop removes the container whatever fails next.
        let mut agent = DockerAgent {
            engine: engine.clone(),
            name: spec.name.clone(),
            id: Some(id.clone()),
            network: spec.network.clone(),
            state: rx,
            supervisor: None,
        };
        if let Some(dir) = &spec.input_dir {
            let archive = input_archive(dir).await?;
            let options = UploadToContainerOptions { path: "/".into(), ..Default::default() };
            docker
                .upload_to_container(&id, Some(options), super::engine::bollard::body_full(archive))
                .await
                .map_err(io)?;
        }
        let log = Arc::new(open_log(log_path).await?);
        docker.start_container(&id, None).await.map_err(io)?;
        agent.supervisor = Some(tokio::spawn(supervise(engine.clone(), id, log, tx)));
        Ok(agent)
    }

    /// The agent's state, updated as it logs and exits.
    pub fn state(&self) -> watch::Receiver<AgentState> {
        self.state.clone()
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container's address on its case network, where the host reaches its listeners (nothing publishes
    /// them). Asked of the daemon when needed: an exited container no longer has one.
    pub async fn address(&self) -> std::io::Result<IpAddr> {
        let id = self.id.as_deref().ok_or_else(|| std::io::Error::other(format!("{} was stopped", self.name)))?;
        let inspect = self.engine.docker().inspect_container(id, None::<InspectContainerOptions>).await.map_err(io)?;
        inspect
            .network_settings
            .and_then(|settings| settings.networks)
            .and_then(|mut networks| networks.remove(&self.network))
            .and_then(|endpoint| endpoint.ip_address)
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("{} has no address on network {}", self.name, self.network)))
    }

    /// Stops the container (SIGTERM, SIGKILL after a grace period), waits for its output to end and removes it.
    /// Idempotent.
    pub async fn stop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let docker = self.engine.docker();
        let grace = STOP_GRACE.as_secs() as i32;
        let _ = docker.stop_container(&id, Some(StopContainerOptions { t: Some(grace), ..Default::default() })).await;
        if let Some(supervisor) = self.supervisor.take() {
            // The log stream ends when the container does; bounded in case the daemon never closes it.
            let _ = tokio::time::timeout(STOP_GRACE * 2, supervisor).await;
        }
        if let Err(e) = docker
            .remove_container(&id, Some(RemoveContainerOptions { force: true, v: true, ..Default::default() }))
            .await
        {
            tracing::warn!("removing container {id}: {e}");
        }
    }
}

impl Drop for DockerAgent {
    fn drop(&mut self) {
        if let Some(s) = self.supervisor.take() {
            s.abort();
        }
        if let Some(id) = self.id.take() {
            blocking_cleanup(move |engine| async move {
                let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
                let _ = engine.docker().remove_container(&id, Some(options)).await;
            });
        }
    }
}

/// Follows the container's output into the log and the state channel, then reports its exit.
async fn supervise(
    engine: Engine,
    id: String,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    state: watch::Sender<AgentState>,
) {
    let docker = engine.docker();
    // Two pipes keep stdout and stderr lines apart, as for a process.
    let (mut out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (mut err_w, err_r) = tokio::io::duplex(64 * 1024);
    let pump = async {
        let options = LogsOptions { follow: true, stdout: true, stderr: true, ..Default::default() };
        let mut frames = docker.logs(&id, Some(options));
        while let Some(Ok(frame)) = frames.next().await {
            let _ = match frame {
                LogOutput::StdOut { message } => out_w.write_all(&message).await,
                LogOutput::StdErr { message } | LogOutput::Console { message } => err_w.write_all(&message).await,
                LogOutput::StdIn { .. } => Ok(()),
            };
        }
        drop(out_w);
        drop(err_w);
    };
    let ((), out_error, err_error) = tokio::join!(pump, watch_log(out_r, &log, &state), watch_log(err_r, &log, &state));
    let code = match docker.wait_container(&id, None).next().await {
        Some(Ok(r)) => Some(r.status_code as i32),
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Some(code as i32),
        _ => None,
    };
    state.send_replace(AgentState::Exited { code, error: err_error.or(out_error) });
}

/// A tar of `dir`'s files under `etc/azrw/` (extracted at `/`), modes kept: secrets stay 0600.
async fn input_archive(dir: &Path) -> std::io::Result<bytes::Bytes> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut tar = tar::Builder::new(Vec::new());
        tar.append_dir_all(INPUT_DIR.trim_start_matches('/'), &dir)?;
        tar.into_inner().map(bytes::Bytes::from)
    })
    .await
    .map_err(std::io::Error::other)?
}

fn io(e: DockerError) -> std::io::Error {
    std::io::Error::other(format!("docker: {e}"))
}
