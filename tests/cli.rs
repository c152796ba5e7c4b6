//! The `azrw` binary as a user meets it: listing cases, precise errors for bad scenarios, and an interrupted run
//! that leaves no agent behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn azrw() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_azrw"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn list_expands_every_auth_scenario_over_the_catalog() {
    let out = azrw().args(["list", "scenarios/auth", "--runtime", "process"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"auth/entra/client-secret [prometheus@2.53.4/process]"), "{text}");
    assert!(lines.contains(&"auth/entra/client-secret [prometheus@3.5.5/process]"), "{text}");
    assert!(lines.contains(&"auth/entra/client-secret [prometheus@3.16.0/process]"), "{text}");
    assert!(lines.len() >= 30, "{text}");
}

#[test]
fn a_bad_scenario_is_an_error_naming_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "name: bad\nagents: [prometheus@3.5]\nauth:\n  oauth:\n    client_id: x\n    client_secrt: y\n    tenant_id: t\n",
    )
    .unwrap();
    let out = azrw().arg("list").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.yaml:6:5: auth.oauth: unknown field `client_secrt`"), "{err}");
}

#[test]
fn interrupting_a_run_stops_and_reaps_the_agent() {
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
