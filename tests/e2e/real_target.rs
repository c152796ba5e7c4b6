//! The real Azure target, end to end against the mock cloud through the same code path: `scenarios/real/oauth.yaml`
//! with its `${…}` variables pointing at a mock DCR and workspace, the agent (upstream Prometheus 3.5) writing with
//! the production config plus a run label, the harness reading back with azure_identity tokens. Only the base URLs
//! and trust differ from a real run: the harness and the agent go through the mock's proxy and trust its CA, so
//! nothing reaches a real Azure host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azrw::agent::AgentCatalog;
use azrw::cloud::{CloudConfig, MockCloud, MockData, Standalone};
use azrw::expect::{Status, Verdict};
use azrw::matrix::MatrixOptions;
use azrw::report::render_details;
use azrw::runner::real::{Access, RealOptions};
use azrw::runner::{RunOptions, run_cases};
use azrw::scenario::{self, Outcome};

async fn run_real(break_cloud: impl FnOnce(&mut CloudConfig), deadline: Duration) -> (Verdict, tempfile::TempDir) {
    let _turn = crate::agent_turn(1).await;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let standalone = Standalone::default();
    let mut config = standalone.config(MockData::embedded());
    break_cloud(&mut config);
    let cloud = MockCloud::start(config, std::net::TcpListener::bind("127.0.0.1:0").unwrap(), None).await.unwrap();

    let mut loaded = scenario::load(&root.join("scenarios/real/oauth.yaml")).unwrap();
    loaded.scenario.deadline = deadline;
    let opts = MatrixOptions { agents: vec!["prometheus@3.5".parse().unwrap()], ..MatrixOptions::default() };
    let cases = azrw::matrix::expand(&[Arc::new(loaded)], &AgentCatalog::default_catalog(), &opts).unwrap();
    assert_eq!(cases.len(), 1);

    let out = tempfile::tempdir().unwrap();
    let run = RunOptions {
        real: Some(RealOptions {
            env: standalone.env().into_iter().collect(),
            access: Access::Via { proxy_url: cloud.proxy_url(), ca_pem: cloud.ca_pem().to_owned() },
            poll: Duration::from_millis(500),
        }),
        ..RunOptions::new(out.path(), 1)
    };
    let mut verdicts = run_cases(&cases, &run, |_| {}).await;
    cloud.shutdown().await;
    (verdicts.remove(0), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_target_passes_when_the_workspace_answers_with_the_runs_series() {
    let (v, out) = run_real(|_| {}, Duration::from_secs(60)).await;
    assert!(v.passed(), "{}", render_details(&v));
    assert_eq!(v.observed, Some(Outcome::Delivered));
    let f = v.findings.iter().find(|f| f.check == azrw::Check::SeriesPresent).unwrap();
    assert!(
        f.evidence.iter().any(|e| e.contains("prometheus.monitor.azure.com/api/v1/query?query=up{azrw_run=")),
        "{f:?}"
    );
    assert!(
        v.config_changes.iter().any(|c| c.starts_with("global.external_labels.azrw_run")),
        "{:?}",
        v.config_changes
    );
    let queries =
        std::fs::read_to_string(out.path().join(azrw::runner::slug(&v.case_id)).join("queries.json")).unwrap();
    assert!(queries.contains("\"status\": 200"), "{queries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_target_fails_clearly_when_the_series_never_shows_up() {
    // The writer app lost its role on the DCR: every write is refused, nothing reaches the workspace.
    let (v, _out) =
        run_real(|c| c.roles.retain(|r| r.scope != azrw::scenario::RoleScope::Dcr), Duration::from_secs(12)).await;
    assert!(!v.passed());
    assert_eq!(v.observed, None, "{}", render_details(&v));
    let f = v.findings.iter().find(|f| f.check == azrw::Check::SeriesPresent).unwrap();
    assert_eq!(f.status, Status::Undecided, "{f:?}");
    assert!(f.message.contains("not in the workspace within the 12s deadline: up{azrw_run="), "{}", f.message);
    assert!(f.evidence.iter().any(|e| e.contains("→ 200, 0 series")), "{f:?}");
}

#[tokio::test]
async fn real_target_refuses_to_run_without_allow_real() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let loaded = scenario::load(&root.join("scenarios/real/oauth.yaml")).unwrap();
    let cases =
        azrw::matrix::expand(&[Arc::new(loaded)], &AgentCatalog::default_catalog(), &MatrixOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = RunOptions::new(out.path(), 1);
    let v = run_cases(&cases[..1], &run, |_| {}).await.remove(0);
    assert!(v.error.as_deref().unwrap_or_default().contains("--allow-real"), "{v:?}");
}
