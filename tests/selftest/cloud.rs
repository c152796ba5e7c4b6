//! The mock cloud end to end: a reqwest client that goes through the proxy (HTTP and CONNECT) and trusts the CA.

use std::sync::Arc;
use std::time::Duration;

use azrw::cloud::recorder::{Detail, EntraCredential, Principal, TokenRequest, WriteAuth};
use azrw::cloud::{
    App, ClientCertificate, CloudConfig, ClusterIssuer, DcrConfig, Directory, FederatedClaims, FederatedCredential,
    MockCloud, MockData, RoleGrant, Service, TOKEN_EXCHANGE_AUDIENCE,
};
use azrw::remote_write::{DecodedWrite, RwVersion, Sample, Series, encode};
use azrw::scenario::model::{AzureCloud, RoleScope};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SYSTEM_OID: &str = "22222222-2222-2222-2222-222222222222";
const USER_ASSIGNED: &str = "33333333-3333-3333-3333-333333333333";
const SECRET_APP: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "very-s3cret-value~abc";
const CERT_APP: &str = "44444444-4444-4444-4444-444444444444";
const FED_APP: &str = "55555555-5555-5555-5555-555555555555";
const NO_ROLE_APP: &str = "66666666-6666-6666-6666-666666666666";
const SUBJECT: &str = "system:serviceaccount:monitoring:prometheus";
const ISSUER: &str = "https://oidc.azrw.test/cluster";
const DCR_HOST: &str = "azrw-dce-1a2b.eastus-1.metrics.ingest.monitor.azure.com";
const DCR_ID: &str = "dcr-00000000000000000000000000000a2b";
const TOKEN_URL: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
const IMDS_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

struct Harness {
    cloud: MockCloud,
    client: reqwest::Client,
    cert: ClientCertificate,
    issuer: Arc<ClusterIssuer>,
}

async fn harness() -> Harness {
    let cert = ClientCertificate::generate("azrw-cert-app").unwrap();
    let issuer = Arc::new(ClusterIssuer::generate(ISSUER).unwrap());
    let app = |id: &str| App { client_id: id.into(), ..Default::default() };
    let config = CloudConfig {
        directory: Directory {
            tenant_id: TENANT.into(),
            system_assigned: Some(SYSTEM_OID.into()),
            user_assigned: vec![USER_ASSIGNED.into()],
            apps: vec![
                App { secret: Some(SECRET.into()), ..app(SECRET_APP) },
                App { certificate_der: Some(cert.der().to_vec()), ..app(CERT_APP) },
                App {
                    federated: vec![FederatedCredential {
                        issuer: ISSUER.into(),
                        subject: SUBJECT.into(),
                        audience: TOKEN_EXCHANGE_AUDIENCE.into(),
                    }],
                    ..app(FED_APP)
                },
                App { secret: Some(SECRET.into()), ..app(NO_ROLE_APP) },
            ],
        },
        roles: vec![
            RoleGrant { principal: Principal::SystemAssigned { object_id: SYSTEM_OID.into() }, scope: RoleScope::Dcr },
            RoleGrant { principal: Principal::App { client_id: SECRET_APP.into() }, scope: RoleScope::Dcr },
            RoleGrant { principal: Principal::App { client_id: CERT_APP.into() }, scope: RoleScope::Dcr },
            RoleGrant { principal: Principal::App { client_id: FED_APP.into() }, scope: RoleScope::Dcr },
            // The classic mistake: the role on the workspace, not the DCR.
            RoleGrant { principal: Principal::App { client_id: NO_ROLE_APP.into() }, scope: RoleScope::Workspace },
        ],
        dcr: DcrConfig {
            host: DCR_HOST.into(),
            dcr_id: DCR_ID.into(),
            cloud: AzureCloud::AzurePublic,
            refuse_rw2: false,
        },
        token_lifetime: Duration::from_secs(3600),
        mocks: MockData::embedded(),
        faults: Default::default(),
        receivers: Vec::new(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cloud = MockCloud::start(config, listener, Some(issuer.clone())).await.unwrap();
    let ca = reqwest::Certificate::from_pem(cloud.ca_pem().as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(cloud.proxy_url()).unwrap())
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(20));
    // Belt and braces: even if proxying were bypassed, these names resolve to the mock, never to the internet.
    for host in ["login.microsoftonline.com", DCR_HOST, "example.com", "169.254.169.254"] {
        builder = builder.resolve(host, cloud.proxy_addr());
    }
    Harness { cloud, client: builder.build().unwrap(), cert, issuer }
}

impl Harness {
    async fn imds(&self, query: &str, metadata: bool) -> reqwest::Response {
        let mut req = self.client.get(format!("{IMDS_URL}{query}"));
        if metadata {
            req = req.header("Metadata", "true");
        }
        req.send().await.unwrap()
    }

    async fn entra_token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = self
            .client
            .post(TOKEN_URL)
            .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn secret_token(&self, client_id: &str, secret: &str) -> (u16, Value) {
        self.entra_token(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "https://monitor.azure.com//.default openid offline_access profile"),
        ])
        .await
    }

    async fn assertion_token(&self, client_id: &str, assertion: &str) -> (u16, Value) {
        self.entra_token(&[
            ("client_id", client_id),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
            ("client_info", "1"),
            ("grant_type", "client_credentials"),
            ("scope", "https://monitor.azure.com//.default openid offline_access profile"),
        ])
        .await
    }

    async fn write(&self, token: Option<&str>, version: RwVersion) -> reqwest::Response {
        let write = DecodedWrite {
            series: vec![Series {
                labels: vec![("__name__".into(), "up".into()), ("cluster".into(), "aks11".into())],
                samples: vec![Sample { timestamp: 1_700_000_000_000, value: 1.0 }],
                histograms: vec![],
                exemplars: vec![],
            }],
            ..Default::default()
        };
        let content_type = match version {
            RwVersion::V1 => "application/x-protobuf",
            RwVersion::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        };
        let mut req = self
            .client
            .post(self.cloud.ingestion_url())
            .header("Content-Type", content_type)
            .header("Content-Encoding", "snappy")
            .body(encode(&write, version));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn cert_assertion(key_pem: &str, thumbprint: &str, exp_offset: i64) -> String {
    let mut header = Header::new(Algorithm::PS256);
    header.x5t_s256 = Some(thumbprint.to_owned());
    let n = now();
    let claims = serde_json::json!({
        "aud": TOKEN_URL, "iss": CERT_APP, "sub": CERT_APP, "jti": "1",
        "nbf": n, "exp": (n as i64 + exp_offset) as u64,
    });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap()).unwrap()
}

#[tokio::test]
async fn imds_issues_tokens_with_string_fields() {
    let h = harness().await;
    let resp = h.imds("?api-version=2018-02-01&resource=https%3A%2F%2Fmonitor.azure.com%2F", true).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    for field in ["access_token", "refresh_token", "expires_in", "expires_on", "not_before", "resource", "token_type"] {
        assert!(body[field].is_string(), "{field} must be a string: {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    let exchanges = h.cloud.recorder().exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].service, Service::Imds);
    assert!(!exchanges[0].tls);
    assert!(matches!(exchanges[0].detail, Detail::Token { issued: Some(_), .. }));
    assert_eq!(h.cloud.recorder().tokens()[0].principal, Principal::SystemAssigned { object_id: SYSTEM_OID.into() });

    // A token for the system identity is accepted by the DCR.
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(h.write(Some(token), RwVersion::V1).await.status(), 200);
    h.cloud.shutdown().await;
}

#[tokio::test]
async fn imds_without_metadata_header_is_400_and_recorded() {
    let h = harness().await;
    let resp = h.imds("?api-version=2018-02-01&resource=https%3A%2F%2Fmonitor.azure.com%2F", false).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("bad_request_102"));
    let ex = &h.cloud.recorder().exchanges()[0];
    match &ex.detail {
        Detail::Token { request: TokenRequest::Imds { metadata_header, .. }, error, .. } => {
            assert_eq!(metadata_header, &None);
            assert_eq!(error.as_deref(), Some("bad_request_102"));
        }
        other => panic!("unexpected detail {other:?}"),
    }
    // The DefaultAzureCredential probe: no query, no header.
    assert_eq!(h.imds("", false).await.status(), 400);
    assert!(matches!(h.cloud.recorder().exchanges()[1].detail, Detail::Token { request: TokenRequest::ImdsProbe, .. }));
}

#[tokio::test]
async fn entra_discovery_documents() {
    let h = harness().await;
    let url = format!("https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration?");
    let doc: Value = h.client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["token_endpoint"], TOKEN_URL);
    assert_eq!(doc["issuer"], format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    let url = format!(
        "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.chinacloudapi.cn/{TENANT}/oauth2/v2.0/authorize"
    );
    let doc: Value = h.client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        doc["tenant_discovery_endpoint"],
        format!("https://login.chinacloudapi.cn/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    let ex = h.cloud.recorder().exchanges();
    assert!(ex.iter().all(|e| e.tls && e.service == Service::Entra && e.status == 200));
}

#[tokio::test]
async fn client_secret_flow_and_wrong_secret() {
    let h = harness().await;
    let (status, body) = h.secret_token(SECRET_APP, SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["expires_in"].is_number() && body.get("scope").is_none());
    assert_eq!(h.cloud.recorder().tokens()[0].audience, "https://monitor.azure.com/");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let (status, body) = h.secret_token(SECRET_APP, "wrong-secret-xyz").await;
    assert_eq!(status, 401);
    assert!(body["error_description"].as_str().unwrap().contains("AADSTS7000215"));
    assert!(matches!(
        h.cloud.recorder().exchanges()[1].detail,
        Detail::Token {
            request: TokenRequest::Entra { credential: EntraCredential::ClientSecret { matches: false }, .. },
            ..
        }
    ));

    // A valid write, then check nothing secret was recorded anywhere.
    assert_eq!(h.write(Some(&token), RwVersion::V1).await.status(), 200);
    let recorded = format!("{:?}", h.cloud.recorder().exchanges());
    for secret in [SECRET, "wrong-secret-xyz", token.as_str()] {
        assert!(!recorded.contains(secret), "recorder leaked a secret");
    }
    assert!(recorded.contains("Bearer [token #1]"), "{recorded}");
}

#[tokio::test]
async fn certificate_assertion_accepted_and_wrong_key_refused() {
    let h = harness().await;
    let good = cert_assertion(h.cert.key_pem(), &h.cert.sha256_thumbprint(), 600);
    let (status, body) = h.assertion_token(CERT_APP, &good).await;
    assert_eq!(status, 200, "{body}");

    let other = ClientCertificate::generate("impostor").unwrap();
    let forged = cert_assertion(other.key_pem(), &h.cert.sha256_thumbprint(), 600);
    let (status, body) = h.assertion_token(CERT_APP, &forged).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("AADSTS700027"));

    let expired = cert_assertion(h.cert.key_pem(), &h.cert.sha256_thumbprint(), -60);
    let (status, body) = h.assertion_token(CERT_APP, &expired).await;
    assert_eq!(status, 400);
    assert!(body["error_description"].as_str().unwrap().contains("AADSTS700024"));

    let ex = h.cloud.recorder().exchanges();
    match &ex[1].detail {
        Detail::Token { request: TokenRequest::Entra { credential, .. }, .. } => assert!(matches!(
            credential,
            EntraCredential::Certificate { signature_valid: false, thumbprint_header: Some(h), .. } if h == "x5t#S256"
        )),
        other => panic!("{other:?}"),
    }
    let recorded = format!("{:?}", ex);
    assert!(!recorded.contains(&good) && !recorded.contains(&forged));
}

#[tokio::test]
async fn federated_assertion_accepted_expired_or_wrong_subject_refused() {
    let h = harness().await;
    let good = h.issuer.federated_token(SUBJECT, Duration::from_secs(3600));
    let (status, body) = h.assertion_token(FED_APP, &good).await;
    assert_eq!(status, 200, "{body}");

    let n = now();
    let claims = |sub: &str, exp: u64| FederatedClaims {
        iss: ISSUER.into(),
        sub: sub.into(),
        aud: TOKEN_EXCHANGE_AUDIENCE.into(),
        exp,
        iat: n - 7200,
        nbf: n - 7200,
    };
    let (status, body) = h.assertion_token(FED_APP, &h.issuer.sign(&claims(SUBJECT, n - 60))).await;
    assert_eq!(status, 400);
    assert!(body["error_description"].as_str().unwrap().contains("AADSTS700024"), "{body}");

    let wrong = h.issuer.sign(&claims("system:serviceaccount:default:other", n + 600));
    let (status, body) = h.assertion_token(FED_APP, &wrong).await;
    assert_eq!(status, 400);
    assert!(body["error_description"].as_str().unwrap().contains("AADSTS70021"), "{body}");

    let foreign = ClusterIssuer::generate(ISSUER).unwrap().federated_token(SUBJECT, Duration::from_secs(600));
    let (status, _) = h.assertion_token(FED_APP, &foreign).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn dcr_accepts_records_and_refuses() {
    let h = harness().await;
    let (_, body) = h.secret_token(SECRET_APP, SECRET).await;
    let token = body["access_token"].as_str().unwrap().to_owned();

    let resp = h.write(Some(&token), RwVersion::V1).await;
    assert_eq!(resp.status(), 200);
    let resp = h.write(Some(&token), RwVersion::V2).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-prometheus-remote-write-samples-written"], "1");

    let ex = h.cloud.recorder().exchanges();
    let write = ex.iter().find(|e| e.service == Service::Dcr).unwrap();
    assert!(write.tls);
    match &write.detail {
        Detail::Write { auth: WriteAuth::Token { problem: None, .. }, body: Ok(w) } => {
            assert_eq!(w.series[0].label("cluster"), Some("aks11"));
        }
        other => panic!("{other:?}"),
    }

    // Role on the workspace only → 403 naming the DCR; the body is still decoded.
    let (_, body) = h.secret_token(NO_ROLE_APP, SECRET).await;
    let resp = h.write(Some(body["access_token"].as_str().unwrap()), RwVersion::V1).await;
    assert_eq!(resp.status(), 403);
    let text = resp.text().await.unwrap();
    assert!(text.contains("OperationFailed") && text.contains(DCR_ID), "{text}");
    let last = h.cloud.recorder().exchanges().pop().unwrap();
    assert!(matches!(last.detail, Detail::Write { auth: WriteAuth::Token { problem: Some(_), .. }, body: Ok(_) }));

    // Wrong audience: an IMDS token for the US government cloud.
    let imds: Value =
        h.imds("?api-version=2018-02-01&resource=https%3A%2F%2Fmonitor.azure.us%2F", true).await.json().await.unwrap();
    let resp = h.write(imds["access_token"].as_str(), RwVersion::V1).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("InvalidAudience"));

    // No token, and a token from another mock cloud.
    assert_eq!(h.write(None, RwVersion::V1).await.status(), 401);
    let other = harness().await;
    let (_, body) = other.secret_token(SECRET_APP, SECRET).await;
    let resp = h.write(body["access_token"].as_str(), RwVersion::V1).await;
    assert_eq!(resp.status(), 401);
    let last = h.cloud.recorder().exchanges().pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer [unrecognised token]"));
    assert!(matches!(last.detail, Detail::Write { auth: WriteAuth::Invalid { .. }, .. }));
}

#[tokio::test]
async fn unrouted_hosts_get_502_and_are_recorded() {
    let h = harness().await;
    let resp = h.client.get("http://example.com/").send().await.unwrap();
    assert_eq!(resp.status(), 502);
    // HTTPS to an unknown host: the CONNECT itself is refused.
    assert!(h.client.get("https://example.com/").send().await.is_err());
    let ex = h.cloud.recorder().exchanges();
    assert_eq!(ex.len(), 2);
    assert!(ex.iter().all(|e| e.service == Service::Unrouted && e.status == 502 && e.host == "example.com"));
    assert_eq!(ex[1].method, "CONNECT");
}
