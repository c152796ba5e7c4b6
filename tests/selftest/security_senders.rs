//! The security checks, each broken by a fake sender: the bearer token sent to a plain remote_write host or to the
//! scrape target, a redirect followed with the token, a certificate the sender should have refused, the client
//! secret on the config endpoint, a mock-issued token in the log. The harness must name the request, the host and
//! the header — never the secret or token itself. Conforming senders pass.

use azrw::Check;
use std::time::Duration;

use crate::common::{CLAIMED_VERSION, Knobs, Stage, assert_violation, batch, fetch_token, finding, post_write, stage};
use azrw::expect::Status;
use azrw::expect::secrets::{self, Secret};
use azrw::remote_write::{RwVersion, encode};
use azrw::scrape::Scrape;

const SECRET: &str = "fake-sender-secret-5e6f";
const SINK: &str = "metrics-sink.example.net";
const MOVED: &str = "dce-moved.example.net";

fn user_assigned(extra: &str) -> String {
    format!(
        "name: fake/security\nagents: [prometheus@3.5]\nauth:\n  managed_identity: {{client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}}\n{extra}"
    )
}

fn client_secret(extra: &str) -> String {
    format!(
        "name: fake/security-oauth\nagents: [prometheus@3.5]\nauth:\n  oauth:\n    client_id: 8e547ddf-a7de-46ed-9269-5526a55d3211\n\
         \x20   client_secret: {SECRET}\n    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47\n{extra}"
    )
}

/// A client that reaches the mock cloud as the stage's does, follows no redirect, and — with `insecure` — accepts
/// any certificate (the violation `security.tls-verify` exists to catch).
fn client(stage: &Stage, insecure: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(stage.cloud.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(stage.cloud.proxy_url()).unwrap())
        .tls_certs_only([ca])
        .tls_danger_accept_invalid_certs(insecure)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Posts one remote-write body to `url` with `client`, with the bearer token if given; the status and `Location`.
async fn post_to(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, Option<String>) {
    let body = encode(&batch(1_764_000_000_000, false), RwVersion::V1);
    let mut req = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", format!("Prometheus/{CLAIMED_VERSION}"))
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (r.status().as_u16(), location)
        }
        Err(_) => (0, None),
    }
}

/// Waits until the mock has recorded `n` handshakes that presented a bad certificate: a client learns that its
/// handshake failed before the mock does (it sends the alert), so the record can trail the client's error.
async fn handshakes_recorded(stage: &Stage, n: usize) {
    let recorder = stage.cloud.recorder();
    let mut changed = recorder.subscribe();
    let count =
        || recorder.exchanges().iter().filter(|e| e.fault.as_ref().is_some_and(|f| f.certificate.is_some())).count();
    tokio::time::timeout(Duration::from_secs(10), async {
        while count() < n {
            changed.changed().await.unwrap();
        }
    })
    .await
    .expect("the mock records every handshake");
}

fn no_token_in(stage: &Stage, text: &str) {
    for (_, jwt) in stage.cloud.recorder().token_values() {
        assert!(!text.contains(&jwt), "a token value leaked into evidence:\n{text}");
    }
}

fn text_of(f: &azrw::expect::Finding) -> String {
    format!("{}\n{}", f.message, f.evidence.join("\n"))
}

// security.token-scope

#[tokio::test]
async fn the_token_sent_to_a_plain_remote_write_host_is_caught() {
    let stage = stage(&user_assigned(&format!("prometheus:\n  plain_remote_writes: [{SINK}]\n"))).await;
    let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
    assert_eq!(post_write(&stage, &token, &batch(1_764_000_000_000, false)).await, 200);
    let sink = format!("https://{SINK}/api/v1/write");
    assert_eq!(post_to(&stage.client, &sink, Some(&token)).await.0, 204, "the mock serves the plain host");
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::SecurityTokenScope,
        &["beyond the DCR host", "request #", &format!("POST https://{SINK}/api/v1/write"), "Bearer [token #1]"],
    );
    no_token_in(&stage, &text_of(finding(&eval, Check::SecurityTokenScope)));
}

#[tokio::test]
async fn a_plain_remote_write_without_the_token_passes_and_waits_for_its_first_write() {
    let stage = stage(&user_assigned(&format!("prometheus:\n  plain_remote_writes: [{SINK}]\n"))).await;
    let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
    post_write(&stage, &token, &batch(1_764_000_000_000, false)).await;
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityTokenScope).clone();
    assert_eq!(f.status, Status::Undecided, "nothing shows where plain writes go yet: {f:#?}");
    post_to(&stage.client, &format!("https://{SINK}/api/v1/write"), None).await;
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityTokenScope).clone();
    assert_eq!(f.status, Status::Pass, "{f:#?}");
    assert!(text_of(&f).contains(&format!("{SINK}: 1 write(s)")) && text_of(&f).contains("no Authorization"), "{f:#?}");
}

#[tokio::test]
async fn the_token_sent_to_the_scrape_target_is_caught() {
    let stage = stage(&user_assigned("")).await;
    let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
    post_write(&stage, &token, &batch(1_764_000_000_000, false)).await;
    // What the harness target logs when scraped with that header (the runner installs the same redactor).
    let target = azrw::scrape::ScrapeTarget::start(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    target.redact_authorization_with(stage.cloud.authorization_redactor());
    let metrics = format!("http://{}/metrics", target.addr());
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    plain.get(&metrics).send().await.unwrap();
    plain.get(&metrics).bearer_auth(&token).send().await.unwrap();
    let scrapes: Vec<Scrape> = target.log().snapshot();
    assert_eq!(scrapes[1].authorization.as_deref(), Some("Bearer [token #1]"));
    let eval = stage.evaluate_scrapes(CLAIMED_VERSION, &scrapes);
    assert_violation(&eval, Check::SecurityTokenScope, &["scrape #2 of the harness target", "Bearer [token #1]"]);
    // A clean scrape log and no plain host: nothing to judge, so no finding at all.
    let clean = stage.evaluate_scrapes(CLAIMED_VERSION, &scrapes[..1]);
    assert!(clean.findings.iter().all(|f| f.check != azrw::Check::SecurityTokenScope), "{:#?}", clean.findings);
    target.shutdown();
}

// security.redirect

fn redirects(status: u16) -> String {
    user_assigned(&format!(
        "faults:\n  rules:\n    - {{name: moved, service: dcr, times: 1, redirect: {{status: {status}, to: {MOVED}}}}}\n"
    ))
}

#[tokio::test]
async fn following_a_redirect_with_the_token_is_caught_for_307_and_308() {
    for status in [307, 308] {
        let stage = stage(&redirects(status)).await;
        let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
        let manual = client(&stage, false);
        let (answered, location) = post_to(&manual, &stage.ingestion_url, Some(&token)).await;
        assert_eq!(answered, status);
        let location = location.expect("a Location");
        assert!(location.starts_with(&format!("https://{MOVED}/dataCollectionRules/")), "{location}");
        // The violation: the token goes with the body to the other host.
        assert_eq!(post_to(&manual, &location, Some(&token)).await.0, 204);
        let eval = stage.evaluate(CLAIMED_VERSION);
        assert_violation(
            &eval,
            Check::SecurityRedirect,
            &[
                &format!("answered {status}, Location: https://{MOVED}/"),
                &format!("followed: request #3 POST https://{MOVED}/"),
                "Authorization: Bearer [token #1]",
                "a body (Content-Length: ",
            ],
        );
        // Where the redirect led is this check's to judge, not token-scope's.
        assert!(eval.findings.iter().all(|f| f.check != azrw::Check::SecurityTokenScope), "{:#?}", eval.findings);
        no_token_in(&stage, &text_of(finding(&eval, Check::SecurityRedirect)));
    }
}

#[tokio::test]
async fn a_client_that_drops_the_token_on_a_cross_host_redirect_passes_and_the_body_is_reported() {
    let stage = stage(&redirects(307)).await;
    let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
    // reqwest follows 307 with the body and strips Authorization when the host changes.
    assert_eq!(post_write(&stage, &token, &batch(1_764_000_000_000, false)).await, 204);
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityRedirect).clone();
    assert_eq!(f.status, Status::Pass, "{f:#?}");
    assert!(f.message.contains("without its bearer token (the body went there)"), "{f:#?}");
    assert!(text_of(&f).contains("with no Authorization and a body (Content-Length: "), "{f:#?}");
}

#[tokio::test]
async fn a_redirect_not_followed_passes_once_the_agent_writes_again() {
    let stage = stage(&redirects(308)).await;
    let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
    let manual = client(&stage, false);
    assert_eq!(post_to(&manual, &stage.ingestion_url, Some(&token)).await.0, 308);
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityRedirect).clone();
    assert_eq!(f.status, Status::Undecided, "{f:#?}");
    assert_eq!(post_to(&manual, &stage.ingestion_url, Some(&token)).await.0, 200);
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityRedirect).clone();
    assert_eq!(f.status, Status::Pass, "{f:#?}");
    assert!(text_of(&f).contains(&format!("not followed: the agent wrote to the DCR again and never to {MOVED}")));
}

// security.tls-verify

#[tokio::test]
async fn a_client_that_refuses_every_bad_certificate_passes_with_each_handshake_named() {
    let rules = "faults:\n  rules:\n\
                 \x20   - {name: entra-untrusted, service: entra, times: 1, tls_certificate: untrusted}\n\
                 \x20   - {name: entra-wrong-host, service: entra, times: 1, tls_certificate: wrong-host}\n\
                 \x20   - {name: entra-expired, service: entra, times: 1, tls_certificate: expired}\n\
                 \x20   - {name: dcr-untrusted, service: dcr, times: 1, tls_certificate: untrusted}\n";
    let stage = stage(&client_secret(rules)).await;
    // A verifying client fails three handshakes with Entra and gets its token on the fourth connection.
    let token = fetch_token(&stage, &Knobs { token_attempts: 4, ..Knobs::default() }).await.expect("a token");
    assert_eq!(post_to(&client(&stage, false), &stage.ingestion_url, Some(&token)).await.0, 0, "refused");
    assert_eq!(post_write(&stage, &token, &batch(1_764_000_000_000, false)).await, 200);
    handshakes_recorded(&stage, 4).await;
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityTlsVerify).clone();
    assert_eq!(f.status, Status::Pass, "{f:#?}");
    let text = text_of(&f);
    for needle in [
        "rule entra-untrusted, a certificate signed by an untrusted CA): handshake refused by the client",
        "rule entra-wrong-host, a certificate for the wrong host name): handshake refused",
        "rule entra-expired, a certificate that has expired): handshake refused",
        "rule dcr-untrusted",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}

#[tokio::test]
async fn a_client_that_accepts_bad_certificates_is_caught_with_what_it_sent() {
    let rules = "faults:\n  rules:\n\
                 \x20   - {name: entra-untrusted, service: entra, times: 1, tls_certificate: untrusted}\n\
                 \x20   - {name: dcr-expired, service: dcr, times: 1, tls_certificate: expired}\n";
    let stage = stage(&client_secret(rules)).await;
    let insecure = client(&stage, true);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", "8e547ddf-a7de-46ed-9269-5526a55d3211"),
            ("grant_type", "client_credentials"),
            ("scope", "https://monitor.azure.com//.default"),
            ("client_secret", SECRET),
        ])
        .finish();
    let entra = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
    let r = insecure
        .post(entra)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 495, "the mock answers nothing useful over a bad connection");
    let token = fetch_token(&stage, &Knobs::default()).await.expect("a token over a good connection");
    assert_eq!(post_to(&insecure, &stage.ingestion_url, Some(&token)).await.0, 495);
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_violation(
        &eval,
        Check::SecurityTlsVerify,
        &[
            "2 request(s) over connections whose certificate it must refuse",
            "(rule entra-untrusted, a certificate signed by an untrusted CA) was accepted; then request #",
            "POST https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token sent the client secret",
            "(rule dcr-expired, a certificate that has expired) was accepted",
            "sent token #1, a body (Content-Length: ",
        ],
    );
    let text = text_of(finding(&eval, Check::SecurityTlsVerify));
    assert!(!text.contains(SECRET), "{text}");
    no_token_in(&stage, &text);
}

#[tokio::test]
async fn tls_verify_waits_for_every_bad_connection_of_its_rules() {
    let stage = stage(&client_secret(
        "faults:\n  rules:\n    - {name: entra-expired, service: entra, times: 2, tls_certificate: expired}\n",
    ))
    .await;
    assert!(fetch_token(&stage, &Knobs::default()).await.is_none(), "refused once");
    handshakes_recorded(&stage, 1).await;
    let f = finding(&stage.evaluate(CLAIMED_VERSION), Check::SecurityTlsVerify).clone();
    assert_eq!(f.status, Status::Undecided, "{f:#?}");
    assert!(f.message.contains("1 of 2 connection(s)"), "{f:#?}");
}

// security.config-redaction and security.log-secrets, against a fake agent's web endpoint and log.

/// Serves `body` (as JSON) on every request, once per connection, the way Prometheus' config API would.
async fn fake_config_endpoint(body: String) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            });
        }
    });
    addr
}

async fn served_config(shown_secret: &str) -> Vec<(&'static str, Result<String, String>)> {
    let yaml = format!(
        "remote_write:\n- url: https://dce.metrics.ingest.monitor.azure.com/x\n  azuread:\n    cloud: AzurePublic\n    oauth:\n\
         \x20     client_id: 8e547ddf\n      client_secret: {shown_secret}\n      tenant_id: 72f988bf\n"
    );
    let addr = fake_config_endpoint(serde_json::json!({"status": "success", "data": {"yaml": yaml}}).to_string()).await;
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut served = Vec::new();
    for path in secrets::CONFIG_ENDPOINTS {
        let got = plain.get(format!("http://{addr}{path}")).send().await.map_err(|e| e.to_string());
        let body = match got {
            Ok(r) => r.text().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        served.push((path, body));
    }
    served
}

#[tokio::test]
async fn a_config_endpoint_showing_the_client_secret_is_caught_without_quoting_it() {
    let scenario: azrw::scenario::Scenario = serde_saphyr::from_str(&client_secret("")).unwrap();
    let given = secrets::given(&scenario.auth, &[], None, None);
    let f = secrets::config_redaction(&given, &served_config(SECRET).await);
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    let text = text_of(&f);
    assert!(
        text.contains("GET /api/v1/status/config shows auth.oauth.client_secret in plain text at remote_write[0].azuread.oauth.client_secret"),
        "{text}"
    );
    assert!(text.contains("[redacted: auth.oauth.client_secret, 23 chars]") && !text.contains(SECRET), "{text}");
    let clean = secrets::config_redaction(&given, &served_config("<secret>").await);
    assert_eq!(clean.status, Status::Pass, "{clean:#?}");
}

#[tokio::test]
async fn an_agent_log_holding_a_mock_issued_token_is_caught_by_line() {
    let stage = stage(&user_assigned("")).await;
    let token = fetch_token(&stage, &Knobs::default()).await.unwrap();
    let issued: Vec<Secret> = secrets::issued(&stage.cloud.recorder().token_values());
    let log = format!("ts=1 level=info msg=\"Server is ready\"\nts=2 level=debug component=azuread token={token}\n");
    let f = secrets::log_secrets(&issued, &[("agent.log", &log)]);
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    let text = text_of(&f);
    assert!(
        text.contains("agent.log line 2 holds token #1: ts=2 level=debug component=azuread token=[redacted: token #1"),
        "{text}"
    );
    no_token_in(&stage, &text);
    let clean = secrets::log_secrets(&issued, &[("agent.log", "ts=1 level=info msg=\"Server is ready\"\n")]);
    assert_eq!(clean.status, Status::Pass, "{clean:#?}");
}
