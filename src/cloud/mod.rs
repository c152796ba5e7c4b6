//! The mock Azure cloud: ephemeral CA, forward proxy routing by host, IMDS, Entra ID, DCR ingestion, recorder.

mod ca;
mod mockdata;
pub mod recorder;
mod token;

pub use ca::{
    CertificateAuthority, ClientCertificate, ClusterIssuer, FederatedClaims,
    TOKEN_EXCHANGE_AUDIENCE,
};
pub use mockdata::{ErrorTemplate, MockData};
pub use recorder::{Exchange, Recorder, Service};

/// Why the mock cloud could not start or load its data.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// Generating keys or certificates failed.
    #[error("key material: {0}")]
    Key(String),
    /// A mock data file is missing or wrong.
    #[error("{}: {problem}", file.display())]
    MockData {
        /// The file.
        file: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The listener could not be used.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
}
