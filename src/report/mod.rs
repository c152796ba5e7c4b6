//! Reports: the console table with details for failing cases, JUnit XML, a Markdown summary for CI job pages, and
//! per-case capture bundles. They show only what a
//! [`Verdict`](crate::expect::Verdict) carries, so nothing the verdict redacted can leak through them.

pub mod bundle;
pub mod console;
pub mod junit;
pub mod markdown;
pub mod progress;

pub use console::{render_details, render_table};
pub use junit::{junit_report, write_junit};
pub use markdown::render_markdown;
