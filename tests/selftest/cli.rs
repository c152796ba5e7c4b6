//! The `azrw` binary as a user meets it: listing cases and precise errors for bad scenarios. (An interrupted run
//! needs a real agent: `e2e/interrupt.rs`.)

use crate::common::azrw;

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

/// `azrw mock` stopped by `signal` after one token request: its exit code and the exchanges it wrote.
fn stop_mock_with(signal: i32) -> (Option<i32>, serde_json::Value) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = azrw()
        .args(["mock", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    // The last line it prints says it is waiting; signals are handled from before the first one.
    let printed: Vec<String> = lines.take_while(|l| !l.starts_with("Ctrl-C or SIGTERM stops it")).collect();
    assert!(printed.iter().any(|l| l.starts_with("mock Azure cloud")), "{printed:?}");
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let exchanges = std::fs::read(dir.path().join("exchanges.json")).expect("exchanges.json written");
    (status.code(), serde_json::from_slice(&exchanges).unwrap())
}

#[test]
fn the_standalone_mock_ends_alike_on_sigint_and_sigterm() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (code, exchanges) = stop_mock_with(signal);
        assert_eq!(code, Some(0), "signal {signal}");
        assert!(exchanges.is_array(), "signal {signal}: {exchanges}");
    }
}
