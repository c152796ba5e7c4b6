//! The mock Azure cloud: ephemeral CA, forward proxy routing by host, IMDS, Entra ID, DCR ingestion, recorder.
//!
//! One listener is the whole cloud: agents reach it as their `HTTP_PROXY`/`HTTPS_PROXY`, trust [`MockCloud::ca_pem`],
//! and every request they make is answered by a mock service and recorded (secrets redacted) in the [`Recorder`].

pub(crate) mod accounting;
mod body;
mod ca;
mod dcr;
mod entra;
pub(crate) mod fault;
mod imds;
mod mockdata;
mod proxy;
mod query;
pub mod recorder;
mod standalone;
mod token;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use ca::{CertificateAuthority, ClientCertificate, ClusterIssuer, FederatedClaims, TOKEN_EXCHANGE_AUDIENCE};
pub use fault::{CertificateMark, FaultConfig, FaultMark, RetryAfter};
pub use mockdata::{ErrorTemplate, MockData};
pub use query::{Matcher, parse_selector};
pub use recorder::{Exchange, Recorder, Service};
pub use standalone::Standalone;

use crate::scenario::model::{AzureCloud, RoleScope};
use recorder::Principal;

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
    /// The requested set-up is not one the mock can be (e.g. an ingestion URL without a DCR id).
    #[error("{0}")]
    Config(String),
}

/// What the mock cloud believes: who exists, who may ingest, where the DCR is, how long tokens live.
///
/// ```
/// use azrw::cloud::{CloudConfig, DcrConfig, Directory, MockData};
/// use azrw::scenario::model::AzureCloud;
/// let config = CloudConfig {
///     directory: Directory { tenant_id: "t".into(), system_assigned: Some("oid".into()), ..Default::default() },
///     roles: vec![],
///     dcr: DcrConfig {
///         host: "azrw-dce-1a2b.eastus-1.metrics.ingest.monitor.azure.com".into(),
///         dcr_id: "dcr-1".into(),
///         cloud: AzureCloud::AzurePublic,
///         refuse_rw2: false,
///     },
///     token_lifetime: std::time::Duration::from_secs(3600),
///     mocks: MockData::embedded(),
///     faults: Default::default(),
///     receivers: vec![],
/// };
/// ```
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Who exists.
    pub directory: Directory,
    /// Role assignments; only scope [`RoleScope::Dcr`] authorises ingestion.
    pub roles: Vec<RoleGrant>,
    /// The data collection rule and its ingestion host.
    pub dcr: DcrConfig,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// Response templates.
    pub mocks: MockData,
    /// What goes wrong, and when.
    pub faults: FaultConfig,
    /// Other hosts the mock serves as plain receivers and records (plain remote-write entries, redirect targets).
    pub receivers: Vec<String>,
}

/// The identities that exist in the mock tenant and on the mock VM.
///
/// ```
/// let d = azrw::cloud::Directory { tenant_id: "t".into(), ..Default::default() };
/// assert!(d.apps.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// The one tenant that exists.
    pub tenant_id: String,
    /// Object id of the VM's system-assigned identity, if it has one.
    pub system_assigned: Option<String>,
    /// Client ids of user-assigned identities attached to the VM.
    pub user_assigned: Vec<String>,
    /// Entra applications.
    pub apps: Vec<App>,
}

/// An Entra application and its credentials.
///
/// ```
/// let app = azrw::cloud::App { client_id: "c".into(), secret: Some("s3cret".into()), ..Default::default() };
/// assert!(!format!("{app:?}").contains("s3cret"));
/// ```
#[derive(Clone, Default)]
pub struct App {
    /// Application (client) id.
    pub client_id: String,
    /// The client secret Entra knows, if any.
    pub secret: Option<String>,
    /// DER of the registered certificate, if any.
    pub certificate_der: Option<Vec<u8>>,
    /// Federated credentials (workload identity).
    pub federated: Vec<FederatedCredential>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| crate::redact::PLACEHOLDER))
            .field("certificate", &self.certificate_der.as_ref().map(|d| format!("{} bytes", d.len())))
            .field("federated", &self.federated)
            .finish()
    }
}

/// A federated identity credential of an app.
///
/// ```
/// let f = azrw::cloud::FederatedCredential {
///     issuer: "https://oidc.azrw.test".into(),
///     subject: "system:serviceaccount:monitoring:prometheus".into(),
///     audience: azrw::cloud::TOKEN_EXCHANGE_AUDIENCE.into(),
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// Issuer URL of the cluster.
    pub issuer: String,
    /// `system:serviceaccount:NAMESPACE:NAME`.
    pub subject: String,
    /// Normally `api://AzureADTokenExchange`.
    pub audience: String,
}

/// A role assignment (Monitoring Metrics Publisher) of a principal at a scope.
///
/// ```
/// use azrw::cloud::{RoleGrant, recorder::Principal};
/// use azrw::scenario::model::RoleScope;
/// let g = RoleGrant { principal: Principal::App { client_id: "c".into() }, scope: RoleScope::Dcr };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// Who holds the role.
    pub principal: Principal,
    /// Where.
    pub scope: RoleScope,
}

/// The DCR the mock ingests into.
///
/// ```
/// let d = azrw::cloud::DcrConfig {
///     host: "azrw-dce-1a2b.eastus-1.metrics.ingest.monitor.azure.com".into(),
///     dcr_id: "dcr-00000000000000000000000000000a2b".into(),
///     cloud: azrw::scenario::model::AzureCloud::AzurePublic,
///     refuse_rw2: false,
/// };
/// ```
#[derive(Debug, Clone)]
pub struct DcrConfig {
    /// Ingestion host, e.g. `azrw-dce-1a2b.eastus-1.metrics.ingest.monitor.azure.com`.
    pub host: String,
    /// DCR immutable id in the URL path.
    pub dcr_id: String,
    /// The cloud whose audience the DCR accepts.
    pub cloud: AzureCloud,
    /// Answer remote-write 2.0 bodies with 415, as an RW 1.0-only endpoint does.
    pub refuse_rw2: bool,
}

/// Sets a standalone cloud's fault plan from a profile: a file (same shape as `mocks/faults/*.yaml`) or the name
/// of a profile in the mock data (`dcr-503-x3`).
pub fn apply_fault_profile(config: &mut CloudConfig, profile: &std::path::Path) -> Result<(), CloudError> {
    let spec = if profile.is_file() {
        let text = std::fs::read_to_string(profile)
            .map_err(|e| CloudError::Config(format!("fault profile {}: {e}", profile.display())))?;
        fault::parse_profile(profile, &text)?
    } else {
        crate::scenario::FaultSpec { profile: Some(profile.display().to_string()), ..Default::default() }
    };
    config.faults = FaultConfig::resolve(&spec, &config.mocks, None)?;
    Ok(())
}

/// Everything the services share.
pub(crate) struct State {
    pub config: CloudConfig,
    pub recorder: Arc<Recorder>,
    pub mint: token::TokenMint,
    pub cluster_issuer: Option<Arc<ClusterIssuer>>,
    pub faults: fault::FaultPlan,
}

/// A running mock cloud. Dropping it without [`MockCloud::shutdown`] leaves its tasks to end with the runtime.
///
/// ```no_run
/// # async fn demo(config: azrw::cloud::CloudConfig) -> Result<(), azrw::cloud::CloudError> {
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let cloud = azrw::cloud::MockCloud::start(config, listener, None).await?;
/// println!("HTTPS_PROXY={} and trust {} bytes of CA", cloud.proxy_url(), cloud.ca_pem().len());
/// cloud.shutdown().await;
/// # Ok(()) }
/// ```
pub struct MockCloud {
    addr: SocketAddr,
    ca: Arc<CertificateAuthority>,
    state: Arc<State>,
    cancel: tokio_util::sync::CancellationToken,
    accept: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MockCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCloud").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl MockCloud {
    /// Starts serving on a pre-bound listener (the runtime binds it inside the agent's network namespace).
    ///
    /// ```no_run
    /// # async fn demo(config: azrw::cloud::CloudConfig) -> Result<(), azrw::cloud::CloudError> {
    /// let cloud = azrw::cloud::MockCloud::start(config, std::net::TcpListener::bind("127.0.0.1:0")?, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(
        config: CloudConfig,
        listener: std::net::TcpListener,
        cluster_issuer: Option<Arc<ClusterIssuer>>,
    ) -> Result<MockCloud, CloudError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let ca = Arc::new(CertificateAuthority::generate()?);
        let faults = fault::FaultPlan::new(config.faults.clone());
        let state = Arc::new(State {
            faults,
            config,
            recorder: Arc::new(Recorder::new()),
            mint: token::TokenMint::generate()?,
            cluster_issuer,
        });
        let cancel = tokio_util::sync::CancellationToken::new();
        let accept = tokio::spawn(proxy::accept_loop(listener, state.clone(), ca.clone(), cancel.clone()));
        Ok(MockCloud { addr, ca, state, cancel, accept })
    }

    /// `http://ADDR`, for `HTTP_PROXY` and `HTTPS_PROXY`.
    ///
    /// ```no_run
    /// # fn demo(cloud: &azrw::cloud::MockCloud) {
    /// assert!(cloud.proxy_url().starts_with("http://"));
    /// # }
    /// ```
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listener's address.
    ///
    /// ```no_run
    /// # fn demo(cloud: &azrw::cloud::MockCloud) {
    /// let port = cloud.proxy_addr().port();
    /// # }
    /// ```
    pub fn proxy_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate agents must trust (PEM).
    ///
    /// ```no_run
    /// # fn demo(cloud: &azrw::cloud::MockCloud) {
    /// std::fs::write("/tmp/azrw-ca.pem", cloud.ca_pem()).unwrap();
    /// # }
    /// ```
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// The recorder of every exchange.
    ///
    /// ```no_run
    /// # fn demo(cloud: &azrw::cloud::MockCloud) {
    /// let seen = cloud.recorder().exchanges().len();
    /// # }
    /// ```
    pub fn recorder(&self) -> Arc<Recorder> {
        self.state.recorder.clone()
    }

    /// What may be kept of an `Authorization` header: `Bearer [token #N]` for a token this cloud issued, else the
    /// scheme and `[redacted]` — for other listeners of the case (the scrape target) to record as the mock does.
    ///
    /// ```no_run
    /// # fn demo(cloud: &azrw::cloud::MockCloud) {
    /// assert_eq!(cloud.authorization_redactor()("Basic dXNlcjpwdw=="), "Basic [redacted]");
    /// # }
    /// ```
    pub fn authorization_redactor(&self) -> Box<dyn Fn(&str) -> String + Send + Sync> {
        let state = self.state.clone();
        Box::new(move |value| dcr::redact_authorization(&state, value))
    }

    /// The remote-write URL the agent is given.
    ///
    /// ```no_run
    /// # fn demo(cloud: &azrw::cloud::MockCloud) {
    /// assert!(cloud.ingestion_url().ends_with("/api/v1/write?api-version=2023-04-24"));
    /// # }
    /// ```
    pub fn ingestion_url(&self) -> String {
        let dcr = &self.state.config.dcr;
        crate::azure::ingestion_url(&dcr.host, &dcr.dcr_id)
    }

    /// Stops accepting and drops every open connection.
    ///
    /// ```no_run
    /// # async fn demo(cloud: azrw::cloud::MockCloud) {
    /// cloud.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.accept.await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    pub(crate) const APP: &str = "11111111-1111-1111-1111-111111111111";
    pub(crate) const SECRET: &str = "s3cret-value";
    pub(crate) const DCR_HOST: &str = "azrw-dce-1a2b.eastus-1.metrics.ingest.monitor.azure.com";
    pub(crate) const DCR_ID: &str = "dcr-00000000000000000000000000000a2b";

    pub(crate) fn test_state() -> State {
        State {
            config: CloudConfig {
                directory: Directory {
                    tenant_id: TENANT.into(),
                    system_assigned: Some("22222222-2222-2222-2222-222222222222".into()),
                    user_assigned: vec![],
                    apps: vec![App { client_id: APP.into(), secret: Some(SECRET.into()), ..Default::default() }],
                },
                roles: vec![RoleGrant { principal: Principal::App { client_id: APP.into() }, scope: RoleScope::Dcr }],
                dcr: DcrConfig {
                    host: DCR_HOST.into(),
                    dcr_id: DCR_ID.into(),
                    cloud: AzureCloud::AzurePublic,
                    refuse_rw2: false,
                },
                token_lifetime: Duration::from_secs(3600),
                mocks: MockData::embedded(),
                faults: FaultConfig::default(),
                receivers: Vec::new(),
            },
            recorder: Arc::new(Recorder::new()),
            mint: token::TokenMint::generate().unwrap(),
            cluster_issuer: None,
            faults: fault::FaultPlan::new(FaultConfig::default()),
        }
    }
}

#[cfg(test)]
mod fault_profile_tests {
    use super::*;

    fn standalone_config() -> CloudConfig {
        Standalone::default().config(MockData::embedded())
    }

    #[test]
    fn a_profile_applies_by_name_or_file_and_an_unknown_one_is_named() {
        let mut config = standalone_config();
        apply_fault_profile(&mut config, std::path::Path::new("dcr-503-x3")).unwrap();
        assert_eq!(config.faults.rules[0].name, "dcr-503-x3");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.yaml");
        std::fs::write(&file, "rules:\n  - {service: dcr, status: 500, times: 2}\n").unwrap();
        let mut config = standalone_config();
        apply_fault_profile(&mut config, &file).unwrap();
        assert_eq!(config.faults.rules.len(), 1);

        let err = apply_fault_profile(&mut standalone_config(), std::path::Path::new("no-such")).unwrap_err();
        assert!(err.to_string().contains("no fault profile `no-such`"), "{err}");
    }
}
