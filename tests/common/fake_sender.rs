//! The fake sender: drives a stage the way Prometheus would — fetch a token, send remote-write requests — with
//! knobs that break one rule at a time, so every expectation can be shown to fail with evidence.

use std::time::Duration;

use azrw::agent::Version;
use azrw::remote_write::{DecodedWrite, RwVersion, Sample, Series, encode};
use jsonwebtoken::Algorithm;

use super::stage::Stage;

/// The version fake senders claim to be (User-Agent) unless told otherwise.
pub const CLAIMED_VERSION: Version = Version::new(3, 5, 1);

/// What the fake sender does differently from a conforming Prometheus.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// `Metadata` header on IMDS requests (None: absent).
    pub imds_metadata: Option<String>,
    /// IMDS `api-version`.
    pub imds_api_version: String,
    /// IMDS `resource` override.
    pub imds_resource: Option<String>,
    /// Send no `client_id` to IMDS even for a user-assigned identity.
    pub imds_drop_client_id: bool,
    /// Host for Entra requests (default: the configured cloud's).
    pub entra_host: Option<String>,
    /// Tenant in the Entra path (default: the configured one).
    pub entra_tenant: Option<String>,
    /// `scope` form field (default: the configured cloud's scope plus MSAL's defaults).
    pub entra_scope: Option<String>,
    /// `grant_type`.
    pub grant_type: String,
    /// Send a client secret although the auth type is a certificate or federated credential.
    pub force_secret: Option<String>,
    /// Fetch a fresh token before every write.
    pub token_per_write: bool,
    /// Token requests per fetch before giving up (a refused request is asked again).
    pub token_attempts: usize,
    /// Ask the token service again at once, whatever `Retry-After` it answered.
    pub ignore_token_retry_after: bool,
    /// What goes in `Authorization`.
    pub bearer: Bearer,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `X-Prometheus-Remote-Write-Version`.
    pub version_header: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Compress with framed snappy instead of block.
    pub framed_snappy: bool,
    /// Resend every batch the DCR refused with a 4xx.
    pub resend_refused: bool,
    /// Number of writes.
    pub writes: usize,
    /// Leave the `up` series out of every write.
    pub omit_up: bool,
}

/// The `Authorization` header a fake sender sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// The token it fetched.
    Token,
    /// None at all.
    Missing,
    /// A string that is not a token.
    Garbage,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            imds_metadata: Some("true".into()),
            imds_api_version: "2018-02-01".into(),
            imds_resource: None,
            imds_drop_client_id: false,
            entra_host: None,
            entra_tenant: None,
            entra_scope: None,
            grant_type: "client_credentials".into(),
            force_secret: None,
            token_per_write: false,
            token_attempts: 1,
            ignore_token_retry_after: false,
            bearer: Bearer::Token,
            content_encoding: Some("snappy".into()),
            content_type: Some("application/x-protobuf".into()),
            version_header: Some("0.1.0".into()),
            user_agent: Some(format!("Prometheus/{CLAIMED_VERSION}")),
            framed_snappy: false,
            resend_refused: false,
            writes: 3,
            omit_up: false,
        }
    }
}

/// Runs a fake sender against the stage.
pub async fn send(stage: &Stage, knobs: &Knobs) {
    let mut token = if knobs.token_per_write { None } else { fetch_token(stage, knobs).await };
    let start_ms = 1_764_000_000_000i64;
    for i in 0..knobs.writes {
        if knobs.token_per_write {
            token = fetch_token(stage, knobs).await;
        }
        let write = batch(start_ms + 1000 * i as i64, knobs.omit_up);
        let status = post(stage, knobs, token.as_deref(), &write).await;
        if knobs.resend_refused && (400..500).contains(&status) {
            post(stage, knobs, token.as_deref(), &write).await;
        }
    }
}

/// One batch as Prometheus would send it after a scrape of the harness target at `ts`.
pub fn batch(ts: i64, omit_up: bool) -> DecodedWrite {
    let labels = |name: &str| {
        vec![
            ("__name__".to_owned(), name.to_owned()),
            ("cluster".to_owned(), "azrw".to_owned()),
            ("instance".to_owned(), "127.0.0.1:9100".to_owned()),
            ("job".to_owned(), azrw::scrape::JOB.to_owned()),
        ]
    };
    let mut series = vec![Series {
        labels: labels(azrw::scrape::SCRAPES_METRIC),
        samples: vec![Sample { timestamp: ts, value: ((ts / 1000) % 1000) as f64 }],
        histograms: vec![],
        exemplars: vec![],
    }];
    if !omit_up {
        series.push(Series {
            labels: labels("up"),
            samples: vec![Sample { timestamp: ts, value: 1.0 }],
            histograms: vec![],
            exemplars: vec![],
        });
    }
    DecodedWrite { version: Some(RwVersion::V1), series, metadata: Vec::new(), uncompressed_len: 0 }
}

/// Posts one write the way a conforming sender does; returns the status.
pub async fn post_write(stage: &Stage, token: &str, write: &DecodedWrite) -> u16 {
    post(stage, &Knobs::default(), Some(token), write).await
}

/// Sends prepared writes (one request each) with one token, bent by the knobs; returns the statuses.
pub async fn send_writes(stage: &Stage, knobs: &Knobs, writes: &[DecodedWrite]) -> Vec<u16> {
    let token = fetch_token(stage, knobs).await;
    let mut statuses = Vec::new();
    for w in writes {
        statuses.push(post(stage, knobs, token.as_deref(), w).await);
    }
    statuses
}

async fn post(stage: &Stage, knobs: &Knobs, token: Option<&str>, write: &DecodedWrite) -> u16 {
    post_with(stage, knobs, token, write, None).await.0
}

/// Posts one write, with `Retry-Attempt` if given; returns the status (0: no answer) and any `Retry-After` wait.
async fn post_with(
    stage: &Stage,
    knobs: &Knobs,
    token: Option<&str>,
    write: &DecodedWrite,
    attempt: Option<usize>,
) -> (u16, Option<Duration>) {
    let mut body = encode(write, write.version.unwrap_or(RwVersion::V1));
    if knobs.framed_snappy {
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let mut framed = Vec::new();
        std::io::Write::write_all(&mut snap::write::FrameEncoder::new(&mut framed), &raw).unwrap();
        body = framed;
    }
    let mut req = stage.client.post(&stage.ingestion_url).body(body);
    let headers = [
        ("Content-Encoding", &knobs.content_encoding),
        ("Content-Type", &knobs.content_type),
        ("X-Prometheus-Remote-Write-Version", &knobs.version_header),
        ("User-Agent", &knobs.user_agent),
    ];
    for (name, value) in headers {
        if let Some(v) = value {
            req = req.header(name, v);
        }
    }
    match (&knobs.bearer, token) {
        (Bearer::Token, Some(t)) => req = req.bearer_auth(t),
        (Bearer::Garbage, _) => req = req.header("Authorization", "Bearer not-a-token"),
        _ => {}
    }
    if let Some(n) = attempt {
        req = req.header("Retry-Attempt", n.to_string());
    }
    match req.send().await {
        Ok(r) => {
            let after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(prometheus_retry_after);
            (r.status().as_u16(), after)
        }
        Err(_) => (0, None),
    }
}

/// `Retry-After` as Prometheus reads it: delta-seconds, or an HTTP-date turned into whole seconds from now,
/// rounded down (storage/remote/client.go `retryAfterDuration`).
fn prometheus_retry_after(value: &str) -> Option<Duration> {
    if let Ok(date) = httpdate::parse_http_date(value) {
        let ahead = date.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        return Some(Duration::from_secs(ahead.as_secs()));
    }
    value.parse().ok().map(Duration::from_secs)
}

/// How a fake sender retries; the default is what Prometheus does (with `min`/`max` backoff).
#[derive(Debug, Clone)]
pub struct Retry {
    /// First backoff.
    pub min_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Retry 429 (`retry_on_http_429`).
    pub on_429: bool,
    /// Violation: also retry non-recoverable 4xx answers.
    pub retry_4xx: bool,
    /// Violation: drop a batch refused with 5xx instead of retrying it.
    pub give_up_on_5xx: bool,
    /// Violation: use the backoff even when the answer says Retry-After.
    pub ignore_retry_after: bool,
    /// Violation: resend at once, no backoff.
    pub tight_loop: bool,
    /// Violation: never send `Retry-Attempt`.
    pub no_attempt_header: bool,
    /// Give up on a batch after this many sends (a bound for the test, not a Prometheus rule).
    pub max_sends: usize,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            on_429: false,
            retry_4xx: false,
            give_up_on_5xx: false,
            ignore_retry_after: false,
            tight_loop: false,
            no_attempt_header: false,
            max_sends: 12,
        }
    }
}

/// A fake sender that retries: one token, `knobs.writes` batches, each sent until accepted, dropped or
/// `max_sends`. Its waits are the sender's behaviour under test (the mock's clock judges them), not synchronisation.
pub async fn send_retrying(stage: &Stage, knobs: &Knobs, retry: &Retry) {
    let token = fetch_token(stage, knobs).await;
    let start_ms = 1_764_000_000_000i64;
    for i in 0..knobs.writes {
        let write = batch(start_ms + 1000 * i as i64, knobs.omit_up);
        let mut backoff = retry.min_backoff;
        for send in 0..retry.max_sends {
            let attempt = (send > 0 && !retry.no_attempt_header).then_some(send);
            let (status, after) = post_with(stage, knobs, token.as_deref(), &write, attempt).await;
            let recoverable = status == 0 || status >= 500 || (status == 429 && retry.on_429);
            let again = match status {
                200..=299 => false,
                _ if recoverable => !retry.give_up_on_5xx,
                _ => retry.retry_4xx,
            };
            if !again {
                break;
            }
            let sleep = match after {
                Some(after) if !after.is_zero() && !retry.ignore_retry_after => after,
                _ => backoff,
            };
            if !retry.tight_loop {
                tokio::time::sleep(sleep).await;
            }
            backoff = (sleep * 2).min(retry.max_backoff);
        }
    }
}

/// Fetches a token the way the scenario's auth type does, bent by the knobs: up to `token_attempts` requests,
/// waiting the `Retry-After` of a refusal (the sender's behaviour under test) unless told to ignore it. None when
/// every request was refused.
pub async fn fetch_token(stage: &Stage, knobs: &Knobs) -> Option<String> {
    for _ in 1..knobs.token_attempts.max(1) {
        match request_token(stage, knobs).await {
            Ok(token) => return Some(token),
            Err(Some(after)) if !knobs.ignore_token_retry_after => tokio::time::sleep(after).await,
            Err(_) => {}
        }
    }
    request_token(stage, knobs).await.ok()
}

/// One token request; a refusal gives its `Retry-After`, if any.
async fn request_token(stage: &Stage, knobs: &Knobs) -> Result<String, Option<Duration>> {
    let auth = &stage.scenario.auth;
    if let Some(mi) = &auth.managed_identity {
        let resource = knobs.imds_resource.clone().unwrap_or_else(|| auth.cloud.ingestion_audience().to_owned());
        let mut query = vec![("api-version", knobs.imds_api_version.clone()), ("resource", resource)];
        if !mi.client_id.is_empty() && !knobs.imds_drop_client_id {
            query.push(("client_id", mi.client_id.clone()));
        }
        let mut req = stage.client.get("http://169.254.169.254/metadata/identity/oauth2/token").query(&query);
        if let Some(m) = &knobs.imds_metadata {
            req = req.header("Metadata", m);
        }
        return token_from(req.send().await).await;
    }
    let (tenant, client_id, credential) = if let Some(o) = &auth.oauth {
        (o.tenant_id.clone(), o.client_id.clone(), vec![("client_secret".to_owned(), o.client_secret.clone())])
    } else if let Some(c) = &auth.certificate {
        let cert = stage.certificate.as_ref().expect("certificate set-up");
        let host = knobs.entra_host.clone().unwrap_or_else(|| auth.cloud.authority_host().to_owned());
        let assertion = cert.client_assertion(
            Algorithm::PS256,
            false,
            &c.client_id,
            &format!("https://{host}/{}/oauth2/v2.0/token", c.tenant_id),
        );
        (c.tenant_id.clone(), c.client_id.clone(), assertion_form(assertion))
    } else if let Some(w) = &auth.workload_identity {
        let issuer = stage.issuer.as_ref().expect("issuer set-up");
        let token = issuer.federated_token(stage.subject.as_deref().unwrap(), Duration::from_secs(3600));
        (w.tenant_id.clone(), w.client_id.clone(), assertion_form(token))
    } else {
        panic!("fake sender: unsupported auth type in test scenario");
    };
    let credential = match &knobs.force_secret {
        Some(s) => vec![("client_secret".to_owned(), s.clone())],
        None => credential,
    };
    let host = knobs.entra_host.clone().unwrap_or_else(|| auth.cloud.authority_host().to_owned());
    let tenant = knobs.entra_tenant.clone().unwrap_or(tenant);
    let scope = knobs
        .entra_scope
        .clone()
        .unwrap_or_else(|| format!("{} openid offline_access profile", auth.cloud.ingestion_scope()));
    let mut form = vec![
        ("client_id".to_owned(), client_id),
        ("grant_type".to_owned(), knobs.grant_type.clone()),
        ("scope".to_owned(), scope),
    ];
    form.extend(credential);
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let resp = stage
        .client
        .post(format!("https://{host}/{tenant}/oauth2/v2.0/token"))
        .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body)
        .send()
        .await;
    token_from(resp).await
}

/// The access token of a token service's answer, or the `Retry-After` of a refusal.
async fn token_from(resp: reqwest::Result<reqwest::Response>) -> Result<String, Option<Duration>> {
    let resp = resp.map_err(|_| None)?;
    if !resp.status().is_success() {
        let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        return Err(after.map(Duration::from_secs));
    }
    let json: serde_json::Value = resp.json().await.map_err(|_| None)?;
    json["access_token"].as_str().map(str::to_owned).ok_or(None)
}

fn assertion_form(assertion: String) -> Vec<(String, String)> {
    vec![
        ("client_assertion_type".to_owned(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
        ("client_assertion".to_owned(), assertion),
    ]
}
