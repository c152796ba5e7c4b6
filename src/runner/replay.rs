//! Replay: re-sends a capture bundle's exchange sequence — to a fresh mock cloud set up like the original, or to
//! another mock (`--to`) — so a failure reproduces without the original agent, and judges it with the same checks.
//!
//! Secrets never were in the bundle, so replay substitutes its own: a client secret is sent right or wrong as the
//! original was judged, a valid federated assertion is re-issued by the fresh cluster issuer, and `Bearer [token #N]`
//! becomes the token the replay obtained where the original obtained token #N. A valid certificate assertion is
//! re-signed with the fresh certificate (same `alg` and thumbprint header); an invalid one replays as invalid.
//! Payload checks are re-judged from the bundle's target model and scrape log (the target is deterministic) and the
//! re-sent bodies. Timing-dependent facts (expiry on the mock clock) are not reproduced.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agent::Version;
use crate::cloud::{MockCloud, MockData};
use crate::expect::{CaseFacts, Observed, Verdict, evaluate};
use crate::report::bundle::{self, CaseRecord, KeptCredential, KeptExchange, KeptVerdict};
use crate::runner::real::Access;
use crate::scenario::Scenario;

/// The secret the replay cloud knows.
const REPLAY_SECRET: &str = "azrw-replay-secret";
/// What replay sends where the original secret was wrong.
const REPLAY_WRONG_SECRET: &str = "azrw-replay-wrong-secret";

/// What a replay did and concluded.
#[derive(Debug)]
pub struct ReplayReport {
    /// One line per re-sent exchange: `#3 POST https://… recorded 403, replayed 403`.
    pub sent: Vec<String>,
    /// The replay's verdict (`None` with `--to`: the target's recorder is not ours to read).
    pub verdict: Option<Verdict>,
    /// The bundle's own verdict.
    pub recorded: Option<KeptVerdict>,
}

impl ReplayReport {
    /// Whether the replay reached the bundle's verdict (same pass/fail, outcome and failing checks).
    pub fn reproduced(&self) -> Option<bool> {
        let kept = self.recorded.as_ref()?;
        let v = self.verdict.as_ref()?;
        let failing: Vec<crate::Check> = v.findings.iter().filter(|f| f.is_failure()).map(|f| f.check).collect();
        Some(v.passed() == kept.passed && v.observed == kept.observed && failing == kept.failing())
    }
}

/// The scenario a bundle describes, with the replay's own secrets.
fn replay_scenario(record: &CaseRecord) -> Result<Scenario, String> {
    let mut auth = serde_json::to_value(&record.auth).map_err(|e| e.to_string())?;
    if auth.get("oauth").is_some() {
        auth["oauth"]["client_secret"] = Value::String(REPLAY_SECRET.into());
    }
    // The replay's app always knows REPLAY_SECRET; each request sends it or not as the original was judged.
    let mut cloud = serde_json::to_value(&record.cloud).map_err(|e| e.to_string())?;
    cloud["client_secret"] = Value::Null;
    let scenario = serde_json::json!({
        "name": record.scenario,
        "agents": [format!("prometheus@{}", record.agent)],
        "auth": auth,
        "cloud": cloud,
        "expect": record.expect,
    });
    serde_json::from_value(scenario).map_err(|e| format!("case.json does not describe a scenario: {e}"))
}

/// Replays `bundle`. With `to`, the exchanges go there instead of to a fresh mock cloud, and no verdict is drawn.
pub async fn replay(bundle: &Path, to: Option<Access>, mocks: MockData) -> Result<ReplayReport, String> {
    let record = bundle::read_case(bundle)?;
    let exchanges = bundle::read_exchanges(bundle)?;
    let recorded = bundle::read_verdict(bundle)?;

    let scenario = replay_scenario(&record)?;
    let setup =
        crate::runner::setup::cloud_setup(&scenario, &record.ingestion_url, mocks).map_err(|e| e.to_string())?;
    let faults = setup.config.faults.clone();
    let federated = setup.federated_token();
    let (cloud, access) = match to {
        Some(access) => (None, access),
        None => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let cloud =
                MockCloud::start(setup.config, listener, setup.issuer.clone()).await.map_err(|e| e.to_string())?;
            let access = Access::Via { proxy_url: cloud.proxy_url(), ca_pem: cloud.ca_pem().to_owned() };
            (Some(cloud), access)
        }
    };
    let client = access.client()?;

    let started = Instant::now();
    let mut tokens: BTreeMap<u64, String> = BTreeMap::new();
    let mut sent = Vec::new();
    for e in &exchanges {
        let signed = Credentials { federated: federated.as_deref(), certificate: setup.client_certificate.as_ref() };
        sent.push(resend(&client, bundle, e, &signed, &mut tokens).await);
    }

    let Some(cloud) = cloud else { return Ok(ReplayReport { sent, verdict: None, recorded }) };
    let recorder = cloud.recorder();
    let (ex, toks) = (recorder.exchanges(), recorder.tokens());
    cloud.shutdown().await;
    let version: Version = record.agent.parse().map_err(|e| format!("case.json agent: {e}"))?;
    let scrapes = bundle::read_scrapes(bundle)?;
    // Payload checks judge against the target model and the scrape log the bundle kept: the target is
    // deterministic, so what each scrape served follows from them. Load checks read the live run's per-series
    // accounting, which a bundle does not keep (the replayed scenario has no load). The built-in vulnerability
    // table, not strict: the bundle keeps neither --mocks nor --strict-security, so a strict run's
    // known-vulnerable failure replays as known-vulnerable.
    let facts = CaseFacts {
        auth: &record.auth,
        ..CaseFacts::new(&scenario, version, record.expected, (&record.dcr_id, record.dcr_cloud), &faults)
            .with_target(record.target.as_ref())
    };
    let agent = record.agent_state.state();
    let seen = Observed {
        exchanges: &ex,
        tokens: &toks,
        agent: &agent,
        agent_was_ready: record.agent_state.was_ready,
        accounting: None,
        scrapes: &scrapes,
        sidecar_exit: None,
    };
    let mut evaluation = evaluate(&facts, &seen);
    if !evaluation.decided() {
        evaluation = super::close_at_deadline(evaluation, Duration::ZERO);
    }
    let verdict = Verdict {
        case_id: record.case_id.clone(),
        scenario: record.scenario.clone(),
        source: format!("replay of {}", bundle.display()),
        agent: format!("prometheus@{}", record.agent),
        runtime: format!("{} (replayed, no agent)", record.runtime),
        mode: record.mode,
        build: record.build.clone(),
        expected: record.expected,
        observed: evaluation.observed,
        explanation: evaluation.explanation,
        findings: evaluation.findings,
        config_changes: Vec::new(),
        duration: started.elapsed(),
        error: None,
    };
    Ok(ReplayReport { sent, verdict: Some(verdict), recorded })
}

/// Re-sends one kept exchange; the line says what was recorded and what the replay got.
async fn resend(
    client: &reqwest::Client,
    bundle: &Path,
    e: &KeptExchange,
    signed: &Credentials<'_>,
    tokens: &mut BTreeMap<u64, String>,
) -> String {
    let (method, url) = if e.method == "CONNECT" {
        ("GET".to_owned(), format!("https://{}/", e.host))
    } else {
        let scheme = if e.tls { "https" } else { "http" };
        (e.method.clone(), format!("{scheme}://{}{}", e.host, e.target))
    };
    let mut req = client.request(method.parse().unwrap_or(reqwest::Method::GET), &url);
    for (k, v) in &e.headers {
        let lower = k.to_ascii_lowercase();
        if ["host", "content-length", "connection", "transfer-encoding"].contains(&lower.as_str())
            || lower.starts_with("proxy-")
        {
            continue;
        }
        let v = if lower == "authorization" { bearer(v, tokens) } else { v.clone() };
        req = req.header(k, v);
    }
    let body = bundle::read_body(bundle, e);
    let body = match &e.detail.request {
        Some(request) if e.service == crate::cloud::Service::Entra => resubstitute_form(&body, request, signed, &url),
        _ => body,
    };
    let line = format!("#{} {method} {url}: recorded {}", e.seq, e.status);
    match req.body(body).send().await {
        Ok(rsp) => {
            let status = rsp.status().as_u16();
            let json: Value = rsp.json().await.unwrap_or_default();
            if let (Some(id), Some(token)) = (e.detail.issued, json["access_token"].as_str()) {
                tokens.insert(id, token.to_owned());
            }
            format!("{line}, replayed {status}")
        }
        Err(err) => format!("{line}, replay failed: {err}"),
    }
}

/// `Bearer [token #N]` → the replay's token #N; anything else → a value the mock will not recognise.
fn bearer(recorded: &str, tokens: &BTreeMap<u64, String>) -> String {
    let id = recorded.split("[token #").nth(1).and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse::<u64>().ok());
    match id.and_then(|n| tokens.get(&n)) {
        Some(t) => format!("Bearer {t}"),
        None => "Bearer azrw-replay-unrecognised-token".to_owned(),
    }
}

/// What the replay signs with.
struct Credentials<'a> {
    federated: Option<&'a str>,
    certificate: Option<&'a crate::cloud::ClientCertificate>,
}

/// Puts credentials back into a redacted token-request form (sent to `url`, the assertion's audience), right or
/// wrong as the original was judged.
fn resubstitute_form(body: &[u8], request: &bundle::KeptTokenRequest, with: &Credentials<'_>, url: &str) -> Vec<u8> {
    let none = KeptCredential::default();
    let credential = request.credential.as_ref().unwrap_or(&none);
    let client_id = request.client_id.as_deref().unwrap_or_default();
    let valid = credential.valid();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| {
            let v = match (k.as_ref(), credential.kind.as_str()) {
                ("client_secret", _) if credential.matches == Some(true) => REPLAY_SECRET.to_owned(),
                ("client_secret", _) => REPLAY_WRONG_SECRET.to_owned(),
                ("client_assertion", "federated") if valid => with.federated.unwrap_or_default().to_owned(),
                ("client_assertion", "certificate") if valid && with.certificate.is_some() => {
                    let alg = if credential.alg.as_deref() == Some("RS256") {
                        jsonwebtoken::Algorithm::RS256
                    } else {
                        jsonwebtoken::Algorithm::PS256
                    };
                    let sha1 = credential.thumbprint_header.as_deref() == Some("x5t");
                    with.certificate.expect("checked").client_assertion(alg, sha1, client_id, url)
                }
                _ => v.into_owned(),
            };
            (k.into_owned(), v)
        })
        .collect();
    if pairs.is_empty() {
        return body.to_vec();
    }
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
}
