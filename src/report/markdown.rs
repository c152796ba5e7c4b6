//! A Markdown summary fit for a CI job page (`$GITHUB_STEP_SUMMARY`): the matrix of scenario (auth type) ×
//! agent version × runtime, then the decisive evidence of every failing case.

use std::fmt::Write as _;
use std::path::Path;

use super::bundle::slug;
use super::grid::{Grid, mark};
use crate::expect::Verdict;

/// Under a list item: every line two spaces in.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// `| cell |` text: no pipes or newlines.
fn cell(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// The summary: a headline, the matrix, and the failures with their evidence.
///
/// ```
/// let md = azrw::report::render_markdown(&[]);
/// assert!(md.contains("0 passed, 0 failed"));
/// ```
pub fn render_markdown(verdicts: &[Verdict]) -> String {
    render_summary(verdicts, None)
}

/// [`render_markdown`], with each failed case's sequence diagram from its bundle under `out_dir`
/// (`<case>/sequence.mmd`).
pub fn render_summary(verdicts: &[Verdict], out_dir: Option<&Path>) -> String {
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let mut out = String::new();
    let _ = writeln!(out, "## azrw: {passed} passed, {} failed\n", verdicts.len() - passed);
    if verdicts.is_empty() {
        return out;
    }
    let grid = Grid::new(verdicts);
    let columns = &grid.columns;
    out.push_str("| scenario (auth) |");
    for (agent, runtime) in columns {
        let _ = write!(out, " {} / {} |", cell(agent), cell(runtime));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for row in &grid.rows {
        let _ = write!(out, "| {} |", cell(row));
        for column in columns {
            let _ = write!(out, " {} |", grid.cell(row, column).map_or_else(|| "—".to_owned(), mark));
        }
        out.push('\n');
    }
    let mut builds: Vec<String> = Vec::new();
    for b in verdicts.iter().filter_map(|v| v.build.as_ref().map(|b| b.describe())) {
        if !builds.contains(&b) {
            builds.push(b);
        }
    }
    if !builds.is_empty() {
        out.push_str("\n### Builds under test\n\n");
        for b in builds {
            let _ = writeln!(out, "- {}", cell(&b));
        }
    }
    let known: Vec<&Verdict> = verdicts.iter().filter(|v| v.result() == "known-vulnerable").collect();
    if !known.is_empty() {
        out.push_str("\n### Known vulnerable (pass unless `--strict-security`)\n\n");
        for v in known {
            let _ = writeln!(out, "- **{}** — {}", cell(&v.case_id), cell(&v.decisive_evidence()));
        }
    }
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.passed()).collect();
    if !failed.is_empty() {
        out.push_str("\n### Failures\n\n");
        for v in failed {
            let _ = writeln!(out, "- **{}** — {}", cell(&v.case_id), cell(&v.decisive_evidence()));
            let diagram = out_dir.and_then(|d| {
                std::fs::read_to_string(d.join(slug(&v.case_id)).join(super::bundle::file::SEQUENCE)).ok()
            });
            if let Some(diagram) = diagram {
                let _ = writeln!(out, "\n  ```mermaid\n{}  ```\n", indent(&diagram));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Check;
    use crate::expect::Finding;
    use crate::report::console::tests::verdict;
    use crate::scenario::Outcome;

    #[test]
    fn matrix_has_a_row_per_scenario_and_a_column_per_agent_and_runtime() {
        let mut old = verdict("mi/system [prometheus@2.53.3/process]", Some(Outcome::Dropped), vec![]);
        old.agent = "prometheus@2.53.3".into();
        old.findings = vec![Finding::fail(Check::WriteBearer, "no token").with_evidence("request #3 POST | x")];
        let mut other = verdict("oauth [prometheus@3.5.1/process]", Some(Outcome::Delivered), vec![]);
        other.scenario = "oauth".into();
        let mut newest = verdict("oauth [prometheus@3.16.0/process]", Some(Outcome::Delivered), vec![]);
        newest.scenario = "oauth".into();
        newest.agent = "prometheus@3.16.0".into();
        let md = render_markdown(&[
            verdict("mi/system [prometheus@3.5.1/process]", Some(Outcome::Delivered), vec![]),
            old,
            other,
            newest,
        ]);
        assert!(md.starts_with("## azrw: 3 passed, 1 failed\n"), "{md}");
        // Columns in version order: 3.5.1 before 3.16.0.
        assert!(
            md.contains(
                "| scenario (auth) | prometheus@2.53.3 / process | prometheus@3.5.1 / process | prometheus@3.16.0 / process |"
            ),
            "{md}"
        );
        assert!(md.contains("| mi/system | ❌ dropped (expected delivered) | ✅ delivered | — |"), "{md}");
        assert!(md.contains("| oauth | — | ✅ delivered | ✅ delivered |"), "{md}");
        assert!(
            md.contains("- **mi/system [prometheus@2.53.3/process]** — write.bearer: no token — request #3 POST \\| x"),
            "{md}"
        );
    }

    #[test]
    fn a_failed_case_gets_its_sequence_diagram_from_its_bundle() {
        let out = tempfile::tempdir().unwrap();
        let bad = verdict(
            "retry/x [prometheus@3.5.1/process]",
            Some(Outcome::Delivered),
            vec![Finding::fail(Check::RetryRetryAfter, "early").with_evidence("retried: request #3 POST x")],
        );
        let good = verdict("auth/mi [prometheus@3.5.1/process]", Some(Outcome::Delivered), vec![]);
        for v in [&bad, &good] {
            let dir = out.path().join(slug(&v.case_id));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("sequence.mmd"), format!("sequenceDiagram\n    A->>DCR: {}\n", v.scenario))
                .unwrap();
        }
        let md = render_summary(&[good, bad], Some(out.path()));
        assert!(md.contains("\n  ```mermaid\n  sequenceDiagram\n      A->>DCR: retry/x\n  ```\n"), "{md}");
        assert!(!md.contains("A->>DCR: auth/mi"), "passing cases get none: {md}");
        assert!(!render_markdown(&[]).contains("mermaid"));
    }

    #[test]
    fn own_builds_are_listed_and_agent_mode_is_its_own_column() {
        let source: crate::version::AgentSource = "prometheus=/opt/p".parse().unwrap();
        let printed = "prometheus, version 3.5.5 (branch: HEAD, revision: r1)".to_owned();
        let build = crate::agent::source::identify(&source, "sha256:ab".into(), Ok(printed), None).unwrap();
        let mut server = verdict("x [prometheus=/opt/p@3.5.5/process]", Some(Outcome::Delivered), vec![]);
        server.agent = build.label();
        server.build = Some(build.clone());
        let mut agent = server.clone();
        agent.case_id = "x [prometheus=/opt/p@3.5.5/process/agent]".into();
        agent.mode = crate::scenario::AgentMode::Agent;
        let md = render_markdown(&[server, agent]);
        assert!(md.contains("| /opt/p (3.5.5) / process | /opt/p (3.5.5) / process, agent mode |"), "{md}");
        assert!(md.contains("| x | ✅ delivered | ✅ delivered |"), "{md}");
        assert_eq!(md.matches("- /opt/p, sha256:ab, version 3.5.5, revision r1, branch HEAD").count(), 1, "{md}");
    }
}
