//! Running cases in parallel changes only how long a run takes: the report of a few real cases at `--jobs 2` is
//! the report at `--jobs 1`, verdicts in case order. Numbers are masked before comparing — durations, request
//! numbers and write counts vary from run to run whatever the parallelism. Needs root and the agents, like
//! `real_agents.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use azrw::agent::AgentCatalog;
use azrw::cloud::MockData;
use azrw::expect::Verdict;
use azrw::matrix::MatrixOptions;
use azrw::report::{render_details, render_table};
use azrw::runner::{RunOptions, run_cases};
use azrw::scenario::{self, RuntimeKind};

/// Table and every case's details, rendered from verdicts whose run-to-run values are masked: durations, numbers
/// (request numbers, write counts, timings, ports) and the private directory's random name.
fn report(verdicts: &[Verdict]) -> String {
    let masked: Vec<Verdict> = verdicts
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.duration = std::time::Duration::ZERO;
            v.explanation = mask(&v.explanation);
            v.config_changes = v.config_changes.iter().map(|c| mask(c)).collect();
            for f in &mut v.findings {
                f.message = mask(&f.message);
                f.evidence = f.evidence.iter().map(|e| mask(e)).collect();
            }
            v
        })
        .collect();
    let mut text = render_table(&masked);
    for v in &masked {
        text.push_str(&render_details(v));
    }
    text
}

fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        let digit = c.is_ascii_digit() || (in_number && c == '.');
        if digit && !in_number {
            out.push('N');
        } else if !digit {
            out.push(c);
        }
        in_number = digit;
    }
    // tempfile's random suffix: /tmp/azrw-case-AbC123/…
    let mut rest = out.as_str();
    let mut result = String::new();
    while let Some(i) = rest.find("azrw-case-") {
        result.push_str(&rest[..i + "azrw-case-".len()]);
        rest = &rest[i + "azrw-case-".len()..];
        let end = rest.find('/').unwrap_or(rest.len());
        result.push('X');
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_at_jobs_2_equal_reports_at_jobs_1() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Three cases, three outcomes of one file: 2.53 rejects the config, 3.5 and latest deliver.
    let files = scenario::discover(&[root.join("scenarios/auth/managed-identity-seed-example.yaml")]).unwrap();
    let loaded: Vec<_> = files.iter().map(|f| Arc::new(scenario::load(f).unwrap())).collect();
    let opts = MatrixOptions {
        runtimes: vec![RuntimeKind::Process],
        modes: vec![azrw::scenario::AgentMode::Server],
        ..MatrixOptions::default()
    };
    let cases = azrw::matrix::expand(&loaded, &AgentCatalog::default_catalog(), &opts).unwrap();
    assert_eq!(cases.len(), 3);

    let _turn = crate::agent_turn(2).await; // --jobs 2
    let mut reports = Vec::new();
    for jobs in [1, 2] {
        let out = tempfile::tempdir().unwrap();
        let run =
            RunOptions { mocks: MockData::load(&root.join("mocks")).unwrap(), ..RunOptions::new(out.path(), jobs) };
        let verdicts = run_cases(&cases, &run, |_| {}).await;
        let ids: Vec<&str> = verdicts.iter().map(|v| v.case_id.as_str()).collect();
        let want: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, want, "verdicts at --jobs {jobs} are not in case order");
        assert!(verdicts.iter().all(Verdict::passed), "--jobs {jobs}:\n{}", render_table(&verdicts));
        reports.push(report(&verdicts));
    }
    assert_eq!(reports[0], reports[1], "the report at --jobs 2 differs from --jobs 1");
}
