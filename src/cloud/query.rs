//! The Azure Monitor workspace query endpoint (`*.prometheus.monitor.azure.*/api/v1/query`): answers instant
//! vector selectors from what the DCR accepted, the way the workspace does for data that arrived.
//!
//! Like the real service it wants a bearer token for `https://prometheus.monitor.azure.<tld>` from a principal that
//! may read the workspace (a role assignment at workspace scope, Monitoring Data Reader in Azure), and it refuses a
//! query that does not carry exactly one `__name__` matcher. Real mode reads back through the same code path.

use std::collections::BTreeMap;

use serde_json::json;

use super::State;
use super::recorder::{Detail, Service};
use super::wire::{Outcome, Reply, Request};
use crate::scenario::model::RoleScope;

/// A label matcher of an instant vector selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label name.
    pub label: String,
    /// `true` for `=`, `false` for `!=`.
    pub equal: bool,
    /// Value.
    pub value: String,
}

impl Matcher {
    fn holds(&self, labels: &[(String, String)]) -> bool {
        let actual = labels.iter().find(|(k, _)| *k == self.label).map_or("", |(_, v)| v.as_str());
        (actual == self.value) == self.equal
    }
}

/// Parses `name{l="v",…}` or `{__name__="name",…}` and enforces the workspace's rule: exactly one `__name__`
/// matcher, an equality.
///
/// ```
/// let m = azrw::cloud::parse_selector(r#"up{azrw_run="r1",job!="x"}"#).unwrap();
/// assert_eq!(m.len(), 3);
/// assert!(azrw::cloud::parse_selector(r#"{job="x"}"#).unwrap_err().contains("exactly one __name__"));
/// ```
pub fn parse_selector(query: &str) -> Result<Vec<Matcher>, String> {
    let q = query.trim();
    let name_end = q.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(q.len());
    let (name, rest) = q.split_at(name_end);
    let mut matchers = Vec::new();
    if !name.is_empty() {
        matchers.push(Matcher { label: "__name__".into(), equal: true, value: name.into() });
    }
    let rest = rest.trim();
    if !rest.is_empty() {
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| format!("the mock query endpoint answers instant vector selectors only, not {query:?}"))?;
        let mut chars = inner.trim();
        while !chars.is_empty() {
            let label_end = chars.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(chars.len());
            let (label, after) = chars.split_at(label_end);
            let after = after.trim_start();
            let (equal, after) = if let Some(a) = after.strip_prefix("!=") {
                (false, a)
            } else if after.starts_with("=~") || after.starts_with("!~") {
                return Err(format!("regex matchers are not supported by the mock query endpoint: {query:?}"));
            } else if let Some(a) = after.strip_prefix('=') {
                (true, a)
            } else {
                return Err(format!("expected a matcher operator after {label:?} in {query:?}"));
            };
            let after = after.trim_start();
            let body = after.strip_prefix('"').ok_or_else(|| format!("expected a quoted value in {query:?}"))?;
            let mut value = String::new();
            let mut escaped = false;
            let mut end = None;
            for (i, c) in body.char_indices() {
                match (escaped, c) {
                    (true, c) => {
                        value.push(c);
                        escaped = false;
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (false, c) => value.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("unterminated value in {query:?}"))?;
            if label.is_empty() {
                return Err(format!("a matcher without a label name in {query:?}"));
            }
            matchers.push(Matcher { label: label.into(), equal, value });
            chars = body[end + 1..].trim_start();
            chars = chars.strip_prefix(',').unwrap_or(chars).trim_start();
        }
    }
    let names: Vec<&Matcher> = matchers.iter().filter(|m| m.label == "__name__").collect();
    match names.as_slice() {
        [one] if one.equal => Ok(matchers),
        [_] => Err(format!("the __name__ matcher must be an equality in {query:?}")),
        _ => Err(format!(
            "a query must have exactly one __name__ matcher (the workspace refuses others); {query:?} has {}",
            names.len()
        )),
    }
}

/// The audience a query token must carry for a query host (`…prometheus.monitor.azure.com` → that cloud's).
fn query_audience(host: &str) -> String {
    let tld = host.rsplit('.').next().unwrap_or("com");
    format!("https://prometheus.monitor.azure.{tld}")
}

fn error(status: u16, error_type: &str, message: String) -> Reply {
    let body = json!({"status": "error", "errorType": error_type, "error": message});
    Reply::json(status, serde_json::to_vec(&body).expect("JSON values serialise"))
}

/// Answers one request to a query host.
pub(crate) fn serve(state: &State, req: &Request) -> Outcome {
    let reply = answer(state, req);
    Outcome { reply, detail: Detail::Other }
}

fn answer(state: &State, req: &Request) -> Reply {
    if req.path != "/api/v1/query" {
        let (status, body) = state.config.mocks.error("query_not_found", &[("path", &req.path)]);
        return Reply::json(status, body);
    }
    // Authentication first, as the service does: an unauthenticated caller learns nothing about the query.
    let expected = query_audience(&req.host);
    let token = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or_else(|| "no bearer token in the Authorization header".to_owned())
        .and_then(|jwt| state.mint.recognise(&state.recorder, jwt.trim()));
    let token = match token {
        Ok(t) => t,
        Err(reason) => return error(401, "unauthorized", format!("InvalidAuthenticationToken: {reason}")),
    };
    if state.recorder.now() >= token.expires_at {
        return error(401, "unauthorized", format!("ExpiredAuthenticationToken: {} has expired", token.id));
    }
    if token.audience.trim_end_matches('/') != expected {
        return error(
            401,
            "unauthorized",
            format!("InvalidAudience: the token's audience is {:?}, expected {expected:?}", token.audience),
        );
    }
    let reader = state.config.roles.iter().any(|g| g.scope == RoleScope::Workspace && g.principal == token.principal);
    if !reader {
        return error(
            403,
            "forbidden",
            format!(
                "AuthorizationFailed: {} has no role on the Azure Monitor workspace (needs Monitoring Data Reader)",
                token.principal.describe()
            ),
        );
    }
    let form_body;
    let query = match req.method.as_str() {
        "GET" => req.query_param("query"),
        "POST" => {
            form_body = url::form_urlencoded::parse(&req.body).into_owned().collect::<Vec<_>>();
            form_body.iter().find(|(k, _)| k == "query").map(|(_, v)| v.clone())
        }
        other => return error(405, "bad_data", format!("method {other} is not allowed")),
    };
    let Some(query) = query else {
        return error(400, "bad_data", "the query parameter `query` is missing".into());
    };
    let matchers = match parse_selector(&query) {
        Ok(m) => m,
        Err(e) => return error(400, "bad_data", e),
    };
    let result: Vec<serde_json::Value> = latest_samples(state, &matchers)
        .into_iter()
        .map(|(labels, (ts, value))| json!({"metric": labels, "value": [ts as f64 / 1000.0, format_value(value)]}))
        .collect();
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": result}});
    Reply::json(200, serde_json::to_vec(&body).expect("JSON values serialise"))
}

/// The newest accepted sample of every series the matchers select.
fn latest_samples(state: &State, matchers: &[Matcher]) -> BTreeMap<BTreeMap<String, String>, (i64, f64)> {
    let mut out: BTreeMap<BTreeMap<String, String>, (i64, f64)> = BTreeMap::new();
    state.recorder.for_each_exchange(|e| {
        let Detail::Write { body: Ok(write), .. } = &e.detail else { return };
        if e.service != Service::Dcr || !(200..300).contains(&e.status) {
            return;
        }
        for series in write.series.iter().filter(|s| matchers.iter().all(|m| m.holds(&s.labels))) {
            let Some(sample) = series.samples.iter().max_by_key(|s| s.timestamp) else { continue };
            let labels: BTreeMap<String, String> = series.labels.iter().cloned().collect();
            let slot = out.entry(labels).or_insert((sample.timestamp, sample.value));
            if sample.timestamp >= slot.0 {
                *slot = (sample.timestamp, sample.value);
            }
        }
    });
    out
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::RoleGrant;
    use super::super::recorder::{Exchange, Principal};
    use super::super::tests::{APP, test_state};
    use super::*;
    use crate::remote_write::{DecodedWrite, Sample, Series};
    use std::time::Duration;

    const HOST: &str = "amw-1a2b.eastus.prometheus.monitor.azure.com";

    fn accept(state: &State, labels: &[(&str, &str)], ts: i64, value: f64) {
        let write = DecodedWrite {
            series: vec![Series {
                labels: labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
                samples: vec![Sample { timestamp: ts, value }],
                histograms: vec![],
                exemplars: vec![],
            }],
            ..Default::default()
        };
        state.recorder.record(Exchange::accepted_write(write));
    }

    fn query(state: &State, q: &str, audience: &str) -> Reply {
        let jwt = state
            .mint
            .mint(
                &state.recorder,
                Service::Entra,
                "t",
                Principal::App { client_id: APP.into() },
                audience,
                Duration::from_secs(600),
            )
            .jwt;
        let target =
            format!("/api/v1/query?query={}", url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>());
        answer(state, &Request::new("GET", HOST, &target).with_header("Authorization", &format!("Bearer {jwt}")))
    }

    fn reader_state() -> State {
        let mut state = test_state();
        state
            .config
            .roles
            .push(RoleGrant { principal: Principal::App { client_id: APP.into() }, scope: RoleScope::Workspace });
        state
    }

    #[test]
    fn answers_the_newest_accepted_sample_of_matching_series() {
        let state = reader_state();
        accept(&state, &[("__name__", "up"), ("azrw_run", "r1")], 1000, 0.0);
        accept(&state, &[("__name__", "up"), ("azrw_run", "r1")], 2000, 1.0);
        accept(&state, &[("__name__", "up"), ("azrw_run", "r2")], 3000, 1.0);
        let reply = query(&state, r#"up{azrw_run="r1"}"#, "https://prometheus.monitor.azure.com/");
        assert_eq!(reply.status, 200, "{}", reply.body_str());
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let result = v["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{v}");
        assert_eq!(result[0]["metric"]["azrw_run"], "r1");
        assert_eq!(result[0]["value"], json!([2.0, "1"]));
    }

    #[test]
    fn refuses_queries_without_exactly_one_name_matcher() {
        let state = reader_state();
        for q in [r#"{azrw_run="r1"}"#, r#"up{__name__="up"}"#, "sum(up)", r#"{__name__!="up"}"#] {
            let reply = query(&state, q, "https://prometheus.monitor.azure.com");
            assert_eq!(reply.status, 400, "{q}: {}", reply.body_str());
        }
    }

    #[test]
    fn refuses_wrong_audience_no_token_and_no_reader_role() {
        let state = reader_state();
        let reply = query(&state, "up", "https://monitor.azure.com/");
        assert_eq!(reply.status, 401);
        assert!(reply.body_str().contains("InvalidAudience"), "{}", reply.body_str());
        let reply = answer(&state, &Request::new("GET", HOST, "/api/v1/query?query=up"));
        assert_eq!(reply.status, 401);
        let plain = test_state();
        let reply = query(&plain, "up", "https://prometheus.monitor.azure.com");
        assert_eq!(reply.status, 403, "{}", reply.body_str());
        assert!(reply.body_str().contains("Monitoring Data Reader"));
    }
}
