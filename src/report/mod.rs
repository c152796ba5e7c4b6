//! report (placeholder).

pub mod redact;
