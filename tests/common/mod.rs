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
