//! Reports: the console table with details for failing cases, JUnit XML, a Markdown summary for CI job pages,
//! per-case capture bundles and timelines, and one self-contained HTML page. They show only what a
//! [`Verdict`](crate::expect::Verdict) and the bundle carry, so nothing the verdict redacted can leak through them.

pub mod bundle;
pub mod console;
pub(crate) mod grid;
pub mod html;
pub(crate) mod junit;
pub(crate) mod markdown;
pub mod markup;
pub(crate) mod progress;
pub(crate) mod sequence;
pub mod timeline;

pub use console::{render_details, render_table};
pub use junit::{junit_report, write_junit};
pub use markdown::{render_markdown, render_summary};
