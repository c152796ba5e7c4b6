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

    /// Stops the agent and everything it started: SIGTERM to its process group, then SIGKILL to the group after a
    /// grace period. Idempotent.
    pub async fn stop(&mut self) {
        let Some(supervisor) = self.supervisor.take() else { return };
        let pid = self.pid.take();
        if let Some(pid) = pid
            && !matches!(*self.state.borrow(), AgentState::Exited { .. })
        {
            signal_group(pid, libc::SIGTERM);
        }
        let mut state = self.state.clone();
        let exited = tokio::time::timeout(STOP_GRACE, state.wait_for(|s| matches!(s, AgentState::Exited { .. })))
            .await
            .is_ok_and(|r| r.is_ok());
        if let Some(pid) = pid {
            // Also when the agent itself exited: a child it left behind (a wrapper script's, say) still holds the
            // namespace and the log's pipe open.
            kill_group(pid, exited);
        }
        if !exited {
            supervisor.abort();
        }
        let _ = supervisor.await;
    }
}

/// Signals the agent's process group (its pid: it was started as a group leader) while its leader is not yet
/// reaped, so the id still names this group.
fn signal_group(pid: u32, signal: libc::c_int) {
    // SAFETY: a plain syscall on the group of our own, unreaped child.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

/// SIGKILLs whatever is left of the agent's process group. After the leader was reaped its pid may be reused, so
/// then only if members of the group remain and no process has that pid: the kernel does not hand out a pid that
/// is still some group's id, so such members are the agent's.
fn kill_group(pid: u32, leader_reaped: bool) {
    if !leader_reaped || group_outlived_its_leader(pid) {
        signal_group(pid, libc::SIGKILL);
    }
}

fn group_outlived_its_leader(pgid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pgid}")).exists() && !process_group(pgid).is_empty()
}

/// A process of a process group, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Its pid.
    pub pid: u32,
    /// Its command name.
    pub name: String,
    /// Ended but not yet reaped.
    pub zombie: bool,
}

/// Every process whose process group is `pgid` (zombies included: they still hold the group id).
pub fn process_group(pgid: u32) -> Vec<GroupMember> {
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses, so split at the last ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let (pid, name) = head.split_once(" (")?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            (fields.get(2)?.parse::<u32>().ok()? == pgid).then(|| GroupMember {
                pid: pid.parse().unwrap_or(0),
                name: name.to_owned(),
                zombie: fields.first() == Some(&"Z"),
            })
        })
        .collect()
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
        // An early return or a panic: no grace, but the whole group, not only the leader kill_on_drop reaches.
        if let Some(s) = self.supervisor.take() {
            if let Some(pid) = self.pid.take() {
                let reaped = matches!(*self.state.borrow(), AgentState::Exited { .. });
                kill_group(pid, reaped);
                if !reaped {
                    // Dead before Drop returns (a zombie until the aborted supervisor's child is reaped), so a
                    // panicking run never exits with its agent still running. SIGKILL makes this wait short.
                    // SAFETY: waits on our own unreaped child without reaping it (WNOWAIT).
                    unsafe {
                        let mut info: libc::siginfo_t = std::mem::zeroed();
                        libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT);
                    }
                }
            }
            s.abort();
        }
    }
}
