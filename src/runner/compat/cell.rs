//! One cell of the matrix: what one auth scenario concluded on one Prometheus version, in the words of the table
//! (delivered / not supported / auth-failed / dropped / known-vulnerable / FAIL), with its one-line evidence and,
//! for a failure, whose fault the evidence points at.

use serde::{Deserialize, Serialize};

use crate::agent::capability;
use crate::expect::Verdict;
use crate::matrix::Case;
use crate::scenario::Outcome;
use crate::version::Version;

/// Longest reason kept: a table cell's evidence is one line.
const REASON_CHARS: usize = 300;

/// Which part of the table a column belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// An auth type in a cloud that must deliver.
    Auth,
    /// A misconfiguration that must be refused (auth-failed, dropped).
    Negative,
    /// A security check (token scope, redirects, TLS verification).
    Security,
}

impl Group {
    /// The group of a scenario, by its name.
    pub fn of(scenario: &str) -> Group {
        if scenario.starts_with("security/") {
            Group::Security
        } else if scenario.contains("/negative/") {
            Group::Negative
        } else {
            Group::Auth
        }
    }
}

/// What a cell says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellState {
    /// Authenticated writes reached the DCR and every check held.
    Delivered,
    /// The agent refused the config: the auth type is not in this version.
    NotSupported,
    /// The token service refused the agent (as a negative case must).
    AuthFailed,
    /// The DCR refused the writes and the agent dropped them (as a negative case must).
    Dropped,
    /// Passed except for a known advisory's finding (`mocks/vulnerabilities.yaml`).
    KnownVulnerable,
    /// A check failed, or the outcome was not the expected one.
    Failed,
}

impl CellState {
    /// The cell's text.
    pub fn label(self) -> &'static str {
        match self {
            CellState::Delivered => "delivered",
            CellState::NotSupported => "not supported",
            CellState::AuthFailed => "auth-failed",
            CellState::Dropped => "dropped",
            CellState::KnownVulnerable => "known-vulnerable",
            CellState::Failed => "FAIL",
        }
    }

    fn of(outcome: Outcome) -> CellState {
        match outcome {
            Outcome::Delivered => CellState::Delivered,
            Outcome::ConfigRejected | Outcome::NoAzuread => CellState::NotSupported,
            Outcome::AuthFailed => CellState::AuthFailed,
            Outcome::Dropped => CellState::Dropped,
        }
    }
}

/// Whose fault a failed cell is, as its evidence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blame {
    /// The agent did what Azure's contract forbids (or did not do what it requires).
    Agent,
    /// The agent's identity library refused what the mock served: the mock differs from the real cloud.
    Mock,
    /// The harness could not run the case (the evidence says why).
    Harness,
}

impl Blame {
    /// How a cell names it.
    pub fn label(self) -> &'static str {
        match self {
            Blame::Agent => "agent",
            Blame::Mock => "mock",
            Blame::Harness => "harness",
        }
    }
}

/// What the capability table (`src/agent/capability.rs`) says of the cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prediction {
    /// Whether the version has every capability the auth block needs.
    pub supported: bool,
    /// The first missing capability and its first version, e.g. `certificate ≥ 3.13.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// One scenario on one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// The scenario's name (the column).
    pub column: String,
    /// Its part of the table.
    pub group: Group,
    /// The auth type(s) its block uses, e.g. `oauth + scope`.
    pub auth: String,
    /// The cloud the agent is configured for.
    pub cloud: String,
    /// What the cell says.
    pub state: CellState,
    /// Whether the case passed (reached its expected outcome with every check holding).
    pub passed: bool,
    /// For a failed cell: agent, mock or harness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blame: Option<Blame>,
    /// One line: the agent's or the mock's evidence.
    pub reason: String,
    /// The outcome the case had to reach.
    pub expected: Outcome,
    /// The outcome it reached, if any.
    pub observed: Option<Outcome>,
    /// The capability table's prediction.
    pub table: Prediction,
}

/// A cell the capability table and the observation disagree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contradiction {
    /// The version (the row).
    pub version: Version,
    /// The scenario (the column).
    pub column: String,
    /// What the table says and what was seen.
    pub message: String,
}

impl std::fmt::Display for Contradiction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "prometheus {} × {}: {}", self.version, self.column, self.message)
    }
}

/// The cell a case's verdict makes.
pub fn judge(case: &Case, verdict: &Verdict) -> Cell {
    let auth = &case.scenario.scenario.auth;
    let needs = capability::required(auth);
    let label = if needs.is_empty() {
        "none".to_owned()
    } else {
        needs.iter().map(|c| c.name()).collect::<Vec<_>>().join(" + ")
    };
    let table = match capability::missing(auth, case.agent) {
        Some(c) => Prediction { supported: false, missing: Some(format!("{} ≥ {}", c.name(), c.since())) },
        None => Prediction { supported: true, missing: None },
    };
    let (state, blame, reason) = conclude(verdict);
    Cell {
        column: case.scenario.scenario.name.clone(),
        group: Group::of(&case.scenario.scenario.name),
        auth: label,
        cloud: auth.cloud.to_string(),
        state,
        passed: verdict.passed(),
        blame,
        reason: one_line(&reason),
        expected: verdict.expected,
        observed: verdict.observed,
        table,
    }
}

fn conclude(verdict: &Verdict) -> (CellState, Option<Blame>, String) {
    if let Some(error) = &verdict.error {
        return (CellState::Failed, Some(Blame::Harness), error.clone());
    }
    if verdict.passed() {
        if let Some(f) = verdict.known_vulnerable().next() {
            return (CellState::KnownVulnerable, None, f.headline());
        }
        let state = verdict.observed.map_or(CellState::Failed, CellState::of);
        return (state, None, verdict.explanation.clone());
    }
    // Supported or not is the capability table's question: the observation stands, and `contradictions` names it.
    let rejected = Some(Outcome::ConfigRejected);
    if verdict.observed != Some(verdict.expected)
        && (verdict.observed == rejected || Some(verdict.expected) == rejected)
    {
        let state = verdict.observed.map_or(CellState::Failed, CellState::of);
        return (state, None, verdict.decisive_evidence());
    }
    let evidence = verdict.decisive_evidence();
    (CellState::Failed, Some(blame(&evidence, &verdict.explanation)), evidence)
}

/// What an identity library says when the mock's discovery data is not what the real cloud serves (MSAL ≥ 1.5
/// validates the issuer against the authority; instance discovery and tenant discovery must parse).
const MOCK_MARKERS: [&str; 6] =
    ["issuer", "openid-configuration", "instance discovery", "tenant_discovery_endpoint", "authority", "metadata"];

/// The agent works against the real cloud, so a failure its identity library blames on the discovery data is the
/// mock's; any other failure is the agent's.
fn blame(evidence: &str, explanation: &str) -> Blame {
    let text = format!("{evidence} {explanation}").to_lowercase();
    if MOCK_MARKERS.iter().any(|m| text.contains(m)) { Blame::Mock } else { Blame::Agent }
}

/// The per-case directory's random part (`/tmp/azrw-case-lqkIXV/`) would make every run's reasons differ.
const CASE_DIR: &str = "azrw-case-";

fn stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(CASE_DIR) {
        let after = &rest[i + CASE_DIR.len()..];
        let random = after.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(after.len());
        out.push_str(&rest[..i]);
        out.push_str("azrw-case-…");
        rest = &after[random..];
    }
    out.push_str(rest);
    out
}

fn one_line(text: &str) -> String {
    let flat = stable(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    if flat.chars().count() <= REASON_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(REASON_CHARS - 1).collect();
    format!("{cut}…")
}

/// Cells where the observation contradicts the capability table: a version the table says lacks the auth type
/// accepted the config, or one it says has it refused the config.
pub fn contradictions(version: Version, cells: &[Cell]) -> Vec<Contradiction> {
    let mut out = Vec::new();
    for cell in cells {
        let Some(observed) = cell.observed else { continue };
        let rejected = observed == Outcome::ConfigRejected;
        let message = match (&cell.table.missing, rejected) {
            (Some(missing), false) => format!(
                "the capability table says {} is not supported (needs {missing}), but the agent accepted the config \
                 and the case was {observed}",
                cell.auth
            ),
            (None, true) => format!(
                "the capability table says {} is supported, but the agent refused the config: {}",
                cell.auth, cell.reason
            ),
            _ => continue,
        };
        out.push(Contradiction { version, column: cell.column.clone(), message });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::Check;
    use crate::expect::{Finding, Status};
    use crate::scenario::RuntimeKind;

    pub(crate) fn case(name: &str, auth: &str, version: &str) -> Case {
        let src = format!("name: {name}\nagents: [prometheus@latest]\nauth: {auth}\n");
        let loaded = crate::scenario::load::parse(Path::new("s.yaml"), src).unwrap();
        let agent: Version = version.parse().unwrap();
        let expected = capability::predicted_outcome(&loaded.scenario.auth, agent);
        let who = crate::matrix::Agent { written: format!("prometheus@{agent}"), version: agent, build: None };
        Case {
            id: crate::matrix::case_id(name, &who, RuntimeKind::Process, crate::scenario::AgentMode::Server),
            scenario: Arc::new(loaded),
            agent,
            agent_ref: who.written,
            build: None,
            runtime: RuntimeKind::Process,
            mode: crate::scenario::AgentMode::Server,
            expected,
        }
    }

    pub(crate) fn verdict(case: &Case, observed: Outcome, findings: Vec<Finding>) -> Verdict {
        Verdict {
            case_id: case.id.clone(),
            scenario: case.scenario.scenario.name.clone(),
            source: "s.yaml".into(),
            agent: format!("prometheus@{}", case.agent),
            runtime: "process".into(),
            expected: case.expected,
            observed: Some(observed),
            explanation: match observed {
                Outcome::ConfigRejected => "certificate not supported by prometheus; the agent said: field \
                                            certificate not found in type azuread.AzureADConfig"
                    .into(),
                _ => format!("{observed}: writes reached the DCR"),
            },
            findings,
            config_changes: vec![],
            duration: Duration::from_secs(3),
            error: None,
            mode: crate::scenario::AgentMode::Server,
            build: None,
        }
    }

    const CERT: &str = "{certificate: {client_id: 5b0c3e6e-1f7a-4c53-9a8e-7d1f2a3b4c5d, tenant_id: t}}";

    #[test]
    fn outcomes_become_cells_with_their_reason() {
        let c = case("auth/entra/certificate", CERT, "3.5.5");
        let cell = judge(&c, &verdict(&c, Outcome::ConfigRejected, vec![]));
        assert_eq!((cell.state, cell.passed, cell.blame), (CellState::NotSupported, true, None));
        assert!(cell.reason.contains("field certificate not found"), "{}", cell.reason);
        assert_eq!(cell.table.missing.as_deref(), Some("certificate ≥ 3.13.0"));
        assert!(contradictions(c.agent, &[cell]).is_empty());

        let c = case("auth/entra/certificate", CERT, "3.16.0");
        let kv = Finding {
            check: Check::SecurityConfigRedaction,
            status: Status::KnownVulnerable,
            message: "CVE-2026-42151".into(),
            evidence: vec!["GET /api/v1/status/config".into()],
        };
        let cell = judge(&c, &verdict(&c, Outcome::Delivered, vec![kv]));
        assert_eq!(cell.state, CellState::KnownVulnerable);
        assert!(cell.reason.contains("CVE-2026-42151 — GET /api/v1/status/config"), "{}", cell.reason);
    }

    #[test]
    fn failures_name_the_agent_or_the_mock() {
        let c = case(
            "security/redirect",
            "{managed_identity: {client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}}",
            "3.16.0",
        );
        let leak = Finding::fail(Check::SecurityRedirect, "the bearer token followed the redirect")
            .with_evidence("request #5 POST https://dce-moved.example.net/ Authorization: Bearer [token #1]");
        let cell = judge(&c, &verdict(&c, Outcome::Delivered, vec![leak]));
        assert_eq!((cell.state, cell.blame, cell.passed), (CellState::Failed, Some(Blame::Agent), false));
        assert!(cell.reason.contains("dce-moved.example.net"), "{}", cell.reason);

        let issuer = Finding::fail(Check::Outcome, "no token was issued").with_evidence(
            "agent log: issuer \"https://login.microsoftonline.com/t/v2.0\" does not match the authority host",
        );
        let cell = judge(&c, &verdict(&c, Outcome::AuthFailed, vec![issuer]));
        assert_eq!((cell.state, cell.blame), (CellState::Failed, Some(Blame::Mock)));
    }

    #[test]
    fn a_contradiction_names_the_cell() {
        // The table says certificate needs 3.13; an agent that delivers with it on 3.5.5 contradicts it.
        let c = case("auth/entra/certificate", CERT, "3.5.5");
        let cell = judge(&c, &verdict(&c, Outcome::Delivered, vec![]));
        let found = contradictions(c.agent, &[cell]);
        assert_eq!(found.len(), 1);
        let text = found[0].to_string();
        assert!(text.starts_with("prometheus 3.5.5 × auth/entra/certificate: "), "{text}");
        assert!(text.contains("not supported (needs certificate ≥ 3.13.0)"), "{text}");

        // And one that refuses a block the table says it has.
        let c = case("auth/entra/certificate", CERT, "3.16.0");
        let cell = judge(&c, &verdict(&c, Outcome::ConfigRejected, vec![]));
        let found = contradictions(c.agent, &[cell]);
        assert!(found[0].to_string().contains("is supported, but the agent refused the config"), "{}", found[0]);
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), REASON_CHARS);
        assert_eq!(
            one_line("(--config.file=/tmp/azrw-case-lqkIXV/prometheus.yml): x"),
            "(--config.file=/tmp/azrw-case-…/prometheus.yml): x"
        );
    }
}
