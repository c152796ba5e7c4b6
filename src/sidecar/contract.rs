//! The Azure remote-write sidecar's environment contract, both ways: what the harness hands a sidecar (derived from
//! the scenario's `auth` block, so the same scenario drives Azure's image and azrw's reference one), and how the
//! reference sidecar reads it back. One list of names serves both sides.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::scenario::{AuthSpec, AzureCloud, SdkVia};

/// The full DCR ingestion URL the sidecar forwards to (required).
pub const INGESTION_URL: &str = "INGESTION_URL";
/// Port the sidecar listens on; Prometheus writes to `http://localhost:<port>/api/v1/write`.
pub const LISTENING_PORT: &str = "LISTENING_PORT";
/// `userAssigned`, `aadApplication` or `workloadIdentity` (Azure's values); the reference also takes
/// `systemAssigned`.
pub const IDENTITY_TYPE: &str = "IDENTITY_TYPE";
/// Managed identity client id, or the app id.
pub const AZURE_CLIENT_ID: &str = crate::azure::env::CLIENT_ID;
/// Tenant of the app (aadApplication, workloadIdentity).
pub const AZURE_TENANT_ID: &str = crate::azure::env::TENANT_ID;
/// PEM file with the app's certificate and key (aadApplication).
pub const AZURE_CLIENT_CERTIFICATE_PATH: &str = crate::azure::env::CLIENT_CERTIFICATE_PATH;
/// The app's client secret (aadApplication; an azrw extension: Azure's sidecar documents certificates only).
pub const AZURE_CLIENT_SECRET: &str = crate::azure::env::CLIENT_SECRET;
/// Federated service-account token file (workloadIdentity; injected by the workload-identity webhook).
pub const AZURE_FEDERATED_TOKEN_FILE: &str = crate::azure::env::FEDERATED_TOKEN_FILE;
/// Entra authority (workloadIdentity; injected by the webhook).
pub const AZURE_AUTHORITY_HOST: &str = crate::azure::env::AUTHORITY_HOST;
/// Optional cluster name (logged).
pub const CLUSTER: &str = "CLUSTER";
/// `AZUREPUBLIC` (default), `AZUREGOVERNMENT`, `AZURECHINA`.
pub const CLOUD: &str = "CLOUD";
/// Token audience for non-public clouds, with or without `/.default`.
pub const INGESTION_AAD_AUDIENCE: &str = "INGESTION_AAD_AUDIENCE";

/// The port Azure's docs use.
pub const DEFAULT_PORT: u16 = crate::scenario::SIDECAR_PORT;

/// How the sidecar authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum SidecarIdentity {
    /// IMDS; `None` is the system-assigned identity.
    ManagedIdentity {
        /// Client id of a user-assigned identity.
        client_id: Option<String>,
    },
    /// An Entra app with a client secret.
    ClientSecret {
        /// Tenant.
        tenant_id: String,
        /// App id.
        client_id: String,
        /// The secret. Never printed.
        secret: String,
    },
    /// An Entra app with a certificate (PEM with key and certificate).
    Certificate {
        /// Tenant.
        tenant_id: String,
        /// App id.
        client_id: String,
        /// The PEM file.
        path: PathBuf,
    },
    /// A federated service-account token exchanged at Entra.
    WorkloadIdentity {
        /// Tenant.
        tenant_id: String,
        /// App id.
        client_id: String,
        /// The token file.
        token_file: PathBuf,
    },
}

impl std::fmt::Debug for SidecarIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SidecarIdentity {
    /// One line for logs, never a secret.
    pub fn describe(&self) -> String {
        match self {
            SidecarIdentity::ManagedIdentity { client_id: None } => "system-assigned managed identity".into(),
            SidecarIdentity::ManagedIdentity { client_id: Some(id) } => format!("user-assigned managed identity {id}"),
            SidecarIdentity::ClientSecret { tenant_id, client_id, .. } => {
                format!("app {client_id} (tenant {tenant_id}) with a client secret")
            }
            SidecarIdentity::Certificate { tenant_id, client_id, path } => {
                format!("app {client_id} (tenant {tenant_id}) with the certificate in {}", path.display())
            }
            SidecarIdentity::WorkloadIdentity { tenant_id, client_id, token_file } => {
                format!("workload identity {client_id} (tenant {tenant_id}), token file {}", token_file.display())
            }
        }
    }
}

/// Everything the reference sidecar runs on.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// Where writes go.
    pub ingestion_url: url::Url,
    /// Where Prometheus writes to.
    pub port: u16,
    /// How it gets tokens.
    pub identity: SidecarIdentity,
    /// The cloud (authority host and default audience).
    pub cloud: AzureCloud,
    /// The scope it asks tokens for.
    pub scope: String,
    /// `CLUSTER`, if set.
    pub cluster: Option<String>,
}

/// A variable of the contract that is missing or wrong; the sidecar exits with it, as Azure's restarts do.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ContractError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl SidecarConfig {
    /// Reads the contract through `var` (the process environment in production, a map in tests).
    ///
    /// ```
    /// use azrw::sidecar::contract::{SidecarConfig, SidecarIdentity};
    /// let env = [
    ///     ("INGESTION_URL", "https://dce.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-1/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"),
    ///     ("IDENTITY_TYPE", "userAssigned"),
    ///     ("AZURE_CLIENT_ID", "381a840f-f3c9-426b-9259-d868b14d9b38"),
    /// ];
    /// let config = SidecarConfig::from_vars(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
    /// assert_eq!(config.port, 8081);
    /// assert_eq!(config.scope, "https://monitor.azure.com/.default");
    /// assert!(matches!(config.identity, SidecarIdentity::ManagedIdentity { client_id: Some(_) }));
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<SidecarConfig, ContractError> {
        let get = |name: &'static str| var(name).filter(|v| !v.trim().is_empty());
        let require = |name: &'static str, why: &str| {
            get(name).ok_or_else(|| ContractError { variable: name, message: format!("required {why}") })
        };
        let raw_url = require(INGESTION_URL, "(the DCR ingestion URL)")?;
        let ingestion_url = url::Url::parse(&raw_url).map_err(|e| ContractError {
            variable: INGESTION_URL,
            message: format!("{raw_url:?} is not a URL: {e}"),
        })?;
        let port = match get(LISTENING_PORT) {
            None => DEFAULT_PORT,
            Some(p) => p.parse().map_err(|_| ContractError {
                variable: LISTENING_PORT,
                message: format!("{p:?} is not a port number"),
            })?,
        };
        let cloud = match get(CLOUD).map(|c| c.to_ascii_uppercase()) {
            None => AzureCloud::AzurePublic,
            Some(c) => match c.as_str() {
                "AZUREPUBLIC" | "AZUREPUBLICCLOUD" => AzureCloud::AzurePublic,
                "AZUREGOVERNMENT" | "AZUREUSGOVERNMENT" => AzureCloud::AzureGovernment,
                "AZURECHINA" | "AZURECHINACLOUD" => AzureCloud::AzureChina,
                other => {
                    return Err(ContractError {
                        variable: CLOUD,
                        message: format!(
                            "{other:?} is not supported by the reference sidecar (AZUREPUBLIC, AZUREGOVERNMENT, AZURECHINA)"
                        ),
                    });
                }
            },
        };
        let scope = match get(INGESTION_AAD_AUDIENCE) {
            Some(aud) if aud.ends_with("/.default") => aud,
            Some(aud) => format!("{}/.default", aud.trim_end_matches('/')),
            None => format!("{}/.default", cloud.ingestion_audience().trim_end_matches('/')),
        };
        let kind = require(IDENTITY_TYPE, "(userAssigned, systemAssigned, aadApplication or workloadIdentity)")?;
        let identity = match kind.to_ascii_lowercase().as_str() {
            "userassigned" => SidecarIdentity::ManagedIdentity {
                client_id: Some(require(AZURE_CLIENT_ID, "for userAssigned (the identity's client id)")?),
            },
            "systemassigned" => SidecarIdentity::ManagedIdentity { client_id: None },
            "aadapplication" => {
                let tenant_id = require(AZURE_TENANT_ID, "for aadApplication")?;
                let client_id = require(AZURE_CLIENT_ID, "for aadApplication (the app id)")?;
                match (get(AZURE_CLIENT_CERTIFICATE_PATH), get(AZURE_CLIENT_SECRET)) {
                    (Some(path), _) => SidecarIdentity::Certificate { tenant_id, client_id, path: path.into() },
                    (None, Some(secret)) => SidecarIdentity::ClientSecret { tenant_id, client_id, secret },
                    (None, None) => {
                        return Err(ContractError {
                            variable: AZURE_CLIENT_CERTIFICATE_PATH,
                            message: format!("required for aadApplication (or {AZURE_CLIENT_SECRET})"),
                        });
                    }
                }
            }
            "workloadidentity" => SidecarIdentity::WorkloadIdentity {
                tenant_id: require(AZURE_TENANT_ID, "for workloadIdentity (injected by the webhook)")?,
                client_id: require(AZURE_CLIENT_ID, "for workloadIdentity (injected by the webhook)")?,
                token_file: require(AZURE_FEDERATED_TOKEN_FILE, "for workloadIdentity (injected by the webhook)")?
                    .into(),
            },
            _ => {
                return Err(ContractError {
                    variable: IDENTITY_TYPE,
                    message: format!(
                        "{kind:?} is not one of userAssigned, systemAssigned, aadApplication, workloadIdentity"
                    ),
                });
            }
        };
        Ok(SidecarConfig { ingestion_url, port, identity, cloud, scope, cluster: get(CLUSTER) })
    }
}

/// Where the sidecar finds its files, as it sees them.
#[derive(Debug, Clone)]
pub struct SidecarFiles {
    /// Federated token file (workload identity).
    pub federated_token: PathBuf,
    /// PEM with the app's key and certificate (aadApplication with a certificate).
    pub certificate: PathBuf,
}

/// The contract variables for the identity in `auth` (as Azure's docs and the workload-identity webhook set
/// them), then `overrides` (the scenario's own `env`, which wins).
///
/// ```
/// use std::collections::BTreeMap;
/// use azrw::scenario::AuthSpec;
/// use azrw::sidecar::contract::{SidecarFiles, contract_env};
/// let auth: AuthSpec = serde_saphyr::from_str("managed_identity: {client_id: abc}").unwrap();
/// let files = SidecarFiles { federated_token: "/t".into(), certificate: "/c".into() };
/// let env = contract_env(&auth, "https://dce/x", 8081, &files, &BTreeMap::new()).unwrap();
/// assert!(env.contains(&("IDENTITY_TYPE".into(), "userAssigned".into())));
/// assert!(env.contains(&("AZURE_CLIENT_ID".into(), "abc".into())));
/// ```
pub fn contract_env(
    auth: &AuthSpec,
    ingestion_url: &str,
    port: u16,
    files: &SidecarFiles,
    overrides: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    set(INGESTION_URL, ingestion_url);
    set(LISTENING_PORT, &port.to_string());
    set(
        CLOUD,
        match auth.cloud {
            AzureCloud::AzurePublic => "AZUREPUBLIC",
            AzureCloud::AzureGovernment => "AZUREGOVERNMENT",
            AzureCloud::AzureChina => "AZURECHINA",
        },
    );
    if auth.cloud != AzureCloud::AzurePublic {
        set(INGESTION_AAD_AUDIENCE, &format!("{}/.default", auth.cloud.ingestion_audience().trim_end_matches('/')));
    }
    if let Some(scope) = &auth.scope {
        set(INGESTION_AAD_AUDIENCE, scope);
    }
    let workload = |tenant: &str, client: &str, set: &mut dyn FnMut(&str, &str)| {
        set(IDENTITY_TYPE, "workloadIdentity");
        set(AZURE_CLIENT_ID, client);
        set(AZURE_TENANT_ID, tenant);
        set(AZURE_FEDERATED_TOKEN_FILE, &files.federated_token.display().to_string());
        set(AZURE_AUTHORITY_HOST, &format!("https://{}/", auth.cloud.authority_host()));
    };
    let mi = auth.managed_identity.as_ref().map(|m| m.client_id.clone()).or_else(|| match auth.sdk.as_ref() {
        Some(s) => match &s.via {
            SdkVia::ManagedIdentity { client_id } => Some(client_id.clone()),
            SdkVia::WorkloadIdentity { .. } => None,
        },
        None => None,
    });
    if let Some(client_id) = mi {
        if client_id.is_empty() {
            set(IDENTITY_TYPE, "systemAssigned");
        } else {
            set(IDENTITY_TYPE, "userAssigned");
            set(AZURE_CLIENT_ID, &client_id);
        }
    } else if let Some(o) = &auth.oauth {
        set(IDENTITY_TYPE, "aadApplication");
        set(AZURE_CLIENT_ID, &o.client_id);
        set(AZURE_TENANT_ID, &o.tenant_id);
        set(AZURE_CLIENT_SECRET, &o.client_secret);
    } else if let Some(c) = &auth.certificate {
        set(IDENTITY_TYPE, "aadApplication");
        set(AZURE_CLIENT_ID, &c.client_id);
        set(AZURE_TENANT_ID, &c.tenant_id);
        set(AZURE_CLIENT_CERTIFICATE_PATH, &files.certificate.display().to_string());
    } else if let Some(w) = &auth.workload_identity {
        workload(&w.tenant_id, &w.client_id, &mut set);
    } else if let Some(s) = &auth.sdk
        && let SdkVia::WorkloadIdentity { client_id, .. } = &s.via
    {
        workload(&s.tenant_id, client_id, &mut set);
    } else {
        return Err("the auth block names no identity for the sidecar".into());
    }
    for (k, v) in overrides {
        env.insert(k.clone(), v.clone());
    }
    Ok(env.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<SidecarConfig, ContractError> {
        SidecarConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    const URL: (&str, &str) = (INGESTION_URL, "https://dce.example/dataCollectionRules/dcr-1/streams/s/api/v1/write");

    #[test]
    fn every_missing_or_wrong_variable_is_named() {
        assert_eq!(config(&[]).unwrap_err().variable, INGESTION_URL);
        assert_eq!(config(&[URL]).unwrap_err().variable, IDENTITY_TYPE);
        let e = config(&[URL, (IDENTITY_TYPE, "podIdentity")]).unwrap_err();
        assert_eq!(e.variable, IDENTITY_TYPE);
        assert!(e.to_string().contains("podIdentity"), "{e}");
        assert_eq!(config(&[URL, (IDENTITY_TYPE, "userAssigned")]).unwrap_err().variable, AZURE_CLIENT_ID);
        let e = config(&[URL, (IDENTITY_TYPE, "workloadIdentity"), (AZURE_CLIENT_ID, "c"), (AZURE_TENANT_ID, "t")]);
        assert_eq!(e.unwrap_err().variable, AZURE_FEDERATED_TOKEN_FILE);
        let e = config(&[URL, (IDENTITY_TYPE, "aadApplication"), (AZURE_CLIENT_ID, "c"), (AZURE_TENANT_ID, "t")]);
        assert_eq!(e.unwrap_err().variable, AZURE_CLIENT_CERTIFICATE_PATH);
        let e = config(&[URL, (IDENTITY_TYPE, "systemAssigned"), (LISTENING_PORT, "http")]);
        assert_eq!(e.unwrap_err().variable, LISTENING_PORT);
        let e = config(&[URL, (IDENTITY_TYPE, "systemAssigned"), (CLOUD, "AZURECUSTOM")]);
        assert_eq!(e.unwrap_err().variable, CLOUD);
    }

    #[test]
    fn audience_becomes_a_scope_and_secrets_are_not_described() {
        let c = config(&[
            URL,
            (IDENTITY_TYPE, "aadApplication"),
            (AZURE_CLIENT_ID, "c"),
            (AZURE_TENANT_ID, "t"),
            (AZURE_CLIENT_SECRET, "s3cr3t-value"),
            (CLOUD, "AzureGovernment"),
            (INGESTION_AAD_AUDIENCE, "https://monitor.azure.us/"),
        ])
        .unwrap();
        assert_eq!(c.scope, "https://monitor.azure.us/.default");
        assert_eq!(c.cloud, AzureCloud::AzureGovernment);
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn derived_env_reads_back_as_the_same_identity() {
        let files =
            SidecarFiles { federated_token: "/etc/azrw/token".into(), certificate: "/etc/azrw/cert.pem".into() };
        for (yaml, want) in [
            ("managed_identity: {client_id: ''}", "system-assigned managed identity"),
            (
                "workload_identity: {client_id: c, tenant_id: t}",
                "workload identity c (tenant t), token file /etc/azrw/token",
            ),
            (
                "certificate: {client_id: c, tenant_id: t}",
                "app c (tenant t) with the certificate in /etc/azrw/cert.pem",
            ),
            ("oauth: {client_id: c, tenant_id: t, client_secret: x}", "app c (tenant t) with a client secret"),
        ] {
            let auth: AuthSpec = serde_saphyr::from_str(yaml).unwrap();
            let env = contract_env(&auth, URL.1, 8081, &files, &BTreeMap::new()).unwrap();
            let c = SidecarConfig::from_vars(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
            assert_eq!(c.identity.describe(), want, "{yaml}");
        }
        let auth: AuthSpec = serde_saphyr::from_str("managed_identity: {client_id: a}").unwrap();
        let overrides = BTreeMap::from([(AZURE_CLIENT_ID.to_owned(), "b".to_owned())]);
        let env = contract_env(&auth, URL.1, 8081, &files, &overrides).unwrap();
        assert!(env.contains(&(AZURE_CLIENT_ID.to_owned(), "b".to_owned())), "the scenario's env wins");
    }
}
