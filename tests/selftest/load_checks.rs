//! The load expectations, read from the recorder's per-series accounting: a conforming fake sender passes them,
//! and a sender that loses, duplicates or leaves out samples is caught with the series, the timestamp and the
//! request. Also: accounting keeps no series in recorded exchanges, and the DCR throttle answers 429.

use azrw::Check;
use std::path::Path;

use azrw::cloud::recorder::Detail;
use azrw::remote_write::{DecodedWrite, Sample, Series};

use crate::common::{Knobs, assert_violation, fetch_token, finding, post_write, stage};

const LOAD: &str = r#"
name: fake/load
agents: [prometheus@3.5]
auth:
  managed_identity: {client_id: ""}
record: accounting
load: {series: 3, duration: 0s, min_samples_per_minute: 60}
"#;

const START_MS: i64 = 1_764_000_000_000;

/// The harness target's series plus `series` load series, all scraped at `START_MS + 1000 * scrape`.
fn scrape(scrape: i64, series: &[usize]) -> DecodedWrite {
    let ts = START_MS + 1000 * scrape;
    let mut write = crate::common::batch(ts, false);
    for i in series {
        write.series.push(Series {
            labels: vec![
                ("__name__".into(), azrw::scrape::LOAD_METRIC.into()),
                ("job".into(), azrw::scrape::JOB.into()),
                ("series".into(), i.to_string()),
            ],
            samples: vec![Sample { timestamp: ts, value: scrape as f64 }],
            histograms: vec![],
            exemplars: vec![],
        });
    }
    write
}

/// Sends `scrapes` (scrape number, load series carried) with one token; returns the stage.
async fn send(scenario: &str, scrapes: &[(i64, &[usize])]) -> crate::common::Stage {
    let stage = stage(scenario).await;
    let token = fetch_token(&stage, &Knobs::default()).await.expect("token");
    for (n, series) in scrapes {
        assert_eq!(post_write(&stage, &token, &scrape(*n, series)).await, 200);
    }
    stage
}

const ALL: &[usize] = &[0, 1, 2];

#[tokio::test]
async fn a_conforming_sender_passes_every_load_check() {
    let stage = send(LOAD, &[(0, ALL), (1, ALL), (2, ALL), (3, ALL)]).await;
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    for check in
        [Check::LoadSustained, Check::LoadRate, Check::LoadComplete, Check::LoadNoLoss, Check::LoadNoDuplicates]
    {
        let f = finding(&eval, check);
        assert_eq!(f.status, azrw::expect::Status::Pass, "{f:#?}");
    }
    // series.present and the outcome are decided from the accounting: the bodies are gone.
    assert_eq!(finding(&eval, Check::SeriesPresent).status, azrw::expect::Status::Pass, "{:#?}", eval.findings);
    assert_eq!(eval.observed, Some(azrw::scenario::Outcome::Delivered));
    for e in stage.exchanges() {
        if let Detail::Write { body: Ok(body), .. } = &e.detail {
            assert!(body.series.is_empty(), "accounting mode kept the series of {}", e.describe());
        }
    }
}

#[tokio::test]
async fn a_resent_sample_is_caught_with_series_timestamp_and_request() {
    let stage = send(LOAD, &[(0, ALL), (1, ALL), (1, &[2]), (2, ALL)]).await;
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    let ts = (START_MS + 1000).to_string();
    assert_violation(&eval, Check::LoadNoDuplicates, &["azrw_load_series{", "series=\"2\"", &ts, "request #"]);
}

#[tokio::test]
async fn a_lost_scrape_is_caught_with_the_gap() {
    let stage = send(LOAD, &[(0, ALL), (1, ALL), (4, ALL)]).await;
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    let (from, to) = ((START_MS + 1000).to_string(), (START_MS + 4000).to_string());
    assert_violation(&eval, Check::LoadNoLoss, &["2 missing", &format!("widest step {from} → {to}"), "request #"]);
}

#[tokio::test]
async fn a_series_that_never_arrives_is_named() {
    let stage = send(LOAD, &[(0, &[0, 1]), (1, &[0, 1])]).await;
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    assert_violation(&eval, Check::LoadComplete, &["1 of 3", "azrw_load_series{series=\"2\"}"]);
}

#[tokio::test]
async fn a_rate_below_the_stated_minimum_is_caught() {
    let slow = LOAD.replace("min_samples_per_minute: 60", "min_samples_per_minute: 1000000000000");
    let stage = send(&slow, &[(0, ALL), (1, ALL)]).await;
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    assert_violation(&eval, Check::LoadRate, &["below the required 1000000000000", "samples accepted over"]);
}

#[tokio::test]
async fn load_checks_wait_for_the_stated_duration() {
    let long = LOAD.replace("duration: 0s", "duration: 10m");
    let stage = send(&long, &[(0, ALL), (1, ALL)]).await;
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    let f = finding(&eval, Check::LoadSustained);
    assert_eq!(f.status, azrw::expect::Status::Undecided, "{f:#?}");
    assert!(f.message.contains("of 600s sustained"), "{f:#?}");
    assert!(!eval.decided());
}

#[tokio::test]
async fn a_throttling_fault_answers_every_nth_write_429_and_throttled_samples_are_not_counted() {
    let throttled = format!("{LOAD}faults:\n  rules: [{{service: dcr, every: 2, status: 429, retry_after: 1s}}]\n");
    let stage = stage(&throttled).await;
    let token = fetch_token(&stage, &Knobs::default()).await.expect("token");
    let statuses = [
        post_write(&stage, &token, &scrape(0, ALL)).await,
        post_write(&stage, &token, &scrape(1, ALL)).await,
        // The agent resends the refused batch: accepted once, so no duplicate.
        post_write(&stage, &token, &scrape(1, ALL)).await,
    ];
    assert_eq!(statuses, [200, 429, 200]);
    let eval = stage.evaluate(crate::common::CLAIMED_VERSION);
    assert_eq!(finding(&eval, Check::LoadNoDuplicates).status, azrw::expect::Status::Pass, "{:#?}", eval.findings);
    // Without bodies resends cannot be matched to batches: the retry checks step aside instead of waiting forever.
    for check in [Check::RetryRecoverableResent, Check::RetryRetryAfter, Check::RetryBackoff, Check::RetryAttemptHeader]
    {
        assert_eq!(finding(&eval, check).status, azrw::expect::Status::Skipped, "{check}");
    }
    let throttled = stage.exchanges().into_iter().find(|e| e.status == 429).unwrap();
    assert_eq!(throttled.fault.unwrap().retry_after.map(|r| r.wait), Some(std::time::Duration::from_secs(1)));
}

#[test]
fn a_load_scenario_must_keep_accounting_not_bodies() {
    let full = LOAD.replace("record: accounting\n", "");
    let err = azrw::scenario::parse(Path::new("load.yaml"), full).unwrap_err().to_string();
    assert!(err.contains("load.yaml") && err.contains("record: accounting"), "{err}");
    let long = LOAD.replace("duration: 0s", "duration: 2m");
    let err = azrw::scenario::parse(Path::new("load.yaml"), long).unwrap_err().to_string();
    assert!(err.contains("load.duration") && err.contains("shorter than the deadline"), "{err}");
}
