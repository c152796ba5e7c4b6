//! The DCR ingestion endpoint: decodes every remote-write body, judges the bearer token and the role assignment.

use super::State;
use super::recorder::{Detail, IssuedToken, RecordMode, WriteAuth};
use super::wire::{Outcome, Reply, Request, error_vars};
use crate::remote_write::{self, RwVersion};
use crate::scenario::model::RoleScope;

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
fn limit_refusal<'s, N: AsRef<str> + 's, V: AsRef<str> + 's>(
    mut series: impl Iterator<Item = &'s [(N, V)]>,
) -> Option<Refusal> {
    series.find_map(|labels| {
        let violation = remote_write::limits::labels_violation(labels)?;
        Some((
            "dcr_label_limit",
            vec![("series", remote_write::limits::short_describe_labels(labels)), ("violation", violation)],
        ))
    })
}

/// What the DCR holds against a request, in the order Azure checks: route, token, RW 2.0 refusal, body, limits.
/// `body` is the first label-limit refusal of a decoded body, or why it could not be decoded.
fn refusal(
    state: &State,
    req: &Request,
    token: Option<Refusal>,
    body: Result<Option<Refusal>, &str>,
) -> Option<Refusal> {
    let dcr = &state.config.dcr;
    let expected_path = crate::azure::ingestion_path(&dcr.dcr_id);
    let routed = req.method == "POST" && req.path == expected_path && req.host.eq_ignore_ascii_case(&dcr.host);
    let content_type = req.header("content-type");
    if !routed {
        Some(("dcr_not_found", vec![("path", req.path.clone())]))
    } else if token.is_some() {
        token
    } else if dcr.refuse_rw2 && remote_write::version_of(content_type) == RwVersion::V2 {
        Some(("dcr_unsupported_media_type", vec![("content_type", content_type.unwrap_or_default().to_owned())]))
    } else {
        match body {
            Err(reason) => Some(("dcr_bad_request", vec![("reason", reason.to_owned())])),
            Ok(limits) => limits,
        }
    }
}

/// The answer: the mock's error body for a refusal, else 200 (with RW 2.0's written counts when given).
fn reply(state: &State, refusal: Option<Refusal>, written: Option<[usize; 3]>) -> Reply {
    let dcr = &state.config.dcr;
    match refusal {
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
            if let Some([samples, histograms, exemplars]) = written {
                reply.headers = vec![
                    ("X-Prometheus-Remote-Write-Samples-Written".into(), samples.to_string()),
                    ("X-Prometheus-Remote-Write-Histograms-Written".into(), histograms.to_string()),
                    ("X-Prometheus-Remote-Write-Exemplars-Written".into(), exemplars.to_string()),
                ];
            }
            reply
        }
    }
}

/// A body whose snappy header declares more than the DCR inflates: refused 413 before anything is allocated for it
/// (the documented 1 MB holds for uncompressed data too).
fn declared_oversize(state: &State, req: &Request) -> Option<Outcome> {
    let declared = remote_write::limits::declared_uncompressed_len(&req.body)?;
    let limit = remote_write::limits::MAX_UNCOMPRESSED_BYTES as u64;
    if declared <= limit {
        return None;
    }
    let received = req.body.len() as u64;
    let detail = Detail::Oversize {
        what: "uncompressed body".into(),
        limit,
        content_length: req.header("content-length").and_then(|v| v.parse().ok()),
        read: received,
        received,
        declared: Some(declared),
    };
    let reply = super::body::too_large_reply(&state.config.mocks, &detail, false);
    Some(Outcome { reply, detail })
}

/// Answers one request to the DCR host.
pub(crate) fn serve(state: &State, req: &Request) -> Outcome {
    if let Some(refused) = declared_oversize(state, req) {
        return refused;
    }
    // Decode even when refusing: evidence can then name the samples the agent dropped.
    let content_type = req.header("content-type");
    let body = remote_write::decode(&req.body, content_type).map_err(|e| e.0);
    let judgement = judge(state, req.header("authorization"));
    let limits = body.as_ref().map(|w| limit_refusal(w.series.iter().map(|s| s.labels.as_slice())));
    let refusal = refusal(state, req, judgement.refusal, limits.map_err(String::as_str));
    let written = body
        .as_ref()
        .ok()
        .filter(|_| remote_write::version_of(content_type) == RwVersion::V2)
        .map(|w| [w.sample_count(), w.histogram_count(), w.exemplar_count()]);
    Outcome { reply: reply(state, refusal, written), detail: Detail::Write { auth: judgement.auth, body } }
}

/// Answers one request to the DCR host and records it through `record` (status, detail, and the accepted write
/// still borrowed from its body, if any). In accounting mode an accepted RW 1.0 write is read in place and folded
/// from labels borrowed from its uncompressed body: nothing is allocated per label, and only a series seen for
/// the first time is copied. Anything else (full mode, RW 2.0, refusals) goes through [`serve`].
pub(crate) fn serve_and_record(
    state: &State,
    req: &Request,
    record: impl FnOnce(u16, Detail, Option<&remote_write::WriteView<'_>>),
) -> Reply {
    let content_type = req.header("content-type");
    if let Some(Outcome { reply, detail }) = declared_oversize(state, req) {
        record(reply.status, detail, None);
        return reply;
    }
    if state.recorder.mode() != RecordMode::Accounting || remote_write::version_of(content_type) != RwVersion::V1 {
        let Outcome { reply, detail } = serve(state, req);
        record(reply.status, detail, None);
        return reply;
    }
    remote_write::with_view(&req.body, |view| {
        let judgement = judge(state, req.header("authorization"));
        let limits = match &view {
            Ok(v) => Ok(limit_refusal(v.series().map(|s| s.labels))),
            Err(e) => Err(e.0.as_str()),
        };
        let refusal = refusal(state, req, judgement.refusal, limits);
        let auth = judgement.auth;
        match (refusal, view) {
            (None, Ok(view)) => {
                let reply = reply(state, None, None);
                record(reply.status, Detail::Write { auth, body: Ok(view.without_series()) }, Some(view));
                reply
            }
            // Refused: the exchange keeps the owned write, as in full mode (the checks on refused batches read it).
            (refusal, view) => {
                let body = view.map(|v| v.to_owned()).map_err(|e| e.0);
                let reply = reply(state, refusal, None);
                record(reply.status, Detail::Write { auth, body }, None);
                reply
            }
        }
    })
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
        _ => crate::redact::authorization(value),
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
        let path =
            format!("{}?api-version={}", crate::azure::ingestion_path(DCR_ID), crate::azure::INGESTION_API_VERSION);
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
