//! Scenario files: the model, loading with precise errors, matrix expansion into cases.

pub mod model;

pub use model::*;
