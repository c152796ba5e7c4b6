//! The real Azure target: credentials from the environment, read-back verification through the workspace query
//! endpoint, and `doctor`, a preflight that says step by step what is wrong with a real set-up.
//!
//! Real mode is opt-in (`--allow-real`): the agent then runs in the host's network. Tests exercise the same code
//! path against the mock cloud with [`http::Access::Via`]; nothing in them reaches a real Azure host.

pub mod credential;
pub mod doctor;
pub mod env;
pub mod http;
pub mod run;
pub mod workspace;

use std::time::Duration;

pub use env::{Environment, MissingEnv};
pub use http::Access;

/// What a run against real Azure needs beyond the scenario. Its presence is the opt-in.
#[derive(Debug, Clone)]
pub struct RealOptions {
    /// The environment `${NAME}` references resolve against.
    pub env: Environment,
    /// How the harness reaches Azure.
    pub access: Access,
    /// How often the workspace is polled while waiting for series.
    pub poll: Duration,
}

impl RealOptions {
    /// Direct access with the process environment; polls every 10 s (Azure ingestion takes minutes).
    pub fn from_process_env() -> RealOptions {
        RealOptions { env: std::env::vars().collect(), access: Access::Direct, poll: Duration::from_secs(10) }
    }
}
