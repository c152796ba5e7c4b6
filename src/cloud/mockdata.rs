//! Response templates users can edit without recompiling (`mocks/`): OIDC documents and error bodies.
//!
//! Templates are JSON; `{name}` placeholders inside string values are substituted when a response is built, so
//! substituted values are always JSON-escaped correctly. Unknown placeholders are left as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::CloudError;

const OPENID_FILE: &str = "entra/openid-configuration.json";
const INSTANCE_DISCOVERY_FILE: &str = "entra/instance-discovery.json";
const CLOUDS_FILE: &str = "entra/clouds.json";

/// What each cloud's discovery document fills in (`mocks/entra/clouds.json`, sources in `mocks/README.md`).
const CLOUD_FIELDS: [&str; 6] =
    ["issuer_host", "cloud_instance_name", "tenant_region_scope", "cloud_graph_host_name", "msgraph_host", "rbac_url"];
const ERRORS_FILE: &str = "errors.json";

/// Error names the services answer with; `errors.json` must define every one of them.
pub(crate) const REQUIRED_ERRORS: &[&str] = &[
    "AADSTS90002",
    "AADSTS700016",
    "AADSTS7000215",
    "AADSTS7000216",
    "AADSTS700027",
    "AADSTS700024",
    "AADSTS50027",
    "AADSTS70021",
    "AADSTS500011",
    "AADSTS1002012",
    "AADSTS70003",
    "entra_not_found",
    "bad_request_102",
    "imds_missing_parameter",
    "imds_identity_not_found",
    "imds_not_found",
    "dcr_not_found",
    "dcr_missing_token",
    "dcr_invalid_token",
    "dcr_expired_token",
    "dcr_invalid_audience",
    "dcr_forbidden",
    "dcr_bad_request",
    "query_not_found",
    "request_too_large",
];

/// One error response: HTTP status and a JSON body template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorTemplate {
    /// HTTP status.
    pub status: u16,
    /// JSON body with `{placeholder}`s in its strings.
    pub body: Value,
}

/// The mock cloud's editable response data.
///
/// ```
/// let mocks = azrw::cloud::MockData::embedded();
/// assert!(mocks.error_template("AADSTS7000215").is_some());
/// ```
#[derive(Debug, Clone)]
pub struct MockData {
    openid_configuration: Value,
    instance_discovery: Value,
    /// Per cloud (`AzurePublic` …): the values its discovery document carries.
    clouds: BTreeMap<String, BTreeMap<String, String>>,
    errors: BTreeMap<String, ErrorTemplate>,
    /// Fault profiles by name: where each came from and its text (parsed when a scenario names it).
    fault_profiles: BTreeMap<String, (PathBuf, String)>,
}

impl Default for MockData {
    fn default() -> Self {
        MockData::embedded()
    }
}

fn parse_json(file: &Path, text: &str) -> Result<Value, CloudError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| CloudError::MockData { file: file.to_owned(), problem: format!("not valid JSON: {e}") })?;
    if !value.is_object() {
        return Err(CloudError::MockData { file: file.to_owned(), problem: "must be a JSON object".into() });
    }
    Ok(value)
}

impl MockData {
    /// The templates compiled into the binary (copies of the repository's `mocks/`).
    ///
    /// ```
    /// let mocks = azrw::cloud::MockData::embedded();
    /// ```
    pub fn embedded() -> MockData {
        MockData::parse(
            include_str!("../../mocks/entra/openid-configuration.json"),
            include_str!("../../mocks/entra/instance-discovery.json"),
            include_str!("../../mocks/entra/clouds.json"),
            include_str!("../../mocks/errors.json"),
            Path::new("<embedded mocks>"),
        )
        .expect("embedded mock data is valid (checked by a unit test)")
    }

    fn with_embedded_profiles(mut self) -> MockData {
        for (name, text) in super::fault::EMBEDDED_PROFILES {
            let path = Path::new("<embedded mocks>/faults").join(format!("{name}.yaml"));
            self.fault_profiles.entry((*name).to_owned()).or_insert((path, (*text).to_owned()));
        }
        self
    }

    /// A fault profile (`faults/NAME.yaml`): its path and text.
    ///
    /// ```
    /// assert!(azrw::cloud::MockData::embedded().fault_profile("dcr-outage").is_some());
    /// ```
    pub fn fault_profile(&self, name: &str) -> Option<(PathBuf, String)> {
        self.fault_profiles.get(name).cloned()
    }

    /// Names of every fault profile.
    pub fn fault_profile_names(&self) -> Vec<String> {
        self.fault_profiles.keys().cloned().collect()
    }

    /// Reads the same files from `dir` (`entra/openid-configuration.json`, `entra/instance-discovery.json`,
    /// `errors.json`); errors name the file and what is wrong with it.
    ///
    /// ```
    /// let err = azrw::cloud::MockData::load(std::path::Path::new("/nonexistent")).unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent/entra/openid-configuration.json"));
    /// ```
    pub fn load(dir: &Path) -> Result<MockData, CloudError> {
        let read = |name: &str| -> Result<String, CloudError> {
            let file = dir.join(name);
            std::fs::read_to_string(&file)
                .map_err(|e| CloudError::MockData { file: file.clone(), problem: format!("cannot read: {e}") })
        };
        let mut data = MockData::parse(
            &read(OPENID_FILE)?,
            &read(INSTANCE_DISCOVERY_FILE)?,
            &read(CLOUDS_FILE)?,
            &read(ERRORS_FILE)?,
            dir,
        )?;
        // The directory's profiles win; the built-in ones fill in the rest.
        data.fault_profiles.clear();
        for (name, path, text) in super::fault::load_profiles(dir)? {
            data.fault_profiles.insert(name, (path, text));
        }
        Ok(data.with_embedded_profiles())
    }

    fn parse(openid: &str, discovery: &str, clouds: &str, errors: &str, dir: &Path) -> Result<MockData, CloudError> {
        let path = |name: &str| -> PathBuf { dir.join(name) };
        let openid_configuration = parse_json(&path(OPENID_FILE), openid)?;
        for field in ["issuer", "token_endpoint", "authorization_endpoint"] {
            if !openid_configuration.get(field).is_some_and(Value::is_string) {
                return Err(CloudError::MockData {
                    file: path(OPENID_FILE),
                    problem: format!("field `{field}` is missing or not a string (MSAL requires it)"),
                });
            }
        }
        let instance_discovery = parse_json(&path(INSTANCE_DISCOVERY_FILE), discovery)?;
        let clouds = parse_clouds(&path(CLOUDS_FILE), clouds)?;
        let errors: BTreeMap<String, ErrorTemplate> =
            serde_json::from_str(errors).map_err(|e| CloudError::MockData {
                file: path(ERRORS_FILE),
                problem: format!("expected {{name: {{status, body}}}}: {e}"),
            })?;
        for name in REQUIRED_ERRORS {
            if !errors.contains_key(*name) {
                return Err(CloudError::MockData {
                    file: path(ERRORS_FILE),
                    problem: format!("error `{name}` is not defined (the mock services answer with it)"),
                });
            }
        }
        for (name, t) in &errors {
            if !(100..=599).contains(&t.status) {
                return Err(CloudError::MockData {
                    file: path(ERRORS_FILE),
                    problem: format!("error `{name}` has status {} (must be 100–599)", t.status),
                });
            }
        }
        Ok(MockData { openid_configuration, instance_discovery, clouds, errors, fault_profiles: BTreeMap::new() }
            .with_embedded_profiles())
    }

    /// The template for an error name, if defined.
    ///
    /// ```
    /// let mocks = azrw::cloud::MockData::embedded();
    /// assert_eq!(mocks.error_template("dcr_forbidden").unwrap().status, 403);
    /// ```
    pub fn error_template(&self, name: &str) -> Option<&ErrorTemplate> {
        self.errors.get(name)
    }

    /// Status and rendered JSON body of an error.
    pub(crate) fn error(&self, name: &str, vars: &[(&str, &str)]) -> (u16, Vec<u8>) {
        match self.errors.get(name) {
            Some(t) => (t.status, render(&t.body, vars)),
            // Unreachable for loaded data (REQUIRED_ERRORS is checked); keep a readable answer anyway.
            None => (500, format!("{{\"error\":\"mock error template `{name}` is missing\"}}").into_bytes()),
        }
    }

    /// The rendered OpenID configuration document.
    pub(crate) fn openid_configuration(&self, vars: &[(&str, &str)]) -> Vec<u8> {
        render(&self.openid_configuration, vars)
    }

    /// What `cloud`'s discovery document fills in (`issuer_host`, `cloud_instance_name`, `msgraph_host` …).
    pub(crate) fn cloud_fields(&self, cloud: crate::azure::AzureCloud) -> Vec<(&str, &str)> {
        self.clouds
            .get(&cloud.to_string())
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default()
    }

    /// The rendered instance-discovery document.
    pub(crate) fn instance_discovery(&self, vars: &[(&str, &str)]) -> Vec<u8> {
        render(&self.instance_discovery, vars)
    }
}

/// `clouds.json`: every cloud, every field, each a string.
fn parse_clouds(file: &Path, text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, CloudError> {
    let problem = |problem: String| CloudError::MockData { file: file.to_owned(), problem };
    let clouds: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(text).map_err(|e| {
        problem(format!("line {}, column {}: expected {{cloud: {{field: string}}}}: {e}", e.line(), e.column()))
    })?;
    for cloud in crate::azure::AzureCloud::ALL {
        let Some(fields) = clouds.get(&cloud.to_string()) else {
            return Err(problem(format!("cloud `{cloud}` is not defined")));
        };
        if let Some(missing) = CLOUD_FIELDS.iter().find(|f| !fields.contains_key(**f)) {
            return Err(problem(format!("cloud `{cloud}`: field `{missing}` is missing")));
        }
    }
    Ok(clouds)
}

fn substitute(value: &Value, vars: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => {
            let mut out = s.clone();
            for (k, v) in vars {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, vars))).collect()),
        other => other.clone(),
    }
}

fn render(template: &Value, vars: &[(&str, &str)]) -> Vec<u8> {
    serde_json::to_vec(&substitute(template, vars)).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_is_valid_and_matches_the_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mocks");
        let loaded = MockData::load(&dir).unwrap();
        let embedded = MockData::embedded();
        assert_eq!(loaded.errors.len(), embedded.errors.len());
    }

    #[test]
    fn placeholders_are_substituted_and_escaped() {
        let mocks = MockData::embedded();
        let (status, body) = mocks.error("dcr_forbidden", &[("dcr_id", "dcr-\"x\"")]);
        assert_eq!(status, 403);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("immutable Id 'dcr-\"x\"'"));
    }

    #[test]
    fn load_names_the_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("entra")).unwrap();
        std::fs::write(dir.path().join(OPENID_FILE), "{\"issuer\":\"x\",\"token_endpoint\":\"y\"}").unwrap();
        std::fs::write(dir.path().join(INSTANCE_DISCOVERY_FILE), "{}").unwrap();
        std::fs::write(dir.path().join(CLOUDS_FILE), "{}").unwrap();
        std::fs::write(dir.path().join(ERRORS_FILE), "{}").unwrap();
        let err = MockData::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("openid-configuration.json") && err.contains("authorization_endpoint"), "{err}");
    }

    #[test]
    fn clouds_must_define_every_cloud_and_field() {
        let file = Path::new("mocks/entra/clouds.json");
        let err = parse_clouds(file, "{}").unwrap_err().to_string();
        assert!(err.contains("clouds.json") && err.contains("cloud `AzurePublic` is not defined"), "{err}");
        let mut one: serde_json::Map<String, Value> =
            serde_json::from_str(include_str!("../../mocks/entra/clouds.json")).unwrap();
        one["AzureChina"].as_object_mut().unwrap().remove("msgraph_host");
        let err = parse_clouds(file, &Value::Object(one).to_string()).unwrap_err().to_string();
        assert!(err.contains("cloud `AzureChina`: field `msgraph_host` is missing"), "{err}");
        let err = parse_clouds(file, "{\"AzurePublic\": 3}").unwrap_err().to_string();
        assert!(err.contains("line 1, column"), "{err}");
    }
}
