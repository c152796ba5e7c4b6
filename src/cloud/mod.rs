//! The mock Azure cloud: ephemeral CA, forward proxy routing by host, IMDS, Entra ID, DCR ingestion, recorder.

mod ca;
pub mod recorder;

pub use ca::{
    CertificateAuthority, ClientCertificate, ClusterIssuer, FederatedClaims,
    TOKEN_EXCHANGE_AUDIENCE,
};
pub use recorder::{Exchange, Recorder, Service};

/// Why the mock cloud could not start or load its data.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// Generating keys or certificates failed.
    #[error("key material: {0}")]
    Key(String),
}
