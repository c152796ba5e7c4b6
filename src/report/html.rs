//! `out/report.html`: one self-contained page (no script, no external font, style or image) — the matrix of scenario ×
//! agent × runtime, then every failed case with its findings, evidence, timeline and bundle files, then every other
//! case folded. Everything it shows is escaped: case ids, messages and evidence come from what agents sent.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::bundle::slug;
use super::grid::{Grid, mark};
use super::markup::escape;
use crate::expect::{Finding, Status, Verdict};

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table.matrix{border-collapse:collapse}table.matrix td,table.matrix th{border:1px solid #ccc;padding:4px 8px;font-size:13px}\
td.pass{background:#e8f5e9}td.FAIL{background:#ffebee}td.known-vulnerable{background:#fff8e1}\
section.case{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:1em 0}section.FAIL{border-color:#e57373}\
pre{background:#f5f5f5;padding:4px 8px;white-space:pre-wrap;font-size:12px;margin:2px 0 8px}\
li.fail,li.undecided{color:#b71c1c}li.known-vulnerable{color:#e65100}.timeline{overflow-x:auto}.timeline svg{max-width:100%;height:auto}\
.files a{margin-right:1em;font-size:13px}a{color:#1565c0}";

/// The page for these verdicts; each case's timeline and files are read from `out_dir/<case>/`.
pub fn render_html(verdicts: &[Verdict], out_dir: &Path) -> String {
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let headline = format!("azrw: {passed} passed, {} failed", verdicts.len() - passed);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&headline),
        escape(&headline)
    );
    out.push_str(&matrix(verdicts));
    let (failed, others): (Vec<&Verdict>, Vec<&Verdict>) = verdicts.iter().partition(|v| !v.passed());
    if !failed.is_empty() {
        out.push_str("<h2>Failed cases</h2>\n");
        for v in failed {
            out.push_str(&case_section(v, out_dir, true));
        }
    }
    if !others.is_empty() {
        out.push_str("<h2>Passed cases</h2>\n");
        for v in others {
            out.push_str(&case_section(v, out_dir, false));
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes `out_dir/report.html` and returns its path.
pub fn write_html(verdicts: &[Verdict], out_dir: &Path) -> std::io::Result<PathBuf> {
    let path = out_dir.join("report.html");
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(&path, render_html(verdicts, out_dir))?;
    Ok(path)
}

fn matrix(verdicts: &[Verdict]) -> String {
    let grid = Grid::new(verdicts);
    let mut out = String::from("<table class=\"matrix\"><tr><th>scenario</th>");
    for (agent, runtime) in &grid.columns {
        let _ = write!(out, "<th>{} / {}</th>", escape(agent), escape(runtime));
    }
    out.push_str("</tr>\n");
    for row in &grid.rows {
        let _ = write!(out, "<tr><th>{}</th>", escape(row));
        for column in &grid.columns {
            match grid.cell(row, column) {
                Some(v) => {
                    let _ = write!(
                        out,
                        "<td class=\"{}\"><a href=\"#{}\">{}</a></td>",
                        v.result(),
                        escape(&slug(&v.case_id)),
                        escape(&mark(v))
                    );
                }
                None => out.push_str("<td>—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn case_section(v: &Verdict, out_dir: &Path, open: bool) -> String {
    let dir = slug(&v.case_id);
    let mut out = format!(
        "<section class=\"case {}\" id=\"{}\"><details{}><summary><b>{}</b> — {}</summary>\n",
        v.result(),
        escape(&dir),
        if open { " open" } else { "" },
        escape(&v.case_id),
        escape(&mark(v))
    );
    let _ = writeln!(
        out,
        "<p>expected <b>{}</b>, observed <b>{}</b>: {} ({:.1}s, {})</p>",
        v.expected,
        v.observed.map_or_else(|| "no outcome".to_owned(), |o| o.to_string()),
        escape(&v.explanation),
        v.duration.as_secs_f64(),
        escape(&v.source)
    );
    if let Some(error) = &v.error {
        let _ = writeln!(out, "<p>harness error:</p><pre>{}</pre>", escape(error));
    }
    out.push_str(&findings(&v.findings));
    if !v.config_changes.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>config changes ({})</summary><pre>{}</pre></details>",
            v.config_changes.len(),
            escape(&v.config_changes.join("\n"))
        );
    }
    out.push_str(&timeline(&out_dir.join(&dir)));
    out.push_str(&files(out_dir, &dir));
    out.push_str("</details></section>\n");
    out
}

/// Failing and known-vulnerable findings with their evidence; the checks that held, folded.
fn findings(all: &[Finding]) -> String {
    let status = |f: &Finding| serde_json::to_value(f.status).ok().and_then(|s| s.as_str().map(str::to_owned));
    let mut out = String::from("<ul class=\"findings\">\n");
    for f in all.iter().filter(|f| f.is_failure() || f.status == Status::KnownVulnerable) {
        let s = status(f).unwrap_or_default();
        let _ = write!(out, "<li class=\"{s}\"><b>{}</b> {s}: {}", f.check, escape(&f.message));
        if !f.evidence.is_empty() {
            let _ = write!(out, "<pre>{}</pre>", escape(&f.evidence.join("\n")));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    let held: Vec<&Finding> = all.iter().filter(|f| matches!(f.status, Status::Pass | Status::Skipped)).collect();
    if !held.is_empty() {
        let _ = write!(out, "<details><summary>{} checks held or did not apply</summary><ul>", held.len());
        for f in held {
            let _ =
                write!(out, "<li><b>{}</b> {}: {}</li>", f.check, status(f).unwrap_or_default(), escape(&f.message));
        }
        out.push_str("</ul></details>\n");
    }
    out
}

/// The case's own timeline, inlined when it is one azrw drew (an SVG without script).
fn timeline(case_dir: &Path) -> String {
    match std::fs::read_to_string(case_dir.join(super::bundle::file::TIMELINE)) {
        Ok(svg)
            if svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"azrw-timeline\"")
                && !svg.contains("<script") =>
        {
            format!("<div class=\"timeline\">{svg}</div>\n")
        }
        Ok(_) => "<p>timeline.svg is not one azrw drew; not inlined.</p>\n".to_owned(),
        Err(_) => "<p>no timeline (the case did not start).</p>\n".to_owned(),
    }
}

/// Links to the bundle's files, relative to `report.html`.
fn files(out_dir: &Path, dir: &str) -> String {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(out_dir.join(dir))
        .map(|entries| {
            entries.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.path().is_dir())).collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return String::new();
    }
    names.sort();
    let mut out = String::from("<p class=\"files\">bundle: ");
    for (name, is_dir) in names {
        let shown = if is_dir { format!("{name}/") } else { name.clone() };
        let _ = write!(out, "<a href=\"{}/{}\">{}</a>", escape(dir), escape(&shown), escape(&shown));
    }
    out.push_str("</p>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Check;
    use crate::report::console::tests::verdict;
    use crate::scenario::Outcome;

    fn failing(id: &str) -> Verdict {
        verdict(
            id,
            Some(Outcome::Delivered),
            vec![
                Finding::pass(Check::AuthEndpoint, "IMDS"),
                Finding::fail(Check::RetryRetryAfter, "retried 0.10s after Retry-After 3s <b>")
                    .with_evidence("retried: request #3 POST https://dce/<script>x</script>"),
            ],
        )
    }

    #[test]
    fn the_page_has_the_matrix_failures_first_timeline_inline_and_bundle_links() {
        let out = tempfile::tempdir().unwrap();
        let bad = failing("retry/x [prometheus@3.5.1/process]");
        let good = verdict("auth/mi [prometheus@3.5.1/process]", Some(Outcome::Delivered), vec![]);
        let dir = out.path().join(slug(&bad.case_id));
        std::fs::create_dir_all(dir.join("exchanges")).unwrap();
        std::fs::write(dir.join("exchanges.json"), "[]").unwrap();
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"azrw-timeline\"><g id=\"ex-3\"/></svg>";
        std::fs::write(dir.join("timeline.svg"), svg).unwrap();
        let path = write_html(&[good, bad], out.path()).unwrap();
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("azrw: 1 passed, 1 failed"), "{html}");
        assert!(html.contains("<th>prometheus@3.5.1 / process</th>"), "{html}");
        assert!(html.contains("<td class=\"FAIL\"><a href=\"#retry_x__prometheus_3.5.1_process\">"), "{html}");
        assert!(html.find("Failed cases").unwrap() < html.find("Passed cases").unwrap(), "{html}");
        assert!(html.contains(svg), "the timeline is inline");
        assert!(html.contains("<a href=\"retry_x__prometheus_3.5.1_process/exchanges.json\">"), "{html}");
        assert!(html.contains("<a href=\"retry_x__prometheus_3.5.1_process/exchanges/\">"), "{html}");
        assert!(html.contains("no timeline (the case did not start)"), "the passing case has no bundle here");
        // Self-contained: nothing is fetched from anywhere.
        for external in ["<script", "src=", "<link", "@import", "url(", "href=\"http", "href=\"//"] {
            assert!(!html.contains(external), "{external} in {html}");
        }
    }

    #[test]
    fn everything_shown_is_escaped_and_nothing_is_loaded_from_elsewhere() {
        let out = tempfile::tempdir().unwrap();
        let mut v = failing("<script>alert(1)</script> [prometheus@3.5.1/process]");
        v.scenario = "<script>alert(2)</script>".into();
        v.explanation = "<img src=x onerror=alert(3)>".into();
        v.error = Some("</pre><script>".into());
        // A timeline.svg that azrw did not draw is not inlined.
        let dir = out.path().join(slug(&v.case_id));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("timeline.svg"), "<svg><script>alert(4)</script></svg>").unwrap();
        let html = render_html(&[v], out.path());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img") && !html.contains("3s <b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("timeline.svg is not one azrw drew"), "{html}");
    }
}
