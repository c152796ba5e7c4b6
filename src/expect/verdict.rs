//! What a case concluded, with the evidence a person can act on.

use std::time::Duration;

use serde::Serialize;

use crate::Check;
use crate::scenario::Outcome;

/// The state of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Held.
    Pass,
    /// Violated; the finding's evidence says where.
    Fail,
    /// Not decided by the deadline (reported as a failure).
    Undecided,
    /// Does not apply to this case (e.g. header checks when the config was rejected).
    Skipped,
    /// Violated the way a known advisory says this version does (`mocks/vulnerabilities.yaml`): reported, not a
    /// failure, unless `--strict-security`.
    KnownVulnerable,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Which check, e.g. `write.content-encoding`, `series.present`.
    pub check: Check,
    /// Its state.
    pub status: Status,
    /// One sentence: what held or what was violated.
    pub message: String,
    /// The requests, headers and values behind it (`request #7 POST https://… Content-Encoding: "gzip"`).
    pub evidence: Vec<String>,
}

impl Finding {
    /// A passing finding.
    pub fn pass(check: Check, message: impl Into<String>) -> Finding {
        Finding { check, status: Status::Pass, message: message.into(), evidence: Vec::new() }
    }

    /// A failing finding.
    pub fn fail(check: Check, message: impl Into<String>) -> Finding {
        Finding { check, status: Status::Fail, message: message.into(), evidence: Vec::new() }
    }

    /// Adds one line of evidence.
    pub fn with_evidence(mut self, line: impl Into<String>) -> Finding {
        self.evidence.push(line.into());
        self
    }

    /// `check: message — first evidence line`.
    pub fn headline(&self) -> String {
        match self.evidence.first() {
            Some(e) => format!("{}: {} — {e}", self.check, self.message),
            None => format!("{}: {}", self.check, self.message),
        }
    }

    /// Whether this finding fails the case.
    pub fn is_failure(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Undecided)
    }
}

/// The verdict of one case.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Case id, `scenario-name [prometheus@3.5.1/process]`.
    pub case_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub source: String,
    /// `prometheus@3.5.1`.
    pub agent: String,
    /// `process` or `docker`.
    pub runtime: String,
    /// Server or agent mode.
    pub mode: crate::scenario::AgentMode,
    /// The user's own build under test (path or image, digest, reported version and revision); `None` for the
    /// catalog's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::agent::source::AgentBuild>,
    /// The outcome the scenario (or the capability table) expects.
    pub expected: Outcome,
    /// The outcome observed, if one was reached.
    pub observed: Option<Outcome>,
    /// Why the observed outcome came about, in words (e.g. "identity X lacks Monitoring Metrics Publisher on DCR Y").
    pub explanation: String,
    /// Every check, passing ones included.
    pub findings: Vec<Finding>,
    /// What the harness changed in the agent's config, one line each.
    pub config_changes: Vec<String>,
    /// Wall time of the case.
    pub duration: Duration,
    /// Harness error that prevented a verdict (agent missing, namespace refused …), if any.
    pub error: Option<String>,
}

impl Verdict {
    /// A case passes when it reached the expected outcome and no check failed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.observed == Some(self.expected) && !self.findings.iter().any(Finding::is_failure)
    }

    /// The findings of known vulnerabilities this case showed.
    pub fn known_vulnerable(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == Status::KnownVulnerable)
    }

    /// `pass`, `known-vulnerable` (passed, but a known advisory fired) or `FAIL`.
    pub fn result(&self) -> &'static str {
        match (self.passed(), self.known_vulnerable().next().is_some()) {
            (true, false) => "pass",
            (true, true) => "known-vulnerable",
            (false, _) => "FAIL",
        }
    }

    /// The one line that best explains a failure (or success): the first failing finding's message and evidence.
    pub fn decisive_evidence(&self) -> String {
        if let Some(error) = &self.error {
            return error.clone();
        }
        // A failure explains most; short of one, a known vulnerability (which a passing table row would hide).
        let decisive = self.findings.iter().find(|f| f.is_failure()).or_else(|| self.known_vulnerable().next());
        if let Some(f) = decisive {
            return f.headline();
        }
        if self.observed != Some(self.expected) {
            let observed = self.observed.map_or("no outcome".to_owned(), |o| o.to_string());
            return format!("expected {}, observed {observed}: {}", self.expected, self.explanation);
        }
        self.explanation.clone()
    }
}
