//! One `azrw run` over planted secrets, then every artefact is scanned: stdout, stderr, the out directory with its
//! capture bundles, JUnit and Markdown. Planted: the scenario's client secrets (the agent's and the one the mock
//! knows), every issued access token, federated token and client assertion (all JWTs, so no `eyJ` may appear), and
//! the client certificate's private key PEM — the reference sidecar's environment and log included. Then `azrw replay` of the failing case's bundle must reach the same
//! verdict without the agent. Needs root (network namespaces) and the agents from `ci/setup.sh`.

use std::path::{Path, PathBuf};

use crate::common::azrw;

const PLANTED: &str = "azrw-planted-secret-5d1c9e";
const PLANTED_OTHER: &str = "azrw-planted-other-secret-77ab";

fn scenarios(dir: &Path) {
    let oauth = |name: &str, extra: &str| {
        format!(
            "name: artefacts/{name}\nagents: [prometheus@3.5]\nauth:\n  oauth:\n    client_id: 8e547ddf-a7de-46ed-9269-5526a55d3211\n    \
             client_secret: {PLANTED}\n    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47\n{extra}deadline: 30s\n"
        )
    };
    let files = [
        ("delivered.yaml", oauth("delivered", "")),
        // Fails on purpose: the DCR refuses (no role) but the scenario expects delivery. Replay must reproduce it.
        ("no-role.yaml", oauth("no-role", "cloud:\n  roles: []\nexpect:\n  outcome: delivered\n")),
        (
            "wrong-secret.yaml",
            oauth("wrong-secret", &format!("cloud:\n  client_secret: {PLANTED_OTHER}\nexpect:\n  outcome: auth-failed\n")),
        ),
        (
            "certificate.yaml",
            "name: artefacts/certificate\nagents: [prometheus@latest]\nauth:\n  certificate:\n    \
             client_id: 5b0c3e6e-1f7a-4c53-9a8e-7d1f2a3b4c5d\n    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47\ndeadline: 30s\n"
                .to_owned(),
        ),
        // The reference sidecar holds the client secret (AZURE_CLIENT_SECRET) and logs every token failure.
        (
            "sidecar.yaml",
            oauth("sidecar", &format!("sidecars:\n  - name: remote-write\ncloud:\n  client_secret: {PLANTED_OTHER}\nexpect:\n  outcome: auth-failed\n")),
        ),
        (
            "sidecar-certificate.yaml",
            "name: artefacts/sidecar-certificate\nagents: [prometheus@3.5]\nauth:\n  certificate:\n    \
             client_id: 5b0c3e6e-1f7a-4c53-9a8e-7d1f2a3b4c5d\n    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47\n\
             sidecars:\n  - name: remote-write\ndeadline: 30s\n"
                .to_owned(),
        ),
        (
            "workload.yaml",
            "name: artefacts/workload\nagents: [prometheus@latest]\nauth:\n  workload_identity:\n    \
             client_id: 0d3e7a51-94c2-4b8f-8a61-2c9f0e4d7b13\n    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47\ndeadline: 30s\n"
                .to_owned(),
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// Every planted needle found in `text`, named.
fn leaks(text: &[u8]) -> Vec<&'static str> {
    let needles: [(&str, &[u8]); 4] = [
        ("client secret", PLANTED.as_bytes()),
        ("the mock's client secret", PLANTED_OTHER.as_bytes()),
        ("a JWT (access, federated or assertion token)", b"eyJ"),
        ("a private key PEM", b"PRIVATE KEY"),
    ];
    needles.iter().filter(|(_, n)| text.windows(n.len()).any(|w| w == *n)).map(|(what, _)| *what).collect()
}

fn scan(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scan(&path, found);
        } else {
            for what in leaks(&std::fs::read(&path).unwrap()) {
                found.push(format!("{what} in {}", path.display()));
            }
        }
    }
}

#[test]
fn the_scanner_finds_what_is_planted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), format!("a: {PLANTED}\nAuthorization: Bearer eyJhbGciOi\n")).unwrap();
    let mut found = Vec::new();
    scan(dir.path(), &mut found);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn no_artefact_of_a_run_holds_a_secret_and_replay_reproduces_the_failing_verdict() {
    let work = tempfile::tempdir().unwrap();
    let (scen, out) = (work.path().join("scenarios"), work.path().join("out"));
    std::fs::create_dir_all(&scen).unwrap();
    scenarios(&scen);
    let _turn = crate::agent_turn_blocking(2); // --jobs 2
    let run = azrw()
        .args(["run", "--runtime", "process", "--jobs", "2", "--no-provision", "--out"])
        .arg(&out)
        .arg("--junit")
        .arg(out.join("junit.xml"))
        .arg("--markdown")
        .arg(out.join("summary.md"))
        .arg(&scen)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(1),
        "exactly the no-role case fails:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("6 passed, 1 failed"), "{stdout}");

    let mut found: Vec<String> = Vec::new();
    for (name, bytes) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        found.extend(leaks(bytes).into_iter().map(|w| format!("{w} in {name}")));
    }
    scan(&out, &mut found);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));

    // The artefacts are all there, and the bundles kept the raw bodies.
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let row = md.lines().find(|l| l.starts_with("| artefacts/no-role |")).unwrap_or_default();
    assert!(row.contains("❌ dropped (expected delivered)"), "{md}");
    assert!(std::fs::read_to_string(out.join("junit.xml")).unwrap().contains("artefacts/no-role"));
    let bundle = find_case(&out, "artefacts_no-role");
    for f in ["case.json", "verdict.json", "exchanges.json", "env.json", "prometheus.yml", "agent.log"] {
        assert!(bundle.join(f).is_file(), "{f} missing in {}", bundle.display());
    }
    let bodies: Vec<PathBuf> =
        std::fs::read_dir(bundle.join("exchanges")).unwrap().map(|e| e.unwrap().path()).collect();
    let entra =
        bodies.iter().find(|p| p.to_string_lossy().ends_with("-entra.body")).expect("an Entra token request body");
    let form = std::fs::read_to_string(entra).unwrap();
    assert!(form.contains("client_secret=%5Bredacted%5D") && form.contains("grant_type=client_credentials"), "{form}");
    assert!(bodies.iter().any(|p| p.to_string_lossy().ends_with("-dcr.body")), "raw remote-write bodies are kept");

    let replay = azrw().arg("replay").arg(&bundle).output().unwrap();
    let text = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{text}\n{}", String::from_utf8_lossy(&replay.stderr));
    assert!(text.contains("FAIL artefacts/no-role"), "{text}");
    assert!(text.contains("observed:    dropped"), "{text}");
    assert!(text.contains("reproduced: the same verdict as the bundle's"), "{text}");
    assert!(leaks(&replay.stdout).is_empty() && leaks(&replay.stderr).is_empty());
}

fn find_case(out: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no bundle {prefix}* in {}", out.display()))
}
