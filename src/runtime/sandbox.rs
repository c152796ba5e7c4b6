//! A case's sandbox: where the mock services listen, how the agent reaches them, where it finds its files, and
//! how it is started — the same for every runtime, so the runner does not care which one runs a case.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use super::AgentState;
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
}

/// A started agent.
#[derive(Debug)]
pub enum RunningAgent {
    /// A child process.
    Process(ProcessAgent),
}

impl Sandbox {
    /// A process sandbox whose agent reads its inputs from `input_dir`.
    pub fn process(input_dir: &Path) -> io::Result<Sandbox> {
        Ok(Sandbox::Process { network: IsolatedNetwork::create()?, input_dir: input_dir.to_owned() })
    }

    /// A listener for a mock service, reachable by the agent and by nothing outside the sandbox.
    pub async fn bind(&self) -> io::Result<TcpListener> {
        match self {
            Sandbox::Process { network, .. } => network.bind_tcp("127.0.0.1:0".parse().expect("literal")).await,
        }
    }

    /// How the agent addresses a listener bound by [`Sandbox::bind`].
    pub fn agent_address(&self, local: SocketAddr) -> String {
        match self {
            Sandbox::Process { .. } => local.to_string(),
        }
    }

    /// Where the agent sees its input files.
    pub fn agent_dir(&self) -> PathBuf {
        match self {
            Sandbox::Process { input_dir, .. } => input_dir.clone(),
        }
    }

    /// The agent's `--web.listen-address`.
    pub fn listen_address(&self) -> &'static str {
        match self {
            // The namespace is the agent's own, so this port is always free.
            Sandbox::Process { .. } => "127.0.0.1:9090",
        }
    }

    /// A connection to `addr` as seen from the agent's side (its own listen address, to scrape its metrics).
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<std::net::TcpStream> {
        match self {
            Sandbox::Process { network, .. } => network.connect_tcp(addr).await,
        }
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
        }
    }
}

impl RunningAgent {
    /// The agent's state, updated as it logs and exits.
    pub fn state(&self) -> watch::Receiver<AgentState> {
        match self {
            RunningAgent::Process(p) => p.state(),
        }
    }

    /// A short description for logs (`pid 1234`).
    pub fn describe(&self) -> String {
        match self {
            RunningAgent::Process(p) => p.pid().map_or_else(|| "stopped".to_owned(), |pid| format!("pid {pid}")),
        }
    }

    /// Stops it on every path; idempotent.
    pub async fn stop(&mut self) {
        match self {
            RunningAgent::Process(p) => p.stop().await,
        }
    }
}
