//! The process runtime: the agent is a child process inside an [`IsolatedNetwork`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::netns::IsolatedNetwork;
use super::{AgentState, STOP_GRACE, open_log, watch_log};

/// A running agent process.
#[derive(Debug)]
pub struct ProcessAgent {
    pid: Option<u32>,
    state: watch::Receiver<AgentState>,
    supervisor: Option<JoinHandle<()>>,
    log_path: PathBuf,
}

impl ProcessAgent {
    /// Starts `binary` with exactly `env` (nothing inherited) inside `network`; its output goes to `log_path`.
    pub async fn start(
        network: &IsolatedNetwork,
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
        workdir: &Path,
        log_path: &Path,
    ) -> std::io::Result<ProcessAgent> {
        let child = network.spawn(command(binary, args, env, workdir)).await?;
        ProcessAgent::supervise(child, log_path).await
    }

    /// Starts `binary` in the host's own network. Only for the real Azure target (opt-in with `--allow-real`):
    /// there the agent must reach Azure, so it cannot live in a loopback-only namespace.
    pub async fn start_on_host(
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
        workdir: &Path,
        log_path: &Path,
    ) -> std::io::Result<ProcessAgent> {
        let mut command = command(binary, args, env, workdir);
        let child = command.spawn()?;
        ProcessAgent::supervise(child, log_path).await
    }

    async fn supervise(mut child: tokio::process::Child, log_path: &Path) -> std::io::Result<ProcessAgent> {
        let pid = child.id();
        let log = Arc::new(open_log(log_path).await?);
        let (tx, rx) = watch::channel(AgentState::Starting);
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let supervisor = tokio::spawn(async move {
            let (out_err, err_err) = tokio::join!(watch_log(stdout, &log, &tx), watch_log(stderr, &log, &tx));
            let status = child.wait().await.ok();
            tx.send_replace(AgentState::Exited { code: status.and_then(|s| s.code()), error: err_err.or(out_err) });
        });
        Ok(ProcessAgent { pid, state: rx, supervisor: Some(supervisor), log_path: log_path.to_owned() })
    }

    /// The agent's state, updated as it logs and exits.
    pub fn state(&self) -> watch::Receiver<AgentState> {
        self.state.clone()
    }

    /// Its process id (until it is stopped).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Where its output is kept.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Stops the agent: SIGTERM, then SIGKILL after a grace period. Idempotent.
    pub async fn stop(&mut self) {
        let Some(supervisor) = self.supervisor.take() else { return };
        let exited = matches!(*self.state.borrow(), AgentState::Exited { .. });
        if let Some(pid) = self.pid.take()
            && !exited
        {
            // SAFETY: signalling our own child's pid, which is not reaped until the supervisor's wait() returns.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        let mut state = self.state.clone();
        let exited = tokio::time::timeout(STOP_GRACE, state.wait_for(|s| matches!(s, AgentState::Exited { .. })))
            .await
            .is_ok_and(|r| r.is_ok());
        if !exited {
            // Dropping the supervisor drops the child, and kill_on_drop sends SIGKILL.
            supervisor.abort();
        }
        let _ = supervisor.await;
    }
}

/// The agent's command: exactly `env` (nothing inherited), output piped for the log, its own process group (a
/// terminal's Ctrl-C reaches the harness, which stops the agent itself).
fn command(binary: &Path, args: &[String], env: &[(String, String)], workdir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    command
}

impl Drop for ProcessAgent {
    fn drop(&mut self) {
        if let Some(s) = self.supervisor.take() {
            s.abort();
        }
    }
}
