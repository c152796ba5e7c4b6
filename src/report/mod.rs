//! Reports: the console table with details for failing cases, and JUnit XML. They show only what a
//! [`Verdict`](crate::expect::Verdict) carries, so nothing the verdict redacted can leak through them.

pub mod console;
pub mod junit;
pub mod progress;
pub mod redact;

pub use console::{render_details, render_table};
pub use junit::{junit_report, write_junit};
