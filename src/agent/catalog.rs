//! The catalog of agent versions (placeholder).
