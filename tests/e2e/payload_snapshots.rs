//! Snapshots of what each provisioned Prometheus version delivers for the compliance target (text, then with a
//! native histogram over protobuf, then with exemplars and a unit over OpenMetrics; RW 1.0 and 2.0), normalised
//! (`azrw::expect::payload::snapshot`): a new release that sends something different shows up as a diff in
//! `tests/snapshots/`. Runs real agents (root, network namespaces, `ci/setup.sh`).
//!
//! Measured on 2.53.4, 3.5.5 and 3.16.0, the versions differ in the scrape's `Accept` header (formats offered,
//! their q-values) and the `User-Agent`; the decoded payloads themselves — native histograms field by field,
//! exemplars, metadata with units — are identical, so the rest of each snapshot is too.

use std::path::PathBuf;
use std::sync::Arc;

use azrw::agent::AgentCatalog;
use azrw::cloud::MockData;
use azrw::matrix::MatrixOptions;
use azrw::report::render_details;
use azrw::runner::{RunOptions, run_cases, slug};
use azrw::scenario::{self, RuntimeKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_payload_per_agent_version() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = ["compliance", "rw2", "native-histogram", "native-histogram-rw2", "exemplars-unit", "exemplars-rw2"]
        .map(|name| root.join(format!("scenarios/payload/{name}.yaml")));
    let loaded: Vec<_> = files.iter().map(|f| Arc::new(scenario::load(f).unwrap())).collect();
    let opts = MatrixOptions { runtimes: vec![RuntimeKind::Process], ..MatrixOptions::default() };
    let cases = azrw::matrix::expand(&loaded, &AgentCatalog::default_catalog(), &opts).unwrap();
    let _turn = crate::agent_turn(crate::agent_slots()).await; // the default --jobs
    let out = tempfile::tempdir().unwrap();
    let run = RunOptions {
        mocks: MockData::load(&root.join("mocks")).unwrap(),
        ..RunOptions::new(out.path(), crate::agent_slots() as usize)
    };
    let verdicts = run_cases(&cases, &run, |_| {}).await;
    // The snapshots keep the files they had when this was its own test binary: `tests/snapshots/`, named
    // `payload_snapshots__…`, not `e2e__payload_snapshots__…` in `tests/e2e/snapshots/`.
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    let _settings = settings.bind_to_scope();
    for v in &verdicts {
        assert!(v.passed(), "{}", render_details(v));
        let text = std::fs::read_to_string(out.path().join(slug(&v.case_id)).join("payload.txt")).unwrap();
        let name = format!("payload_snapshots__{}-{}", v.scenario.replace('/', "-"), v.agent.replace('@', "-"));
        insta::assert_snapshot!(name, text);
    }
}
