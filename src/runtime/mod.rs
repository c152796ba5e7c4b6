//! Runtimes: how an agent is run so that it can reach the mock cloud and nothing else.
//!
//! Every runtime reports the agent's life through one [`AgentState`] channel, fed by [`watch_log`] from the
//! agent's own output: readiness is the agent saying so, never a fixed sleep.

pub mod docker;
pub mod engine;
pub mod firewall;
pub mod image;
pub mod netns;
pub(crate) mod process;
pub use process::{GroupMember, process_group};
pub mod sandbox;

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use crate::agent::log::{LogSignal, classify};

/// The port the agent's web listener (`/metrics`) uses in every runtime ([`sandbox::Sandbox::listen_address`]);
/// sidecars share its network namespace, so they must not take it.
pub use crate::scenario::AGENT_PORT;

/// Resolves on SIGTERM or SIGINT. Processes azrw runs as PID 1 in a container (the reference sidecar, a pod's
/// pause container) need it: PID 1 gets no default signal handling, so `docker stop` would wait for SIGKILL.
pub async fn until_terminated() {
    match termination() {
        Ok(terminated) => terminated.await,
        Err(_) => std::future::pending().await,
    }
}

/// SIGTERM and SIGINT handled from now on (not from the first poll, as [`until_terminated`]): the returned future
/// resolves on either, so a process that says it is ready cannot be killed by a signal sent right after.
pub fn termination() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    })
}

/// How long an agent gets to stop after SIGTERM before it is killed, in every runtime. Short: by then the verdict
/// is decided, and a Prometheus that cannot deliver would otherwise spend its whole flush deadline (1m) retrying.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(3);

/// Where an agent is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    /// Started, not yet ready.
    Starting,
    /// Serving (its config was accepted).
    Ready,
    /// Gone. `error` is the agent's last error line, in its own words.
    Exited {
        /// Exit code, if it exited normally.
        code: Option<i32>,
        /// Last error-level log line.
        error: Option<String>,
    },
}

/// Copies an agent's output into its log file, line by line, and turns readiness and error lines into state.
/// Returns the last error line seen when the stream ends.
pub async fn watch_log(
    stream: impl AsyncRead + Unpin,
    log: &tokio::sync::Mutex<tokio::fs::File>,
    state: &watch::Sender<AgentState>,
) -> Option<String> {
    let mut lines = BufReader::new(stream).lines();
    let mut last_error = None;
    while let Ok(Some(line)) = lines.next_line().await {
        {
            let mut file = log.lock().await;
            let _ = file.write_all(line.as_bytes()).await;
            let _ = file.write_all(b"\n").await;
        }
        match classify(&line) {
            Some(LogSignal::Ready) => {
                state.send_if_modified(|s| {
                    let starting = *s == AgentState::Starting;
                    if starting {
                        *s = AgentState::Ready;
                    }
                    starting
                });
            }
            Some(LogSignal::Error(e)) => last_error = Some(e),
            None => {}
        }
    }
    last_error
}

/// Opens (truncating) an agent log file.
pub async fn open_log(path: &Path) -> std::io::Result<tokio::sync::Mutex<tokio::fs::File>> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    Ok(tokio::sync::Mutex::new(tokio::fs::File::create(path).await?))
}

/// Prefix of a case's private directory (agent inputs: secrets, keys, tokens) under the temp dir; the running
/// azrw's pid follows it, so `azrw gc` can tell a killed run's directory from a live one's.
pub const PRIVATE_DIR_PREFIX: &str = "azrw-case-";

/// The prefix of this process's private directories: `azrw-case-<pid>-`.
pub fn private_dir_prefix() -> String {
    format!("{PRIVATE_DIR_PREFIX}{}-", std::process::id())
}

/// Removes private case directories in `dir` left by runs whose process is gone (SIGKILL skips every clean-up);
/// with `all`, every one. Returns what it removed.
pub fn gc_private_dirs(dir: &std::path::Path, all: bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PRIVATE_DIR_PREFIX).and_then(|r| r.split('-').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        if (all || !engine::alive(pid)) && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(format!("directory {}", entry.path().display()));
        }
    }
    removed
}
