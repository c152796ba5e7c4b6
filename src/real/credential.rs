//! Tokens the harness obtains itself with azure_identity: for the agent's identity (doctor's probe write) and for
//! the reader identity (workspace queries). Reports name the identity a token is for, never the token.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};
use base64::Engine;

use crate::scenario::{AuthSpec, AzureCloud, ReaderSpec, SdkVia};

/// The scope of Azure Monitor workspace queries.
pub fn query_scope(cloud: AzureCloud) -> &'static str {
    match cloud {
        AzureCloud::AzurePublic => "https://prometheus.monitor.azure.com/.default",
        AzureCloud::AzureGovernment => "https://prometheus.monitor.azure.us/.default",
        AzureCloud::AzureChina => "https://prometheus.monitor.azure.cn/.default",
    }
}

/// azure_core's configuration of `cloud` (authority host, audiences).
pub(crate) fn cloud_configuration(cloud: AzureCloud) -> Arc<azure_core::cloud::CloudConfiguration> {
    Arc::new(match cloud {
        AzureCloud::AzurePublic => azure_core::cloud::CloudConfiguration::AzurePublic,
        AzureCloud::AzureGovernment => azure_core::cloud::CloudConfiguration::AzureGovernment,
        AzureCloud::AzureChina => azure_core::cloud::CloudConfiguration::AzureChina,
    })
}

/// A credential for the agent's auth block, or why the harness cannot check this auth type itself.
pub fn for_auth(auth: &AuthSpec, client: &reqwest::Client) -> Result<Arc<dyn TokenCredential>, String> {
    let mut client_options = super::http::client_options(client);
    client_options.cloud = Some(cloud_configuration(auth.cloud));
    if let Some(o) = &auth.oauth {
        return secret_credential(&o.tenant_id, &o.client_id, &o.client_secret, auth.cloud, client);
    }
    let mi_client = auth.managed_identity.as_ref().map(|m| m.client_id.clone()).or_else(|| {
        auth.sdk.as_ref().and_then(|s| match &s.via {
            SdkVia::ManagedIdentity { client_id } => Some(client_id.clone()),
            SdkVia::WorkloadIdentity { .. } => None,
        })
    });
    if let Some(client_id) = mi_client {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: (!client_id.is_empty()).then_some(UserAssignedId::ClientId(client_id)),
            client_options,
        };
        return ManagedIdentityCredential::new(Some(options))
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| format!("managed identity credential: {e}"));
    }
    Err("the harness checks oauth and managed identity itself; for certificate and workload identity it relies on the \
         agent's own run"
        .into())
}

/// A credential for the reader identity.
pub fn for_reader(
    reader: &ReaderSpec,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    secret_credential(&reader.tenant_id, &reader.client_id, &reader.client_secret, cloud, client)
}

fn secret_credential(
    tenant: &str,
    client_id: &str,
    secret: &str,
    cloud: AzureCloud,
    client: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, String> {
    let mut client_options = super::http::client_options(client);
    client_options.cloud = Some(cloud_configuration(cloud));
    ClientSecretCredential::new(
        tenant,
        client_id.to_owned(),
        secret.to_owned().into(),
        Some(ClientSecretCredentialOptions { client_options }),
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
    let claims = jwt
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(c) = claims else { return "an opaque token (not a JWT)".into() };
    let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
    let who = match c.get("appid").and_then(|v| v.as_str()) {
        Some(app) => format!("app {app}"),
        None => format!("object {}", s("oid")),
    };
    format!("{who} (object {}, tenant {}), audience {}", s("oid"), s("tid"), s("aud"))
}
