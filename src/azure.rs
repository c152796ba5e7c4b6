//! Azure facts in one leaf: the clouds and their hosts and audiences, the DCR ingestion URL, and the `AZURE_*`
//! environment variables the Azure SDKs read. Every layer names Azure through this module, so a host or an
//! audience is spelt once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The remote-write API version of the DCR ingestion endpoint.
pub const INGESTION_API_VERSION: &str = "2023-04-24";

/// The stream Prometheus metrics are ingested into.
pub const PROMETHEUS_STREAM: &str = "Microsoft-PrometheusMetrics";

/// The DCR ingestion URL on `host` for the DCR with immutable id `dcr_id`.
///
/// ```
/// assert_eq!(
///     azrw::azure::ingestion_url("dce.eastus-1.metrics.ingest.monitor.azure.com", "dcr-1"),
///     "https://dce.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-1/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"
/// );
/// ```
pub fn ingestion_url(host: &str, dcr_id: &str) -> String {
    format!("https://{host}{}?api-version={INGESTION_API_VERSION}", ingestion_path(dcr_id))
}

/// The path of [`ingestion_url`], without the query.
pub fn ingestion_path(dcr_id: &str) -> String {
    format!("/dataCollectionRules/{dcr_id}/streams/{PROMETHEUS_STREAM}/api/v1/write")
}

/// The `AZURE_*` environment variables of the Azure SDKs (azidentity's `EnvironmentCredential`,
/// `WorkloadIdentityCredential`, the remote-write sidecar).
pub mod env {
    /// Application (client) id.
    pub const CLIENT_ID: &str = "AZURE_CLIENT_ID";
    /// Tenant id.
    pub const TENANT_ID: &str = "AZURE_TENANT_ID";
    /// Client secret.
    pub const CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
    /// Client certificate (PEM with key).
    pub const CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
    /// Federated (service-account) token file.
    pub const FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
    /// Entra authority host.
    pub const AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
}

/// Azure cloud names, spelled exactly as Prometheus expects them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum AzureCloud {
    /// Public cloud (`login.microsoftonline.com`, `monitor.azure.com`).
    #[default]
    AzurePublic,
    /// US Government (`login.microsoftonline.us`, `monitor.azure.us`).
    AzureGovernment,
    /// China (`login.chinacloudapi.cn`, `monitor.azure.cn`).
    AzureChina,
}

impl AzureCloud {
    /// Entra ID authority host.
    pub fn authority_host(self) -> &'static str {
        match self {
            AzureCloud::AzurePublic => "login.microsoftonline.com",
            AzureCloud::AzureGovernment => "login.microsoftonline.us",
            AzureCloud::AzureChina => "login.chinacloudapi.cn",
        }
    }

    /// Ingestion audience with its trailing slash, as Prometheus builds it.
    pub fn ingestion_audience(self) -> &'static str {
        match self {
            AzureCloud::AzurePublic => "https://monitor.azure.com/",
            AzureCloud::AzureGovernment => "https://monitor.azure.us/",
            AzureCloud::AzureChina => "https://monitor.azure.cn/",
        }
    }

    /// The scope Prometheus asks Entra for: the audience plus `/.default` (hence the double slash).
    pub fn ingestion_scope(self) -> String {
        format!("{}/.default", self.ingestion_audience())
    }

    /// Suffix of DCR ingestion hosts in this cloud.
    pub fn ingestion_domain(self) -> &'static str {
        match self {
            AzureCloud::AzurePublic => "metrics.ingest.monitor.azure.com",
            AzureCloud::AzureGovernment => "metrics.ingest.monitor.azure.us",
            AzureCloud::AzureChina => "metrics.ingest.monitor.azure.cn",
        }
    }

    /// The scope of Azure Monitor workspace queries.
    pub fn query_scope(self) -> &'static str {
        match self {
            AzureCloud::AzurePublic => "https://prometheus.monitor.azure.com/.default",
            AzureCloud::AzureGovernment => "https://prometheus.monitor.azure.us/.default",
            AzureCloud::AzureChina => "https://prometheus.monitor.azure.cn/.default",
        }
    }

    /// azure_core's configuration of this cloud (authority host, audiences), for the harness's own credentials.
    pub fn sdk_configuration(self) -> Arc<azure_core::cloud::CloudConfiguration> {
        Arc::new(match self {
            AzureCloud::AzurePublic => azure_core::cloud::CloudConfiguration::AzurePublic,
            AzureCloud::AzureGovernment => azure_core::cloud::CloudConfiguration::AzureGovernment,
            AzureCloud::AzureChina => azure_core::cloud::CloudConfiguration::AzureChina,
        })
    }

    /// Every cloud, for host routing.
    pub const ALL: [AzureCloud; 3] = [AzureCloud::AzurePublic, AzureCloud::AzureGovernment, AzureCloud::AzureChina];
}

impl std::fmt::Display for AzureCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AzureCloud::AzurePublic => "AzurePublic",
            AzureCloud::AzureGovernment => "AzureGovernment",
            AzureCloud::AzureChina => "AzureChina",
        })
    }
}

/// The IMDS address every managed-identity client calls.
pub const IMDS_HOST: &str = "169.254.169.254";

/// An Azure service, by the host a client addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The instance metadata service (managed identities).
    Imds,
    /// Entra ID in one cloud.
    Entra(AzureCloud),
    /// A DCR ingestion endpoint (`*.ingest.monitor.azure.*`).
    Dcr,
    /// A workspace's PromQL query endpoint.
    Query,
}

impl Service {
    /// The service that answers `host` (lower-case, no port), if any.
    pub fn of_host(host: &str) -> Option<Service> {
        if host == IMDS_HOST {
            return Some(Service::Imds);
        }
        if let Some(c) = AzureCloud::ALL.into_iter().find(|c| host == c.authority_host()) {
            return Some(Service::Entra(c));
        }
        if AzureCloud::ALL.iter().any(|c| host.ends_with(&format!(".{}", c.ingestion_domain()))) {
            return Some(Service::Dcr);
        }
        if ["com", "us", "cn"].iter().any(|tld| host.ends_with(&format!(".prometheus.monitor.azure.{tld}"))) {
            return Some(Service::Query);
        }
        None
    }

    /// Its name for people: `the DCR`.
    pub fn label(self) -> &'static str {
        match self {
            Service::Imds => "IMDS",
            Service::Entra(_) => "Entra ID",
            Service::Dcr => "the DCR",
            Service::Query => "the workspace query endpoint",
        }
    }
}
