//! An interrupted `azrw run` in the process runtime (SIGINT, SIGTERM) stops and reaps its agent and removes its
//! private directory; so does a run in which a check panics, and a run whose agent hangs on shutdown (it is
//! killed with everything it started); after SIGKILL, `azrw gc` removes the directory. Each test counts what is
//! left. Needs root and the agents from `ci/setup.sh`. (The Docker runtime's paths are in `docker.rs`.)

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::azrw;

/// Starts `azrw run` on one process-runtime case and waits until its agent is up: the run and the agent's pid.
fn run_until_agent_is_up(
    out: &std::path::Path,
) -> (std::process::Child, i32, std::io::Lines<BufReader<std::process::ChildStderr>>) {
    run_agent_until_up(out, "prometheus@3.5", &[])
}

/// [`run_until_agent_is_up`] with another agent and extra environment for `azrw`.
fn run_agent_until_up(
    out: &std::path::Path,
    agent: &str,
    env: &[(&str, &str)],
) -> (std::process::Child, i32, std::io::Lines<BufReader<std::process::ChildStderr>>) {
    let mut child = azrw()
        .args(["run", "scenarios/auth/managed-identity-user-assigned.yaml", "--agent", agent, "--runtime"])
        .args(["process", "--mode", "server", "--no-provision", "--out"])
        .arg(out)
        .env("AZRW_LOG", "azrw=info")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut pid = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("agent=pid ").nth(1) {
            pid = rest.split_whitespace().next().and_then(|p| p.parse::<i32>().ok());
            break;
        }
    }
    (child, pid.expect("the run logged its agent's pid"), lines)
}

/// What a run with pid `run` left behind: its agent process (a zombie would still have a /proc entry) and its
/// private directories (secrets) under the temp dir.
fn leftovers(run: u32, agent: i32) -> Vec<String> {
    let mut left = Vec::new();
    if std::path::Path::new(&format!("/proc/{agent}")).exists() {
        left.push(format!("agent process {agent}"));
    }
    let prefix = format!("{}{run}-", azrw::runtime::PRIVATE_DIR_PREFIX);
    for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            left.push(format!("directory {}", e.path().display()));
        }
    }
    left
}

fn interrupted_with(signal: i32) {
    let _turn = crate::agent_turn_blocking(1);
    let out = tempfile::tempdir().unwrap();
    let (mut child, pid, lines) = run_until_agent_is_up(out.path());
    let run = child.id();
    assert!(!leftovers(run, pid).is_empty(), "the case's agent and directory exist while it runs");
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(run as i32, signal) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted run is not a pass: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert_eq!(leftovers(run, pid), Vec::<String>::new(), "signal {signal} left these behind");
}

#[test]
fn interrupting_a_run_stops_and_reaps_the_agent() {
    interrupted_with(libc::SIGINT);
}

#[test]
fn terminating_a_run_leaves_nothing_behind() {
    interrupted_with(libc::SIGTERM);
}

#[test]
fn after_sigkill_gc_removes_what_the_run_left() {
    let _turn = crate::agent_turn_blocking(1);
    let out = tempfile::tempdir().unwrap();
    let (mut child, pid, _lines) = run_until_agent_is_up(out.path());
    let run = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    // The agent dies with the run (PR_SET_PDEATHSIG): wait for its exit as an event, not a timer.
    wait_exited(pid);
    // The directory with its inputs stays until gc.
    let dirs = |left: Vec<String>| left.into_iter().filter(|l| l.starts_with("directory")).collect::<Vec<_>>();
    assert!(!dirs(leftovers(run, pid)).is_empty(), "SIGKILL skips every clean-up: the directory stays");
    let gc = azrw().arg("gc").output().unwrap();
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(String::from_utf8_lossy(&gc.stdout).contains(&format!("azrw-case-{run}-")), "gc said nothing of it");
    assert_eq!(dirs(leftovers(run, pid)), Vec::<String>::new());
}

/// Blocks until process `pid` (not our child) has exited, through a pidfd (readable once it has).
fn wait_exited(pid: i32) {
    // SAFETY: plain syscalls on a pid and the fd they return, closed here.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if fd < 0 {
            return; // already gone
        }
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        libc::poll(&mut poll, 1, -1);
        libc::close(fd);
    }
}

/// Processes in process group `pgid` that are still running (a zombie has ended; init reaps it).
fn group_members(pgid: i32) -> Vec<String> {
    azrw::runtime::process_group(pgid as u32)
        .into_iter()
        .filter(|m| !m.zombie)
        .map(|m| format!("process {} ({})", m.pid, m.name))
        .collect()
}

#[test]
fn an_agent_that_hangs_on_shutdown_is_killed_with_everything_it_started() {
    use std::os::unix::fs::PermissionsExt;
    let _turn = crate::agent_turn_blocking(1);
    // A wrapper as a distro might ship one: it ignores SIGTERM, runs Prometheus as its child and then hangs.
    let real = azrw::agent::store::AgentStore::from_env().get("3.5.5".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("prometheus");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in --version) exec {real} --version;; esac\ntrap '' TERM\n{real} \"$@\" &\nwait\n\
         exec sleep 3600\n",
        real = real.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (mut child, pid, lines) = run_agent_until_up(out.path(), &format!("prometheus={}", wrapper.display()), &[]);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the wrapped agent still delivers: {rest:?}");
    assert_eq!(leftovers(child.id(), pid), Vec::<String>::new());
    assert_eq!(group_members(pid), Vec::<String>::new(), "the agent's children outlived the run");
}

#[test]
fn a_panic_in_a_check_ends_the_case_with_an_error_and_leaves_nothing_behind() {
    let _turn = crate::agent_turn_blocking(1);
    let out = tempfile::tempdir().unwrap();
    let (mut child, pid, lines) =
        run_agent_until_up(out.path(), "prometheus@3.5", &[(azrw::runner::SELFTEST_PANIC_ENV, "evaluate")]);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(1), "a panicked case is not a pass: {rest:?}");
    assert!(stdout.contains("0 passed, 1 failed"), "the case is counted, not lost: {stdout}");
    assert!(stdout.contains("azrw panicked during the case"), "{stdout}");
    // The agent is dead once the run has exited; its zombie is init's to reap, so count running processes.
    let dirs: Vec<String> = leftovers(child.id(), pid).into_iter().filter(|l| l.starts_with("directory")).collect();
    assert_eq!(dirs, Vec::<String>::new(), "a panic left these behind");
    assert_eq!(group_members(pid), Vec::<String>::new(), "the agent outlived the panicked run");
}
