//! The mock Azure cloud: ephemeral CA, forward proxy routing by host, IMDS, Entra ID, DCR ingestion, recorder.

pub mod recorder;

pub use recorder::{Exchange, Recorder, Service};
