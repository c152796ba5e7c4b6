//! Key material of one mock cloud: the ephemeral CA that signs a TLS leaf per host the agent reaches, client
//! certificates for Entra apps, and the Kubernetes issuer that signs federated service-account tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SanType,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use super::CloudError;

/// The audience Kubernetes projects into federated tokens for Entra workload identity.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

fn key_error(what: &str, e: impl std::fmt::Display) -> CloudError {
    CloudError::Key(format!("{what}: {e}"))
}

/// An ephemeral certificate authority; it mints (and caches) a TLS leaf for every host name on demand.
///
/// ```
/// let ca = azrw::cloud::CertificateAuthority::generate().unwrap();
/// assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// A second CA nobody is told to trust, for `tls_certificate: untrusted`; made on first use.
    stranger: std::sync::OnceLock<Issuer<'static, KeyPair>>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority").finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A fresh CA (ECDSA P-256) that exists only in memory.
    ///
    /// ```
    /// let ca = azrw::cloud::CertificateAuthority::generate().unwrap();
    /// ```
    pub fn generate() -> Result<CertificateAuthority, CloudError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| key_error("CA key", e))?;
        let params = Self::ca_params("azrw mock cloud CA");
        let cert = params.self_signed(&key).map_err(|e| key_error("CA certificate", e))?;
        Ok(CertificateAuthority {
            issuer: Issuer::new(params, key),
            ca_pem: cert.pem(),
            leaves: Mutex::default(),
            stranger: std::sync::OnceLock::new(),
        })
    }

    /// A CA certificate's parameters (its key is the caller's).
    fn ca_params(common_name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "azrw");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    /// The CA certificate, PEM; agents trust it through `SSL_CERT_FILE`.
    ///
    /// ```
    /// let ca = azrw::cloud::CertificateAuthority::generate().unwrap();
    /// std::fs::write(std::env::temp_dir().join("azrw-doc-ca.pem"), ca.ca_pem()).unwrap();
    /// ```
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The leaf for `host` (a DNS name or an IP address), minted on first use and cached.
    ///
    /// ```
    /// let ca = azrw::cloud::CertificateAuthority::generate().unwrap();
    /// let a = ca.leaf("login.microsoftonline.com").unwrap();
    /// let b = ca.leaf("login.microsoftonline.com").unwrap();
    /// assert!(std::sync::Arc::ptr_eq(&a, &b));
    /// ```
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, CloudError> {
        let host = host.to_ascii_lowercase();
        if let Some(leaf) = self.leaves.lock().expect("leaf cache poisoned").get(&host) {
            return Ok(leaf.clone());
        }
        let leaf = Arc::new(mint_leaf(&host, &self.issuer, None)?);
        self.leaves.lock().expect("leaf cache poisoned").insert(host, leaf.clone());
        Ok(leaf)
    }

    /// A TLS server config that presents, for `host`, a certificate a client must refuse: signed by a CA it does
    /// not trust, for another host name, or expired yesterday (the other two signed by the trusted CA, so each is
    /// wrong in exactly one way).
    ///
    /// ```
    /// use azrw::scenario::BadCertificate;
    /// let ca = std::sync::Arc::new(azrw::cloud::CertificateAuthority::generate().unwrap());
    /// for kind in [BadCertificate::Untrusted, BadCertificate::WrongHost, BadCertificate::Expired] {
    ///     ca.bad_server_config("login.microsoftonline.com", kind).unwrap();
    /// }
    /// ```
    pub fn bad_server_config(
        &self,
        host: &str,
        kind: crate::scenario::BadCertificate,
    ) -> Result<Arc<rustls::ServerConfig>, CloudError> {
        let leaf = self.bad_leaf(host, kind)?;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut config =
            rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(Arc::new(Fixed(Arc::new(leaf))));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The leaf [`CertificateAuthority::bad_server_config`] presents.
    fn bad_leaf(&self, host: &str, kind: crate::scenario::BadCertificate) -> Result<CertifiedKey, CloudError> {
        use crate::scenario::BadCertificate;
        let host = host.to_ascii_lowercase();
        match kind {
            BadCertificate::Untrusted => {
                let stranger = match self.stranger.get() {
                    Some(s) => s,
                    None => {
                        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| key_error("CA key", e))?;
                        let _ = self.stranger.set(Issuer::new(Self::ca_params("azrw untrusted CA"), key));
                        self.stranger.get().expect("just set")
                    }
                };
                mint_leaf(&host, stranger, None)
            }
            BadCertificate::WrongHost => mint_leaf("wrong-host.azrw.invalid", &self.issuer, None),
            BadCertificate::Expired => {
                let now = time::OffsetDateTime::now_utc();
                mint_leaf(&host, &self.issuer, Some((now - time::Duration::days(30), now - time::Duration::days(1))))
            }
        }
    }

    /// A TLS server config that answers with the leaf for the client's SNI, or for `fallback_host` when the
    /// client sends none (IP addresses). ALPN offers `http/1.1` only: the mock speaks HTTP/1.1.
    ///
    /// ```
    /// let ca = std::sync::Arc::new(azrw::cloud::CertificateAuthority::generate().unwrap());
    /// let config = ca.server_config(Some("127.0.0.1".into()));
    /// assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    /// ```
    pub fn server_config(self: &Arc<Self>, fallback_host: Option<String>) -> Arc<rustls::ServerConfig> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(LeafResolver { ca: self.clone(), fallback_host }));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A leaf for `host` signed by `issuer`, valid for `validity` (default: rcgen's, which is current).
fn mint_leaf(
    host: &str,
    issuer: &Issuer<'static, KeyPair>,
    validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
) -> Result<CertifiedKey, CloudError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| key_error("leaf key", e))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, host.to_owned());
    params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(host.to_owned().try_into().map_err(|e| key_error("leaf name", e))?),
    }];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if let Some((not_before, not_after)) = validity {
        params.not_before = not_before;
        params.not_after = not_after;
    }
    let cert = params.signed_by(&key, issuer).map_err(|e| key_error("leaf certificate", e))?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&private).map_err(|e| key_error("leaf key", e))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// Always the same certificate, whatever the client asks for.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Picks (mints) the leaf for the SNI name of each handshake.
#[derive(Debug)]
struct LeafResolver {
    ca: Arc<CertificateAuthority>,
    fallback_host: Option<String>,
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = hello.server_name().map(str::to_owned).or_else(|| self.fallback_host.clone())?;
        match self.ca.leaf(&host) {
            Ok(leaf) => Some(leaf),
            Err(e) => {
                tracing::warn!(%host, error = %e, "could not mint a TLS leaf");
                None
            }
        }
    }
}

/// An RSA-2048 client certificate for an Entra app (MSAL signs client assertions with RS256/PS256).
///
/// ```
/// let cert = azrw::cloud::ClientCertificate::generate("azrw-app").unwrap();
/// assert!(cert.key_pem().contains("BEGIN PRIVATE KEY"));
/// assert_eq!(cert.sha256_thumbprint().len(), 43);
/// ```
pub struct ClientCertificate {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate").field("x5t#S256", &self.sha256_thumbprint()).finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// A self-signed certificate with this common name and a fresh RSA-2048 key.
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("azrw-app").unwrap();
    /// assert!(!cert.der().is_empty());
    /// ```
    pub fn generate(common_name: &str) -> Result<ClientCertificate, CloudError> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| key_error("RSA key", e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.self_signed(&key).map_err(|e| key_error("client certificate", e))?;
        Ok(ClientCertificate { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() })
    }

    /// The certificate and RSA key of one PEM file (a real app's credential: `-----BEGIN CERTIFICATE-----` and
    /// `-----BEGIN PRIVATE KEY-----` or `RSA PRIVATE KEY`, in any order). The error never quotes the file.
    ///
    /// ```
    /// let made = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// let pem = format!("{}{}", made.key_pem(), made.cert_pem());
    /// let read = azrw::cloud::ClientCertificate::from_pem(&pem).unwrap();
    /// assert_eq!(read.sha256_thumbprint(), made.sha256_thumbprint());
    /// assert!(azrw::cloud::ClientCertificate::from_pem(made.cert_pem()).unwrap_err().contains("no private key"));
    /// ```
    pub fn from_pem(pem: &str) -> Result<ClientCertificate, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let der = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .ok_or("no CERTIFICATE block")?
            .map_err(|e| format!("the certificate does not parse: {e:?}"))?
            .to_vec();
        let cert_pem = pem_block(pem, "CERTIFICATE").ok_or("no CERTIFICATE block")?;
        let key_pem = pem_block(pem, "PRIVATE KEY").ok_or("no private key (PRIVATE KEY or RSA PRIVATE KEY block)")?;
        EncodingKey::from_rsa_pem(key_pem.as_bytes()).map_err(|e| format!("the private key is not an RSA key: {e}"))?;
        Ok(ClientCertificate { cert_pem, key_pem, der })
    }

    /// Certificate, PEM.
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// assert!(cert.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// ```
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Private key, PKCS#8 PEM. Key material: never log it.
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// let key = jsonwebtoken::EncodingKey::from_rsa_pem(cert.key_pem().as_bytes()).unwrap();
    /// ```
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Certificate, DER (what an [`App`](super::App) registers).
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// assert_eq!(cert.der()[0], 0x30);
    /// ```
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-1 of the DER, base64url: the JWT `x5t` header.
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// assert_eq!(cert.sha1_thumbprint().len(), 27);
    /// ```
    pub fn sha1_thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&self.der))
    }

    /// SHA-256 of the DER, base64url: the JWT `x5t#S256` header.
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// assert_eq!(cert.sha256_thumbprint().len(), 43);
    /// ```
    pub fn sha256_thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&self.der))
    }

    /// A client assertion for `client_id` at `token_endpoint`, signed with this certificate's key the way MSAL
    /// does (`alg` RS256 or PS256; thumbprint in `x5t#S256` or, with `sha1_header`, `x5t`). Replay re-signs with it.
    ///
    /// ```
    /// let cert = azrw::cloud::ClientCertificate::generate("a").unwrap();
    /// let jwt = cert.client_assertion(jsonwebtoken::Algorithm::PS256, false, "c", "https://login.microsoftonline.com/t/oauth2/v2.0/token");
    /// assert_eq!(jwt.split('.').count(), 3);
    /// ```
    pub fn client_assertion(&self, alg: Algorithm, sha1_header: bool, client_id: &str, token_endpoint: &str) -> String {
        let mut header = Header::new(alg);
        if sha1_header {
            header.x5t = Some(self.sha1_thumbprint());
        } else {
            header.x5t_s256 = Some(self.sha256_thumbprint());
        }
        let now = unix_now();
        let claims = serde_json::json!({
            "aud": token_endpoint, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "exp": now + 600,
        });
        let key = EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).expect("a generated RSA key");
        jsonwebtoken::encode(&header, &claims, &key).expect("signing with a generated RSA key")
    }
}

/// The first PEM block whose label ends with `label` (`PRIVATE KEY` matches `RSA PRIVATE KEY` too), text included.
fn pem_block(pem: &str, label: &str) -> Option<String> {
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let name = &after[..after.find("-----")?];
        let end_marker = format!("-----END {name}-----");
        let end = start + rest[start..].find(&end_marker)? + end_marker.len();
        if name.ends_with(label) {
            return Some(format!("{}\n", &rest[start..end]));
        }
        rest = &rest[end..];
    }
    None
}

/// The public key of a certificate (PKCS#1 `RSAPublicKey` for RSA), as jsonwebtoken wants it.
pub(crate) fn certificate_public_key(der: &[u8]) -> Result<DecodingKey, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate does not parse: {e}"))?;
    Ok(DecodingKey::from_rsa_der(&cert.public_key().subject_public_key.data))
}

/// Claims of a Kubernetes service-account token projected for Entra workload identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederatedClaims {
    /// Issuer (the cluster's OIDC issuer URL).
    pub iss: String,
    /// `system:serviceaccount:NAMESPACE:NAME`.
    pub sub: String,
    /// Audience, normally [`TOKEN_EXCHANGE_AUDIENCE`].
    pub aud: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Not before, unix seconds.
    pub nbf: u64,
}

/// The mock Kubernetes cluster's service-account token issuer (an RSA key and an issuer URL).
///
/// ```
/// use std::time::Duration;
/// let issuer = azrw::cloud::ClusterIssuer::generate("https://oidc.azrw.test/cluster").unwrap();
/// let token = issuer.federated_token("system:serviceaccount:monitoring:prometheus", Duration::from_secs(3600));
/// assert_eq!(issuer.verify(&token).unwrap().sub, "system:serviceaccount:monitoring:prometheus");
/// ```
pub struct ClusterIssuer {
    issuer_url: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for ClusterIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterIssuer").field("issuer_url", &self.issuer_url).finish_non_exhaustive()
    }
}

/// Seconds since the epoch, real clock (federated tokens are files agents read with their own clock).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl ClusterIssuer {
    /// A fresh issuer with this URL.
    ///
    /// ```
    /// let issuer = azrw::cloud::ClusterIssuer::generate("https://oidc.azrw.test/cluster").unwrap();
    /// assert_eq!(issuer.issuer_url(), "https://oidc.azrw.test/cluster");
    /// ```
    pub fn generate(issuer_url: &str) -> Result<ClusterIssuer, CloudError> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| key_error("issuer key", e))?;
        let encoding =
            EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).map_err(|e| key_error("issuer key", e))?;
        let decoding = DecodingKey::from_rsa_der(key.public_key_raw());
        Ok(ClusterIssuer { issuer_url: issuer_url.to_owned(), encoding, decoding })
    }

    /// The issuer URL (`iss` of its tokens; what a [`FederatedCredential`](super::FederatedCredential) names).
    ///
    /// ```
    /// let issuer = azrw::cloud::ClusterIssuer::generate("https://x").unwrap();
    /// assert_eq!(issuer.issuer_url(), "https://x");
    /// ```
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// A service-account token for `subject` with audience `api://AzureADTokenExchange`, valid from now.
    ///
    /// ```
    /// let issuer = azrw::cloud::ClusterIssuer::generate("https://x").unwrap();
    /// let t = issuer.federated_token("system:serviceaccount:ns:sa", std::time::Duration::from_secs(60));
    /// assert_eq!(t.split('.').count(), 3);
    /// ```
    pub fn federated_token(&self, subject: &str, lifetime: Duration) -> String {
        let now = unix_now();
        self.sign(&FederatedClaims {
            iss: self.issuer_url.clone(),
            sub: subject.to_owned(),
            aud: TOKEN_EXCHANGE_AUDIENCE.to_owned(),
            exp: now + lifetime.as_secs(),
            iat: now,
            nbf: now,
        })
    }

    /// Signs arbitrary claims (RS256): for tests that need an expired or mis-addressed token.
    ///
    /// ```
    /// use azrw::cloud::{ClusterIssuer, FederatedClaims};
    /// let issuer = ClusterIssuer::generate("https://x").unwrap();
    /// let claims = FederatedClaims { iss: "https://x".into(), sub: "s".into(), aud: "a".into(), exp: 1, iat: 0, nbf: 0 };
    /// assert_eq!(issuer.verify(&issuer.sign(&claims)).unwrap(), claims);
    /// ```
    pub fn sign(&self, claims: &FederatedClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &self.encoding)
            .expect("signing with a freshly generated RSA key")
    }

    /// Checks the signature only and returns the claims; expiry and audience are the caller's to judge.
    ///
    /// ```
    /// let issuer = azrw::cloud::ClusterIssuer::generate("https://x").unwrap();
    /// assert!(issuer.verify("not.a.token").is_err());
    /// ```
    pub fn verify(&self, token: &str) -> Result<FederatedClaims, String> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<FederatedClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("signature does not verify against the cluster issuer: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificate_public_key_verifies_ps256() {
        let cert = ClientCertificate::generate("app").unwrap();
        let key = EncodingKey::from_rsa_pem(cert.key_pem().as_bytes()).unwrap();
        let claims = serde_json::json!({"sub": "x"});
        let token = jsonwebtoken::encode(&Header::new(Algorithm::PS256), &claims, &key).unwrap();
        let public = certificate_public_key(cert.der()).unwrap();
        let mut v = Validation::new(Algorithm::PS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &public, &v).unwrap();
        let other = ClientCertificate::generate("other").unwrap();
        let wrong = certificate_public_key(other.der()).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &wrong, &v).is_err());
    }

    #[test]
    fn issuer_tokens_verify_only_with_their_own_key() {
        let a = ClusterIssuer::generate("https://a").unwrap();
        let b = ClusterIssuer::generate("https://a").unwrap();
        let t = a.federated_token("system:serviceaccount:ns:sa", Duration::from_secs(60));
        assert_eq!(a.verify(&t).unwrap().aud, TOKEN_EXCHANGE_AUDIENCE);
        assert!(b.verify(&t).is_err());
    }

    #[test]
    fn each_bad_certificate_is_wrong_in_exactly_one_way() {
        use crate::scenario::BadCertificate;
        let ca = CertificateAuthority::generate().unwrap();
        let host = "login.microsoftonline.com";
        let cert = |kind| {
            let leaf = ca.bad_leaf(host, kind).unwrap();
            leaf.cert[0].to_vec()
        };
        let parse = |der: &[u8]| {
            let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
            let issuer = c.issuer().to_string();
            let san = c.subject_alternative_name().unwrap().unwrap().value.general_names[0].to_string();
            (issuer, san, c.validity().is_valid())
        };
        let (issuer, san, valid) = parse(&cert(BadCertificate::Untrusted));
        assert!(issuer.contains("azrw untrusted CA") && san.contains(host) && valid, "{issuer} {san}");
        let (issuer, san, valid) = parse(&cert(BadCertificate::WrongHost));
        assert!(issuer.contains("azrw mock cloud CA") && !san.contains(host) && valid, "{issuer} {san}");
        let (issuer, san, valid) = parse(&cert(BadCertificate::Expired));
        assert!(issuer.contains("azrw mock cloud CA") && san.contains(host) && !valid, "{issuer} {san}");
        for kind in [BadCertificate::Untrusted, BadCertificate::WrongHost, BadCertificate::Expired] {
            ca.bad_server_config(host, kind).unwrap();
        }
    }

    #[test]
    fn leaves_for_names_and_addresses() {
        let ca = CertificateAuthority::generate().unwrap();
        ca.leaf("x.metrics.ingest.monitor.azure.com").unwrap();
        ca.leaf("169.254.169.254").unwrap();
    }
}
