//! Reading back from an Azure Monitor workspace: instant queries with exactly one `__name__` matcher (the
//! workspace refuses others), each answer kept as evidence.

use std::collections::BTreeMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;

/// One query and its answer, for evidence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryRecord {
    /// The PromQL selector sent.
    pub query: String,
    /// HTTP status (0 if the request failed before an answer).
    pub status: u16,
    /// Series returned (label sets).
    pub series: Vec<BTreeMap<String, String>>,
    /// The error answered or met, if any.
    pub error: Option<String>,
}

impl QueryRecord {
    /// `GET …/api/v1/query?query=up{…} → 200, 1 series` — how evidence names a query.
    pub fn describe(&self, base: &str) -> String {
        let answer = match (&self.error, self.status) {
            (Some(e), 0) => format!("failed: {e}"),
            (Some(e), s) => format!("{s}: {e}"),
            (None, s) => format!("{s}, {} series", self.series.len()),
        };
        format!("GET {}/api/v1/query?query={} → {answer}", base.trim_end_matches('/'), self.query)
    }

    /// The workspace refused the caller (401/403): waiting longer will not help.
    pub fn refused(&self) -> bool {
        matches!(self.status, 401 | 403)
    }
}

/// A workspace and the credential the harness reads it with.
pub struct Workspace {
    client: reqwest::Client,
    base: String,
    credential: Arc<dyn TokenCredential>,
    scope: String,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("base", &self.base).finish_non_exhaustive()
    }
}

/// `name{k="v",…}` for a series spec; `__name__` must be present (validated when the scenario loads).
pub fn selector(series: &BTreeMap<String, String>) -> String {
    let name = series.get("__name__").map_or("", String::as_str);
    let matchers: Vec<String> = series
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", matchers.join(","))
}

impl Workspace {
    /// A workspace at `base` (`https://<ws>.<region>.prometheus.monitor.azure.com`).
    pub fn new(client: reqwest::Client, base: &str, credential: Arc<dyn TokenCredential>, scope: &str) -> Workspace {
        Workspace { client, base: base.trim_end_matches('/').to_owned(), credential, scope: scope.to_owned() }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Runs one instant query.
    pub async fn query(&self, selector: &str) -> QueryRecord {
        let mut record = QueryRecord { query: selector.to_owned(), status: 0, series: Vec::new(), error: None };
        let token = match crate::credential::get(self.credential.as_ref(), &self.scope).await {
            Ok(t) => t,
            Err(e) => {
                record.error = Some(format!("no token for {}: {e}", self.scope));
                return record;
            }
        };
        let url = format!("{}/api/v1/query", self.base);
        let answer = self.client.get(&url).query(&[("query", selector)]).bearer_auth(&token.secret).send().await;
        let rsp = match answer {
            Ok(r) => r,
            Err(e) => {
                record.error = Some(e.to_string());
                return record;
            }
        };
        record.status = rsp.status().as_u16();
        let body: serde_json::Value = rsp.json().await.unwrap_or_default();
        if record.status != 200 {
            let message =
                body.get("error").map_or_else(|| body.to_string(), |e| e.as_str().map_or(e.to_string(), str::to_owned));
            record.error = Some(message);
            return record;
        }
        record.series = body["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|s| serde_json::from_value::<BTreeMap<String, String>>(s["metric"].clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_carry_one_name_and_escaped_values() {
        let s: BTreeMap<String, String> =
            [("__name__", "up"), ("azrw_run", "r\"1")].iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let q = selector(&s);
        assert_eq!(q, r#"up{azrw_run="r\"1"}"#);
        let m = crate::cloud::parse_selector(&q).unwrap();
        assert_eq!(m.iter().filter(|m| m.label == "__name__").count(), 1);
    }
}
