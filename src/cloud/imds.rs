//! The Instance Metadata Service token endpoint (`GET http://169.254.169.254/metadata/identity/oauth2/token`).

use super::State;
use super::recorder::{Detail, Principal, Service, TokenRequest};
use super::wire::{Outcome, Reply, Request, error_vars};

const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

fn error(state: &State, request: TokenRequest, name: &str, extra: &[(&str, &str)]) -> Outcome {
    let vars = error_vars();
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    let (status, body) = state.config.mocks.error(name, &all);
    Outcome {
        reply: Reply::json(status, body),
        detail: Detail::Token { request, issued: None, error: Some(name.to_owned()) },
    }
}

/// Answers one IMDS request.
/// `mint: false` judges the request without issuing a token (a fault rule answers instead).
pub(crate) fn serve(state: &State, req: &Request, mint: bool) -> Outcome {
    if req.path != TOKEN_PATH {
        let o = error(state, TokenRequest::ImdsProbe, "imds_not_found", &[("path", &req.path)]);
        return Outcome { detail: Detail::Other, ..o };
    }
    let metadata_header = req.header("Metadata").map(str::to_owned);
    // DefaultAzureCredential's availability probe: no query, no Metadata header; any quick answer will do.
    if metadata_header.is_none() && req.query.as_deref().unwrap_or("").is_empty() {
        return error(state, TokenRequest::ImdsProbe, "bad_request_102", &[]);
    }
    let api_version = req.query_param("api-version");
    let resource = req.query_param("resource");
    let client_id = req.query_param("client_id");
    let request = TokenRequest::Imds {
        api_version: api_version.clone(),
        resource: resource.clone(),
        client_id: client_id.clone(),
        metadata_header: metadata_header.clone(),
    };
    if !metadata_header.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return error(state, request, "bad_request_102", &[]);
    }
    if api_version.is_none() {
        return error(state, request, "imds_missing_parameter", &[("parameter", "api-version")]);
    }
    let Some(resource) = resource else {
        return error(state, request, "imds_missing_parameter", &[("parameter", "resource")]);
    };
    let directory = &state.config.directory;
    let principal = match &client_id {
        Some(id) if directory.user_assigned.iter().any(|u| u.eq_ignore_ascii_case(id)) => {
            Principal::UserAssigned { client_id: id.clone() }
        }
        Some(_) => return error(state, request, "imds_identity_not_found", &[]),
        None => match &directory.system_assigned {
            Some(object_id) => Principal::SystemAssigned { object_id: object_id.clone() },
            None => return error(state, request, "imds_identity_not_found", &[]),
        },
    };
    if !mint {
        return Outcome {
            reply: Reply::json(200, b"{}".to_vec()),
            detail: Detail::Token { request, issued: None, error: None },
        };
    }
    let terms = state.faults.token_terms(state.config.token_lifetime);
    let minted = state.mint.mint_with(
        &state.recorder,
        Service::Imds,
        &directory.tenant_id,
        principal.clone(),
        &resource,
        terms.lifetime,
        terms.expired,
    );
    let now = super::ca::unix_now();
    let (expires_in, expires_on, refresh_in) = super::token::lifetime_fields(&terms);
    let shown_client_id = match &principal {
        Principal::SystemAssigned { object_id } => object_id.clone(),
        Principal::UserAssigned { client_id } | Principal::App { client_id } => client_id.clone(),
    };
    // Real IMDS sends every field as a string; clients parse them leniently, and azrw checks they cope.
    let mut body = serde_json::json!({
        "access_token": minted.jwt,
        "refresh_token": "",
        "expires_in": expires_in.to_string(),
        "expires_on": expires_on.to_string(),
        "ext_expires_in": expires_in.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": shown_client_id,
    });
    if let Some(r) = refresh_in {
        body["refresh_in"] = serde_json::json!(r.to_string());
    }
    Outcome {
        reply: Reply::json(200, serde_json::to_vec(&body).expect("JSON serialises")),
        detail: Detail::Token { request, issued: Some(minted.issued.id), error: None },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::test_state;
    use super::*;

    const URL: &str =
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmonitor.azure.com%2F";

    #[test]
    fn probe_is_answered_400() {
        let state = test_state();
        let o = serve(&state, &Request::new("GET", "169.254.169.254", TOKEN_PATH), true);
        assert_eq!(o.reply.status, 400);
        assert!(matches!(o.detail, Detail::Token { request: TokenRequest::ImdsProbe, .. }));
    }

    #[test]
    fn system_assigned_token_has_string_fields() {
        let state = test_state();
        let o = serve(&state, &Request::new("GET", "169.254.169.254", URL).with_header("Metadata", "true"), true);
        assert_eq!(o.reply.status, 200, "{}", o.reply.body_str());
        let v: serde_json::Value = serde_json::from_slice(&o.reply.body).unwrap();
        for f in ["expires_in", "expires_on", "not_before", "resource", "token_type", "access_token"] {
            assert!(v[f].is_string(), "{f}");
        }
        assert_eq!(v["resource"], "https://monitor.azure.com/");
    }

    #[test]
    fn unknown_user_assigned_identity_is_400() {
        let state = test_state();
        let url = format!("{URL}&client_id=00000000-0000-0000-0000-00000000dead");
        let o = serve(&state, &Request::new("GET", "169.254.169.254", &url).with_header("Metadata", "true"), true);
        assert_eq!(o.reply.status, 400);
        assert!(o.reply.body_str().contains("Identity not found"));
    }
}
