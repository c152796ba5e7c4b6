//! The reference sidecar against the mock cloud, in process: it forwards with a token and hands the DCR's answer
//! back (Retry-After included), turns a token refusal into a 503 that names it, and the auth checks judge its
//! traffic by what Azure accepts — still catching what Azure would refuse.

use azrw::Check;
use azrw::remote_write::{RwVersion, encode};
use azrw::sidecar::{SidecarConfig, serve};
use tokio_util::sync::CancellationToken;

use crate::common::{CLAIMED_VERSION, Knobs, assert_violation, batch, finding, send, stage};

const MI_SIDECAR: &str = r#"
name: fake/sidecar
agents: [prometheus@2.53]
auth:
  managed_identity: {client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}
sidecars:
  - name: remote-write
"#;

/// A running reference sidecar in front of the stage's DCR, configured like the harness configures it.
struct Running {
    url: String,
    stop: CancellationToken,
}

async fn start_sidecar(stage: &crate::common::Stage, client_id: &str) -> Running {
    let env = [
        ("INGESTION_URL", stage.ingestion_url.clone()),
        ("IDENTITY_TYPE", "userAssigned".to_owned()),
        ("AZURE_CLIENT_ID", client_id.to_owned()),
    ];
    let config =
        SidecarConfig::from_vars(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).expect("contract");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(serve(config, listener, stage.client.clone(), stop.clone()));
    Running { url, stop }
}

/// Posts one RW 1.0 write to the sidecar as Prometheus does (no Authorization); returns status, Retry-After, body.
async fn write_through(sidecar: &Running) -> (u16, Option<String>, String) {
    let body = encode(&batch(1_764_000_000_000, false), RwVersion::V1);
    let answer = reqwest::Client::new()
        .post(&sidecar.url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", format!("Prometheus/{CLAIMED_VERSION}"))
        .body(body)
        .send()
        .await
        .expect("the sidecar answers");
    let status = answer.status().as_u16();
    let retry_after = answer.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, answer.text().await.unwrap())
}

#[tokio::test]
async fn forwards_with_a_token_reused_across_writes_and_prometheus_headers_kept() {
    let stage = stage(MI_SIDECAR).await;
    let sidecar = start_sidecar(&stage, "381a840f-f3c9-426b-9259-d868b14d9b38").await;
    for _ in 0..3 {
        assert_eq!(write_through(&sidecar).await.0, 200);
    }
    sidecar.stop.cancel();
    let eval = stage.evaluate(CLAIMED_VERSION);
    for check in [
        Check::AuthEndpoint,
        Check::AuthRequest,
        Check::AuthTokenReused,
        Check::WriteBearer,
        Check::WriteUserAgent,
        Check::WriteBody,
    ] {
        let f = finding(&eval, check);
        assert_eq!(f.status, azrw::expect::Status::Pass, "{check}: {f:?}");
    }
}

#[tokio::test]
async fn a_token_refusal_is_a_503_naming_it_and_nothing_reaches_the_dcr() {
    let stage = stage(MI_SIDECAR).await;
    let sidecar = start_sidecar(&stage, "11111111-2222-4333-8444-555555555555").await;
    let (status, _, body) = write_through(&sidecar).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("azrw sidecar: no token:") && body.contains("has not been assigned"), "{body}");
    assert!(stage.cloud.recorder().exchanges().iter().all(|e| e.service != azrw::cloud::Service::Dcr));
}

#[tokio::test]
async fn the_dcr_answer_and_its_retry_after_reach_prometheus() {
    let yaml = format!("{MI_SIDECAR}faults:\n  rules:\n    - {{service: dcr, status: 429, retry_after: 2s}}\n");
    let stage = stage(&yaml).await;
    let sidecar = start_sidecar(&stage, "381a840f-f3c9-426b-9259-d868b14d9b38").await;
    let (status, retry_after, _) = write_through(&sidecar).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("2")));
}

#[tokio::test]
async fn sidecar_traffic_is_judged_by_what_azure_accepts() {
    // azure_identity's own IMDS api-version and the single-slash audience pass from a sidecar …
    let stage_ok = stage(MI_SIDECAR).await;
    let knobs = Knobs {
        imds_api_version: "2019-08-01".into(),
        imds_resource: Some("https://monitor.azure.com".into()),
        ..Knobs::default()
    };
    send(&stage_ok, &knobs).await;
    let eval = stage_ok.evaluate(CLAIMED_VERSION);
    assert_eq!(finding(&eval, Check::AuthRequest).status, azrw::expect::Status::Pass, "{eval:?}");

    // … but what IMDS would refuse is still caught, with the request as evidence.
    let stage_bad = stage(MI_SIDECAR).await;
    send(&stage_bad, &Knobs { imds_api_version: "2017-09-01".into(), ..Knobs::default() }).await;
    assert_violation(
        &stage_bad.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &["api-version is Some(\"2017-09-01\"), from \"2018-02-01\"", "GET http://169.254.169.254"],
    );
    let stage_bad = stage(MI_SIDECAR).await;
    send(&stage_bad, &Knobs { imds_resource: Some("https://management.azure.com/".into()), ..Knobs::default() }).await;
    assert_violation(
        &stage_bad.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &["resource is Some(\"https://management.azure.com/\")", "\"https://monitor.azure.com\""],
    );
}

#[tokio::test]
async fn a_sidecar_that_exits_is_reported_in_its_own_words_and_ends_the_case() {
    let stage = stage(MI_SIDECAR).await;
    let running = stage.evaluate(CLAIMED_VERSION);
    assert_eq!(finding(&running, Check::SidecarRunning).status, azrw::expect::Status::Pass);
    assert!(running.observed.is_none(), "nothing happened yet: {running:?}");

    let exit = azrw::expect::SidecarExit {
        name: "remote-write".into(),
        code: Some(2),
        error: Some("invalid configuration: IDENTITY_TYPE: \"podIdentity\" is not one of …".into()),
    };
    let eval = stage.evaluate_sidecar_exited(CLAIMED_VERSION, &exit);
    assert_violation(&eval, Check::SidecarRunning, &["sidecar remote-write exited", "exit code 2", "IDENTITY_TYPE"]);
    assert_eq!(eval.observed, Some(azrw::scenario::Outcome::ConfigRejected));
    assert!(eval.decided(), "open checks become not applicable: {eval:?}");
}
