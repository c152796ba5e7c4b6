//! Known vulnerabilities applied to findings: the table (`mocks/vulnerabilities.yaml`) says which versions an
//! advisory affects and which check detects it; the check's own result decides. A check that fires on an affected
//! version is `known-vulnerable` (a failure under `--strict-security`); firing anywhere else is a regression and
//! stays a plain failure; an affected version that does not leak passes and says so (a backported fix?).

use super::{CaseFacts, Finding, Status};

/// Rewrites the findings of checks that the known-vulnerability table names for this case.
pub(super) fn apply(facts: &CaseFacts<'_>, findings: &mut [Finding]) {
    for f in findings.iter_mut() {
        for v in facts.vulnerabilities.for_check(f.check, facts.auth) {
            let affected = v.affects(facts.version);
            match (f.status, affected) {
                (Status::Fail, true) if facts.strict_security => {
                    f.message = format!("known-vulnerable ({v}), failing under --strict-security: {}", f.message);
                }
                (Status::Fail, true) => {
                    f.status = Status::KnownVulnerable;
                    f.message = format!("known-vulnerable ({v}): {}", f.message);
                }
                (Status::Fail, false) => {
                    f.message = format!(
                        "{} — a regression: the table lists prometheus {} as not affected by {} ({})",
                        f.message,
                        facts.version,
                        v.id,
                        v.fixed_in()
                    );
                }
                (Status::Pass, true) => {
                    f.message = format!(
                        "{} — although the table lists prometheus {} as affected by {} (a backported fix?)",
                        f.message, facts.version, v.id
                    );
                }
                _ => {}
            }
        }
    }
}
