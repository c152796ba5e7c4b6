//! The real Azure target: credentials from the environment, read-back verification through the workspace query
//! endpoint, and `doctor`, a preflight that says step by step what is wrong with a real set-up.
//!
//! Real mode is opt-in (`--allow-real`): the agent then runs in the host's network. Tests exercise the same code
//! path against the mock cloud with [`Access::Via`]; nothing in them reaches a real Azure host.

pub mod doctor;
pub(crate) mod env;
pub(crate) mod run;
pub(crate) mod workspace;

use std::time::Duration;

pub use crate::credential::Access;
pub use env::{Environment, MissingEnv};

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

/// Set (with [`VIA_CA_ENV`]) to route the harness through a mock cloud's proxy — what `azrw mock` prints — so a
/// `target: azure` scenario and `doctor` can be tried locally against the mock.
pub const VIA_PROXY_ENV: &str = "AZRW_REAL_VIA";
/// The mock CA file for [`VIA_PROXY_ENV`].
pub const VIA_CA_ENV: &str = "AZRW_REAL_CA";

impl RealOptions {
    /// The process environment; direct access unless [`VIA_PROXY_ENV`] names a mock proxy. Polls every 10 s
    /// against Azure (ingestion takes minutes), every second against a mock.
    pub fn from_process_env() -> Result<RealOptions, String> {
        let env: Environment = std::env::vars().collect();
        let access = match (env.get(VIA_PROXY_ENV), env.get(VIA_CA_ENV)) {
            (Some(proxy_url), Some(ca)) => Access::Via {
                proxy_url: proxy_url.clone(),
                ca_pem: std::fs::read_to_string(ca).map_err(|e| format!("{VIA_CA_ENV}={ca}: {e}"))?,
            },
            (Some(_), None) => {
                return Err(format!("{VIA_PROXY_ENV} is set but {VIA_CA_ENV} (the mock CA file) is not"));
            }
            _ => Access::Direct,
        };
        let poll = if matches!(access, Access::Direct) { Duration::from_secs(10) } else { Duration::from_secs(1) };
        Ok(RealOptions { env, access, poll })
    }
}
