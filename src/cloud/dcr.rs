//! The DCR ingestion endpoint: decodes every remote-write body, judges the bearer token and the role assignment.

use super::State;
use super::recorder::{Detail, IssuedToken, WriteAuth};
use super::wire::{Outcome, Reply, Request, error_vars};
use crate::remote_write::{self, RwVersion};
use crate::scenario::model::RoleScope;

/// The only stream a Prometheus DCR has.
const STREAM_SUFFIX: &str = "/streams/Microsoft-PrometheusMetrics/api/v1/write";

/// The ARM id shown in the 403 body (a fixed, obviously fake subscription).
fn dcr_arm_id(dcr_id: &str) -> String {
    format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azrw/providers/Microsoft.Insights/dataCollectionRules/{dcr_id}"
    )
}

/// How the DCR judged a request's token, with the error to answer when refused.
struct Judgement {
    auth: WriteAuth,
    refusal: Option<(&'static str, Vec<(&'static str, String)>)>,
}

fn judge(state: &State, authorization: Option<&str>) -> Judgement {
    let Some(value) = authorization else {
        return Judgement { auth: WriteAuth::Missing, refusal: Some(("dcr_missing_token", vec![])) };
    };
    let invalid = |reason: String| Judgement {
        auth: WriteAuth::Invalid { reason: reason.clone() },
        refusal: Some(("dcr_invalid_token", vec![("reason", reason)])),
    };
    let Some(jwt) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
        return invalid("the Authorization header is not a Bearer token".into());
    };
    let token = match state.mint.recognise(&state.recorder, jwt.trim()) {
        Ok(t) => t,
        Err(reason) => return invalid(reason),
    };
    let (problem, refusal) = problem_with(state, &token);
    Judgement { auth: WriteAuth::Token { id: token.id, problem }, refusal }
}

type Refusal = (&'static str, Vec<(&'static str, String)>);

fn problem_with(state: &State, token: &IssuedToken) -> (Option<String>, Option<Refusal>) {
    let now = state.recorder.now();
    if let Some(problem) = state.faults.revoked(token, now) {
        let vars = vec![("reason", format!("{} was {problem}", token.id))];
        return (Some(problem), Some(("dcr_invalid_token", vars)));
    }
    if now >= token.expires_at {
        let problem = format!("expired {:.1}s ago", (now - token.expires_at).as_secs_f64());
        let vars = vec![
            ("expired_at", format!("{:?} after start", token.expires_at)),
            ("now", format!("{now:?} after start")),
        ];
        return (Some(problem), Some(("dcr_expired_token", vars)));
    }
    let expected = state.config.dcr.cloud.ingestion_audience();
    if token.audience.trim_end_matches('/') != expected.trim_end_matches('/') {
        let problem = format!("wrong audience {:?} (expected {expected:?})", token.audience);
        let vars = vec![("audience", token.audience.clone()), ("expected_audience", expected.to_owned())];
        return (Some(problem), Some(("dcr_invalid_audience", vars)));
    }
    let granted = state.config.roles.iter().any(|g| g.scope == RoleScope::Dcr && g.principal == token.principal);
    if !granted {
        let problem = format!("{} lacks Monitoring Metrics Publisher on the DCR", token.principal.describe());
        let principal = match &token.principal {
            super::recorder::Principal::SystemAssigned { object_id } => object_id.clone(),
            super::recorder::Principal::UserAssigned { client_id } | super::recorder::Principal::App { client_id } => {
                client_id.clone()
            }
        };
        return (
            Some(problem),
            Some(("dcr_forbidden", vec![("principal", principal), ("tenant", token.tenant.clone())])),
        );
    }
    (None, None)
}

/// Azure refuses a series that breaks its label limits. The docs say such a sample is dropped; the mock answers
/// the whole request 400 with a body naming the series, so a sender's log (and the harness) shows which one.
fn limit_refusal(write: Option<&remote_write::DecodedWrite>) -> Option<Refusal> {
    write?.series.iter().find_map(|s| {
        let violation = remote_write::limits::violation(s)?;
        Some(("dcr_label_limit", vec![("series", remote_write::limits::short_describe(s)), ("violation", violation)]))
    })
}

/// Answers one request to the DCR host.
pub(crate) fn serve(state: &State, req: &Request) -> Outcome {
    let dcr = &state.config.dcr;
    let expected_path = format!("/dataCollectionRules/{}{STREAM_SUFFIX}", dcr.dcr_id);
    let routed = req.method == "POST" && req.path == expected_path && req.host.eq_ignore_ascii_case(&dcr.host);
    // Decode even when refusing: evidence can then name the samples the agent dropped.
    let content_type = req.header("content-type");
    let body = remote_write::decode(&req.body, content_type).map_err(|e| e.0);
    let judgement = judge(state, req.header("authorization"));

    let refusal: Option<Refusal> = if !routed {
        Some(("dcr_not_found", vec![("path", req.path.clone())]))
    } else if judgement.refusal.is_some() {
        judgement.refusal
    } else if dcr.refuse_rw2 && remote_write::version_of(content_type) == RwVersion::V2 {
        Some(("dcr_unsupported_media_type", vec![("content_type", content_type.unwrap_or_default().to_owned())]))
    } else if let Err(reason) = &body {
        Some(("dcr_bad_request", vec![("reason", reason.clone())]))
    } else {
        limit_refusal(body.as_ref().ok())
    };
    let reply = match refusal {
        Some((name, vars)) => {
            let common = error_vars();
            let arm = dcr_arm_id(&dcr.dcr_id);
            let mut all: Vec<(&str, &str)> = common.iter().map(|(k, v)| (*k, v.as_str())).collect();
            all.push(("dcr_id", &dcr.dcr_id));
            all.push(("dcr_arm_id", &arm));
            all.extend(vars.iter().map(|(k, v)| (*k, v.as_str())));
            let (status, body) = state.config.mocks.error(name, &all);
            Reply::json(status, body)
        }
        None => {
            let mut reply = Reply { status: 200, headers: Vec::new(), body: Vec::new() };
            if let Ok(write) = &body
                && remote_write::version_of(content_type) == RwVersion::V2
            {
                let histograms = write.histogram_count();
                let exemplars = write.exemplar_count();
                reply.headers = vec![
                    ("X-Prometheus-Remote-Write-Samples-Written".into(), write.sample_count().to_string()),
                    ("X-Prometheus-Remote-Write-Histograms-Written".into(), histograms.to_string()),
                    ("X-Prometheus-Remote-Write-Exemplars-Written".into(), exemplars.to_string()),
                ];
            }
            reply
        }
    };
    Outcome { reply, detail: Detail::Write { auth: judgement.auth, body } }
}

/// The ids of tokens in an `Authorization` header, for redaction: `Bearer [token #N]` or `[unrecognised token]`.
pub(crate) fn redact_authorization(state: &State, value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            match state.mint.recognise(&state.recorder, token.trim()) {
                Ok(t) => format!("Bearer [{}]", t.id),
                Err(_) => "Bearer [unrecognised token]".to_owned(),
            }
        }
        Some((scheme, _)) => format!("{scheme} [redacted]"),
        None => "[redacted]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{APP, DCR_HOST, DCR_ID, TENANT, test_state};
    use super::*;
    use crate::cloud::recorder::{Principal, Service};
    use crate::remote_write::{DecodedWrite, Sample, Series};
    use std::time::Duration;

    fn write_request(state: &State, token: Option<&str>) -> Request {
        let write = DecodedWrite {
            series: vec![Series {
                labels: vec![("__name__".into(), "up".into())],
                samples: vec![Sample { timestamp: 1, value: 1.0 }],
                histograms: vec![],
                exemplars: vec![],
            }],
            ..Default::default()
        };
        let path = format!("/dataCollectionRules/{DCR_ID}{STREAM_SUFFIX}?api-version=2023-04-24");
        let mut req = Request::new("POST", DCR_HOST, &path)
            .with_header("Content-Type", "application/x-protobuf")
            .with_body(remote_write::encode(&write, RwVersion::V1));
        if let Some(t) = token {
            req = req.with_header("Authorization", &format!("Bearer {t}"));
        }
        let _ = state;
        req
    }

    fn token_for(state: &State, principal: Principal, audience: &str) -> String {
        state.mint.mint(&state.recorder, Service::Entra, TENANT, principal, audience, Duration::from_secs(600)).jwt
    }

    #[test]
    fn granted_app_is_accepted() {
        let state = test_state();
        let t = token_for(&state, Principal::App { client_id: APP.into() }, "https://monitor.azure.com");
        let o = serve(&state, &write_request(&state, Some(&t)));
        assert_eq!(o.reply.status, 200, "{}", o.reply.body_str());
        assert!(matches!(o.detail, Detail::Write { auth: WriteAuth::Token { problem: None, .. }, body: Ok(_) }));
    }

    #[test]
    fn refusals() {
        let state = test_state();
        assert_eq!(serve(&state, &write_request(&state, None)).reply.status, 401);
        assert_eq!(serve(&state, &write_request(&state, Some("x.y.z"))).reply.status, 401);
        let wrong_aud = token_for(&state, Principal::App { client_id: APP.into() }, "https://monitor.azure.us/");
        let o = serve(&state, &write_request(&state, Some(&wrong_aud)));
        assert_eq!(o.reply.status, 401);
        assert!(o.reply.body_str().contains("InvalidAudience"));
        let no_role =
            token_for(&state, Principal::UserAssigned { client_id: "u".into() }, "https://monitor.azure.com/");
        let o = serve(&state, &write_request(&state, Some(&no_role)));
        assert_eq!(o.reply.status, 403);
        assert!(o.reply.body_str().contains(DCR_ID));
        // The body was decoded all the same.
        assert!(matches!(o.detail, Detail::Write { body: Ok(ref w), .. } if w.sample_count() == 1));
    }
}
