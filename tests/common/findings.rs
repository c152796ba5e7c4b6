//! Assertions on an evaluation's findings: which check failed, with which evidence.

use azrw::Check;
use azrw::expect::{Evaluation, Finding, Status};

/// The finding for `check`; panics with every finding if there is none.
pub fn finding(eval: &Evaluation, check: Check) -> &Finding {
    eval.findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no finding {check} in {:#?}", eval.findings))
}

/// Asserts `check` failed, with evidence containing every one of `needles` (in message or evidence).
pub fn assert_violation(eval: &Evaluation, check: Check, needles: &[&str]) {
    let f = finding(eval, check);
    assert_eq!(f.status, Status::Fail, "{check} should fail: {f:#?}");
    assert!(!f.evidence.is_empty(), "{check} failed without evidence: {f:#?}");
    let text = format!("{}\n{}", f.message, f.evidence.join("\n"));
    for n in needles {
        assert!(text.contains(n), "{check}: evidence lacks {n:?}:\n{text}");
    }
}

/// Asserts no finding failed or stayed undecided.
pub fn assert_clean(eval: &Evaluation) {
    let bad: Vec<&Finding> = eval.findings.iter().filter(|f| f.is_failure()).collect();
    assert!(bad.is_empty(), "unexpected failures: {bad:#?}");
}
