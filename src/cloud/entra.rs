//! Entra ID for one cloud: OpenID discovery, MSAL instance discovery and the client-credentials token endpoint
//! (client secret, certificate assertion, federated workload-identity assertion).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sha1::Digest as _;

use super::State;
use super::ca::{certificate_public_key, unix_now};
use super::recorder::{Detail, EntraCredential, Principal, Service, TokenRequest};
use super::wire::{Outcome, Reply, Request, error_vars};
use crate::scenario::model::AzureCloud;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn error(state: &State, cloud: AzureCloud, request: TokenRequest, name: &str, extra: &[(&str, &str)]) -> Outcome {
    let vars = error_vars();
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.push(("authority_host", cloud.authority_host()));
    all.extend_from_slice(extra);
    let (status, body) = state.config.mocks.error(name, &all);
    Outcome {
        reply: Reply::json(status, body),
        detail: Detail::Token { request, issued: None, error: Some(name.to_owned()) },
    }
}

/// Answers one request to this cloud's authority host. `mint: false` judges a token request without issuing.
pub(crate) fn serve(state: &State, cloud: AzureCloud, req: &Request, mint: bool) -> Outcome {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => discovery(state, cloud, tenant),
        ("GET", ["common", "discovery", "instance"]) => instance_discovery(state, cloud, req),
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => token(state, cloud, tenant, req, mint),
        _ => {
            let o = error(state, cloud, TokenRequest::InstanceDiscovery, "entra_not_found", &[("path", &req.path)]);
            Outcome { detail: Detail::Other, ..o }
        }
    }
}

fn discovery(state: &State, cloud: AzureCloud, tenant: &str) -> Outcome {
    let request = TokenRequest::Discovery { tenant: tenant.to_owned() };
    if !tenant.eq_ignore_ascii_case(&state.config.directory.tenant_id) {
        return error(state, cloud, request, "AADSTS90002", &[("tenant", tenant)]);
    }
    let mut vars = vec![("authority_host", cloud.authority_host()), ("tenant", tenant)];
    // What differs between the real clouds' documents (issuer host, instance name, Graph hosts …): mocks/entra.
    vars.extend(state.config.mocks.cloud_fields(cloud));
    let body = state.config.mocks.openid_configuration(&vars);
    Outcome { reply: Reply::json(200, body), detail: Detail::Token { request, issued: None, error: None } }
}

fn instance_discovery(state: &State, cloud: AzureCloud, req: &Request) -> Outcome {
    // MSAL asks about the authority it wants to use; answer for that host and tenant.
    let endpoint = req.query_param("authorization_endpoint").and_then(|e| url::Url::parse(&e).ok());
    let host = endpoint.as_ref().and_then(|u| u.host_str().map(str::to_owned));
    let tenant = endpoint
        .as_ref()
        .and_then(|u| u.path_segments().and_then(|mut s| s.next().map(str::to_owned)))
        .unwrap_or_else(|| "common".to_owned());
    let body = state.config.mocks.instance_discovery(&[
        ("authority_host", host.as_deref().unwrap_or(cloud.authority_host())),
        ("tenant", &tenant),
    ]);
    Outcome {
        reply: Reply::json(200, body),
        detail: Detail::Token { request: TokenRequest::InstanceDiscovery, issued: None, error: None },
    }
}

/// Resources the mock Entra will issue tokens for (any cloud: the DCR judges the audience, not Entra).
fn known_resource(audience: &str) -> bool {
    let base = audience.trim_end_matches('/');
    AzureCloud::ALL.iter().any(|c| {
        let ingest = c.ingestion_audience().trim_end_matches('/');
        base.eq_ignore_ascii_case(ingest)
            || base.eq_ignore_ascii_case(&ingest.replace("https://", "https://prometheus."))
    })
}

#[derive(Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
}

/// `aud` may be a string or a one-element array.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    })
}

fn unverified_claims(jwt: &str) -> Option<AssertionClaims> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Thumbprints are base64url in JWT headers; accept the standard alphabet too (a finding, not a failure).
fn decode_thumbprint(value: &str) -> Option<Vec<u8>> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD].iter().find_map(|e| e.decode(value).ok())
}

/// Why a credential is refused: the AADSTS error name and a reason for the template.
type Refusal = (&'static str, String);

fn judge_certificate(
    app: Option<&super::App>,
    header: &jsonwebtoken::Header,
    assertion: &str,
    client_id: &str,
    token_endpoint: &str,
) -> (EntraCredential, Option<Refusal>) {
    let (thumbprint_header, thumbprint, sha256) = match (&header.x5t_s256, &header.x5t) {
        (Some(t), _) => ("x5t#S256", t, true),
        (None, Some(t)) => ("x5t", t, false),
        (None, None) => unreachable!("called only with a thumbprint header"),
    };
    let alg = format!("{:?}", header.alg);
    let mut claim_errors = Vec::new();
    let mut signature_valid = false;
    let cert = app.and_then(|a| a.certificate_der.as_deref());
    let mut refusal: Option<Refusal> = None;
    match cert {
        None => refusal = Some(("AADSTS700027", "The key was not found: the app has no certificate".into())),
        Some(der) => {
            let expected = if sha256 { sha2::Sha256::digest(der).to_vec() } else { sha1::Sha1::digest(der).to_vec() };
            if decode_thumbprint(thumbprint).as_deref() != Some(expected.as_slice()) {
                refusal = Some((
                    "AADSTS700027",
                    format!("The key was not found. Thumbprint of key used by client: '{thumbprint}'"),
                ));
            } else if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
                refusal = Some(("AADSTS700027", format!("alg {alg} is not RS256 or PS256")));
            } else {
                let mut v = Validation::new(header.alg);
                v.validate_exp = false;
                v.validate_aud = false;
                v.required_spec_claims.clear();
                match certificate_public_key(der).and_then(|k| {
                    jsonwebtoken::decode::<serde_json::Value>(assertion, &k, &v).map_err(|e| e.to_string())
                }) {
                    Ok(_) => signature_valid = true,
                    Err(e) => refusal = Some(("AADSTS700027", format!("signature does not verify: {e}"))),
                }
            }
        }
    }
    let claims = unverified_claims(assertion);
    match claims {
        None => claim_errors.push("claims are not a JSON object".to_owned()),
        Some(c) => {
            if c.aud.as_deref() != Some(token_endpoint) {
                claim_errors.push(format!("aud is {:?}, expected {token_endpoint:?}", c.aud));
            }
            if c.iss.as_deref() != Some(client_id) {
                claim_errors.push(format!("iss is {:?}, expected the client id", c.iss));
            }
            if c.sub.as_deref() != Some(client_id) {
                claim_errors.push(format!("sub is {:?}, expected the client id", c.sub));
            }
            match c.exp {
                Some(exp) if exp > unix_now() => {}
                Some(exp) => claim_errors.push(format!("expired (exp {exp})")),
                None => claim_errors.push("exp is missing".to_owned()),
            }
        }
    }
    if refusal.is_none() && !claim_errors.is_empty() {
        let name = if claim_errors.iter().any(|e| e.starts_with("expired")) { "AADSTS700024" } else { "AADSTS50027" };
        refusal = Some((name, claim_errors.join("; ")));
    }
    let credential = EntraCredential::Certificate {
        alg,
        thumbprint_header: Some(thumbprint_header.to_owned()),
        signature_valid,
        claim_errors,
    };
    (credential, refusal)
}

fn judge_federated(state: &State, app: Option<&super::App>, assertion: &str) -> (EntraCredential, Option<Refusal>) {
    let unverified = unverified_claims(assertion);
    let (issuer, subject, audience, exp) = match &unverified {
        Some(c) => (c.iss.clone(), c.sub.clone(), c.aud.clone(), c.exp),
        None => (None, None, None, None),
    };
    let mut claim_errors = Vec::new();
    let signature = match &state.cluster_issuer {
        Some(ci) => ci.verify(assertion).map(|_| ()),
        None => Err("no cluster issuer is configured in this mock cloud".to_owned()),
    };
    let signature_valid = signature.is_ok();
    let mut refusal: Option<Refusal> = None;
    if let Err(e) = signature {
        refusal = Some(("AADSTS50027", e));
    }
    let matched = app.is_some_and(|a| {
        a.federated.iter().any(|f| {
            Some(&f.issuer) == issuer.as_ref()
                && Some(&f.subject) == subject.as_ref()
                && Some(&f.audience) == audience.as_ref()
        })
    });
    if !matched {
        claim_errors.push("no federated credential of the app matches iss/sub/aud".to_owned());
        refusal = refusal.or(Some(("AADSTS70021", String::new())));
    }
    match exp {
        Some(exp) if exp > unix_now() => {}
        Some(exp) => {
            claim_errors.push(format!("expired (exp {exp})"));
            refusal = refusal.or(Some(("AADSTS700024", String::new())));
        }
        None => {
            claim_errors.push("exp is missing".to_owned());
            refusal = refusal.or(Some(("AADSTS50027", "exp is missing".into())));
        }
    }
    (EntraCredential::Federated { issuer, subject, audience, signature_valid, claim_errors }, refusal)
}

fn token(state: &State, cloud: AzureCloud, tenant: &str, req: &Request, mint: bool) -> Outcome {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let grant_type = field("grant_type");
    let client_id = field("client_id");
    let scope = field("scope");
    let directory = &state.config.directory;
    let app = client_id.as_deref().and_then(|id| directory.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(id)));
    let token_endpoint = format!("https://{}/{tenant}/oauth2/v2.0/token", cloud.authority_host());

    let (credential, refusal) = match (field("client_secret"), field("client_assertion")) {
        (Some(secret), _) => {
            let matches = app.and_then(|a| a.secret.as_deref()) == Some(secret.as_str());
            let refusal = (!matches).then(|| ("AADSTS7000215", String::new()));
            (EntraCredential::ClientSecret { matches }, refusal)
        }
        (None, Some(assertion)) => match jsonwebtoken::decode_header(&assertion) {
            Err(e) => (
                EntraCredential::Federated {
                    issuer: None,
                    subject: None,
                    audience: None,
                    signature_valid: false,
                    claim_errors: vec![format!("not a JWT: {e}")],
                },
                Some(("AADSTS50027", format!("client_assertion is not a JWT: {e}"))),
            ),
            Ok(header) if header.x5t.is_some() || header.x5t_s256.is_some() => {
                judge_certificate(app, &header, &assertion, client_id.as_deref().unwrap_or_default(), &token_endpoint)
            }
            Ok(_) => judge_federated(state, app, &assertion),
        },
        (None, None) => (EntraCredential::Missing, Some(("AADSTS7000216", String::new()))),
    };
    let assertion_type_ok =
        field("client_assertion").is_none() || field("client_assertion_type").as_deref() == Some(JWT_BEARER);
    let request = TokenRequest::Entra {
        tenant: tenant.to_owned(),
        grant_type: grant_type.clone(),
        client_id: client_id.clone(),
        scope: scope.clone(),
        credential: credential.clone(),
    };
    let client = client_id.clone().unwrap_or_default();
    if !tenant.eq_ignore_ascii_case(&directory.tenant_id) {
        return error(state, cloud, request, "AADSTS90002", &[("tenant", tenant)]);
    }
    let Some(app) = app else {
        return error(state, cloud, request, "AADSTS700016", &[("client_id", &client), ("tenant", tenant)]);
    };
    if grant_type.as_deref() != Some("client_credentials") {
        return error(state, cloud, request, "AADSTS70003", &[("grant_type", grant_type.as_deref().unwrap_or(""))]);
    }
    if !assertion_type_ok {
        return error(state, cloud, request, "AADSTS50027", &[("reason", "client_assertion_type must be jwt-bearer")]);
    }
    if let Some((name, reason)) = refusal {
        let (iss, sub, aud) = match &credential {
            EntraCredential::Federated { issuer, subject, audience, .. } => {
                (issuer.clone(), subject.clone(), audience.clone())
            }
            _ => (None, None, None),
        };
        return error(
            state,
            cloud,
            request,
            name,
            &[
                ("client_id", &client),
                ("tenant", tenant),
                ("reason", &reason),
                ("issuer", iss.as_deref().unwrap_or("")),
                ("subject", sub.as_deref().unwrap_or("")),
                ("audience", aud.as_deref().unwrap_or("")),
            ],
        );
    }
    let scope_text = scope.clone().unwrap_or_default();
    let Some(audience) = scope_text.split_whitespace().find_map(|s| s.strip_suffix("/.default")) else {
        return error(state, cloud, request, "AADSTS1002012", &[("scope", &scope_text)]);
    };
    if !known_resource(audience) {
        return error(state, cloud, request, "AADSTS500011", &[("resource", audience), ("tenant", tenant)]);
    }
    if !mint {
        return Outcome {
            reply: Reply::json(200, b"{}".to_vec()),
            detail: Detail::Token { request, issued: None, error: None },
        };
    }
    let terms = state.faults.token_terms(state.config.token_lifetime);
    let principal = Principal::App { client_id: app.client_id.clone() };
    let minted = state.mint.mint_with(
        &state.recorder,
        Service::Entra,
        &directory.tenant_id,
        principal,
        audience,
        terms.lifetime,
        terms.expired,
    );
    let (expires_in, _, refresh_in) = super::token::lifetime_fields(&terms);
    let mut body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": minted.jwt,
    });
    if let Some(r) = refresh_in {
        body["refresh_in"] = serde_json::json!(r);
    }
    Outcome {
        reply: Reply::json(200, serde_json::to_vec(&body).expect("JSON serialises")),
        detail: Detail::Token { request, issued: Some(minted.issued.id), error: None },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{APP, SECRET, TENANT, test_state};
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    #[test]
    fn audience_is_scope_minus_default() {
        let state = test_state();
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", "https://monitor.azure.com//.default openid offline_access profile"),
        ]);
        let req =
            Request::new("POST", "login.microsoftonline.com", &format!("/{TENANT}/oauth2/v2.0/token")).with_body(body);
        let o = serve(&state, AzureCloud::AzurePublic, &req, true);
        assert_eq!(o.reply.status, 200, "{}", o.reply.body_str());
        assert_eq!(state.recorder.tokens()[0].audience, "https://monitor.azure.com/");
        let v: serde_json::Value = serde_json::from_slice(&o.reply.body).unwrap();
        assert!(v["expires_in"].is_number() && v.get("scope").is_none());
    }

    #[test]
    fn unknown_tenant_and_app() {
        let state = test_state();
        let body = form(&[("grant_type", "client_credentials"), ("client_id", "nope"), ("client_secret", "x")]);
        let req = Request::new("POST", "login.microsoftonline.com", "/other/oauth2/v2.0/token").with_body(body.clone());
        assert!(serve(&state, AzureCloud::AzurePublic, &req, true).reply.body_str().contains("AADSTS90002"));
        let req =
            Request::new("POST", "login.microsoftonline.com", &format!("/{TENANT}/oauth2/v2.0/token")).with_body(body);
        assert!(serve(&state, AzureCloud::AzurePublic, &req, true).reply.body_str().contains("AADSTS700016"));
    }

    /// Each cloud's document as the real one reads (mocks/README.md names the sources): issuer, token endpoint,
    /// instance name and Graph host differ per cloud, and MSAL ≥ 1.5 checks the issuer's host.
    #[test]
    fn each_cloud_serves_its_own_discovery_document() {
        let state = test_state();
        let cases = [
            (
                AzureCloud::AzurePublic,
                "login.microsoftonline.com",
                "login.microsoftonline.com",
                "microsoftonline.com",
                "graph.microsoft.com",
                "NA",
            ),
            (
                AzureCloud::AzureGovernment,
                "login.microsoftonline.us",
                "login.microsoftonline.us",
                "microsoftonline.us",
                "graph.microsoft.us",
                "USGov",
            ),
            (
                AzureCloud::AzureChina,
                "login.chinacloudapi.cn",
                "login.partner.microsoftonline.cn",
                "partner.microsoftonline.cn",
                "microsoftgraph.chinacloudapi.cn",
                "AS",
            ),
        ];
        for (cloud, host, issuer_host, instance, graph, region) in cases {
            let req = Request::new("GET", host, &format!("/{TENANT}/v2.0/.well-known/openid-configuration"));
            let o = serve(&state, cloud, &req, true);
            assert_eq!(o.reply.status, 200, "{cloud}: {}", o.reply.body_str());
            let v: serde_json::Value = serde_json::from_slice(&o.reply.body).unwrap();
            assert_eq!(v["issuer"], format!("https://{issuer_host}/{TENANT}/v2.0"), "{cloud}");
            assert_eq!(v["token_endpoint"], format!("https://{host}/{TENANT}/oauth2/v2.0/token"), "{cloud}");
            assert_eq!(
                v["authorization_endpoint"],
                format!("https://{host}/{TENANT}/oauth2/v2.0/authorize"),
                "{cloud}"
            );
            assert_eq!(v["jwks_uri"], format!("https://{host}/{TENANT}/discovery/v2.0/keys"), "{cloud}");
            assert_eq!(v["cloud_instance_name"], instance, "{cloud}");
            assert_eq!(v["msgraph_host"], graph, "{cloud}");
            assert_eq!(v["tenant_region_scope"], region, "{cloud}");
            let body = o.reply.body_str();
            assert!(
                !body.contains("{tenant}") && !body.contains("_host}") && !body.contains("_scope}"),
                "{cloud}: {body}"
            );
        }
    }

    #[test]
    fn instance_discovery_names_every_clouds_aliases() {
        let state = test_state();
        let path = "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.chinacloudapi.cn/t/oauth2/v2.0/authorize";
        let req = Request::new("GET", "login.microsoftonline.com", path);
        let o = serve(&state, AzureCloud::AzurePublic, &req, true);
        let v: serde_json::Value = serde_json::from_slice(&o.reply.body).unwrap();
        assert_eq!(
            v["tenant_discovery_endpoint"],
            "https://login.chinacloudapi.cn/t/v2.0/.well-known/openid-configuration"
        );
        let aliases: Vec<&str> = v["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["aliases"].as_array().unwrap())
            .filter_map(|a| a.as_str())
            .collect();
        for host in [
            "login.microsoftonline.com",
            "login.microsoftonline.us",
            "login.chinacloudapi.cn",
            "login.partner.microsoftonline.cn",
        ] {
            assert!(aliases.contains(&host), "{host} missing from {aliases:?}");
        }
    }
}
