//! What the mock cloud must believe for a scenario: the directory (tenant, identities, apps), role assignments
//! and the DCR — derived from the auth block, with the scenario's `cloud:` overrides for negative cases.

use std::sync::Arc;

use crate::cloud::recorder::Principal;
use crate::cloud::{
    App, ClientCertificate, CloudConfig, CloudError, ClusterIssuer, DcrConfig, Directory, FederatedCredential,
    MockData, RoleGrant,
};
use crate::scenario::{AuthSpec, AzureCloud, Scenario, SdkVia};

/// Tenant used when the auth type names none (managed identity).
pub const DEFAULT_TENANT: &str = "00000000-0000-4000-8000-00000000a2b0";
/// Object id of the VM's system-assigned identity.
pub const SYSTEM_IDENTITY_OBJECT_ID: &str = "00000000-0000-4000-8000-0000000005a1";
/// Issuer URL of the mock Kubernetes cluster (workload identity).
pub const CLUSTER_ISSUER: &str = "https://oidc.azrw.invalid/cluster/";
/// Audience of federated service-account tokens.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The cloud set-up of one case, plus the credentials the agent must be handed.
#[derive(Debug)]
pub struct CloudSetup {
    /// What the mock cloud believes.
    pub config: CloudConfig,
    /// The cluster issuer that signs federated tokens (workload identity).
    pub issuer: Option<Arc<ClusterIssuer>>,
    /// Service account subject the federated token is issued for.
    pub federated_subject: Option<String>,
    /// Client certificate handed to the agent (`certificate` auth).
    pub client_certificate: Option<ClientCertificate>,
    /// The principal the agent authenticates as.
    pub principal: Principal,
}

/// The identity the auth block authenticates as, and its tenant.
fn principal(auth: &AuthSpec) -> (Principal, String, Option<String>) {
    if let Some(mi) = &auth.managed_identity {
        return mi_principal(&mi.client_id);
    }
    if let Some(o) = &auth.oauth {
        return (Principal::App { client_id: o.client_id.clone() }, o.tenant_id.clone(), None);
    }
    if let Some(c) = &auth.certificate {
        return (Principal::App { client_id: c.client_id.clone() }, c.tenant_id.clone(), None);
    }
    if let Some(w) = &auth.workload_identity {
        return (
            Principal::App { client_id: w.client_id.clone() },
            w.tenant_id.clone(),
            Some(w.service_account.clone()),
        );
    }
    match auth.sdk.as_ref().map(|s| (&s.via, s.tenant_id.clone())) {
        Some((SdkVia::WorkloadIdentity { client_id, service_account, .. }, tenant)) => {
            (Principal::App { client_id: client_id.clone() }, tenant, Some(service_account.clone()))
        }
        Some((SdkVia::ManagedIdentity { client_id }, _)) => mi_principal(client_id),
        None => mi_principal(""),
    }
}

fn mi_principal(client_id: &str) -> (Principal, String, Option<String>) {
    let p = if client_id.is_empty() {
        Principal::SystemAssigned { object_id: SYSTEM_IDENTITY_OBJECT_ID.to_owned() }
    } else {
        Principal::UserAssigned { client_id: client_id.to_owned() }
    };
    (p, DEFAULT_TENANT.to_owned(), None)
}

/// `system:serviceaccount:NS:SA` for `NS/SA`.
pub fn service_account_subject(service_account: &str) -> String {
    let (ns, sa) = service_account.split_once('/').unwrap_or(("default", service_account));
    format!("system:serviceaccount:{ns}:{sa}")
}

/// Derives the cloud set-up. `ingestion_url` is the URL the agent will write to.
pub fn cloud_setup(scenario: &Scenario, ingestion_url: &str, mocks: MockData) -> Result<CloudSetup, CloudError> {
    let auth = &scenario.auth;
    let spec = &scenario.cloud;
    let (principal, tenant, service_account) = principal(auth);
    let uses_mi = matches!(principal, Principal::SystemAssigned { .. } | Principal::UserAssigned { .. });

    let configured_client = match &principal {
        Principal::UserAssigned { client_id } | Principal::App { client_id } => Some(client_id.clone()),
        Principal::SystemAssigned { .. } => None,
    };
    let known_clients: Vec<String> =
        spec.client_ids.clone().unwrap_or_else(|| configured_client.iter().cloned().collect());

    let issuer = match service_account {
        Some(_) => Some(Arc::new(ClusterIssuer::generate(CLUSTER_ISSUER)?)),
        None => None,
    };
    let federated_subject = service_account.as_deref().map(service_account_subject);
    let client_certificate = match &auth.certificate {
        Some(c) => Some(ClientCertificate::generate(&format!("azrw-app-{}", c.client_id))?),
        None => None,
    };

    let app = AppCredentials {
        secret: spec.client_secret.clone().or_else(|| auth.oauth.as_ref().map(|o| o.client_secret.clone())),
        certificate: client_certificate.as_ref(),
        federated_subject: federated_subject.as_deref(),
    };
    let directory = directory(tenant, uses_mi, &known_clients, &app);
    let roles = roles(&spec.roles, &principal, uses_mi);
    let dcr = dcr_config(ingestion_url, spec.dcr_cloud.unwrap_or(auth.cloud), spec.refuse_rw2)?;
    let faults = crate::cloud::FaultConfig::resolve(&scenario.faults, &mocks, scenario.prometheus.remote_timeout)?;
    Ok(CloudSetup {
        config: CloudConfig {
            directory,
            roles,
            dcr,
            token_lifetime: spec.token_lifetime,
            receivers: receivers(&scenario.prometheus.plain_remote_writes, &faults),
            faults,
            mocks,
        },
        issuer,
        federated_subject,
        client_certificate,
        principal,
    })
}

/// What the mock's app registration accepts, when the principal is an app.
struct AppCredentials<'a> {
    secret: Option<String>,
    certificate: Option<&'a ClientCertificate>,
    federated_subject: Option<&'a str>,
}

/// The tenant's directory: the system-assigned identity, and either the known user-assigned identities or the
/// known apps with their credentials.
fn directory(tenant_id: String, uses_mi: bool, known_clients: &[String], app: &AppCredentials<'_>) -> Directory {
    let mut directory = Directory {
        tenant_id,
        system_assigned: Some(SYSTEM_IDENTITY_OBJECT_ID.to_owned()),
        user_assigned: Vec::new(),
        apps: Vec::new(),
    };
    if uses_mi {
        directory.user_assigned = known_clients.to_vec();
        return directory;
    }
    for client_id in known_clients {
        directory.apps.push(App {
            client_id: client_id.clone(),
            secret: app.secret.clone(),
            certificate_der: app.certificate.map(|c| c.der().to_vec()),
            federated: app
                .federated_subject
                .iter()
                .map(|subject| FederatedCredential {
                    issuer: CLUSTER_ISSUER.to_owned(),
                    subject: (*subject).to_owned(),
                    audience: FEDERATED_AUDIENCE.to_owned(),
                })
                .collect(),
        });
    }
    directory
}

/// The scenario's role assignments, naming principals as the mock knows them.
fn roles(specs: &[crate::scenario::RoleAssignment], configured: &Principal, uses_mi: bool) -> Vec<RoleGrant> {
    specs
        .iter()
        .map(|r| RoleGrant {
            principal: match r.identity.as_str() {
                "configured" => configured.clone(),
                "system-assigned" => Principal::SystemAssigned { object_id: SYSTEM_IDENTITY_OBJECT_ID.to_owned() },
                id if uses_mi => Principal::UserAssigned { client_id: id.to_owned() },
                id => Principal::App { client_id: id.to_owned() },
            },
            scope: r.scope,
        })
        .collect()
}

/// The DCR the ingestion URL names: its host and immutable id.
fn dcr_config(ingestion_url: &str, cloud: crate::azure::AzureCloud, refuse_rw2: bool) -> Result<DcrConfig, CloudError> {
    let url = url::Url::parse(ingestion_url)
        .map_err(|e| CloudError::Config(format!("ingestion URL {ingestion_url}: {e}")))?;
    let dcr_id = url
        .path_segments()
        .and_then(|mut s| s.nth(1).map(str::to_owned))
        .ok_or_else(|| CloudError::Config(format!("ingestion URL {ingestion_url} has no DCR id")))?;
    Ok(DcrConfig { host: url.host_str().unwrap_or_default().to_owned(), dcr_id, cloud, refuse_rw2 })
}

impl CloudSetup {
    /// The projected service-account token a workload-identity agent reads, signed by the cluster issuer (an hour).
    pub fn federated_token(&self) -> Option<String> {
        let (issuer, subject) = self.issuer.as_ref().zip(self.federated_subject.as_ref())?;
        Some(issuer.federated_token(subject, std::time::Duration::from_secs(3600)))
    }
}

/// The hosts besides Azure's the mock must serve: the plain remote-write entries' and the redirects' targets.
fn receivers(plain_remote_writes: &[String], faults: &crate::cloud::FaultConfig) -> Vec<String> {
    let mut hosts = plain_remote_writes.to_vec();
    for r in faults.rules.iter().filter_map(|r| r.rule.redirect.as_ref()) {
        if !hosts.contains(&r.to) {
            hosts.push(r.to.clone());
        }
    }
    hosts
}

/// The ingestion URL used when a scenario brings no config of its own.
pub fn default_ingestion_url(scenario: &Scenario) -> String {
    let cloud: AzureCloud = scenario.cloud.dcr_cloud.unwrap_or(scenario.auth.cloud);
    crate::azure::ingestion_url(&format!("azrw-dce-a2b0.eastus-1.{}", cloud.ingestion_domain()), &scenario.cloud.dcr_id)
}
