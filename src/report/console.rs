//! The console report: one line per case, a summary line CI can read, details for failing cases.

use std::fmt::Write as _;

use crate::expect::{Status, Verdict};

/// Longest EVIDENCE cell; the full text is in [`render_details`] and the JUnit report.
const EVIDENCE_WIDTH: usize = 100;

/// The verdict table and, on a line of its own, `N passed, M failed`.
///
/// ```text
/// CASE                                   EXPECTED   OBSERVED   RESULT  EVIDENCE
/// mi/system [prometheus@3.5.1/process]   delivered  delivered  pass    3 writes, token reused
///
/// 1 passed, 0 failed
/// ```
pub fn render_table(verdicts: &[Verdict]) -> String {
    let headers = ["CASE", "EXPECTED", "OBSERVED", "RESULT", "EVIDENCE"];
    let rows: Vec<[String; 5]> = verdicts
        .iter()
        .map(|v| {
            [
                one_line(&v.case_id),
                v.expected.to_string(),
                v.observed.map_or_else(|| "-".to_owned(), |o| o.to_string()),
                v.result().to_owned(),
                truncate(&one_line(&v.decisive_evidence()), EVIDENCE_WIDTH),
            ]
        })
        .collect();

    // Every column but the last is padded to its widest cell; the last is left ragged.
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                let pad = widths[i] - cell.chars().count();
                l.push_str(cell);
                l.push_str(&" ".repeat(pad + 2));
            } else {
                l.push_str(cell);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let _ = write!(out, "\n{passed} passed, {} failed\n", verdicts.len() - passed);
    out.push_str(&known_vulnerable_line(verdicts));
    out
}

/// `2 passing cases are known-vulnerable (CVE-2026-42151); --strict-security fails them`, or nothing.
pub fn known_vulnerable_line(verdicts: &[Verdict]) -> String {
    let cases: Vec<&Verdict> = verdicts.iter().filter(|v| v.result() == "known-vulnerable").collect();
    if cases.is_empty() {
        return String::new();
    }
    let mut ids: Vec<String> =
        cases.iter().flat_map(|v| v.known_vulnerable()).filter_map(|f| advisory_id(&f.message)).collect();
    ids.sort();
    ids.dedup();
    let n = cases.len();
    let (noun, verb) = if n == 1 { ("case is", "fails it") } else { ("cases are", "fails them") };
    format!("{n} passing {noun} known-vulnerable ({}); --strict-security {verb}\n", ids.join(", "))
}

/// `CVE-2026-42151` from `known-vulnerable (CVE-2026-42151, fixed in …): …`.
pub fn advisory_id(message: &str) -> Option<String> {
    let rest = message.split("known-vulnerable (").nth(1)?;
    Some(rest.split([',', ')']).next()?.to_owned())
}

/// Everything a verdict carries, for a failing case: outcome, harness error, every finding with its evidence,
/// what the harness changed in the agent's config, and the explanation.
pub fn render_details(v: &Verdict) -> String {
    let mut out = String::new();
    let result = v.result();
    let observed = v.observed.map_or_else(|| "no outcome".to_owned(), |o| o.to_string());
    let _ = writeln!(out, "{result} {}", v.case_id);
    let _ = writeln!(out, "  scenario:    {} ({})", v.scenario, v.source);
    let mode = match v.mode {
        crate::scenario::AgentMode::Server => String::new(),
        crate::scenario::AgentMode::Agent => " in agent mode".to_owned(),
    };
    let _ = writeln!(out, "  agent:       {}{mode} on {}, {:.1}s", v.agent, v.runtime, v.duration.as_secs_f64());
    if let Some(build) = &v.build {
        let _ = writeln!(out, "  build:       {}", build.describe());
    }
    let _ = writeln!(out, "  expected:    {}", v.expected);
    let _ = writeln!(out, "  observed:    {observed}");
    if let Some(error) = &v.error {
        let _ = writeln!(out, "  error:       {error}");
    }
    if !v.explanation.is_empty() {
        let _ = writeln!(out, "  explanation: {}", v.explanation);
    }
    if !v.findings.is_empty() {
        out.push_str("  findings:\n");
        for f in &v.findings {
            let _ = writeln!(out, "    {:<9} {}: {}", status(f.status), f.check, f.message);
            // Evidence may quote a multi-line body; keep every line under its finding.
            for line in f.evidence.iter().flat_map(|e| e.lines()) {
                let _ = writeln!(out, "              {line}");
            }
        }
    }
    if !v.config_changes.is_empty() {
        out.push_str("  config changes:\n");
        for c in &v.config_changes {
            let _ = writeln!(out, "    - {c}");
        }
    }
    out
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Undecided => "UNDECIDED",
        Status::Skipped => "skipped",
        Status::KnownVulnerable => "KNOWN-VULNERABLE",
    }
}

/// Table cells are one line: evidence may quote multi-line bodies.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Check;
    use crate::expect::Finding;
    use crate::scenario::Outcome;

    pub(crate) fn verdict(id: &str, observed: Option<Outcome>, findings: Vec<Finding>) -> Verdict {
        Verdict {
            case_id: id.to_owned(),
            scenario: id.split(' ').next().unwrap().to_owned(),
            source: "scenarios/auth/mi.yaml".to_owned(),
            agent: "prometheus@3.5.1".to_owned(),
            runtime: "process".to_owned(),
            mode: crate::scenario::AgentMode::Server,
            build: None,
            expected: Outcome::Delivered,
            observed,
            explanation: "writes arrived".to_owned(),
            findings,
            config_changes: vec!["remote_write[0].url: https://dce.example → proxied".to_owned()],
            duration: Duration::from_millis(1500),
            error: None,
        }
    }

    fn sample() -> Vec<Verdict> {
        vec![
            verdict(
                "mi/system [prometheus@3.5.1/process]",
                Some(Outcome::Delivered),
                vec![Finding::pass(Check::AuthEndpoint, "token from IMDS")],
            ),
            verdict(
                "mi/system [prometheus@2.53.3/process]",
                Some(Outcome::Delivered),
                vec![Finding::fail(Check::WriteContentEncoding, "expected snappy").with_evidence(format!(
                    "request #7 POST https://x Content-Encoding: \"gzip\"\n{}",
                    "x".repeat(200)
                ))],
            ),
        ]
    }

    #[test]
    fn table_lists_every_case_and_ends_with_the_summary_line() {
        let t = render_table(&sample());
        assert!(t.starts_with("CASE"), "{t}");
        for id in ["mi/system [prometheus@3.5.1/process]", "mi/system [prometheus@2.53.3/process]"] {
            assert!(t.contains(id), "{t}");
        }
        assert!(t.lines().any(|l| l == "1 passed, 1 failed"), "{t}");
        assert!(t.contains("FAIL") && t.contains("pass"), "{t}");
        // Evidence is cut to one line of bounded width.
        assert_eq!(t.lines().count(), 5, "{t}");
        assert!(t.contains("write.content-encoding: expected snappy — request #7"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() < 200), "{t}");
    }

    #[test]
    fn empty_run_still_has_a_summary() {
        assert!(render_table(&[]).lines().any(|l| l == "0 passed, 0 failed"));
    }

    #[test]
    fn details_show_findings_evidence_changes_and_explanation() {
        let mut v = sample().remove(1);
        v.error = Some("agent binary missing".to_owned());
        let d = render_details(&v);
        assert!(d.starts_with("FAIL mi/system [prometheus@2.53.3/process]\n"), "{d}");
        assert!(d.contains("FAIL      write.content-encoding: expected snappy"), "{d}");
        assert!(d.contains("request #7 POST"), "{d}");
        assert!(d.contains("- remote_write[0].url"), "{d}");
        assert!(d.contains("explanation: writes arrived"), "{d}");
        assert!(d.contains("error:       agent binary missing"), "{d}");
    }
}
