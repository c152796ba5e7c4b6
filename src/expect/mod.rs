//! expect (placeholder).
