//! A fake sender: drives a mock cloud the way Prometheus would — fetch a token, send remote-write requests — with
//! knobs that break one rule at a time, so every expectation can be shown to fail with evidence.

#![allow(dead_code)] // each test binary uses a different part of it

use std::time::Duration;

use azrw::agent::Version;
use azrw::cloud::recorder::{Exchange, RecordMode};
use azrw::cloud::{ClientCertificate, ClusterIssuer, MockCloud, MockData};
use azrw::expect::{CaseFacts, Evaluation, Finding, Observed, Status, evaluate};
use azrw::remote_write::{DecodedWrite, RwVersion, Sample, Series, encode};
use azrw::runner::setup::{cloud_setup, default_ingestion_url};
use azrw::runtime::AgentState;
use azrw::scenario::{Outcome, Scenario};
use azrw::scrape::{Scrape, ScrapeModel};
use jsonwebtoken::Algorithm;

/// The version fake senders claim to be (User-Agent) unless told otherwise.
pub const CLAIMED_VERSION: Version = Version::new(3, 5, 1);

/// A mock cloud set up from a scenario, and an HTTP client that reaches it the way an agent does.
pub struct Stage {
    pub scenario: Scenario,
    pub cloud: MockCloud,
    pub client: reqwest::Client,
    pub ingestion_url: String,
    pub issuer: Option<std::sync::Arc<ClusterIssuer>>,
    pub subject: Option<String>,
    pub certificate: Option<ClientCertificate>,
    pub dcr_id: String,
    pub faults: azrw::cloud::FaultConfig,
    /// The known-vulnerability table the checks apply (the built-in one).
    pub vulnerabilities: azrw::agent::vulnerability::VulnerabilityTable,
    /// `--strict-security`.
    pub strict_security: bool,
}

/// Starts a mock cloud for the scenario given as YAML (the scenario's `agents`, `prometheus` and `deadline` are
/// irrelevant here). Everything listens on 127.0.0.1.
pub async fn stage(scenario_yaml: &str) -> Stage {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let scenario: Scenario = serde_saphyr::from_str(scenario_yaml).expect("test scenario parses");
    let ingestion_url = default_ingestion_url(&scenario);
    let setup = cloud_setup(&scenario, &ingestion_url, MockData::embedded()).expect("cloud set-up");
    let dcr_id = setup.config.dcr.dcr_id.clone();
    let faults = setup.config.faults.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cloud = MockCloud::start(setup.config, listener, setup.issuer.clone()).await.unwrap();
    cloud.recorder().set_mode(scenario.record);
    let ca = reqwest::Certificate::from_pem(cloud.ca_pem().as_bytes()).unwrap();
    let url = url::Url::parse(&ingestion_url).unwrap();
    let mut builder = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(cloud.proxy_url()).unwrap())
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(20));
    // Even if proxying were bypassed, these names resolve to the mock, never to the internet.
    for host in [
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "169.254.169.254",
        url.host_str().unwrap(),
    ] {
        builder = builder.resolve(host, cloud.proxy_addr());
    }
    Stage {
        scenario,
        cloud,
        client: builder.build().unwrap(),
        ingestion_url,
        issuer: setup.issuer,
        subject: setup.federated_subject,
        certificate: setup.client_certificate,
        dcr_id,
        faults,
        vulnerabilities: azrw::agent::vulnerability::VulnerabilityTable::embedded(),
        strict_security: false,
    }
}

impl Stage {
    /// Evaluates what the cloud recorded, as if agent `version` were ready and running.
    pub fn evaluate(&self, version: Version) -> Evaluation {
        self.evaluate_as(version, &AgentState::Ready, true)
    }

    /// Evaluates with a given agent state.
    pub fn evaluate_as(&self, version: Version, agent: &AgentState, was_ready: bool) -> Evaluation {
        self.evaluate_with(version, agent, was_ready, None, &[], None)
    }

    /// Evaluates as if agent `version` were ready and the scenario's sidecar had exited as `exit` says.
    pub fn evaluate_sidecar_exited(&self, version: Version, exit: &azrw::expect::SidecarExit) -> Evaluation {
        self.evaluate_with(version, &AgentState::Ready, true, None, &[], Some(exit))
    }

    /// Evaluates as if agent `version` were ready, with the payload checks judging against a scrape target.
    pub fn evaluate_payload(&self, version: Version, target: &ScrapeModel, scrapes: &[Scrape]) -> Evaluation {
        self.evaluate_with(version, &AgentState::Ready, true, Some(target), scrapes, None)
    }

    /// Evaluates as if agent `version` were ready and the harness scrape target had served `scrapes` (no payload
    /// model: the checks that judge scrapes alone, such as `security.token-scope`).
    pub fn evaluate_scrapes(&self, version: Version, scrapes: &[Scrape]) -> Evaluation {
        self.evaluate_with(version, &AgentState::Ready, true, None, scrapes, None)
    }

    fn evaluate_with(
        &self,
        version: Version,
        agent: &AgentState,
        was_ready: bool,
        target: Option<&ScrapeModel>,
        scrapes: &[Scrape],
        sidecar_exit: Option<&azrw::expect::SidecarExit>,
    ) -> Evaluation {
        let recorder = self.cloud.recorder();
        let exchanges = recorder.exchanges();
        let tokens = recorder.tokens();
        let facts = self.facts(version, target);
        let accounting = recorder.accounting();
        let accounting = (recorder.mode() == RecordMode::Accounting).then_some(&accounting);
        let seen = Observed {
            exchanges: &exchanges,
            tokens: &tokens,
            agent,
            agent_was_ready: was_ready,
            accounting,
            scrapes,
            sidecar_exit,
        };
        evaluate(&facts, &seen)
    }

    /// The agent-metrics cross-check against an exposition the "agent" reports.
    pub fn metrics_check(&self, version: Version, exposition: &str) -> Finding {
        let recorder = self.cloud.recorder();
        let (exchanges, tokens) = (recorder.exchanges(), recorder.tokens());
        let facts = self.facts(version, None);
        let seen = Observed {
            exchanges: &exchanges,
            tokens: &tokens,
            agent: &AgentState::Ready,
            agent_was_ready: true,
            accounting: None,
            scrapes: &[],
            sidecar_exit: None,
        };
        azrw::expect::metrics::cross_check(&facts, &seen, &azrw::expect::metrics::AgentMetrics::parse(exposition))
    }

    fn facts<'a>(&'a self, version: Version, target: Option<&'a ScrapeModel>) -> CaseFacts<'a> {
        CaseFacts {
            auth: &self.scenario.auth,
            version,
            expect: &self.scenario.expect,
            expected: expected_outcome(&self.scenario),
            dcr_id: &self.dcr_id,
            dcr_cloud: self.scenario.cloud.dcr_cloud.unwrap_or(self.scenario.auth.cloud),
            load: self.scenario.load.as_ref(),
            scrape_interval: azrw::agent::prometheus::scrape_interval(&self.scenario),
            target,
            faults: &self.faults,
            retry: azrw::expect::RetryPolicy::from_queue_config(&self.scenario.prometheus.queue_config),
            token_lifetime: self.scenario.cloud.token_lifetime,
            sidecar: self.scenario.remote_write_sidecar(),
            vulnerabilities: &self.vulnerabilities,
            strict_security: self.strict_security,
            plain_writes: &self.scenario.prometheus.plain_remote_writes,
        }
    }

    /// Every exchange so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.cloud.recorder().exchanges()
    }

    /// Writes what the runner writes for a case into `dir` — `case.json` (with the target model), the exchanges,
    /// `scrapes.json` and `verdict.json` of `eval` — so `azrw replay` can be tried on a fake sender's run.
    pub fn write_bundle(
        &self,
        dir: &std::path::Path,
        version: Version,
        target: Option<&ScrapeModel>,
        scrapes: &[Scrape],
        eval: &Evaluation,
    ) {
        use azrw::report::bundle;
        let recorder = self.cloud.recorder();
        let record = bundle::CaseRecord {
            case_id: format!("{}@{version}", self.scenario.name),
            scenario: self.scenario.name.clone(),
            agent: version.to_string(),
            runtime: "process".into(),
            expected: expected_outcome(&self.scenario),
            auth: self.scenario.auth.clone(),
            cloud: self.scenario.cloud.clone(),
            expect: self.scenario.expect.clone(),
            ingestion_url: self.ingestion_url.clone(),
            dcr_id: self.dcr_id.clone(),
            dcr_cloud: self.scenario.cloud.dcr_cloud.unwrap_or(self.scenario.auth.cloud),
            agent_state: bundle::AgentRecord { was_ready: true, exited: None },
            target: target.cloned(),
        };
        bundle::write_case(dir, &record, &recorder.exchanges(), &recorder, &[]).unwrap();
        bundle::write_scrapes(dir, scrapes).unwrap();
        let verdict = azrw::expect::Verdict {
            case_id: record.case_id.clone(),
            scenario: record.scenario.clone(),
            source: "fake sender".into(),
            agent: format!("prometheus@{version}"),
            runtime: record.runtime.clone(),
            expected: record.expected,
            observed: eval.observed,
            explanation: eval.explanation.clone(),
            findings: eval.findings.clone(),
            config_changes: Vec::new(),
            duration: Duration::ZERO,
            error: None,
        };
        bundle::write_verdict(dir, &verdict).unwrap();
    }
}

fn expected_outcome(s: &Scenario) -> Outcome {
    match &s.expect.outcome {
        Some(azrw::scenario::OutcomeSpec::One(o)) => *o,
        _ => Outcome::Delivered,
    }
}

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

/// The finding for `check`; panics with every finding if there is none.
pub fn finding<'a>(eval: &'a Evaluation, check: &str) -> &'a Finding {
    eval.findings
        .iter()
        .find(|f| f.check.name() == check)
        .unwrap_or_else(|| panic!("no finding {check} in {:#?}", eval.findings))
}

/// Asserts `check` failed, with evidence containing every one of `needles` (in message or evidence).
pub fn assert_violation(eval: &Evaluation, check: &str, needles: &[&str]) {
    let f = finding(eval, check);
    assert_eq!(f.status, Status::Fail, "{check} should fail: {f:#?}");
    assert!(!f.evidence.is_empty(), "{check} failed without evidence: {f:#?}");
    let text = format!("{}\n{}", f.message, f.evidence.join("\n"));
    for n in needles {
        assert!(text.contains(n), "{check}: evidence lacks {n:?}:\n{text}");
    }
}

/// Asserts no finding failed or stayed undecided.
pub fn assert_clean(eval: &Evaluation) {
    let bad: Vec<&Finding> = eval.findings.iter().filter(|f| f.is_failure()).collect();
    assert!(bad.is_empty(), "unexpected failures: {bad:#?}");
}
