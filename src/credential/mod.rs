//! Tokens the harness obtains itself with azure_identity: for the agent's identity (doctor's probe write) and for
//! the reader identity (workspace queries). Reports name the identity a token is for, never the token.

mod access;
pub use access::Access;

use std::path::Path;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use base64::Engine;
use jsonwebtoken::Algorithm;

use crate::agent::prometheus::AgentPaths;
use crate::cloud::ClientCertificate;
use crate::private_file;
use crate::scenario::{AuthSpec, AzureCloud, ReaderSpec, SdkVia};

/// The harness's own credential for the agent's identity, and what it authenticates with (nothing secret).
pub struct AgentCredential {
    /// The credential.
    pub credential: Arc<dyn TokenCredential>,
    /// The credential file it reads, for the report: `certificate /path (CN=…, x5t#S256 …)` or
    /// `federated token /path (subject …, issuer …, expires in …)`.
    pub source: Option<String>,
}

/// A credential for the agent's auth block (every method), `Err` when the set-up is broken (a credential file
/// missing or unreadable).
pub fn for_auth(auth: &AuthSpec, client: &reqwest::Client) -> Result<Option<AgentCredential>, String> {
    let cloud = auth.cloud;
    if let Some(o) = &auth.oauth {
        let credential = client_secret(&o.tenant_id, &o.client_id, &o.client_secret, cloud, client)?;
        return Ok(Some(AgentCredential { credential, source: None }));
    }
    if let Some(c) = &auth.certificate {
        let path = c.certificate_file.as_deref().unwrap_or_default();
        let loaded = load_certificate(path)?;
        let source = Some(format!("certificate {path} ({})", describe_certificate(&loaded)));
        let credential = certificate(&c.tenant_id, &c.client_id, loaded, cloud, client)?;
        return Ok(Some(AgentCredential { credential, source }));
    }
    // Native workload identity, or DefaultAzureCredential's workload-identity credential (`sdk`): the same exchange.
    let federated = match (&auth.workload_identity, auth.sdk.as_ref().map(|s| (&s.via, &s.tenant_id))) {
        (Some(w), _) => Some((&w.tenant_id, &w.client_id, &w.token_file)),
        (None, Some((SdkVia::WorkloadIdentity { client_id, token_file, .. }, tenant))) => {
            Some((tenant, client_id, token_file))
        }
        _ => None,
    };
    if let Some((tenant, client_id, token_file)) = federated {
        let path = token_file.as_deref().unwrap_or_default();
        let source = Some(format!("federated token {path} ({})", describe_federated_token(path)?));
        let credential = workload_identity(tenant, client_id, Path::new(path), cloud, client)?;
        return Ok(Some(AgentCredential { credential, source }));
    }
    let mi_client = auth.managed_identity.as_ref().map(|m| m.client_id.clone()).or_else(|| {
        auth.sdk.as_ref().and_then(|s| match &s.via {
            SdkVia::ManagedIdentity { client_id } => Some(client_id.clone()),
            SdkVia::WorkloadIdentity { .. } => None,
        })
    });
    let Some(client_id) = mi_client else { return Ok(None) };
    let credential = managed_identity((!client_id.is_empty()).then_some(client_id), cloud, client)?;
    Ok(Some(AgentCredential { credential, source: None }))
}

// One builder per kind of identity, over the harness's own transport (`client`: its route and trust): shared by
// the harness's token checks and the reference sidecar (`crate::sidecar`).

fn options(cloud: AzureCloud, client: &reqwest::Client) -> azure_core::http::ClientOptions {
    let mut options = access::client_options(client);
    options.cloud = Some(cloud.sdk_configuration());
    options
}

/// A managed identity: user-assigned by client id, or the system-assigned one (`None`).
pub fn managed_identity(
    client_id: Option<String>,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(UserAssignedId::ClientId),
        client_options: options(cloud, client),
    };
    ManagedIdentityCredential::new(Some(options))
        .map(|c| c as Arc<dyn TokenCredential>)
        .map_err(|e| format!("managed identity credential: {e}"))
}

/// An Entra app with a certificate: client assertions signed as Prometheus' MSAL signs them.
pub fn certificate(
    tenant: &str,
    client_id: &str,
    certificate: ClientCertificate,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    let assertion = CertificateAssertion {
        certificate,
        client_id: client_id.to_owned(),
        token_endpoint: format!("https://{}/{tenant}/oauth2/v2.0/token", cloud.authority_host()),
    };
    ClientAssertionCredential::new(
        tenant.to_owned(),
        client_id.to_owned(),
        assertion,
        Some(ClientAssertionCredentialOptions { client_options: options(cloud, client) }),
    )
    .map(|c| c as Arc<dyn TokenCredential>)
    .map_err(|e| format!("certificate credential: {e}"))
}

/// A workload identity: the federated token in `token_file` exchanged at Entra.
pub fn workload_identity(
    tenant: &str,
    client_id: &str,
    token_file: &Path,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    let options = WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions { client_options: options(cloud, client) },
        client_id: Some(client_id.to_owned()),
        tenant_id: Some(tenant.to_owned()),
        token_file_path: Some(token_file.to_owned()),
    };
    WorkloadIdentityCredential::new(Some(options))
        .map(|c| c as Arc<dyn TokenCredential>)
        .map_err(|e| format!("workload identity credential: {e}"))
}

/// The certificate and key of the PEM file at `path`; the error names the file, never its content.
pub fn load_certificate(path: &str) -> Result<ClientCertificate, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("certificate file {path}: {e}"))?;
    ClientCertificate::from_pem(&pem).map_err(|e| format!("certificate file {path}: {e}"))
}

fn describe_certificate(certificate: &ClientCertificate) -> String {
    let subject = x509_parser::parse_x509_certificate(certificate.der())
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{subject}, x5t#S256 {}", certificate.sha256_thumbprint())
}

/// Who a federated token file speaks for, from its (unverified) claims; the token itself is never shown.
fn describe_federated_token(path: &str) -> Result<String, String> {
    let token = std::fs::read_to_string(path).map_err(|e| format!("federated token file {path}: {e}"))?;
    let claims = claims(token.trim()).ok_or_else(|| format!("federated token file {path}: not a JWT"))?;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
    let left =
        claims.get("exp").and_then(|v| v.as_i64()).map(|exp| exp - time::OffsetDateTime::now_utc().unix_timestamp());
    let expiry = match left {
        Some(l) if l > 0 => format!("expires in {}m", l / 60),
        Some(l) => format!("EXPIRED {}m ago", -l / 60),
        None => "no exp".into(),
    };
    Ok(format!("subject {}, issuer {}, audience {}, {expiry}", s("sub"), s("iss"), s("aud")))
}

/// Signs client assertions with a certificate the way Prometheus' MSAL does (PS256, `x5t#S256`), one per token
/// request. Debug shows the thumbprint only.
struct CertificateAssertion {
    certificate: ClientCertificate,
    client_id: String,
    token_endpoint: String,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion").field("certificate", &self.certificate).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<azure_core::http::ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.certificate.client_assertion(Algorithm::PS256, false, &self.client_id, &self.token_endpoint))
    }
}

/// Points the agent of a real run at the credential files: the federated token file where it is (the kubelet
/// rotates it in place), the certificate PEM split into the certificate and key files Prometheus reads.
pub fn place_files(auth: &AuthSpec, paths: &mut AgentPaths) -> Result<(), String> {
    let sdk_token_file = auth.sdk.as_ref().and_then(|s| match &s.via {
        SdkVia::WorkloadIdentity { token_file, .. } => token_file.as_deref(),
        SdkVia::ManagedIdentity { .. } => None,
    });
    if let Some(path) = auth.workload_identity.as_ref().and_then(|w| w.token_file.as_deref()).or(sdk_token_file) {
        paths.federated_token = path.into();
    }
    if let Some(path) = auth.certificate.as_ref().and_then(|c| c.certificate_file.as_deref()) {
        let certificate = load_certificate(path)?;
        private_file::write(&paths.client_certificate, certificate.cert_pem().as_bytes())?;
        private_file::write(&paths.client_key, certificate.key_pem().as_bytes())?;
    }
    Ok(())
}

/// A credential for the reader identity.
pub fn for_reader(
    reader: &ReaderSpec,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    client_secret(&reader.tenant_id, &reader.client_id, &reader.client_secret, cloud, client)
}

/// An Entra app with a client secret.
pub fn client_secret(
    tenant: &str,
    client_id: &str,
    secret: &str,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    ClientSecretCredential::new(
        tenant,
        client_id.to_owned(),
        secret.to_owned().into(),
        Some(ClientSecretCredentialOptions { client_options: options(cloud, client) }),
    )
    .map(|c| c as Arc<dyn TokenCredential>)
    .map_err(|e| format!("client secret credential: {e}"))
}

/// A token and who it is for.
pub struct Token {
    /// The bearer value. Never printed: [`Token`]'s Debug withholds it.
    pub secret: String,
    /// `app 1111… (tenant …), audience …` from the token's own claims.
    pub identity: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("identity", &self.identity).field("expires_in", &self.expires_in).finish()
    }
}

/// Gets a token for `scope`; the error is azure_identity's message with nothing secret in it.
pub async fn get(credential: &dyn TokenCredential, scope: &str) -> Result<Token, String> {
    let token = credential.get_token(&[scope], None).await.map_err(|e| flatten(&e.to_string()))?;
    let secret = token.token.secret().to_owned();
    let expires_in = (token.expires_on - time::OffsetDateTime::now_utc()).whole_seconds();
    Ok(Token { identity: identity_of(&secret), secret, expires_in })
}

fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Who a JWT access token is for, from its (unverified) claims: app id or object id, tenant and audience.
pub fn identity_of(jwt: &str) -> String {
    let Some(c) = claims(jwt) else { return "an opaque token (not a JWT)".into() };
    let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
    let who = match c.get("appid").and_then(|v| v.as_str()) {
        Some(app) => format!("app {app}"),
        None => format!("object {}", s("oid")),
    };
    format!("{who} (object {}, tenant {}), audience {}", s("oid"), s("tid"), s("aud"))
}

/// A JWT's claims, unverified.
fn claims(jwt: &str) -> Option<serde_json::Value> {
    jwt.split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
}
