//! Scenario files: the model, loading with precise errors, matrix expansion into cases.

pub mod error;
pub mod load;
pub mod matrix;
pub mod model;
mod source_map;

pub use error::ScenarioError;
pub use load::{LoadedScenario, discover, load, parse};
pub use matrix::{Case, MatrixOptions, expand};
pub use model::*;
pub use source_map::Position;
