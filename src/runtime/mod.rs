//! runtime (placeholder).
