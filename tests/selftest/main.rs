//! The self-tests: everything that needs neither a real agent, nor Docker, nor root. Fake senders break each
//! expectation one rule at a time against a mock cloud and the harness must name the violation with its evidence;
//! plus the mock cloud itself, `doctor` against it, the reference sidecar in process, scenario errors and the CLI.
//! One binary, so a build links the heavy dependencies once (`cargo test --test selftest [filter]`).

#[path = "../common/mod.rs"]
mod common;

mod ci_templates;
mod cli;
mod cloud;
mod compat_workflow;
mod doctor;
mod fake_senders;
mod fake_senders_faults;
mod fuzz;
mod layers;
mod load_checks;
mod oversize_senders;
mod payload_senders;
mod repeat_script;
mod scenario_errors;
mod security_senders;
mod sidecar;
