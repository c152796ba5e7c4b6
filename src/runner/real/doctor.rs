//! `azrw doctor`: a preflight for a real set-up that says, step by step, what works and what is wrong — can each
//! identity get a token (and which identity it is), does the DCR endpoint resolve and accept a probe write, may
//! the reader query the workspace — naming the likely cause and the fix for each failure.

use std::fmt::Write as _;

use super::RealOptions;
use super::workspace::Workspace;
use crate::credential::{self, Token};
use crate::remote_write::{DecodedWrite, RwVersion, Sample, Series, encode};
use crate::scenario::{AuthSpec, Scenario};

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Works.
    Ok,
    /// Works, with a caveat.
    Warn,
    /// Broken; `detail` says why and `hint` what to do.
    Fail,
    /// Not tried: an earlier step failed.
    Skipped,
}

/// One step of the preflight.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// What was checked.
    pub name: String,
    /// How it went.
    pub status: StepStatus,
    /// What was seen.
    pub detail: String,
    /// The likely cause and fix, for failures.
    pub hint: Option<String>,
}

/// Every step, in order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DoctorReport {
    /// Steps.
    pub steps: Vec<Step>,
}

impl DoctorReport {
    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        !self.steps.iter().any(|s| s.status == StepStatus::Fail)
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Text for a person: one block per step.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            let mark = match s.status {
                StepStatus::Ok => "ok  ",
                StepStatus::Warn => "warn",
                StepStatus::Fail => "FAIL",
                StepStatus::Skipped => "skip",
            };
            let _ = writeln!(out, "{}. [{mark}] {}: {}", i + 1, s.name, s.detail);
            if let Some(h) = &s.hint {
                let _ = writeln!(out, "          → {h}");
            }
        }
        let failed = self.steps.iter().filter(|s| s.status == StepStatus::Fail).count();
        let _ = writeln!(
            out,
            "\n{}",
            if failed == 0 { "doctor: the set-up works".to_owned() } else { format!("doctor: {failed} problem(s)") }
        );
        out
    }

    fn push(&mut self, name: &str, status: StepStatus, detail: impl Into<String>, hint: Option<String>) {
        self.steps.push(Step { name: name.into(), status, detail: detail.into(), hint });
    }
}

/// Step names, stable for tests and scripts.
pub mod steps {
    /// Every `${NAME}` the scenario references is set.
    pub const ENVIRONMENT: &str = "environment";
    /// The agent's identity gets an ingestion token.
    pub const AGENT_TOKEN: &str = "agent token";
    /// The DCR host resolves and a probe write is accepted.
    pub const DCR: &str = "DCR probe write";
    /// The reader identity gets a query token.
    pub const READER_TOKEN: &str = "reader token";
    /// The workspace answers a query.
    pub const QUERY: &str = "workspace query";
}

/// Explains a token error: the failure's name and the fix.
fn explain_token_error(error: &str, tenant: &str, auth_cloud: &str) -> String {
    let known: &[(&str, String)] = &[
        (
            "AADSTS7000215",
            "wrong client secret: Entra refused the secret (AADSTS7000215); use the secret's Value, not its Secret ID, \
             and check that it has not expired"
                .into(),
        ),
        (
            "AADSTS90002",
            format!("unknown tenant: Entra has no tenant {tenant:?} in {auth_cloud} (AADSTS90002); check tenant_id and auth.cloud"),
        ),
        (
            "AADSTS700016",
            "unknown application: the client_id is not registered in this tenant (AADSTS700016)".into(),
        ),
        (
            "AADSTS500011",
            "wrong audience or cloud: the tenant does not know the requested resource (AADSTS500011); check auth.cloud and scope".into(),
        ),
        (
            "AADSTS70021",
            "no federated credential matches the token: the app's federated credentials must name the token's \
             issuer (the cluster's OIDC issuer URL), subject (system:serviceaccount:NAMESPACE:NAME) and audience \
             api://AzureADTokenExchange exactly (AADSTS70021); compare them with the token's claims above"
                .into(),
        ),
        (
            "AADSTS700024",
            "the federated token has expired (AADSTS700024): the file is stale; the kubelet refreshes a projected \
             service-account token, so check the volume and that the file path is the projected one"
                .into(),
        ),
        (
            "AADSTS700027",
            "certificate not registered on the app, or the key does not match it (AADSTS700027): the assertion \
             names the thumbprint above; upload that certificate (public part) to the app registration, or point the \
             variable at the certificate the app has"
                .into(),
        ),
        (
            "AADSTS50027",
            "Entra refused the client assertion as malformed or wrongly signed (AADSTS50027): for workload identity \
             the token must be signed by the cluster's OIDC issuer; for a certificate the key must match it"
                .into(),
        ),
        (
            "Identity not found",
            "unknown managed identity: the VM has no identity with this client_id attached".into(),
        ),
    ];
    known
        .iter()
        .find(|(code, _)| error.contains(code))
        .map(|(_, why)| why.clone())
        .unwrap_or_else(|| "the token request failed; see the message above".into())
}

fn auth_tenant(auth: &AuthSpec) -> String {
    auth.oauth
        .as_ref()
        .map(|o| o.tenant_id.clone())
        .or_else(|| auth.certificate.as_ref().map(|c| c.tenant_id.clone()))
        .or_else(|| auth.workload_identity.as_ref().map(|w| w.tenant_id.clone()))
        .or_else(|| auth.sdk.as_ref().map(|s| s.tenant_id.clone()))
        .unwrap_or_default()
}

/// Runs the preflight for a `target: azure` scenario: the environment, the agent's token, a probe write to the DCR,
/// the reader's token and a query of the workspace, each a step; a step that fails ends the ones that need it.
pub async fn run(scenario: &Scenario, real: &RealOptions) -> DoctorReport {
    let mut report = DoctorReport::default();
    let resolved = match super::env::resolve(scenario, &real.env) {
        Ok(r) => r,
        Err(missing) => {
            report.push(
                steps::ENVIRONMENT,
                StepStatus::Fail,
                missing.to_string(),
                Some("export them (in CI: repository secrets mapped to env) and run doctor again".into()),
            );
            return report;
        }
    };
    report.push(steps::ENVIRONMENT, StepStatus::Ok, "every referenced variable is set", None);
    let client = match real.access.client() {
        Ok(c) => c,
        Err(e) => {
            report.push(steps::AGENT_TOKEN, StepStatus::Fail, e, None);
            return report;
        }
    };
    let agent_token = agent_token(&mut report, &resolved.auth, &client).await;
    let run = super::run::run_id("doctor");
    let cloud = resolved.auth.cloud.to_string();
    let probe = dcr_probe(&resolved.azure.ingestion_url, agent_token.as_ref(), &run, &client, real, &cloud).await;
    report.steps.push(probe);
    reader_and_query(&mut report, &resolved, client, &run).await;
    report
}

/// Step 1: the agent's identity, asking for exactly what Prometheus asks for.
async fn agent_token(report: &mut DoctorReport, auth: &AuthSpec, client: &reqwest::Client) -> Option<Token> {
    let (cloud, tenant) = (auth.cloud.to_string(), auth_tenant(auth));
    let scope = auth.scope.clone().unwrap_or_else(|| auth.cloud.ingestion_scope());
    let summary = crate::agent::prometheus::auth_summary(auth);
    let cred = match credential::for_auth(auth, client) {
        Ok(Some(cred)) => cred,
        Ok(None) => {
            let why = "the harness checks oauth, certificate, workload identity and managed identity itself; for sdk \
                       via workload identity it relies on the agent's own run";
            report.push(steps::AGENT_TOKEN, StepStatus::Skipped, format!("{summary}: {why}"), None);
            return None;
        }
        Err(e) => {
            let hint = "the credential file the agent would read is missing or malformed: check the path the \
                        variable names and that it holds what the auth type needs";
            report.push(steps::AGENT_TOKEN, StepStatus::Fail, format!("{summary}: {e}"), Some(hint.into()));
            return None;
        }
    };
    let with = cred.source.map(|s| format!(" with {s}")).unwrap_or_default();
    match credential::get(cred.credential.as_ref(), &scope).await {
        Ok(t) => {
            let detail =
                format!("{summary}{with}: token for {}, scope {scope}, expires in {}m", t.identity, t.expires_in / 60);
            report.push(steps::AGENT_TOKEN, StepStatus::Ok, detail, None);
            Some(t)
        }
        Err(e) => {
            let hint = explain_token_error(&e, &tenant, &cloud);
            report.push(steps::AGENT_TOKEN, StepStatus::Fail, format!("{summary}{with}: {e}"), Some(hint));
            None
        }
    }
}

/// Steps 3 and 4: the reader's token, then a query for the probe sample.
async fn reader_and_query(
    report: &mut DoctorReport,
    resolved: &super::env::Resolved,
    client: reqwest::Client,
    run: &str,
) {
    let auth = &resolved.auth;
    let cloud = auth.cloud.to_string();
    let Some(reader) = resolved.reader() else {
        report.push(steps::READER_TOKEN, StepStatus::Skipped, "no reader identity (azure.reader)", None);
        return;
    };
    let query_scope = auth.cloud.query_scope();
    let cred = match credential::for_reader(&reader, auth.cloud, &client) {
        Ok(c) => c,
        Err(e) => {
            report.push(steps::READER_TOKEN, StepStatus::Fail, e, None);
            return;
        }
    };
    match credential::get(cred.as_ref(), query_scope).await {
        Ok(t) => {
            let detail = format!("token for {}, scope {query_scope}", t.identity);
            report.push(steps::READER_TOKEN, StepStatus::Ok, detail, None);
        }
        Err(e) => {
            let hint = explain_token_error(&e, &reader.tenant_id, &cloud);
            report.push(steps::READER_TOKEN, StepStatus::Fail, e, Some(hint));
            report.push(steps::QUERY, StepStatus::Skipped, "no reader token", None);
            return;
        }
    }
    let workspace = Workspace::new(client, &resolved.azure.query_url, cred, query_scope);
    let q = workspace.query(&format!("azrw_doctor_probe{{{}=\"{run}\"}}", super::run::RUN_LABEL)).await;
    let described = q.describe(workspace.base());
    if q.refused() {
        let hint = format!(
            "query endpoint refuses the reader: app {} needs Monitoring Data Reader on the Azure Monitor workspace (or \
             the assignment is still propagating)",
            reader.client_id
        );
        report.push(steps::QUERY, StepStatus::Fail, described, Some(hint));
    } else if q.status == 200 {
        let seen = if q.series.is_empty() {
            "the probe sample is not visible yet (ingestion takes a minute or two)"
        } else {
            "the probe sample is already visible"
        };
        report.push(steps::QUERY, StepStatus::Ok, format!("{described}; {seen}"), None);
    } else {
        let hint = "query endpoint unreachable or refusing: check azure.query_url (the workspace's Query endpoint)";
        report.push(steps::QUERY, StepStatus::Fail, described, Some(hint.into()));
    }
}

async fn dcr_probe(
    url: &str,
    token: Option<&Token>,
    run: &str,
    client: &reqwest::Client,
    real: &RealOptions,
    auth_cloud: &str,
) -> Step {
    let step = |status, detail: String, hint: Option<String>| Step { name: steps::DCR.into(), status, detail, hint };
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return step(StepStatus::Fail, format!("ingestion URL {url:?}: {e}"), None),
    };
    let host = parsed.host_str().unwrap_or_default().to_owned();
    if real.access.resolves_names() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        if let Err(e) = tokio::net::lookup_host((host.as_str(), port)).await {
            return step(
                StepStatus::Fail,
                format!("{host} does not resolve: {e}"),
                Some("check the DCE/DCR ingestion URL (copy it from the DCR's JSON view)".into()),
            );
        }
    }
    let Some(token) = token else {
        return step(StepStatus::Skipped, format!("{host}: no agent token to write with"), None);
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let write = DecodedWrite {
        series: vec![Series {
            labels: vec![("__name__".into(), "azrw_doctor_probe".into()), (super::run::RUN_LABEL.into(), run.into())],
            samples: vec![Sample { timestamp: now, value: 1.0 }],
            histograms: vec![],
            exemplars: vec![],
        }],
        ..Default::default()
    };
    let answer = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", concat!("azrw-doctor/", env!("CARGO_PKG_VERSION")))
        .bearer_auth(&token.secret)
        .body(encode(&write, RwVersion::V1))
        .send()
        .await;
    let rsp = match answer {
        Ok(r) => r,
        Err(e) => {
            return step(
                StepStatus::Fail,
                format!("{host} does not answer: {e}"),
                Some("check the ingestion URL and that outbound HTTPS is allowed".into()),
            );
        }
    };
    let status = rsp.status().as_u16();
    let body = rsp.text().await.unwrap_or_default();
    judge_probe(status, &body, &host, run, token, auth_cloud)
}

/// The step a probe write's answer makes, with the hint Azure's answer calls for.
fn judge_probe(status: u16, body: &str, host: &str, run: &str, token: &Token, auth_cloud: &str) -> Step {
    let step = |status, detail: String, hint: Option<String>| Step { name: steps::DCR.into(), status, detail, hint };
    let brief: String = body.chars().take(300).collect();
    match status {
        200..=299 => step(
            StepStatus::Ok,
            format!("{host} accepted a probe write (azrw_doctor_probe{{azrw_run=\"{run}\"}}) as {}", token.identity),
            None,
        ),
        403 => step(
            StepStatus::Fail,
            format!("403 from {host}: {brief}"),
            Some(format!(
                "role missing or still propagating: {} needs Monitoring Metrics Publisher on the DCR itself (not the \
                 workspace); a new assignment can take up to 30 minutes to apply",
                token.identity
            )),
        ),
        401 if body.contains("InvalidAudience") => step(
            StepStatus::Fail,
            format!("401 from {host}: {brief}"),
            Some(format!(
                "wrong audience or cloud: the token was issued for auth.cloud {auth_cloud}, but this DCR lives in another \
                 cloud; make auth.cloud match the DCR's cloud"
            )),
        ),
        401 => step(StepStatus::Fail, format!("401 from {host}: {brief}"), Some("the DCR refused the token".into())),
        404 => step(
            StepStatus::Fail,
            format!("404 from {host}: {brief}"),
            Some(
                "no such DCR or stream: check the immutable id (dcr-…) and the stream Microsoft-PrometheusMetrics"
                    .into(),
            ),
        ),
        s => step(StepStatus::Fail, format!("{s} from {host}: {brief}"), None),
    }
}
