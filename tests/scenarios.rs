//! The scenarios as tests: every case of the default suites (`scenarios/`, as `ci/suite.sh` runs them) is one test
//! named `<scenario>/prometheus@<version>/<runtime>`, so the usual filters pick cases:
//!
//! ```sh
//! cargo test --test scenarios -- retry/dcr-outage          # that scenario's cases, on every agent
//! cargo test --test scenarios -- --exact auth/entra-client-secret/prometheus@3.16.0/process
//! cargo nextest run --test scenarios --run-ignored all -E 'test(/^tokens\//)'
//! ```
//!
//! A plain `cargo test` (as `.ci/run` runs it) must not start the whole suite a second time: without a filter every
//! case is listed as ignored, and runs only with `--ignored`/`--include-ignored` or `AZRW_SCENARIO_TESTS=1`.
//! Runtime: `process` (`AZRW_SCENARIO_RUNTIME=docker` for Docker). Needs what `azrw run` needs (root, the agents
//! from `ci/setup.sh`). Bundles, `junit.xml` and `report.html` go to `AZRW_SCENARIO_OUT` (default
//! `target/azrw-scenarios`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use azrw::agent::AgentCatalog;
use azrw::cloud::MockData;
use azrw::expect::Verdict;
use azrw::matrix::{Case, MatrixOptions};
use azrw::runner::{RunOptions, run_case};
use azrw::scenario::{self, RuntimeKind};
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `retry/dcr-outage/prometheus@3.5.5/process`: no spaces or brackets, so nextest and `--exact` take it as is.
fn test_name(case: &Case) -> String {
    format!("{}/prometheus@{}/{}", case.scenario.scenario.name, case.agent, case.runtime)
}

fn cases() -> Result<Vec<Case>, String> {
    let files = scenario::discover(&[root().join("scenarios")]).map_err(|e| e.to_string())?;
    let loaded = files
        .iter()
        .map(|f| scenario::load(f).map(Arc::new).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = match std::env::var("AZRW_SCENARIO_RUNTIME").as_deref() {
        Ok("docker") => RuntimeKind::Docker,
        _ => RuntimeKind::Process,
    };
    let opts = MatrixOptions { runtimes: vec![runtime], ..MatrixOptions::default() };
    azrw::matrix::expand(&loaded, &AgentCatalog::default_catalog(), &opts).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let cases = match cases() {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("scenarios: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Without a filter or an explicit ask, listing is all a run does (see the module docs).
    let heavy = args.filter.is_some() || std::env::var("AZRW_SCENARIO_TESTS").is_ok_and(|v| v == "1");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let out = std::env::var_os("AZRW_SCENARIO_OUT").map_or_else(|| root().join("target/azrw-scenarios"), PathBuf::from);
    let runtime = Arc::new(tokio::runtime::Runtime::new().expect("a tokio runtime"));
    // Each trial runs one case (`--test-threads` cases at a time), so the run itself asks for one job.
    let opts = Arc::new(RunOptions {
        mocks: MockData::load(&root().join("mocks")).expect("mocks/ loads"),
        ..RunOptions::new(&out, 1)
    });
    let verdicts: Arc<Mutex<Vec<Verdict>>> = Arc::default();
    let trials = cases
        .into_iter()
        .map(|case| {
            let name = test_name(&case);
            let (runtime, opts, verdicts) = (runtime.clone(), opts.clone(), verdicts.clone());
            Trial::test(name, move || {
                let verdict = runtime.block_on(run_case(&case, &opts));
                let result =
                    if verdict.passed() { Ok(()) } else { Err(Failed::from(azrw::report::render_details(&verdict))) };
                verdicts.lock().expect("verdicts").push(verdict);
                result
            })
            .with_ignored_flag(!heavy)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let verdicts = std::mem::take(&mut *verdicts.lock().expect("verdicts"));
    if !verdicts.is_empty() {
        let _ = azrw::report::write_junit(&verdicts, &out.join("junit.xml"));
        if let Ok(path) = azrw::report::html::write_html(&verdicts, &out) {
            eprintln!("report: {}", path.display());
        }
    }
    conclusion.exit_code()
}
