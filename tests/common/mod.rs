//! What both test binaries share: the stage (a mock cloud and the evaluation of what it recorded), the fake sender
//! that drives it, assertions on findings, and the `azrw` binary as a command.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of it

mod fake_sender;
mod findings;
mod stage;

pub use fake_sender::*;
pub use findings::*;
pub use stage::*;

/// The `azrw` binary of this build, run from the repository root (where `scenarios/` and `mocks/` are).
pub fn azrw() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_azrw"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Asserts that a checker of a CI file (the Azure Pipelines file, the compat workflow) reports each mutation:
/// `(from, to, expected)` replaces `from` by `to` once and expects a problem containing `expected`; the file as
/// committed has none.
pub fn assert_each_mutation_reported(
    text: &str,
    mutations: &[(&str, &str, &str)],
    problems: impl Fn(&str) -> Vec<String>,
) {
    for (from, to, expected) in mutations {
        assert!(text.contains(from), "the file no longer contains {from:?}");
        let found = problems(&text.replacen(from, to, 1));
        assert!(found.iter().any(|p| p.contains(expected)), "{from} → {to}: expected {expected:?} in {found:#?}");
    }
    assert_eq!(problems(text), Vec::<String>::new());
}
