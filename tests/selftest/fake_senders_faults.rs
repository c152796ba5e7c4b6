//! Retry and token-lifecycle expectations, each broken by a fake sender against a mock cloud that follows a fault
//! plan: the harness must name the request, the answer and the timing. A conforming sender passes them all.

use azrw::Check;
use azrw::expect::Status;

use crate::common::{CLAIMED_VERSION, Knobs, Retry, assert_violation, finding, send, send_retrying, stage};

/// A user-assigned identity, quick backoff, and the fault rules given.
fn scenario(faults: &str) -> String {
    format!(
        "name: fake/faults\nagents: [prometheus@3.5]\nprometheus:\n  queue_config: {{min_backoff: 50ms, max_backoff: 400ms}}\n\
         auth:\n  managed_identity: {{client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}}\nfaults:\n{faults}"
    )
}

fn knobs(writes: usize) -> Knobs {
    Knobs { writes, ..Knobs::default() }
}

#[tokio::test]
async fn conforming_retrying_sender_passes_every_retry_check() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 3, status: 503}]\n")).await;
    send_retrying(&stage, &knobs(5), &Retry::default()).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    for check in [Check::RetryRecoverableResent, Check::RetryBackoff, Check::RetryAttemptHeader, Check::RetryNoLoss] {
        assert_eq!(finding(&eval, check).status, Status::Pass, "{:#?}", finding(&eval, check));
    }
    crate::common::assert_clean(&eval);
}

#[tokio::test]
async fn retrying_a_400_is_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 1, status: 400}]\n")).await;
    send_retrying(&stage, &knobs(4), &Retry { retry_4xx: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::RetryDropped, &["refused with 400", "resent: request #", "Retry-Attempt: 1"]);
}

#[tokio::test]
async fn giving_up_on_a_503_is_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 1, status: 503}]\n")).await;
    send_retrying(&stage, &knobs(4), &Retry { give_up_on_5xx: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::RetryRecoverableResent, &["gave up", "503", "moved on: request #"]);
}

#[tokio::test]
async fn ignoring_retry_after_is_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 1, status: 503, retry_after: 2s}]\n")).await;
    send_retrying(&stage, &knobs(4), &Retry { ignore_retry_after: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::RetryRetryAfter,
        &["Retry-After 2s", "it must wait", "Retry-After: 2", "retried: request #"],
    );
}

#[tokio::test]
async fn honouring_an_http_date_retry_after_passes() {
    let stage = stage(&scenario(
        "  rules: [{service: dcr, times: 1, status: 503, retry_after_date: 2s}]
",
    ))
    .await;
    send_retrying(&stage, &knobs(2), &Retry::default()).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    for check in [Check::RetryRetryAfter, Check::RetryBackoff] {
        assert_eq!(finding(&eval, check).status, Status::Pass, "{:#?}", finding(&eval, check));
    }
}

#[tokio::test]
async fn ignoring_an_http_date_retry_after_is_caught() {
    let stage = stage(&scenario(
        "  rules: [{service: dcr, times: 1, status: 503, retry_after_date: 2s}]
",
    ))
    .await;
    send_retrying(&stage, &knobs(2), &Retry { ignore_retry_after: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::RetryRetryAfter, &["it must wait", "with Retry-After: ", " GMT (2.", "s ahead)"]);
}

#[tokio::test]
async fn a_tight_retry_loop_is_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 3, status: 503}]\n")).await;
    send_retrying(&stage, &knobs(4), &Retry { tight_loop: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::RetryBackoff, &["retry storm", "min_backoff 50ms", "resent: request #"]);
}

#[tokio::test]
async fn a_missing_retry_attempt_header_is_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 2, status: 500}]\n")).await;
    send_retrying(&stage, &knobs(4), &Retry { no_attempt_header: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::RetryAttemptHeader, &["Retry-Attempt absent", "prometheus 3.5.1 sends \"1\""]);
}

#[tokio::test]
async fn losing_samples_across_an_outage_is_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 3, status: 503}]\n")).await;
    send_retrying(&stage, &knobs(7), &Retry { give_up_on_5xx: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::RetryNoLoss,
        &["samples lost", "azrw_target_scrapes_total values 1..2", "request #"],
    );
}

#[tokio::test]
async fn reconnecting_after_failed_tls_handshakes_passes() {
    let stage = stage(&scenario("  rules: [{name: dcr-tls, service: dcr, times: 2, tls_failure: true}]\n")).await;
    send_retrying(&stage, &knobs(4), &Retry::default()).await;
    let failed: Vec<String> = stage
        .cloud
        .recorder()
        .exchanges()
        .iter()
        .filter(|e| e.fault.as_ref().is_some_and(|f| f.rule == "dcr-tls" && f.unanswered))
        .map(|e| format!("{} {}", e.method, e.target))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].starts_with("CONNECT ") && failed[0].ends_with(":443"), "{failed:?}");
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_eq!(finding(&eval, Check::RetryNoLoss).status, Status::Pass, "{:#?}", finding(&eval, Check::RetryNoLoss));
    crate::common::assert_clean(&eval);
}

#[tokio::test]
async fn giving_up_after_a_failed_tls_handshake_is_caught() {
    // Three handshakes fail, so the sender abandons its first three batches (counter values 0, 1 and 2).
    let stage = stage(&scenario("  rules: [{service: dcr, times: 3, tls_failure: true}]\n")).await;
    send_retrying(&stage, &knobs(5), &Retry { give_up_on_5xx: true, ..Retry::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::RetryNoLoss,
        &["samples lost", "azrw_target_scrapes_total values 1..2", "request #"],
    );
}

#[tokio::test]
async fn reusing_an_expired_token_is_caught() {
    let stage = stage(&scenario("  tokens: {expired: 1}\n")).await;
    send(&stage, &knobs(3)).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::TokensNotExpired, &["token #1", "expired", "request #"]);
}

#[tokio::test]
async fn refreshing_before_the_refresh_point_is_caught() {
    let stage = stage(&scenario("  tokens: {refresh_in: 1h}\n")).await;
    send(&stage, &Knobs { token_per_write: true, ..knobs(3) }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(&eval, Check::TokensRefresh, &["token #2", "before token #1's refresh point", "request #"]);
}

/// A 12-minute token: Prometheus asks again at 6 min, MSAL still serves it from its cache (6 min remain, more than
/// its 5-minute window), so the first new token is due at 9 min.
const LONG_LIVED: &str = "cloud:\n  token_lifetime: 12m\nexpect:\n  token_refreshes: 1\n";

#[tokio::test]
async fn a_long_lived_token_is_judged_only_after_its_refresh() {
    let stage = stage(&format!("{}{LONG_LIVED}", scenario("  rules: []\n"))).await;
    send(&stage, &knobs(3)).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    let f = finding(&eval, Check::TokensRefresh);
    assert_eq!(f.status, Status::Undecided, "{f:#?}");
    assert!(f.message.contains("0 of 1 token refreshes seen (the first is due +540."), "{f:#?}");
}

#[tokio::test]
async fn bypassing_the_sdk_token_cache_is_caught() {
    let stage = stage(&format!("{}{LONG_LIVED}", scenario("  rules: []\n"))).await;
    send(&stage, &Knobs { token_per_write: true, ..knobs(3) }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::TokensRefresh,
        &["token #2", "before token #1's refresh point +540.", "lifetime 720s", "MSAL serves its cache", "request #"],
    );
}

#[tokio::test]
async fn agent_metrics_that_disagree_with_the_mock_are_caught() {
    let stage = stage(&scenario("  rules: [{service: dcr, times: 1, status: 400}]\n")).await;
    send_retrying(&stage, &knobs(3), &Retry::default()).await;
    // Two samples per batch: the DCR refused one batch, and an honest agent says so.
    let honest = "prometheus_remote_storage_samples_total{remote_name=\"r\"} 6\n\
                  prometheus_remote_storage_samples_failed_total{remote_name=\"r\"} 2\n\
                  prometheus_remote_storage_queue_highest_sent_timestamp_seconds 1764000002\n";
    assert_eq!(stage.metrics_check(CLAIMED_VERSION, honest).status, Status::Pass);
    let lying = honest.replace("failed_total{remote_name=\"r\"} 2", "failed_total{remote_name=\"r\"} 9");
    let f = stage.metrics_check(CLAIMED_VERSION, &lying);
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    assert!(f.message.contains("samples_failed_total 9 but the DCR refused 2"), "{f:#?}");
}

#[tokio::test]
async fn waiting_out_a_token_services_retry_after_passes() {
    let stage = stage(&scenario("  rules: [{service: imds, times: 1, status: 429, retry_after: 1s}]\n")).await;
    send(&stage, &Knobs { token_attempts: 3, ..knobs(3) }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    let f = finding(&eval, Check::TokensRetryAfter);
    assert_eq!(f.status, Status::Pass, "{f:#?}");
    crate::common::assert_clean(&eval);
}

#[tokio::test]
async fn asking_imds_again_before_its_retry_after_is_caught() {
    let stage = stage(&scenario("  rules: [{service: imds, times: 2, status: 429, retry_after: 2s}]\n")).await;
    send(&stage, &Knobs { token_attempts: 3, ignore_token_retry_after: true, ..knobs(3) }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::TokensRetryAfter,
        &[
            "IMDS answered 429 with Retry-After 2s",
            "refused: request #1 GET http://169.254.169.254",
            "asked again: request #2",
        ],
    );
}
