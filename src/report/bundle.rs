//! Capture bundles: everything needed to understand — and replay — one case, in `out/<case>/`:
//!
//! | file | what |
//! |---|---|
//! | `case.json` | the case: agent, expected outcome, the scenario's auth/cloud/expect blocks (secrets replaced), the agent's final state |
//! | `verdict.json` | the verdict with every finding and its evidence |
//! | `exchanges.json` | every exchange the mock cloud recorded (headers redacted, payloads decoded) |
//! | `exchanges/NNNN-service.json`, `.body` | one exchange each, and its raw request body (form secrets replaced) |
//! | `scrapes.json` | when the scrape target served each scrape (with `case.json`'s `target`, what the payload checks judge against) |
//! | `prometheus.yml`, `env.json`, `agent.log` | the agent's config and environment (secrets redacted) and its output |
//! | `sidecar-<name>.env.json`, `sidecar-<name>.log` | each sidecar's environment (secrets redacted) and output |
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

/// File stem of one exchange in `exchanges/`.
pub fn exchange_stem(e: &Exchange) -> String {
    format!("{:04}-{}", e.seq, service_name(e.service))
}

/// Writes the case's bundle files (all but `verdict.json`, written once the verdict is final).
pub fn write_case(
    dir: &Path,
    record: &CaseRecord,
    exchanges: &[Exchange],
    recorder: &Recorder,
    env: &[(String, String)],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("exchanges"))?;
    std::fs::write(dir.join("case.json"), serde_json::to_vec_pretty(record)?)?;
    std::fs::write(dir.join("exchanges.json"), serde_json::to_vec_pretty(exchanges)?)?;
    for e in exchanges {
        let stem = exchange_stem(e);
        std::fs::write(dir.join("exchanges").join(format!("{stem}.json")), serde_json::to_vec_pretty(e)?)?;
        let body = recorder.body(e.seq).unwrap_or_default();
        if !body.is_empty() {
            std::fs::write(dir.join("exchanges").join(format!("{stem}.body")), &body)?;
        }
    }
    write_env(&dir.join("env.json"), env)
}

/// Writes an environment as JSON with secret values withheld (the agent's `env.json`, a sidecar's
/// `sidecar-<name>.env.json`).
pub fn write_env(path: &Path, env: &[(String, String)]) -> std::io::Result<()> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), redact_env(k, v))).collect();
    std::fs::write(path, serde_json::to_vec_pretty(&env)?)
}

/// Writes `scrapes.json`: when the target served each scrape.
pub fn write_scrapes(dir: &Path, scrapes: &[Scrape]) -> std::io::Result<()> {
    std::fs::write(dir.join("scrapes.json"), serde_json::to_vec_pretty(scrapes)?)
}

/// Reads `scrapes.json`; none when the bundle has no such file.
pub fn read_scrapes(dir: &Path) -> Result<Vec<Scrape>, String> {
    let path = dir.join("scrapes.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `verdict.json`: the verdict plus `passed`, so a replay can compare without re-deriving it.
pub fn write_verdict(dir: &Path, verdict: &Verdict) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut value = serde_json::to_value(verdict)?;
    value["passed"] = serde_json::Value::Bool(verdict.passed());
    std::fs::write(dir.join("verdict.json"), serde_json::to_vec_pretty(&value)?)
}

/// An environment value as it may be shown: values of variables that name secrets are withheld.
fn redact_env(key: &str, value: &str) -> String {
    let k = key.to_ascii_uppercase();
    let secret = ["SECRET", "PASSWORD", "TOKEN", "KEY", "CREDENTIAL"].iter().any(|w| k.contains(w))
        && !k.ends_with("_FILE")
        && !k.ends_with("_PATH");
    if secret { SECRET_PLACEHOLDER.to_owned() } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_secrets_are_withheld_but_paths_kept() {
        assert_eq!(redact_env("AZURE_CLIENT_SECRET", "s"), SECRET_PLACEHOLDER);
        assert_eq!(redact_env("AZURE_FEDERATED_TOKEN_FILE", "/p"), "/p");
        assert_eq!(redact_env("HTTPS_PROXY", "http://x"), "http://x");
    }
}
