//! The user's own agent: `--agent prometheus=PATH` and `prometheus=image:REPO:TAG`, the version read from the build
//! itself (in the case's isolation: root for the namespace), `--assume-version`, a build without azuread, and agent
//! mode on the real binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azrw::agent::store::AgentStore;
use azrw::agent::{AgentCatalog, Version};
use azrw::matrix::MatrixOptions;
use azrw::runner::{RunOptions, run_cases};
use azrw::runtime::engine::Engine;
use azrw::runtime::image::{self, ImageSpec};
use azrw::scenario::{self, AgentMode, Outcome, RuntimeKind};

use crate::common::azrw;

const CLIENT_SECRET: &str = "scenarios/auth/entra-client-secret.yaml";

/// A fake Prometheus: `--version` prints `version_line`; anything else prints `run_line` on stderr and exits 1.
fn fake(dir: &Path, version_line: &str, run_line: &str) -> PathBuf {
    let path = dir.join("prometheus");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in --version) printf '%s\\n' '{version_line}'; exit 0;; esac\n\
         printf '%s\\n' '{run_line}' >&2\nexit 1\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// What Debian's 2.42 package prints for a config with an azuread block (as observed on this machine).
const DEBIAN_VERSION: &str = "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)";
const DEBIAN_REFUSAL: &str = "ts=2026-12-03T12:10:13.561Z caller=main.go:469 level=error msg=\"Error loading config \
                              (--config.file=/in/prometheus.yml)\" file=/in/prometheus.yml err=\"parsing YAML file \
                              /in/prometheus.yml: yaml: unmarshal errors:\\n  line 5: field azuread not found in type \
                              config.plain\"";

fn text(out: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_binary_is_named_by_the_version_it_reports_or_the_one_assumed() {
    let _turn = crate::agent_turn_blocking(1);
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path(), "prometheus, version 3.5.1-acme.1 (branch: release-3.5, revision: 0123abcd)", "no");
    let agent = format!("prometheus={}", bin.display());
    let list = |extra: &[&str]| {
        let out = azrw().args(["list", CLIENT_SECRET, "--runtime", "process", "--agent", &agent]).args(extra).output();
        text(&out.unwrap())
    };
    let (stdout, stderr) = list(&[]);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("auth/entra/client-secret [{agent}@3.5.1/process]"),
            format!("auth/entra/client-secret [{agent}@3.5.1/process/agent]")
        ]
    );
    let digest = azrw::agent::source::sha256_file(&bin).unwrap();
    assert!(
        stderr.contains(&format!("{}, {digest}, version 3.5.1-acme.1, revision 0123abcd", bin.display())),
        "{stderr}"
    );
    let (stdout, _) = list(&["--mode", "agent"]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    // A build whose version line is unreadable: a clear error, unless a version is assumed.
    let odd = tempfile::tempdir().unwrap();
    let odd_bin = fake(odd.path(), "Prometheus (custom build)", "no");
    let odd_agent = format!("prometheus={}", odd_bin.display());
    let out = azrw().args(["list", CLIENT_SECRET, "--runtime", "process", "--agent", &odd_agent]).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read a version from `--version` (it printed: \"Prometheus (custom build)\")"),
        "{stderr}"
    );
    assert!(stderr.contains("--assume-version X.Y.Z"), "{stderr}");
    let out = azrw()
        .args(["list", CLIENT_SECRET, "--runtime", "process", "--mode", "server", "--agent", &odd_agent])
        .args(["--assume-version", "3.13.0"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout.trim(), format!("auth/entra/client-secret [{odd_agent}@3.13.0/process]"), "{stderr}");
    assert!(stderr.contains("version 3.13.0 (assumed: the build reports no readable version)"), "{stderr}");

    // Not there, or not executable.
    let out = azrw().args(["list", CLIENT_SECRET, "--agent", "prometheus=/nonexistent/prometheus"]).output().unwrap();
    let (_, stderr) = text(&out);
    assert!(stderr.contains("prometheus=/nonexistent/prometheus: /nonexistent/prometheus: No such file"), "{stderr}");
}

#[test]
fn a_build_without_azuread_ends_every_case_with_the_no_azuread_outcome() {
    let _turn = crate::agent_turn_blocking(1);
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path(), DEBIAN_VERSION, DEBIAN_REFUSAL);
    let out_dir = dir.path().join("out");
    let junit = dir.path().join("junit.xml");
    let agent = format!("prometheus={}", bin.display());
    let out = azrw()
        .args(["run", CLIENT_SECRET, "--runtime", "process", "--agent", &agent, "--out"])
        .arg(&out_dir)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = "this build of prometheus 2.42.0 has no azuread support (config field azuread unknown); the agent said: \
                Error loading config (--config.file=/in/prometheus.yml): parsing YAML file /in/prometheus.yml: yaml: \
                unmarshal errors: line 5: field azuread not found in type config.plain";
    assert_eq!(stdout.matches(line).count(), 2, "server and agent mode:\n{stdout}");
    let digest = azrw::agent::source::sha256_file(&bin).unwrap();
    for mode in ["", "/agent"] {
        let id = format!("auth/entra/client-secret [{agent}@2.42.0/process{mode}]");
        let case = out_dir.join(azrw::runner::slug(&id));
        let verdict: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("verdict.json")).unwrap()).unwrap();
        assert_eq!(verdict["observed"], "no-azuread", "{verdict}");
        assert_eq!(verdict["build"]["digest"], digest.as_str());
        assert_eq!(verdict["build"]["revision"], "2.42.0+ds-5+deb12u1");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("case.json")).unwrap()).unwrap();
        assert_eq!(record["build"]["location"], bin.display().to_string().as_str());
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!("name=\"azrw.agent.digest\" value=\"{digest}\"")), "{xml}");
    assert!(xml.contains("name=\"azrw.agent.reported-version\" value=\"2.42.0+ds\""), "{xml}");
}

fn catalog_binary(version: &str) -> PathBuf {
    let v: Version = version.parse().unwrap();
    AgentStore::from_env().get(v).unwrap_or_else(|e| panic!("{e} (ci/setup.sh provisions the catalog)"))
}

/// Agent mode on every catalog version: readiness, /metrics and the config endpoint all read from `--agent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_mode_delivers_on_every_catalog_version_with_every_check() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _turn = crate::agent_turn(crate::agent_slots()).await;
    let loaded = Arc::new(scenario::load(Path::new(CLIENT_SECRET)).unwrap());
    let opts = MatrixOptions {
        runtimes: vec![RuntimeKind::Process],
        modes: vec![AgentMode::Agent],
        ..MatrixOptions::default()
    };
    let cases = azrw::matrix::expand(&[loaded], &AgentCatalog::default_catalog(), &opts).unwrap();
    assert_eq!(cases.len(), AgentCatalog::default_catalog().versions.len());
    let out = tempfile::tempdir().unwrap();
    let verdicts = run_cases(&cases, &RunOptions::new(out.path(), crate::agent_slots() as usize), |_| {}).await;
    for v in &verdicts {
        assert!(v.passed(), "{}", azrw::report::render_details(v));
        assert_eq!(v.observed, Some(Outcome::Delivered));
        let config = out.path().join(azrw::runner::slug(&v.case_id)).join("prometheus.yml");
        assert!(!std::fs::read_to_string(config).unwrap().contains("rule_files"));
        // Both were read from the running agent (2.53.4's config endpoint shows the secret: a known advisory).
        use azrw::expect::Status::{KnownVulnerable, Pass};
        for check in [azrw::Check::SecurityConfigRedaction, azrw::Check::AgentMetrics] {
            let f = v.findings.iter().find(|f| f.check == check);
            assert!(f.is_some_and(|f| matches!(f.status, Pass | KnownVulnerable)), "{}: {check}: {f:?}", v.case_id);
        }
    }
}

/// A copy of a catalog binary at another path reaches the catalog's verdicts, as a binary and as an image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_binary_and_its_image_reach_the_catalog_verdicts() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _turn = crate::agent_turn(crate::agent_slots()).await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("myprom");
    std::fs::copy(catalog_binary("3.5.5"), &copy).unwrap();
    let own = azrw::agent::AgentSource::Binary(copy.clone());
    let mut sources = vec![own.clone()];
    let engine = Engine::connect().await.ok();
    let image_tag = match &engine {
        Some(engine) => {
            let digest = azrw::agent::source::sha256_file(&copy).unwrap();
            let spec = ImageSpec { tag: "azrw-test/myprom:3.5.5".into(), ..ImageSpec::own_binary(&digest, &copy) };
            image::build(engine, &spec).await.unwrap();
            sources.push(azrw::agent::AgentSource::Image(spec.tag.clone()));
            Some(spec.tag)
        }
        None => {
            eprintln!("SKIPPED the image half (no Docker)");
            None
        }
    };
    let builds = azrw::runner::sources::identify_all(&[], &sources, None, "own-agents").await.unwrap();
    assert_eq!(builds[&own].version, Version::new(3, 5, 5));
    let loaded = Arc::new(scenario::load(Path::new(CLIENT_SECRET)).unwrap());
    let catalog_ref: azrw::agent::AgentSource = "prometheus@3.5.5".parse().unwrap();
    let opts = MatrixOptions {
        agents: [vec![catalog_ref], sources].concat(),
        builds,
        modes: vec![AgentMode::Server],
        runtimes: vec![RuntimeKind::Process, RuntimeKind::Docker],
        ..MatrixOptions::default()
    };
    let mut cases = azrw::matrix::expand(&[loaded], &AgentCatalog::default_catalog(), &opts).unwrap();
    // The catalog's Docker case needs its image; the own binary's Docker case is covered by the image.
    cases.retain(|c| c.runtime == RuntimeKind::Process || c.build.as_ref().is_some_and(|b| b.is_image()));
    if engine.is_none() {
        cases.retain(|c| c.runtime == RuntimeKind::Process);
    }
    let out = tempfile::tempdir().unwrap();
    let verdicts = run_cases(&cases, &RunOptions::new(out.path(), crate::agent_slots() as usize), |_| {}).await;
    let catalog = &verdicts[0];
    assert!(catalog.passed(), "{}", azrw::report::render_details(catalog));
    for v in &verdicts[1..] {
        assert!(v.passed(), "{}", azrw::report::render_details(v));
        assert_eq!((v.expected, v.observed), (catalog.expected, catalog.observed), "{}", v.case_id);
        let build = v.build.as_ref().unwrap();
        assert_eq!((build.version, build.reported.as_deref()), (Version::new(3, 5, 5), Some("3.5.5")));
    }
    if let Some(tag) = image_tag {
        let v = verdicts.iter().find(|v| v.runtime == "docker").unwrap();
        assert_eq!(v.agent, format!("image {tag} (3.5.5)"));
        assert!(v.build.as_ref().unwrap().digest.starts_with("sha256:"));
        let missing =
            azrw().args(["list", CLIENT_SECRET, "--agent", "prometheus=image:azrw-test/absent:0"]).output().unwrap();
        let (_, stderr) = text(&missing);
        assert_eq!(missing.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("image azrw-test/absent:0 is not built on this Docker (azrw never pulls)"), "{stderr}");
        assert!(stderr.contains("docker load"), "{stderr}");
    }
}
