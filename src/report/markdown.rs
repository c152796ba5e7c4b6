//! A Markdown summary fit for a CI job page (`$GITHUB_STEP_SUMMARY`): the matrix of scenario (auth type) ×
//! agent version × runtime, then the decisive evidence of every failing case.

use std::fmt::Write as _;

use crate::expect::Verdict;

/// `| cell |` text: no pipes or newlines.
fn cell(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

fn mark(v: &Verdict) -> String {
    let observed = v.observed.map_or_else(|| "no outcome".to_owned(), |o| o.to_string());
    if let Some(id) = v.known_vulnerable().find_map(|f| super::console::advisory_id(&f.message)).filter(|_| v.passed())
    {
        format!("⚠️ {observed}, known-vulnerable ({id})")
    } else if v.passed() {
        format!("✅ {observed}")
    } else if v.error.is_some() {
        "⚠️ error".to_owned()
    } else {
        format!("❌ {observed} (expected {})", v.expected)
    }
}

/// The column's second half: the runtime, and the mode when it is agent mode.
fn column_runtime(v: &Verdict) -> String {
    match v.mode {
        crate::scenario::AgentMode::Server => v.runtime.clone(),
        crate::scenario::AgentMode::Agent => format!("{}, agent mode", v.runtime),
    }
}

/// The summary: a headline, the matrix, and the failures with their evidence.
///
/// ```
/// let md = azrw::report::render_markdown(&[]);
/// assert!(md.contains("0 passed, 0 failed"));
/// ```
pub fn render_markdown(verdicts: &[Verdict]) -> String {
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let mut out = String::new();
    let _ = writeln!(out, "## azrw: {passed} passed, {} failed\n", verdicts.len() - passed);
    if verdicts.is_empty() {
        return out;
    }
    let mut columns: Vec<(String, String)> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for v in verdicts {
        let col = (v.agent.clone(), column_runtime(v));
        if !columns.contains(&col) {
            columns.push(col);
        }
        if !rows.contains(&v.scenario) {
            rows.push(v.scenario.clone());
        }
    }
    // Versions in numeric order (3.5.1 before 3.16.0), then runtime.
    let version_key =
        |agent: &str| agent.strip_prefix("prometheus@").and_then(|v| v.parse::<crate::agent::Version>().ok());
    columns.sort_by(|a, b| (version_key(&a.0), &a.0, &a.1).cmp(&(version_key(&b.0), &b.0, &b.1)));
    out.push_str("| scenario (auth) |");
    for (agent, runtime) in &columns {
        let _ = write!(out, " {} / {} |", cell(agent), cell(runtime));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for row in &rows {
        let _ = write!(out, "| {} |", cell(row));
        for (agent, runtime) in &columns {
            let v = verdicts.iter().find(|v| &v.scenario == row && &v.agent == agent && &column_runtime(v) == runtime);
            let _ = write!(out, " {} |", v.map_or_else(|| "—".to_owned(), mark));
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
