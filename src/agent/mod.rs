//! Agents: how to configure a sender. Prometheus versions, the capability table, the catalog of provisioned
//! versions, the known-vulnerability table, config rendering and provisioning.

pub(crate) mod capability;
pub mod catalog;
pub mod log;
pub mod metrics;
pub(crate) mod prometheus;
pub mod source;
pub mod store;

pub mod vulnerability;

pub use crate::version::{AgentRef, AgentRefError, AgentSource, AgentSourceError, Version, VersionReq};
pub use catalog::{AgentCatalog, CatalogError};
