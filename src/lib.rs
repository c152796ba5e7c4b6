//! azrw — an end-to-end conformance harness for Prometheus remote-write into Azure Monitor.
//!
//! A run reads [scenario] files, expands them into cases (agent version × runtime × auth variant), starts a
//! [cloud::MockCloud] (IMDS, Entra ID, the DCR ingestion endpoint, behind one forward proxy and an ephemeral CA),
//! starts the [agent] under a [runtime] that cannot reach anything but that mock cloud, and decides every
//! [expect]ation from what the mock recorded. [report] turns verdicts into a console table and JUnit XML.

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod agent;
pub mod azure;
mod check;
pub use check::{Check, UnknownCheck};
pub mod cli;
pub mod cloud;
pub mod credential;
pub mod expect;
pub mod matrix;
mod private_file;
pub mod redact;
pub mod remote_write;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod scenario;
pub mod scrape;
pub mod sidecar;
pub mod version;
