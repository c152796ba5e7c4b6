//! Bad scenario files must be reported as `file:line:column: field: message`, pointing at the offending key.

use std::path::{Path, PathBuf};

use azrw::scenario::{ScenarioError, load};

/// Writes `text` as `name` in a fresh directory and loads it; the error must exist.
fn load_err(name: &str, text: &str) -> (tempfile::TempDir, PathBuf, ScenarioError) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let err = load(&path).expect_err("the scenario must be refused");
    (dir, path, err)
}

#[track_caller]
fn assert_error(path: &Path, err: &ScenarioError, line_col: &str, field: &str, message: &str) {
    let text = err.to_string();
    let expected_prefix = format!("{}:{line_col}: {field}: ", path.display());
    assert!(text.starts_with(&expected_prefix), "expected prefix {expected_prefix:?} in:\n{text}");
    assert!(text.contains(message), "expected {message:?} in:\n{text}");
    assert_eq!(err.field(), Some(field), "{text}");
}

const HEAD: &str = "name: auth/example\nabout: test\nagents: [prometheus@2.53, prometheus@3.5]\n";

#[test]
fn unknown_field() {
    let (_d, path, err) = load_err(
        "unknown-field.yaml",
        &format!("{HEAD}auth:\n  oauth:\n    client_id: a\n    client_secrt: b\n    tenant_id: c\n"),
    );
    assert_error(&path, &err, "7:5", "auth.oauth", "unknown field `client_secrt`, expected one of");
    assert!(err.to_string().contains("client_secret"), "{err}");
}

#[test]
fn wrong_type() {
    let (_d, path, err) = load_err(
        "wrong-type.yaml",
        &format!("{HEAD}auth:\n  managed_identity: {{client_id: \"\"}}\nexpect:\n  min_writes: many\n"),
    );
    assert_error(&path, &err, "7:15", "expect.min_writes", "invalid u64");

    // A scalar where a list belongs.
    let (_d, path, err) =
        load_err("scalar-agents.yaml", "name: x\nagents: prometheus@3.5\nauth: {managed_identity: {}}\n");
    assert_error(&path, &err, "2:9", "agents", "expected sequence start");
}

#[test]
fn bad_duration() {
    let (_d, path, err) =
        load_err("bad-duration.yaml", &format!("{HEAD}auth:\n  managed_identity: {{}}\ndeadline: 3 parsecs\n"));
    assert_error(&path, &err, "6:1", "deadline", "expected a duration");
}

#[test]
fn two_auth_methods() {
    let (_d, path, err) = load_err(
        "two-auth.yaml",
        &format!(
            "{HEAD}auth:\n  managed_identity: {{client_id: 00000000-0000-0000-0000-000000000001}}\n  \
             oauth: {{client_id: a, client_secret: b, tenant_id: c}}\n"
        ),
    );
    assert_error(&path, &err, "6:3", "auth", "both `managed_identity` and `oauth` are set");
}

#[test]
fn bad_agent_ref() {
    let (_d, path, err) = load_err(
        "bad-agent.yaml",
        "name: x\nagents:\n  - prometheus@3.5\n  - vmagent@1.0\nauth:\n  managed_identity: {}\n",
    );
    assert_error(&path, &err, "4:5", "agents[1]", "`vmagent@1.0` is not an agent reference");
}

#[test]
fn unknown_outcome_key() {
    let (_d, path, err) = load_err(
        "outcome-key.yaml",
        &format!(
            "{HEAD}auth:\n  managed_identity: {{}}\nexpect:\n  outcome:\n    default: delivered\n    \
             prometheus@3.9: config-rejected\n"
        ),
    );
    assert_error(&path, &err, "9:5", "expect.outcome", "`prometheus@3.9` is neither `default` nor one of");
}

#[test]
fn misspelt_outcome() {
    let (_d, path, err) = load_err(
        "outcome.yaml",
        &format!("{HEAD}auth:\n  managed_identity: {{}}\nexpect:\n  outcome:\n    prometheus@3.5: delivred\n"),
    );
    assert_error(&path, &err, "8:21", "expect.outcome.prometheus@3.5", "unknown variant `delivred`");
}

#[test]
fn missing_config_file() {
    let (_d, path, err) = load_err(
        "missing-config.yaml",
        &format!("{HEAD}prometheus:\n  config: configs/nope.yml\nauth:\n  managed_identity: {{}}\n"),
    );
    assert_error(&path, &err, "5:11", "prometheus.config", "`configs/nope.yml` does not exist");
}

#[test]
fn missing_field_names_its_map() {
    let (_d, path, err) =
        load_err("missing.yaml", &format!("{HEAD}auth:\n  oauth:\n    client_id: a\n    tenant_id: c\n"));
    assert_error(&path, &err, "7:5", "auth.oauth", "missing field `client_secret`");
}

#[test]
fn yaml_syntax_error_still_has_a_position() {
    let (_d, path, err) = load_err("syntax.yaml", &format!("{HEAD}auth: {{managed_identity: {{}}\n"));
    let text = err.to_string();
    assert!(text.starts_with(&format!("{}:4:", path.display())), "{text}");
}

#[test]
fn sidecars_that_cannot_run_or_collide() {
    let auth = "auth:\n  managed_identity: {client_id: a}\n";
    // Azure's image cannot run as a process: the scenario must say docker.
    let (_d, path, err) = load_err(
        "sidecar-image.yaml",
        &format!("{HEAD}{auth}sidecars:\n  - name: rw\n    image: mcr.microsoft.com/azuremonitor/x:1\n"),
    );
    assert_error(&path, &err, "8:5", "sidecars[0].image", "runs only in the docker runtime: set `runtimes: [docker]`");

    // The agent's own port, and two sidecars on one port (they share one network namespace).
    let (_d, path, err) =
        load_err("sidecar-port.yaml", &format!("{HEAD}{auth}sidecars:\n  - name: rw\n    port: 9090\n"));
    assert_error(&path, &err, "8:5", "sidecars[0].port", "9090 is not free: the agent listens on 9090");
    let (_d, path, err) = load_err(
        "sidecar-ports.yaml",
        &format!("{HEAD}{auth}sidecars:\n  - {{name: a}}\n  - {{name: b, remote_write: false}}\n"),
    );
    assert_error(&path, &err, "8:5", "sidecars[1].port", "8081 is also the port of sidecar `a`");

    // Two sidecars cannot both take the remote-write.
    let (_d, path, err) = load_err(
        "sidecar-writers.yaml",
        &format!("{HEAD}{auth}sidecars:\n  - {{name: a}}\n  - {{name: b, port: 8082}}\n"),
    );
    assert_error(&path, &err, "8:5", "sidecars[1].remote_write", "only one sidecar can take the agent's remote-write");
}

/// Every scenario shipped in `scenarios/` loads, the directories that run only when named (`.explicit`) included:
/// a typo in a nightly-only file must not wait for the nightly to be found.
#[test]
fn every_shipped_scenario_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut dirs = vec![root.clone()];
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.join(load::EXPLICIT_MARKER).exists() {
            dirs.push(path);
        }
    }
    let files = load::discover(&dirs).unwrap();
    assert!(files.iter().any(|f| f.starts_with(root.join("lifecycle"))), "explicit directories are walked");
    assert!(files.len() > 50, "{} scenario files", files.len());
    for file in &files {
        if let Err(e) = load(file) {
            panic!("{e}");
        }
    }
}

#[test]
fn a_tls_failure_cannot_also_answer_nor_apply_to_imds() {
    let auth = "auth:\n  managed_identity: {client_id: \"\"}\n";
    let (_d, path, err) = load_err(
        "tls-status.yaml",
        &format!("{HEAD}{auth}faults:\n  rules:\n    - {{service: dcr, tls_failure: true, status: 503}}\n"),
    );
    assert_error(&path, &err, "8:22", "faults.rules[0].tls_failure", "cannot also set `status`");
    let (_d, path, err) = load_err(
        "tls-imds.yaml",
        &format!("{HEAD}{auth}faults:\n  rules:\n    - {{service: imds, tls_failure: true}}\n"),
    );
    assert_error(&path, &err, "8:23", "faults.rules[0].tls_failure", "IMDS is plain HTTP");
}

#[test]
fn misspelt_failing_check() {
    let (_d, path, err) = load_err(
        "misspelt-check.yaml",
        &format!("{HEAD}auth:\n  managed_identity: {{}}\nexpect:\n  failing: [write.bearer, write.bearr]\n"),
    );
    let text = err.to_string();
    assert!(text.starts_with(&format!("{}:7:", path.display())), "{text}");
    assert!(text.contains("`write.bearr` is not a check; checks are: capability.table"), "{text}");
    assert!(text.contains("write.bearer"), "the valid names are listed: {text}");
}

#[test]
fn every_mistake_of_a_file_is_reported_at_once_in_line_order() {
    let text = "name: four/mistakes\n\
                agents: [prometheus@3.5, nonsense@1]\n\
                colour: blue\n\
                auth:\n  managed_identity: {client_id: \"\"}\n\
                expect:\n  min_writes: many\n\
                deadline: 0s\n";
    let (_d, path, err) = load_err("four-mistakes.yaml", text);
    let all = err.errors();
    let lines: Vec<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(all.len(), 4, "{lines:#?}");
    let file = path.display().to_string();
    let expected = [
        ("2:", "agents[1]", "nonsense@1"),
        ("3:1", "", "unknown field `colour`"),
        ("7:15", "expect.min_writes", "invalid u64"),
        ("8:", "deadline", "must be greater than zero"),
    ];
    for (line, (at, field, message)) in lines.iter().zip(expected) {
        assert!(line.starts_with(&format!("{file}:{at}")), "expected {at} first in {line}");
        assert!(line.contains(field) && line.contains(message), "expected {field}: {message} in {line}");
    }
    // Each has a position, and they come ordered by line.
    let positions: Vec<u64> = all.iter().map(|e| e.position().expect("file:line:column").line).collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
    assert_eq!(err.to_string().lines().count(), 4, "{err}");
}

#[test]
fn own_agents_are_binaries_or_images_with_an_optional_assumed_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("own.yaml");
    std::fs::write(
        &path,
        "name: own\nagents:\n  - prometheus@3.5\n  - {binary: bin/prometheus, assume_version: 3.5.0}\n  \
         - {image: 'acme/prometheus:3.5-fork'}\nauth: {managed_identity: {}}\n",
    )
    .unwrap();
    let loaded = load(&path).unwrap();
    let written: Vec<&str> = loaded.scenario.agents.iter().map(|a| a.written.as_str()).collect();
    assert_eq!(written, ["prometheus@3.5", "prometheus=bin/prometheus", "prometheus=image:acme/prometheus:3.5-fork"]);
    assert_eq!(loaded.scenario.agents[1].assume_version.as_deref(), Some("3.5.0"));
    // A relative binary is relative to the scenario file, as a config path is.
    let sources = azrw::matrix::scenario_sources(&loaded).unwrap();
    assert_eq!(sources[1].0, azrw::agent::AgentSource::Binary(dir.path().join("bin/prometheus")));
    assert_eq!(sources[1].1, Some(azrw::agent::Version::new(3, 5, 0)));
}

#[test]
fn own_agents_that_name_both_or_a_bad_version_or_an_untagged_image() {
    let (_d, _path, err) =
        load_err("both.yaml", "name: x\nagents:\n  - {binary: /bin/p, image: 'a/p:1'}\nauth: {managed_identity: {}}\n");
    assert!(err.to_string().contains("exactly one of the two"), "{err}");
    let (_d, path, err) = load_err(
        "assume.yaml",
        "name: x\nagents:\n  - {binary: /bin/p, assume_version: three}\nauth: {managed_identity: {}}\n",
    );
    assert_error(&path, &err, "3:38", "agents[0].assume_version", "`three` is not a version");
    let (_d, path, err) =
        load_err("untagged.yaml", "name: x\nagents:\n  - {image: acme/prometheus}\nauth: {managed_identity: {}}\n");
    assert_error(&path, &err, "3:5", "agents[0]", "prometheus=image:REPO:TAG");
}
