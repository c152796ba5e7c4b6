//! Capture bundles: everything needed to understand — and replay — one case, in `out/<case>/`:
//!
//! | file | what |
//! |---|---|
//! | `case.json` | the case: agent, expected outcome, the scenario's auth/cloud/expect blocks (secrets replaced), the agent's final state |
//! | `verdict.json` | the verdict with every finding and its evidence |
//! | `exchanges.json` | every exchange the mock cloud recorded (headers redacted, payloads decoded) |
//! | `exchanges/NNNN-service.json`, `.body` | one exchange each, and its raw request body (form secrets replaced) |
//! | `timeline.svg` | the case on the mock clock: lanes per service, tokens, faults, scrapes; failing checks' evidence ringed ([`super::timeline`]) |
//! | `scrapes.json` | when the scrape target served each scrape (with `case.json`'s `target`, what the payload checks judge against) |
//! | `prometheus.yml`, `env.json`, `agent.log` | the agent's config and environment (secrets redacted) and its output |
//! | `sidecar-<name>.env.json`, `sidecar-<name>.log` | each sidecar's environment (secrets redacted) and output |
//! | `findings.json` | every finding, passing ones included (what a passing case proved) |
//! | `payload.txt` | the payload snapshot: each scraped series and what reached the DCR (with a target model) |
//! | `timings.json` | where the case's time went: start, first write, decision, down |
//! | `pod.log` | the Docker runtime's pod (the proxy container) output |
//! | `queries.json` | real-Azure runs only: what the workspace query endpoint returned |
//!
//! This module is the one owner of that layout: the runner hands it what to keep, replay reads it back through
//! the typed [`KeptExchange`] and [`KeptVerdict`], and nothing else names a bundle file.
//!
//! Authorization values never reach a bundle: the recorder keeps `Bearer [token #N]`, and form fields such as
//! `client_secret` and `client_assertion` are replaced before a body is kept.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cloud::Recorder;
use crate::cloud::recorder::{Exchange, Service};
use crate::expect::Verdict;
use crate::runtime::AgentState;
use crate::scenario::{AuthSpec, AzureCloud, CloudSpec, ExpectSpec, Outcome, Scenario};
use crate::scrape::{Scrape, ScrapeModel};

/// What replaces a secret in `case.json`.
pub const SECRET_PLACEHOLDER: &str = crate::redact::PLACEHOLDER;
/// What replaces `cloud.client_secret` when it differs from the agent's (a wrong-secret scenario): replay needs to
/// know they differ, not what they were.
pub fn other_secret_placeholder() -> String {
    crate::redact::labelled("differs from auth.oauth.client_secret")
}

/// The agent's final state, as kept in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Whether it ever became ready.
    pub was_ready: bool,
    /// Whether it had exited when the case ended, with its exit code and last error line.
    pub exited: Option<(Option<i32>, Option<String>)>,
}

impl AgentRecord {
    /// From the runtime's state.
    pub fn new(state: &AgentState, was_ready: bool) -> AgentRecord {
        let exited = match state {
            AgentState::Exited { code, error } => Some((*code, error.clone())),
            _ => None,
        };
        AgentRecord { was_ready, exited }
    }

    /// Back to a runtime state.
    pub fn state(&self) -> AgentState {
        match &self.exited {
            Some((code, error)) => AgentState::Exited { code: *code, error: error.clone() },
            None if self.was_ready => AgentState::Ready,
            None => AgentState::Starting,
        }
    }
}

/// `case.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Case id.
    pub case_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Agent version, e.g. `3.5.1`.
    pub agent: String,
    /// Runtime.
    pub runtime: String,
    /// Server or agent mode (absent in bundles written before modes: server).
    #[serde(default)]
    pub mode: crate::scenario::AgentMode,
    /// The user's own build, if the case ran one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::agent::source::AgentBuild>,
    /// The outcome the case had to reach.
    pub expected: Outcome,
    /// The auth block, secrets replaced.
    pub auth: AuthSpec,
    /// What the mock cloud believed, secrets replaced.
    pub cloud: CloudSpec,
    /// The expectations.
    pub expect: ExpectSpec,
    /// The ingestion URL the agent wrote to.
    pub ingestion_url: String,
    /// DCR immutable id.
    pub dcr_id: String,
    /// The DCR's cloud.
    pub dcr_cloud: AzureCloud,
    /// How the agent ended.
    pub agent_state: AgentRecord,
    /// The scrape target as the agent saw it (scenarios with a `scrape:` block): with `scrapes.json`, everything
    /// the payload checks judge against. Absent in bundles written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ScrapeModel>,
}

impl CaseRecord {
    /// The record of a case, with secrets replaced by placeholders that keep "same" and "different" apart.
    pub fn new(
        case: &crate::matrix::Case,
        scenario: &Scenario,
        ingestion_url: &str,
        dcr_id: &str,
        dcr_cloud: AzureCloud,
        agent_state: AgentRecord,
    ) -> CaseRecord {
        let mut auth = scenario.auth.clone();
        let mut cloud = scenario.cloud.clone();
        let agent_secret = auth.oauth.as_ref().map(|o| o.client_secret.clone());
        if let Some(o) = auth.oauth.as_mut() {
            o.client_secret = SECRET_PLACEHOLDER.into();
        }
        cloud.client_secret = cloud.client_secret.as_ref().map(|s| {
            if Some(s) == agent_secret.as_ref() { SECRET_PLACEHOLDER.into() } else { other_secret_placeholder() }
        });
        CaseRecord {
            case_id: case.id.clone(),
            scenario: scenario.name.clone(),
            agent: case.agent.to_string(),
            runtime: case.runtime.to_string(),
            mode: case.mode,
            build: case.build.as_deref().cloned(),
            expected: case.expected,
            auth,
            cloud,
            expect: scenario.expect.clone(),
            ingestion_url: ingestion_url.to_owned(),
            dcr_id: dcr_id.to_owned(),
            dcr_cloud,
            agent_state,
            target: None,
        }
    }
}

/// The names of the bundle's files, for the writers and readers in this module and the runner's log paths.
pub mod file {
    /// The case record.
    pub const CASE: &str = "case.json";
    /// Every recorded exchange.
    pub const EXCHANGES: &str = "exchanges.json";
    /// One file per exchange (and its body).
    pub const EXCHANGE_DIR: &str = "exchanges";
    /// The final verdict.
    pub const VERDICT: &str = "verdict.json";
    /// Every finding.
    pub const FINDINGS: &str = "findings.json";
    /// The scrape log.
    pub const SCRAPES: &str = "scrapes.json";
    /// The agent's environment.
    pub const ENV: &str = "env.json";
    /// The agent's rendered config, redacted.
    pub const CONFIG: &str = "prometheus.yml";
    /// The agent's output.
    pub const AGENT_LOG: &str = "agent.log";
    /// The Docker pod's output.
    pub const POD_LOG: &str = "pod.log";
    /// The payload snapshot.
    pub const PAYLOAD: &str = "payload.txt";
    /// Where the time went.
    pub const TIMINGS: &str = "timings.json";
    /// Real-Azure query results.
    pub const QUERIES: &str = "queries.json";
    /// The case on the mock clock.
    pub const TIMELINE: &str = "timeline.svg";
    /// The decisive exchanges as a Mermaid sequence diagram.
    pub const SEQUENCE: &str = "sequence.mmd";

    /// A sidecar's output.
    pub fn sidecar_log(name: &str) -> String {
        format!("sidecar-{name}.log")
    }

    /// A sidecar's environment.
    pub fn sidecar_env(name: &str) -> String {
        format!("sidecar-{name}.env.json")
    }
}

fn service_name(s: Service) -> &'static str {
    match s {
        Service::Imds => "imds",
        Service::Entra => "entra",
        Service::Dcr => "dcr",
        Service::Query => "query",
        Service::Receiver => "receiver",
        Service::Unrouted => "unrouted",
    }
}

/// A file-system friendly name for a case: its bundle is `out/<slug>/`.
pub fn slug(case_id: &str) -> String {
    case_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_owned()
}

/// File stem of one exchange in `exchanges/`.
pub fn exchange_stem(e: &Exchange) -> String {
    stem(e.seq, e.service)
}

fn stem(seq: usize, service: Service) -> String {
    format!("{seq:04}-{}", service_name(service))
}

/// Writes the case's bundle files (all but `verdict.json`, written once the verdict is final).
pub fn write_case(
    dir: &Path,
    record: &CaseRecord,
    exchanges: &[Exchange],
    recorder: &Recorder,
    env: &[(String, String)],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join(file::EXCHANGE_DIR))?;
    std::fs::write(dir.join(file::CASE), serde_json::to_vec_pretty(record)?)?;
    std::fs::write(dir.join(file::EXCHANGES), serde_json::to_vec_pretty(exchanges)?)?;
    for e in exchanges {
        let stem = exchange_stem(e);
        std::fs::write(dir.join(file::EXCHANGE_DIR).join(format!("{stem}.json")), serde_json::to_vec_pretty(e)?)?;
        let body = recorder.body(e.seq).unwrap_or_default();
        if !body.is_empty() {
            std::fs::write(dir.join(file::EXCHANGE_DIR).join(format!("{stem}.body")), &body)?;
        }
    }
    write_env(&dir.join(file::ENV), env)
}

/// Writes an environment as JSON with secret values withheld (the agent's `env.json`, a sidecar's
/// `sidecar-<name>.env.json`).
pub fn write_env(path: &Path, env: &[(String, String)]) -> std::io::Result<()> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), crate::redact::env_value(k, v))).collect();
    std::fs::write(path, serde_json::to_vec_pretty(&env)?)
}

/// Writes `scrapes.json`: when the target served each scrape.
pub fn write_scrapes(dir: &Path, scrapes: &[Scrape]) -> std::io::Result<()> {
    write_json(dir, file::SCRAPES, &scrapes)
}

/// Writes the agent's rendered config, every secret value replaced.
pub fn write_config(dir: &Path, rendered: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file::CONFIG), crate::redact::config(rendered))
}

/// Writes one of the bundle's JSON files (`findings.json`, `timings.json`, `queries.json`).
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> std::io::Result<()> {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(value)?)
}

/// Reads `scrapes.json`; none when the bundle has no such file.
pub fn read_scrapes(dir: &Path) -> Result<Vec<Scrape>, String> {
    Ok(read_optional(dir, file::SCRAPES)?.unwrap_or_default())
}

/// Reads `case.json`.
pub fn read_case(dir: &Path) -> Result<CaseRecord, String> {
    read_required(dir, file::CASE)
}

/// Reads `exchanges.json`.
pub fn read_exchanges(dir: &Path) -> Result<Vec<KeptExchange>, String> {
    read_required(dir, file::EXCHANGES)
}

/// Reads `verdict.json`; `None` when the case was cut off before its verdict.
pub fn read_verdict(dir: &Path) -> Result<Option<KeptVerdict>, String> {
    read_optional(dir, file::VERDICT)
}

/// The raw request body kept for an exchange (form secrets replaced); empty when none was kept.
pub fn read_body(dir: &Path, e: &KeptExchange) -> Vec<u8> {
    std::fs::read(dir.join(file::EXCHANGE_DIR).join(format!("{}.body", stem(e.seq, e.service)))).unwrap_or_default()
}

fn read_required<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, String> {
    read_optional(dir, name)?.ok_or_else(|| format!("{}: no such file", dir.join(name).display()))
}

fn read_optional<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, String> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// One exchange as `exchanges.json` keeps it: what replay re-sends and how the mock judged it. A reading of
/// [`Exchange`]'s serialised form; fields replay does not use are not read.
#[derive(Debug, Clone, Deserialize)]
pub struct KeptExchange {
    /// Arrival order.
    pub seq: usize,
    /// The service that answered.
    pub service: Service,
    /// The host addressed.
    pub host: String,
    /// Through a TLS tunnel.
    pub tls: bool,
    /// HTTP method.
    pub method: String,
    /// Path and query (secrets redacted).
    pub target: String,
    /// Headers (secrets redacted).
    pub headers: Vec<(String, String)>,
    /// The answer's status.
    pub status: u16,
    /// For token exchanges: the request as parsed and the token issued.
    #[serde(default)]
    pub detail: KeptDetail,
}

/// The token-service part of an exchange's detail.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeptDetail {
    /// The id of the token issued.
    #[serde(default)]
    pub issued: Option<u64>,
    /// The token request.
    #[serde(default)]
    pub request: Option<KeptTokenRequest>,
}

/// A token request as kept.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeptTokenRequest {
    /// `client_id` of the form.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The credential it carried.
    #[serde(default)]
    pub credential: Option<KeptCredential>,
}

/// An Entra credential as kept (the judgement, never the secret): see `EntraCredential`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeptCredential {
    /// `client-secret`, `certificate`, `federated`, `missing`.
    pub kind: String,
    /// Client secret: whether it matched.
    #[serde(default)]
    pub matches: Option<bool>,
    /// Assertions: whether the signature verified.
    #[serde(default)]
    pub signature_valid: Option<bool>,
    /// Assertions: claim problems.
    #[serde(default)]
    pub claim_errors: Vec<String>,
    /// Certificate: JWT `alg`.
    #[serde(default)]
    pub alg: Option<String>,
    /// Certificate: `x5t` or `x5t#S256`.
    #[serde(default)]
    pub thumbprint_header: Option<String>,
}

impl KeptCredential {
    /// A valid assertion: signature verified, no claim problem.
    pub fn valid(&self) -> bool {
        self.signature_valid == Some(true) && self.claim_errors.is_empty()
    }
}

/// `verdict.json` as replay compares with it.
#[derive(Debug, Clone, Deserialize)]
pub struct KeptVerdict {
    /// Whether the case passed.
    pub passed: bool,
    /// The outcome observed.
    #[serde(default)]
    pub observed: Option<Outcome>,
    /// Every finding.
    #[serde(default)]
    pub findings: Vec<KeptFinding>,
}

/// A finding as kept: its check and status.
#[derive(Debug, Clone, Deserialize)]
pub struct KeptFinding {
    /// The check.
    pub check: crate::Check,
    /// Its status.
    pub status: crate::expect::Status,
}

impl KeptVerdict {
    /// The checks that failed or stayed undecided, in order.
    pub fn failing(&self) -> Vec<crate::Check> {
        use crate::expect::Status;
        self.findings.iter().filter(|f| matches!(f.status, Status::Fail | Status::Undecided)).map(|f| f.check).collect()
    }
}

/// Writes `verdict.json`: the verdict plus `passed`, so a replay can compare without re-deriving it.
pub fn write_verdict(dir: &Path, verdict: &Verdict) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut value = serde_json::to_value(verdict)?;
    value["passed"] = serde_json::Value::Bool(verdict.passed());
    std::fs::write(dir.join(file::VERDICT), serde_json::to_vec_pretty(&value)?)
}
