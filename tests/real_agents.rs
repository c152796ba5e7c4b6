//! The real thing: every `scenarios/auth` case against the provisioned upstream Prometheus builds, in the process
//! runtime. Every verdict must match its expected outcome — zero false failures — and the capability table must
//! hold against each binary. Needs root (network namespaces) and the agents from `ci/setup.sh`.

use std::path::PathBuf;
use std::sync::Arc;

use azrw::agent::AgentCatalog;
use azrw::agent::store::AgentStore;
use azrw::cloud::MockData;
use azrw::expect::Status;
use azrw::report::{render_details, render_table};
use azrw::runner::{RunOptions, run_cases};
use azrw::scenario::{self, MatrixOptions, RuntimeKind};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_scenario_reaches_its_expected_outcome_on_every_agent() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = scenario::discover(&[root.join("scenarios/auth")]).unwrap();
    let loaded: Vec<_> = files.iter().map(|f| Arc::new(scenario::load(f).unwrap())).collect();
    let opts = MatrixOptions { runtimes: vec![RuntimeKind::Process], ..MatrixOptions::default() };
    let cases = scenario::expand(&loaded, &AgentCatalog::default_catalog(), &opts).unwrap();

    let store = AgentStore::from_env();
    let catalog = AgentCatalog::default_catalog();
    for v in &catalog.versions {
        store.get(*v).unwrap_or_else(|e| panic!("{e} (ci/setup.sh provisions the catalog)"));
    }
    assert!(cases.len() >= 3 * files.len() - 2, "{} cases from {} files", cases.len(), files.len());

    let out = tempfile::tempdir().unwrap();
    let run = RunOptions {
        out_dir: out.path().to_owned(),
        jobs: 2,
        agents: store,
        mocks: MockData::load(&root.join("mocks")).unwrap(),
        cancel: CancellationToken::new(),
        run_id: azrw::runner::new_run_id(),
        real: None,
    };
    let verdicts = run_cases(&cases, &run, |_| {}).await;
    assert_eq!(verdicts.len(), cases.len());
    let failed: Vec<String> = verdicts.iter().filter(|v| !v.passed()).map(render_details).collect();
    assert!(failed.is_empty(), "{}\n{}", failed.join("\n"), render_table(&verdicts));

    // The capability table was proven on every case whose agent got far enough to tell.
    for v in &verdicts {
        let table = v.findings.iter().find(|f| f.check == "capability.table");
        assert!(matches!(table.map(|f| f.status), Some(Status::Pass)), "{}: {table:?}", v.case_id);
    }
    // Each catalog version rejected at least one config and delivered at least once, so both sides of the table
    // were exercised where the version has a boundary.
    for version in &catalog.versions {
        let agent = format!("prometheus@{version}");
        assert!(verdicts.iter().any(|v| v.agent == agent && v.observed == Some(azrw::scenario::Outcome::Delivered)));
    }
}
