//! An interrupted `azrw run` in the process runtime stops and reaps its agent. Needs root and the agents from
//! `ci/setup.sh`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::azrw;

#[test]
fn interrupting_a_run_stops_and_reaps_the_agent() {
    let _turn = crate::agent_turn_blocking(1);
    let out = tempfile::tempdir().unwrap();
    let mut child = azrw()
        .args(["run", "scenarios/auth/managed-identity-user-assigned.yaml", "--agent", "prometheus@3.5", "--runtime"])
        .args(["process", "--no-provision", "--out"])
        .arg(out.path())
        .env("AZRW_LOG", "azrw=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the harness to say the agent is up, then interrupt it.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut pid = None;
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("agent=pid ").nth(1) {
            pid = rest.split_whitespace().next().and_then(|p| p.parse::<i32>().ok());
            break;
        }
    }
    let pid = pid.expect("the run logged its agent's pid");
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted run is not a pass: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    // The agent is gone and reaped: no such process (a zombie would still have a /proc entry).
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "agent {pid} outlived the run");
}
