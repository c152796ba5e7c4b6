//! `out/<case>/sequence.mmd`: a short Mermaid `sequenceDiagram` of the case's decisive exchanges — the ones its
//! failing checks name as evidence (else its last refusals) — which the Markdown summary shows under each failed
//! case (GitHub renders Mermaid in job summaries).

use std::fmt::Write as _;

use super::markup::request_numbers;
use crate::cloud::recorder::{Exchange, Service};
use crate::expect::Finding;

/// At most this many exchanges: the diagram is a summary, `timeline.svg` has the rest.
pub const MAX_EXCHANGES: usize = 8;

/// The diagram (without the Markdown fence).
pub fn render(exchanges: &[Exchange], findings: &[Finding]) -> String {
    let failing: Vec<&Finding> = findings.iter().filter(|f| f.is_failure()).collect();
    let mut seqs: Vec<usize> =
        failing.iter().flat_map(|f| f.evidence.iter().flat_map(|l| request_numbers(l))).collect();
    if seqs.is_empty() {
        // Nothing named: the last refusals, else the first exchanges.
        seqs = exchanges.iter().filter(|e| !(200..300).contains(&e.status)).map(|e| e.seq).collect();
        seqs = seqs.split_off(seqs.len().saturating_sub(MAX_EXCHANGES));
        if seqs.is_empty() {
            seqs = exchanges.iter().take(MAX_EXCHANGES).map(|e| e.seq).collect();
        }
    }
    seqs.sort_unstable();
    seqs.dedup();
    seqs.truncate(MAX_EXCHANGES);
    let mut out = String::from("sequenceDiagram\n    participant A as agent\n");
    let mut previous: Option<&Exchange> = None;
    for e in seqs.iter().filter_map(|s| exchanges.iter().find(|e| e.seq == *s)) {
        let who = participant(e.service);
        let wait = previous.map(|p| format!(", {:.2}s later", e.at.saturating_sub(p.at).as_secs_f64()));
        let _ = writeln!(
            out,
            "    A->>{who}: req {} {} {} at +{:.2}s{}",
            e.seq,
            e.method,
            text(&short_path(&e.target)),
            e.at.as_secs_f64(),
            wait.unwrap_or_default()
        );
        let _ = writeln!(out, "    {who}-->>A: {}", text(&answer(e)));
        let checks: Vec<String> = failing
            .iter()
            .filter(|f| f.evidence.iter().any(|l| request_numbers(l).contains(&e.seq)))
            .map(|f| f.check.to_string())
            .collect();
        if !checks.is_empty() {
            let _ = writeln!(out, "    Note over A,{who}: evidence of {}", text(&checks.join(", ")));
        }
        previous = Some(e);
    }
    out
}

fn participant(s: Service) -> &'static str {
    match s {
        Service::Imds => "IMDS",
        Service::Entra => "Entra",
        Service::Dcr => "DCR",
        Service::Query => "Query",
        Service::Receiver | Service::Unrouted => "Other",
    }
}

fn answer(e: &Exchange) -> String {
    let fault = e.fault.as_ref();
    let status = if e.status == 0 || fault.is_some_and(|f| f.unanswered) {
        "no answer".to_owned()
    } else {
        e.status.to_string()
    };
    let retry = fault.and_then(|f| f.retry_after.as_ref()).map(|r| format!(" Retry-After {}", r.header));
    let rule = fault.map(|f| format!(" (fault {})", f.rule));
    format!("{status}{}{}", retry.unwrap_or_default(), rule.unwrap_or_default())
}

/// The path without its query, last two segments: `…/api/v1/write`.
fn short_path(target: &str) -> String {
    let path = target.split('?').next().unwrap_or(target);
    let parts: Vec<&str> = path.rsplitn(3, '/').collect();
    if parts.len() == 3 { format!("…/{}/{}", parts[1], parts[0]) } else { path.to_owned() }
}

/// Message text Mermaid reads literally: `;` and `#` start statements and entities, `<>` and backticks are markup.
fn text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' | '#' | '<' | '>' | '`' | '{' | '}' | '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::tests::early_resend;

    #[test]
    fn a_failed_retry_case_shows_its_evidence_exchanges_only() {
        let (exchanges, _, _, findings) = early_resend();
        let diagram = render(&exchanges, &findings);
        assert_eq!(
            diagram,
            "sequenceDiagram\n    participant A as agent\n\
             \x20   A->>DCR: req 2 POST …/v1/write at +1.00s\n\
             \x20   DCR-->>A: 503 Retry-After 3 (fault dcr-503)\n\
             \x20   Note over A,DCR: evidence of retry.retry-after\n\
             \x20   A->>DCR: req 3 POST …/v1/write at +1.10s, 0.10s later\n\
             \x20   DCR-->>A: 200\n\
             \x20   Note over A,DCR: evidence of retry.retry-after\n"
        );
    }

    #[test]
    fn without_evidence_the_last_refusals_are_shown_and_text_is_defanged() {
        let (mut exchanges, _, _, _) = early_resend();
        exchanges[1].target = "/x;y#<b>/write?q=1".into();
        let diagram = render(&exchanges, &[]);
        assert!(diagram.contains("req 2 POST …/x y  b /write at"), "{diagram}");
        assert!(!diagram.contains("req 3"), "accepted writes are not decisive: {diagram}");
    }
}
