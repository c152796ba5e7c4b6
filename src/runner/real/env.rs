//! `${NAME}` references in a scenario's `auth` and `azure` blocks, resolved from the environment up front, so a
//! run against Azure either has every value it needs or says at once which variables are missing and where.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::scenario::{AuthSpec, AzureTargetSpec, Scenario};

/// The environment a run resolves against (a snapshot: tests pass their own).
pub type Environment = BTreeMap<String, String>;

/// Variables a scenario names but the environment lacks, each with the field that names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct MissingEnv(pub Vec<(String, String)>);

fn describe(missing: &[(String, String)]) -> String {
    let lines: Vec<String> = missing.iter().map(|(var, field)| format!("  {var} (for {field})")).collect();
    format!("the real Azure target needs these environment variables, which are not set:\n{}", lines.join("\n"))
}

/// The `auth` and `azure` blocks with every `${NAME}` replaced.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The agent's auth block.
    pub auth: AuthSpec,
    /// Endpoints and reader.
    pub azure: AzureTargetSpec,
}

impl Resolved {
    /// Who reads the workspace back: `azure.reader`, else the agent's own app (an oauth scenario's app may hold both
    /// roles).
    pub fn reader(&self) -> Option<crate::scenario::ReaderSpec> {
        self.azure.reader.clone().or_else(|| {
            self.auth.oauth.as_ref().map(|o| crate::scenario::ReaderSpec {
                tenant_id: o.tenant_id.clone(),
                client_id: o.client_id.clone(),
                client_secret: o.client_secret.clone(),
            })
        })
    }
}

/// Resolves `scenario`'s references against `env`; every missing variable is listed, not just the first.
pub fn resolve(scenario: &Scenario, env: &Environment) -> Result<Resolved, MissingEnv> {
    let azure = scenario.azure.clone().ok_or_else(|| {
        MissingEnv(vec![("(none)".into(), "the scenario has no `azure:` block with the real endpoints".into())])
    })?;
    let mut missing = Vec::new();
    let auth = substitute_all(&with_default_files(&scenario.auth), "auth", env, &mut missing);
    let azure = substitute_all(&azure, "azure", env, &mut missing);
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(MissingEnv(missing));
    }
    Ok(Resolved { auth, azure })
}

// Credential files default to the variables the AKS webhook and the Azure SDKs set.
use crate::azure::env::{
    CLIENT_CERTIFICATE_PATH as CERTIFICATE_FILE_ENV, FEDERATED_TOKEN_FILE as FEDERATED_TOKEN_FILE_ENV,
};

/// `auth` with the credential files a real run needs defaulted to the conventional variables, so a missing one
/// is listed like any other `${NAME}`.
fn with_default_files(auth: &AuthSpec) -> AuthSpec {
    let mut auth = auth.clone();
    if let Some(w) = &mut auth.workload_identity {
        w.token_file.get_or_insert_with(|| format!("${{{FEDERATED_TOKEN_FILE_ENV}}}"));
    }
    if let Some(c) = &mut auth.certificate {
        c.certificate_file.get_or_insert_with(|| format!("${{{CERTIFICATE_FILE_ENV}}}"));
    }
    if let Some(crate::scenario::SdkVia::WorkloadIdentity { token_file, .. }) = auth.sdk.as_mut().map(|s| &mut s.via) {
        token_file.get_or_insert_with(|| format!("${{{FEDERATED_TOKEN_FILE_ENV}}}"));
    }
    auth
}

fn substitute_all<T: Serialize + DeserializeOwned + Clone>(
    value: &T,
    root: &str,
    env: &Environment,
    missing: &mut Vec<(String, String)>,
) -> T {
    let Ok(mut json) = serde_json::to_value(value) else { return value.clone() };
    walk(&mut json, root, env, missing);
    serde_json::from_value(json).unwrap_or_else(|_| value.clone())
}

fn walk(value: &mut Value, path: &str, env: &Environment, missing: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => *s = substitute(s, path, env, missing),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, &format!("{path}.{k}"), env, missing);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                walk(v, &format!("{path}[{i}]"), env, missing);
            }
        }
        _ => {}
    }
}

fn substitute(text: &str, field: &str, env: &Environment, missing: &mut Vec<(String, String)>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else { break };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match env.get(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => missing.push((name.to_owned(), field.to_owned())),
        }
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        serde_saphyr::from_str(
            "name: r\nagents: [prometheus@3.5]\ntarget: azure\n\
             auth: {oauth: {client_id: '${APP}', client_secret: '${SECRET}', tenant_id: '${TENANT}'}}\n\
             azure: {ingestion_url: '${DCR_URL}', query_url: 'https://${WS}.eastus.prometheus.monitor.azure.com'}\n",
        )
        .unwrap()
    }

    #[test]
    fn every_missing_variable_is_named_with_its_field() {
        let env: Environment = [("APP".to_owned(), "a".to_owned())].into();
        let e = resolve(&scenario(), &env).unwrap_err();
        let names: Vec<&str> = e.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["DCR_URL", "SECRET", "TENANT", "WS"]);
        let text = e.to_string();
        assert!(text.contains("SECRET (for auth.oauth.client_secret)"), "{text}");
        assert!(text.contains("WS (for azure.query_url)"), "{text}");
    }

    #[test]
    fn values_are_substituted_inside_strings() {
        let env: Environment = ["APP", "SECRET", "TENANT", "DCR_URL", "WS"]
            .iter()
            .map(|k| ((*k).to_owned(), format!("v-{}", k.to_lowercase())))
            .collect();
        let r = resolve(&scenario(), &env).unwrap();
        assert_eq!(r.auth.oauth.unwrap().client_secret, "v-secret");
        assert_eq!(r.azure.query_url, "https://v-ws.eastus.prometheus.monitor.azure.com");
        let missing = resolve(&scenario(), &Environment::new()).unwrap_err();
        let names: Vec<&str> = missing.0.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, vec!["APP", "DCR_URL", "SECRET", "TENANT", "WS"]);
    }

    #[test]
    fn credential_files_default_to_the_conventional_variables() {
        let s: Scenario = serde_saphyr::from_str(
            "name: r\nagents: [prometheus@3.16]\ntarget: azure\n\
             auth: {workload_identity: {client_id: '${APP}', tenant_id: '${TENANT}'}}\n\
             azure: {ingestion_url: u, query_url: q}\n",
        )
        .unwrap();
        let env: Environment =
            [("APP", "a"), ("TENANT", "t")].iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let e = resolve(&s, &env).unwrap_err();
        assert!(e.to_string().contains("AZURE_FEDERATED_TOKEN_FILE (for auth.workload_identity.token_file)"), "{e}");
        let mut env = env;
        env.insert("AZURE_FEDERATED_TOKEN_FILE".into(), "/var/run/token".into());
        assert_eq!(resolve(&s, &env).unwrap().auth.workload_identity.unwrap().token_file.unwrap(), "/var/run/token");
    }
}
