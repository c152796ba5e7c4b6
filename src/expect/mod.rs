//! Expectations: each check reads the recorder and produces a [`Finding`] with evidence, never just a bool.

pub mod verdict;

pub use verdict::{Finding, Status, Verdict};
