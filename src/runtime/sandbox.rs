//! A case's sandbox: where the mock services listen, how the agent reaches them, where it finds its files, and
//! how it is started — the same for every runtime, so the runner does not care which one runs a case.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use super::AgentState;
use super::docker::{CaseNetwork, ContainerSpec, DockerAgent, Owner};
use super::engine::Engine;
use super::image::{INPUT_DIR, agent_image, ensure_azrw_image, load_hint, require};
use super::netns::IsolatedNetwork;
use super::process::ProcessAgent;
use crate::agent::Version;

/// What to start.
#[derive(Debug, Clone)]
pub struct AgentLaunch {
    /// Agent version (selects the image in Docker).
    pub version: Version,
    /// Agent binary on the host (process runtime).
    pub binary: PathBuf,
    /// The image to run in Docker instead of the catalog's `azrw/prometheus:<version>` (the user's own).
    pub image: Option<String>,
    /// Flags.
    pub args: Vec<String>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// Host directory holding the agent's input files (config, CA, credentials); the agent sees it at
    /// [`Sandbox::agent_dir`].
    pub input_dir: PathBuf,
    /// Where the agent's output is kept.
    pub log_path: PathBuf,
}

/// What to start beside the agent, in its network namespace.
#[derive(Debug, Clone)]
pub struct SidecarLaunch {
    /// The scenario's name for it.
    pub name: String,
    /// A local Docker image; `None` is azrw's reference sidecar (`azrw sidecar`), the only kind a process can be.
    pub image: Option<String>,
    /// The azrw binary (reference sidecar: the process, or the source of its image).
    pub azrw_binary: Option<PathBuf>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// Host directory holding its input files (CA, federated token, certificate), seen at [`Sandbox::agent_dir`].
    pub input_dir: PathBuf,
    /// Where its output is kept.
    pub log_path: PathBuf,
}

/// An isolated place to run one case.
#[derive(Debug)]
pub enum Sandbox {
    /// A network namespace with only loopback.
    Process {
        /// The namespace.
        network: IsolatedNetwork,
        /// The host directory the agent reads its inputs from.
        input_dir: PathBuf,
    },
    /// An internal Docker network; the mock cloud listens on its gateway address.
    Docker {
        /// The pause container whose network namespace the agent and its sidecars join, as a pod's containers
        /// share one ([`Sandbox::start_pod`]). First, so that `Drop` removes it before the network.
        pod: std::sync::Mutex<Option<Box<Pod>>>,
        /// The case's network (boxed: a Docker client is large).
        network: Box<CaseNetwork>,
        /// Run and case, for names and labels.
        owner: Owner,
    },
}

/// A Docker case's pause container: the agent and its sidecars share its network namespace and address.
#[derive(Debug)]
pub struct Pod {
    name: String,
    address: std::net::IpAddr,
    container: DockerAgent,
}

/// A started agent.
#[derive(Debug)]
pub enum RunningAgent {
    /// A child process.
    Process(ProcessAgent),
    /// A container.
    Docker(DockerAgent),
}

impl Sandbox {
    /// A process sandbox whose agent reads its inputs from `input_dir`.
    pub fn process(input_dir: &Path) -> io::Result<Sandbox> {
        Ok(Sandbox::Process { network: IsolatedNetwork::create()?, input_dir: input_dir.to_owned() })
    }

    /// A Docker sandbox: a fresh internal network owned by `owner`.
    pub async fn docker(engine: &Engine, owner: Owner) -> io::Result<Sandbox> {
        let network = CaseNetwork::create(engine, &owner).await?;
        Ok(Sandbox::Docker { network: Box::new(network), owner, pod: std::sync::Mutex::new(None) })
    }

    /// A listener for a mock service, reachable by the agent and by nothing outside the sandbox.
    pub async fn bind(&self) -> io::Result<TcpListener> {
        match self {
            Sandbox::Process { network, .. } => network.bind_tcp("127.0.0.1:0".parse().expect("literal")).await,
            // The gateway address exists only on the host's end of this case's bridge: other networks' containers
            // and the outside cannot route to it. The case's firewall drops everything from the bridge to the host
            // but the ports opened here.
            Sandbox::Docker { network, .. } => {
                let listener = TcpListener::bind((network.gateway(), 0))?;
                network.allow_port(listener.local_addr()?.port()).await?;
                Ok(listener)
            }
        }
    }

    /// A warning when the sandbox is less isolated than it should be (Docker with `AZRW_DOCKER_NO_FIREWALL=1`).
    pub fn isolation_warning(&self) -> Option<String> {
        match self {
            Sandbox::Process { .. } => None,
            Sandbox::Docker { network, .. } => network.firewall_warning(),
        }
    }

    /// How the agent addresses a listener bound by [`Sandbox::bind`].
    pub fn agent_address(&self, local: SocketAddr) -> String {
        match self {
            Sandbox::Process { .. } | Sandbox::Docker { .. } => local.to_string(),
        }
    }

    /// Where the agent sees its input files.
    pub fn agent_dir(&self) -> PathBuf {
        match self {
            Sandbox::Process { input_dir, .. } => input_dir.clone(),
            Sandbox::Docker { .. } => PathBuf::from(INPUT_DIR),
        }
    }

    /// The agent's `--web.listen-address`.
    pub fn listen_address(&self) -> &'static str {
        match self {
            // The namespace is the agent's own, so this port is always free.
            Sandbox::Process { .. } => "127.0.0.1:9090",
            // Only the container's own network namespace sees this; nothing publishes it.
            Sandbox::Docker { .. } => "0.0.0.0:9090",
        }
    }

    /// Where the harness reaches `agent`'s web listener ([`Sandbox::listen_address`]): in the namespace, or at
    /// the container's address on the case network.
    pub async fn agent_web_address(&self, agent: &RunningAgent) -> io::Result<SocketAddr> {
        let listen: SocketAddr = self.listen_address().parse().map_err(io::Error::other)?;
        match (self, agent) {
            (Sandbox::Process { .. }, _) => Ok(listen),
            // In a pod the agent has no address of its own: it is the pause container's.
            (Sandbox::Docker { pod, .. }, RunningAgent::Docker(d)) => {
                let pod_address = pod.lock().expect("pod lock").as_ref().map(|p| p.address);
                let address = match pod_address {
                    Some(a) => a,
                    None => d.address().await?,
                };
                Ok(SocketAddr::new(address, listen.port()))
            }
            (Sandbox::Docker { .. }, RunningAgent::Process(_)) => {
                Err(io::Error::other("a process agent cannot run in a docker sandbox"))
            }
        }
    }

    /// `GET path` on `agent`'s own web listener (its `/metrics`), from where the harness reaches it; errors name
    /// the address.
    pub async fn agent_http_get(&self, agent: &RunningAgent, path: &str) -> io::Result<String> {
        let addr = self.agent_web_address(agent).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        let got = match self {
            // The socket must be created inside the namespace: on its thread.
            Sandbox::Process { network, .. } => network.run(move || http_get(addr, &request)).await?,
            // From the host, which routes to the bridge: the case firewall accepts the replies to a connection the
            // host opened (conntrack ESTABLISHED), while the container still cannot open one to the host itself.
            Sandbox::Docker { .. } => {
                tokio::task::spawn_blocking(move || http_get(addr, &request)).await.map_err(io::Error::other)?
            }
        };
        got.map_err(|e| io::Error::new(e.kind(), format!("GET http://{addr}{path}: {e}")))
    }

    /// Starts the agent.
    pub async fn start_agent(&self, launch: &AgentLaunch) -> io::Result<RunningAgent> {
        match self {
            Sandbox::Process { network, .. } => Ok(RunningAgent::Process(
                ProcessAgent::start(
                    network,
                    &launch.binary,
                    &launch.args,
                    &launch.env,
                    &launch.input_dir,
                    &launch.log_path,
                )
                .await?,
            )),
            Sandbox::Docker { network, .. } => {
                let (image, hint) = match &launch.image {
                    Some(own) => (own.clone(), load_hint(own)),
                    None => (agent_image(launch.version), format!("azrw agents image {}", launch.version)),
                };
                require(network.engine(), &image, &hint).await.map_err(io::Error::other)?;
                self.start_container(
                    "agent",
                    image,
                    launch.args.clone(),
                    &launch.env,
                    &launch.input_dir,
                    &launch.log_path,
                )
                .await
            }
        }
    }

    /// Runs `launch` to its exit in this sandbox (`prometheus --version`) and returns what it printed; bounded by
    /// `deadline`, after which it is stopped and that is the error.
    pub async fn run_to_exit(&self, launch: &AgentLaunch, deadline: std::time::Duration) -> io::Result<String> {
        let mut agent = self.start_agent(launch).await?;
        let mut state = agent.state();
        let exited = tokio::time::timeout(deadline, state.wait_for(|s| matches!(s, AgentState::Exited { .. }))).await;
        let ended = matches!(exited, Ok(Ok(_)));
        agent.stop().await;
        if !ended {
            return Err(io::Error::other(format!("still running after {}s", deadline.as_secs())));
        }
        std::fs::read_to_string(&launch.log_path)
    }

    /// Gives the agent and its sidecars one network namespace, as a pod's containers share one: Prometheus reaches
    /// its sidecar on `localhost`. In Docker a pause container (azrw's image, `azrw pause`) owns it, so that any of
    /// them may exit without taking the others' network along; processes share the sandbox's namespace anyway.
    /// Call before starting the agent and its sidecars.
    pub async fn start_pod(&self, azrw_binary: Option<&Path>, log_path: &Path) -> io::Result<()> {
        let Sandbox::Docker { network, owner, pod } = self else { return Ok(()) };
        let binary = azrw_binary
            .ok_or_else(|| io::Error::other("a pod's pause container is azrw's image, and no azrw binary was found"))?;
        let image = ensure_azrw_image(network.engine(), binary).await.map_err(io::Error::other)?;
        let spec = ContainerSpec {
            image: image.to_owned(),
            name: owner.name("pod"),
            cmd: vec!["pause".to_owned()],
            env: Vec::new(),
            labels: owner.labels(),
            network: network.name().to_owned(),
            input_dir: None,
        };
        let mut container = DockerAgent::start(network.engine(), &spec, log_path).await?;
        let address = match container.address().await {
            Ok(a) => a,
            Err(e) => {
                container.stop().await;
                return Err(e);
            }
        };
        *pod.lock().expect("pod lock") = Some(Box::new(Pod { name: spec.name, address, container }));
        Ok(())
    }

    /// Starts a sidecar in the agent's network namespace (after [`Sandbox::start_pod`]); start sidecars before the
    /// agent, so that the agent finds its remote-write endpoint listening.
    pub async fn start_sidecar(&self, launch: &SidecarLaunch) -> io::Result<RunningAgent> {
        let azrw = || {
            launch.azrw_binary.clone().ok_or_else(|| {
                io::Error::other("the reference sidecar is azrw itself, and this harness found no azrw binary to run")
            })
        };
        let args = vec!["sidecar".to_owned()];
        match self {
            Sandbox::Process { network, .. } => {
                if let Some(image) = &launch.image {
                    return Err(io::Error::other(format!("sidecar image {image} needs the docker runtime")));
                }
                Ok(RunningAgent::Process(
                    ProcessAgent::start(network, &azrw()?, &args, &launch.env, &launch.input_dir, &launch.log_path)
                        .await?,
                ))
            }
            Sandbox::Docker { network, .. } => {
                let (image, cmd) = match &launch.image {
                    Some(image) => {
                        let hint = format!("docker load (or docker pull elsewhere, then save/load) {image}");
                        require(network.engine(), image, &hint).await.map_err(io::Error::other)?;
                        (image.clone(), Vec::new())
                    }
                    None => {
                        let tag = ensure_azrw_image(network.engine(), &azrw()?).await.map_err(io::Error::other)?;
                        (tag.to_owned(), args)
                    }
                };
                let role = format!("sidecar-{}", launch.name);
                self.start_container(&role, image, cmd, &launch.env, &launch.input_dir, &launch.log_path).await
            }
        }
    }

    /// A container of this case: on the case network, or in the pod's network namespace when there is one.
    async fn start_container(
        &self,
        role: &str,
        image: String,
        cmd: Vec<String>,
        env: &[(String, String)],
        input_dir: &Path,
        log_path: &Path,
    ) -> io::Result<RunningAgent> {
        let Sandbox::Docker { network, owner, pod } = self else {
            return Err(io::Error::other("not a docker sandbox"));
        };
        let name = owner.name(role);
        let pod_name = pod.lock().expect("pod lock").as_ref().map(|p| p.name.clone());
        let network_mode = match pod_name {
            Some(pod) => format!("container:{pod}"),
            None => network.name().to_owned(),
        };
        let spec = ContainerSpec {
            image,
            name: name.clone(),
            cmd,
            env: env.to_vec(),
            labels: owner.labels(),
            network: network_mode,
            input_dir: Some(input_dir.to_owned()),
        };
        Ok(RunningAgent::Docker(DockerAgent::start(network.engine(), &spec, log_path).await?))
    }

    /// Tears the sandbox down (after its agent stopped): the Docker network is removed here, awaited, rather than
    /// by `Drop`'s blocking fallback.
    pub async fn close(self) {
        match self {
            Sandbox::Process { .. } => {}
            Sandbox::Docker { mut network, pod, .. } => {
                let pod = pod.into_inner().ok().flatten();
                if let Some(mut pod) = pod {
                    pod.container.stop().await;
                }
                network.remove().await
            }
        }
    }
}

impl RunningAgent {
    /// The agent's state, updated as it logs and exits.
    pub fn state(&self) -> watch::Receiver<AgentState> {
        match self {
            RunningAgent::Process(p) => p.state(),
            RunningAgent::Docker(d) => d.state(),
        }
    }

    /// A short description for logs (`pid 1234`).
    pub fn describe(&self) -> String {
        match self {
            RunningAgent::Process(p) => p.pid().map_or_else(|| "stopped".to_owned(), |pid| format!("pid {pid}")),
            RunningAgent::Docker(d) => format!("container {}", d.name()),
        }
    }

    /// Stops it on every path; idempotent.
    pub async fn stop(&mut self) {
        match self {
            RunningAgent::Process(p) => p.stop().await,
            RunningAgent::Docker(d) => d.stop().await,
        }
    }
}

/// A minimal blocking HTTP/1.0 GET with a deadline; returns the body of a 200.
fn http_get(addr: SocketAddr, request: &str) -> io::Result<String> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(io::Error::other(format!("answered {}", head.lines().next().unwrap_or(""))));
    }
    Ok(body.to_owned())
}
