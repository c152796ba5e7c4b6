//! Scenario files: the model, loading with precise errors, matrix expansion into cases.

pub(crate) mod error;
pub mod load;
pub mod model;
mod source_map;

pub use error::ScenarioError;
pub use load::{LoadedScenario, discover, load, parse, parse_fault_profile};
pub use model::*;
pub use source_map::Position;
