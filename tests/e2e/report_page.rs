//! `report.html` in a real browser: Debian's Chromium, headless, in a network namespace with nothing but loopback
//! (so the browser's own background traffic cannot leave the machine either), loading the page from `file://`. The
//! page must load with no console message of its own (it has no script: any message is a resource it failed to load or
//! refused) and the screenshot must show the matrix and a failed retry case's timeline, whose early resend is ringed.
//! The failed case is a fake sender that ignores `Retry-After`, judged by the harness's checks.
//!
//! Without `chromium` the test says so and passes, unless `AZRW_REQUIRE_CHROMIUM=1`. `AZRW_SCREENSHOT=PATH` keeps
//! the screenshot.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use azrw::expect::Verdict;
use azrw::report::bundle::{AgentRecord, slug};
use azrw::report::timeline::{Story, render};
use azrw::scenario::Outcome;

use crate::common::{CLAIMED_VERSION, Knobs, Retry, send_retrying, stage};

const SCENARIO: &str = "name: retry/fake-ignores-retry-after\nagents: [prometheus@3.5]\n\
    prometheus:\n  queue_config: {min_backoff: 50ms, max_backoff: 400ms}\n\
    auth:\n  managed_identity: {client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}\n\
    faults:\n  rules: [{name: dcr-503-retry-after, service: dcr, times: 1, status: 503, retry_after: 2s}]\n";

/// A failed case (early resend) and a passing one, with their bundles' timelines, under `out`.
async fn failed_retry_case(out: &Path) -> Vec<Verdict> {
    let stage = stage(SCENARIO).await;
    send_retrying(
        &stage,
        &Knobs { writes: 4, ..Knobs::default() },
        &Retry { ignore_retry_after: true, ..Retry::default() },
    )
    .await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    let recorder = stage.cloud.recorder();
    let (exchanges, tokens) = (recorder.exchanges(), recorder.tokens());
    let verdict = |id: &str, findings| Verdict {
        case_id: format!("{id} [prometheus@{CLAIMED_VERSION}/process]"),
        scenario: id.to_owned(),
        source: "tests/e2e/report_page.rs".to_owned(),
        agent: format!("prometheus@{CLAIMED_VERSION}"),
        runtime: "process".to_owned(),
        expected: Outcome::Delivered,
        observed: eval.observed,
        explanation: eval.explanation.clone(),
        findings,
        config_changes: Vec::new(),
        duration: Duration::from_secs(3),
        error: None,
        mode: azrw::scenario::AgentMode::Server,
        build: None,
    };
    let failed = verdict("retry/fake-ignores-retry-after", eval.findings.clone());
    assert!(!failed.passed(), "the fake sender must fail: {failed:#?}");
    let passed = verdict("auth/fake-conforming", Vec::new());
    let agent = AgentRecord { was_ready: true, exited: None };
    for v in [&failed, &passed] {
        let story = Story {
            exchanges: &exchanges,
            tokens: &tokens,
            scrapes: &[],
            faults: &stage.faults,
            findings: &v.findings,
            agent: &agent,
            agent_started: Duration::ZERO,
            decided: exchanges.last().map(|e| e.at).unwrap_or_default(),
            epoch_ms: 0,
        };
        let dir = out.join(slug(&v.case_id));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("timeline.svg"), render(&story)).unwrap();
    }
    vec![failed, passed]
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| Command::new(b).arg("--version").output().is_ok())
}

#[tokio::test]
async fn the_report_loads_in_headless_chromium_without_a_console_message() {
    let Some(browser) = chromium() else {
        assert!(std::env::var("AZRW_REQUIRE_CHROMIUM").is_err(), "AZRW_REQUIRE_CHROMIUM is set but chromium is absent");
        eprintln!("SKIPPED: no chromium on PATH (apt-get install -y chromium)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let verdicts = failed_retry_case(out.path()).await;
    let page = azrw::report::html::write_html(&verdicts, out.path()).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    let labels: Vec<&str> =
        html.split("class=\"evidence-label\">").skip(1).filter_map(|l| l.split('<').next()).collect();
    assert!(labels.iter().any(|l| l.contains("retry.retry-after")), "the early resend is labelled: {labels:?}");
    let shot = out.path().join("screenshot.png");
    let profile = tempfile::tempdir().unwrap();
    // unshare -n: the browser gets a network namespace of its own with nothing in it.
    let run = Command::new("unshare")
        .args(["-n", browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--window-size=1280,1400"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("unshare runs (root)");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "chromium failed: {stderr}");
    // Chromium's own pages (`chrome://omnibox-popup…`) log to the same console; only the page's messages count.
    let console: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Failed to load resource"))
        .filter(|l| !l.contains("source: chrome://"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a screenshot with content, got {size} bytes");
    if let Some(keep) = std::env::var_os("AZRW_SCREENSHOT") {
        std::fs::copy(&shot, &keep).unwrap();
        eprintln!("screenshot kept at {}", Path::new(&keep).display());
    }
}
