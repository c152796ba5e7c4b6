//! A self-contained mock Azure set-up: one tenant, a writer app that may ingest into the DCR (with a secret, a
//! certificate and a federated credential for a cluster's service account), a reader app that may query the
//! workspace, and a user-assigned identity — what `azrw mock` serves and what real-mode tests and `doctor` tests
//! run against (each test breaking one thing in [`Standalone::config`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::recorder::Principal;
use super::{
    App, ClientCertificate, CloudConfig, ClusterIssuer, DcrConfig, Directory, FederatedCredential, MockData, RoleGrant,
    TOKEN_EXCHANGE_AUDIENCE,
};
use crate::private_file;
use crate::scenario::model::{AzureCloud, RoleScope};

/// Names and credentials of the standalone set-up.
#[derive(Clone)]
pub struct Standalone {
    /// Tenant id.
    pub tenant_id: String,
    /// App that may write to the DCR.
    pub writer_id: String,
    /// Its secret (random per instance).
    pub writer_secret: String,
    /// App that may query the workspace.
    pub reader_id: String,
    /// Its secret (random per instance).
    pub reader_secret: String,
    /// A user-assigned managed identity attached to the mock VM, allowed to write.
    pub identity_id: String,
    /// DCR ingestion host.
    pub dcr_host: String,
    /// DCR immutable id.
    pub dcr_id: String,
    /// Workspace query host.
    pub query_host: String,
    /// The writer app's certificate (its key is the secret part).
    pub certificate: Arc<ClientCertificate>,
    /// The mock cluster's OIDC issuer, trusted by the writer app's federated credential; pass it to
    /// [`MockCloud::start`](super::MockCloud::start).
    pub issuer: Arc<ClusterIssuer>,
    /// The service account (`system:serviceaccount:NS:NAME`) the federated credential names.
    pub service_account: String,
}

impl std::fmt::Debug for Standalone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standalone").field("tenant_id", &self.tenant_id).finish_non_exhaustive()
    }
}

impl Default for Standalone {
    fn default() -> Self {
        let secret = || format!("azrw-mock-{}", uuid::Uuid::new_v4().simple());
        Standalone {
            tenant_id: "00000000-0000-4000-8000-0000000a2b01".into(),
            writer_id: "00000000-0000-4000-8000-0000000a2b02".into(),
            writer_secret: secret(),
            reader_id: "00000000-0000-4000-8000-0000000a2b03".into(),
            reader_secret: secret(),
            identity_id: "00000000-0000-4000-8000-0000000a2b04".into(),
            dcr_host: "azrw-dce-mock.eastus-1.metrics.ingest.monitor.azure.com".into(),
            dcr_id: "dcr-0000000000000000000000000000a2b0".into(),
            query_host: "azrw-amw-mock.eastus.prometheus.monitor.azure.com".into(),
            certificate: Arc::new(ClientCertificate::generate("azrw-standalone-writer").expect("an RSA key")),
            issuer: Arc::new(ClusterIssuer::generate("https://oidc.azrw.invalid/standalone/").expect("an RSA key")),
            service_account: "system:serviceaccount:monitoring:prometheus".into(),
        }
    }
}

impl Standalone {
    /// What the mock cloud believes: both apps exist, the writer and the identity may ingest, the reader may query.
    pub fn config(&self, mocks: MockData) -> CloudConfig {
        let app =
            |id: &str, secret: &str| App { client_id: id.into(), secret: Some(secret.into()), ..Default::default() };
        let writer = App {
            certificate_der: Some(self.certificate.der().to_vec()),
            federated: vec![FederatedCredential {
                issuer: self.issuer.issuer_url().to_owned(),
                subject: self.service_account.clone(),
                audience: TOKEN_EXCHANGE_AUDIENCE.to_owned(),
            }],
            ..app(&self.writer_id, &self.writer_secret)
        };
        CloudConfig {
            directory: Directory {
                tenant_id: self.tenant_id.clone(),
                system_assigned: None,
                user_assigned: vec![self.identity_id.clone()],
                apps: vec![writer, app(&self.reader_id, &self.reader_secret)],
            },
            roles: vec![
                RoleGrant { principal: Principal::App { client_id: self.writer_id.clone() }, scope: RoleScope::Dcr },
                RoleGrant {
                    principal: Principal::UserAssigned { client_id: self.identity_id.clone() },
                    scope: RoleScope::Dcr,
                },
                RoleGrant {
                    principal: Principal::App { client_id: self.reader_id.clone() },
                    scope: RoleScope::Workspace,
                },
            ],
            dcr: DcrConfig {
                host: self.dcr_host.clone(),
                dcr_id: self.dcr_id.clone(),
                cloud: AzureCloud::AzurePublic,
                refuse_rw2: false,
            },
            faults: Default::default(),
            receivers: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            mocks,
        }
    }

    /// The ingestion URL.
    pub fn ingestion_url(&self) -> String {
        crate::azure::ingestion_url(&self.dcr_host, &self.dcr_id)
    }

    /// The workspace query endpoint.
    pub fn query_url(&self) -> String {
        format!("https://{}", self.query_host)
    }

    /// The variables a `target: azure` scenario (such as `scenarios/real/oauth.yaml`) reads, pointing at this mock.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AZRW_INGESTION_URL", self.ingestion_url()),
            ("AZRW_QUERY_URL", self.query_url()),
            ("AZRW_TENANT_ID", self.tenant_id.clone()),
            ("AZRW_CLIENT_ID", self.writer_id.clone()),
            ("AZRW_CLIENT_SECRET", self.writer_secret.clone()),
            ("AZRW_READER_CLIENT_ID", self.reader_id.clone()),
            ("AZRW_READER_CLIENT_SECRET", self.reader_secret.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Writes the writer app's credential files into `dir` (owner-only): a federated token for the service
    /// account, valid for an hour, and the certificate with its key in one PEM. Returns the variables that name
    /// them (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_CERTIFICATE_PATH`), as a cluster or CI would set them.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<(String, String)>, String> {
        let token = dir.join("azure-identity-token");
        let pem = dir.join("writer-certificate.pem");
        let federated = self.issuer.federated_token(&self.service_account, Duration::from_secs(3600));
        private_file::write(&token, federated.as_bytes())?;
        let both = format!("{}{}", self.certificate.cert_pem(), self.certificate.key_pem());
        private_file::write(&pem, both.as_bytes())?;
        Ok(vec![
            (crate::azure::env::FEDERATED_TOKEN_FILE.to_owned(), token.display().to_string()),
            (crate::azure::env::CLIENT_CERTIFICATE_PATH.to_owned(), pem.display().to_string()),
        ])
    }
}
