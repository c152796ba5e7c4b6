//! Renders what a Prometheus agent is given: `prometheus.yml`, flags and environment.
//!
//! A scenario may bring a user's own `prometheus.yml`. azrw changes only what it must — the proxy that leads to
//! the mock cloud, the auth block the scenario tests, the harness scrape target, queue timings — and lists every
//! change so the report shows exactly what differs from production.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::azure::env as azure_env;
use crate::scenario::{AgentMode, AuthSpec, Scenario, SdkVia};
use crate::version::Version;

/// Where the agent finds its files, as the agent sees them (a host path for processes, a container path for Docker).
#[derive(Debug, Clone)]
pub struct AgentPaths {
    /// `prometheus.yml`.
    pub config: PathBuf,
    /// CA bundle that makes the agent trust the mock cloud (`SSL_CERT_FILE`).
    pub ca_bundle: PathBuf,
    /// TSDB / agent storage directory.
    pub storage: PathBuf,
    /// Federated service-account token file (workload identity).
    pub federated_token: PathBuf,
    /// Client certificate (PEM) for `certificate` auth.
    pub client_certificate: PathBuf,
    /// Client certificate key (PEM).
    pub client_key: PathBuf,
    /// Key and certificate in one PEM, as Key Vault's CSI driver mounts them (a sidecar's
    /// `AZURE_CLIENT_CERTIFICATE_PATH`).
    pub client_bundle: PathBuf,
}

impl AgentPaths {
    /// The standard layout under one directory.
    pub fn under(dir: &Path) -> AgentPaths {
        AgentPaths {
            config: dir.join("prometheus.yml"),
            ca_bundle: dir.join("ca.pem"),
            storage: dir.join("data"),
            federated_token: dir.join("azure-identity-token"),
            client_certificate: dir.join("client-cert.pem"),
            client_key: dir.join("client-key.pem"),
            client_bundle: dir.join("client-bundle.pem"),
        }
    }
}

/// Everything the renderer needs to know about the run.
#[derive(Debug, Clone)]
pub struct RenderInput<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Directory of the scenario file (a user config path is relative to it).
    pub scenario_dir: &'a Path,
    /// Agent version.
    pub version: Version,
    /// Server or agent mode (`--agent`).
    pub mode: AgentMode,
    /// Proxy URL of the mock cloud, as the agent reaches it; `None` against real Azure, where the agent keeps the
    /// production set-up (no proxy, no test CA).
    pub proxy_url: Option<&'a str>,
    /// External labels added to `global.external_labels` (real mode tags each run: `azrw_run=<id>`).
    pub external_labels: &'a [(String, String)],
    /// Ingestion URL to use when the scenario has no config of its own.
    pub default_ingestion_url: &'a str,
    /// Scrape target `host:port`, as the agent reaches it.
    pub target: &'a str,
    /// `--web.listen-address`.
    pub listen_address: &'a str,
    /// File locations as the agent sees them.
    pub paths: &'a AgentPaths,
}

/// The rendered agent.
#[derive(Debug, Clone)]
pub struct RenderedAgent {
    /// `prometheus.yml` content.
    pub config: String,
    /// Command-line flags.
    pub args: Vec<String>,
    /// Environment (the agent gets nothing else).
    pub env: Vec<(String, String)>,
    /// What azrw changed relative to the scenario's config, one line each (secrets never shown).
    pub changes: Vec<String>,
    /// `global.external_labels` of the rendered config, which Prometheus adds to every series it sends.
    pub external_labels: Vec<(String, String)>,
}

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The user config could not be read.
    #[error("cannot read Prometheus config {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The user config is not valid YAML, or not a mapping.
    #[error("Prometheus config {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The config has no `remote_write` entry to test.
    #[error("Prometheus config {path} has no remote_write entry")]
    NoRemoteWrite {
        /// File.
        path: PathBuf,
    },
}

/// The scenario's base config (the user's own, or a minimal one) and the ingestion URL it writes to.
///
/// The runner calls this before starting the mock cloud, whose DCR must answer on the config's own URL.
pub fn base_config(scenario: &Scenario, scenario_dir: &Path) -> Result<(Value, Option<String>), RenderError> {
    let Some(rel) = &scenario.prometheus.config else {
        return Ok((json!({}), None));
    };
    let path = scenario_dir.join(rel);
    let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Read { path: path.clone(), source })?;
    let value: Value =
        serde_saphyr::from_str(&text).map_err(|e| RenderError::Parse { path: path.clone(), message: e.to_string() })?;
    if !value.is_object() {
        return Err(RenderError::Parse { path, message: "the top level is not a mapping".into() });
    }
    let url = value
        .get("remote_write")
        .and_then(Value::as_array)
        .and_then(|rw| rw.first())
        .and_then(|rw| rw.get("url"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if url.is_none() {
        return Err(RenderError::NoRemoteWrite { path });
    }
    Ok((value, url))
}

/// First version whose scrape config has `scrape_native_histograms` (3.8); older versions scrape native
/// histograms only with `--enable-feature=native-histograms`, which is a no-op from 3.9 on.
pub const SCRAPE_NATIVE_HISTOGRAMS_SINCE: Version = Version::new(3, 8, 0);

/// What the scenario's target serves that the agent must be told to scrape and send.
#[derive(Debug, Clone, Copy, Default)]
struct PayloadNeeds {
    native_histograms: bool,
    exemplars: bool,
}

impl PayloadNeeds {
    fn of(scenario: &Scenario) -> PayloadNeeds {
        let families = scenario.scrape.as_ref().map(|t| t.families()).unwrap_or_default();
        PayloadNeeds {
            native_histograms: families.contains(&crate::scenario::Family::NativeHistogram),
            exemplars: families.contains(&crate::scenario::Family::Exemplars),
        }
    }
}

/// Renders config, flags and environment.
pub fn render(input: &RenderInput<'_>) -> Result<RenderedAgent, RenderError> {
    let (mut config, user_url) = base_config(input.scenario, input.scenario_dir)?;
    let mut changes = Vec::new();
    let own_config = user_url.is_some();
    let root = config.as_object_mut().expect("base_config returns a mapping");

    if !own_config {
        root.insert("global".into(), json!({"external_labels": {"cluster": "azrw"}}));
        root.insert("remote_write".into(), json!([{"url": input.default_ingestion_url}]));
        changes.push("no config of the scenario's own: a minimal one (external label cluster=azrw)".into());
    }

    if !input.external_labels.is_empty() {
        let global = root.entry("global").or_insert_with(|| json!({}));
        if let Some(global) = global.as_object_mut() {
            let labels = global.entry("external_labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                for (k, v) in input.external_labels {
                    labels.insert(k.clone(), json!(v));
                    changes.push(format!("global.external_labels.{k}: {v} (tags this run's data)"));
                }
            }
        }
    }

    let needs = PayloadNeeds::of(input.scenario);
    let azuread = azuread_block(&input.scenario.auth, input.paths);
    let sidecar = input.scenario.remote_write_sidecar();
    let queue_overrides = &input.scenario.prometheus.queue_config;
    let entries = root.get_mut("remote_write").and_then(Value::as_array_mut).expect("remote_write is present");
    for (i, entry) in entries.iter_mut().enumerate() {
        let Some(entry) = entry.as_object_mut() else { continue };
        if let Some(sidecar) = sidecar {
            // As Azure's docs set it up: plain HTTP to the sidecar beside the agent, which holds the identity.
            let url = sidecar_write_url(sidecar.port);
            let why = format!("sidecar {} takes the remote-write", sidecar.name);
            set(entry, "url", json!(url), &format!("remote_write[{i}]"), &mut changes, &why);
            for key in ["azuread", "proxy_url"] {
                if entry.remove(key).is_some() {
                    changes.push(format!("remote_write[{i}].{key}: removed ({why} and authenticates)"));
                }
            }
        } else {
            if let Some(proxy_url) = input.proxy_url {
                set(
                    entry,
                    "proxy_url",
                    json!(proxy_url),
                    &format!("remote_write[{i}]"),
                    &mut changes,
                    "the mock cloud's proxy",
                );
            }
            if entry.get("azuread") != Some(&azuread) {
                let had = entry.contains_key("azuread");
                entry.insert("azuread".into(), azuread.clone());
                changes.push(format!(
                    "remote_write[{i}].azuread: {} the scenario's auth block ({})",
                    if had { "replaced by" } else { "set to" },
                    auth_summary(&input.scenario.auth)
                ));
            }
        }
        if let Some(message) = &input.scenario.prometheus.protobuf_message {
            set(
                entry,
                "protobuf_message",
                json!(message),
                &format!("remote_write[{i}]"),
                &mut changes,
                "from the scenario",
            );
        }
        if input.scenario.scrape.is_some() {
            // Metadata goes out once a minute by default; a payload case wants it within seconds.
            let meta = entry.entry("metadata_config").or_insert_with(|| json!({}));
            if let Some(meta) = meta.as_object_mut()
                && !meta.contains_key("send_interval")
            {
                meta.insert("send_interval".into(), json!("1s"));
                changes.push(format!(
                    "remote_write[{i}].metadata_config.send_interval: 1s (default 1m), so metadata is checked sooner"
                ));
            }
        }
        if needs.native_histograms {
            set(
                entry,
                "send_native_histograms",
                json!(true),
                &format!("remote_write[{i}]"),
                &mut changes,
                "the target serves a native histogram",
            );
        }
        if needs.exemplars {
            set(
                entry,
                "send_exemplars",
                json!(true),
                &format!("remote_write[{i}]"),
                &mut changes,
                "the target serves exemplars",
            );
        }
        if let Some(t) = input.scenario.prometheus.remote_timeout {
            let t = humantime::format_duration(t).to_string();
            entry.insert("remote_timeout".into(), json!(t));
            changes.push(format!("remote_write[{i}].remote_timeout: {t} (from the scenario)"));
        }
        let queue = entry.entry("queue_config").or_insert_with(|| json!({}));
        if let Some(queue) = queue.as_object_mut() {
            if !queue.contains_key("batch_send_deadline") {
                queue.insert("batch_send_deadline".into(), json!("1s"));
                changes.push(format!(
                    "remote_write[{i}].queue_config.batch_send_deadline: 1s (default 5s), so a case ends sooner"
                ));
            }
            for (k, v) in queue_overrides {
                queue.insert(k.clone(), v.clone());
                changes.push(format!("remote_write[{i}].queue_config.{k}: {v} (from the scenario)"));
            }
        }
    }

    let interval = humantime::format_duration(scrape_interval(input.scenario)).to_string();
    let scrape = root.entry("scrape_configs").or_insert_with(|| json!([]));
    if let Some(jobs) = scrape.as_array_mut() {
        let mut job = json!({
            "job_name": crate::scrape::JOB,
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "static_configs": [{"targets": [input.target]}],
        });
        if input.scenario.scrape.as_ref().is_some_and(|t| t.honor_labels) {
            job["honor_labels"] = json!(true);
        }
        if needs.native_histograms && input.version >= SCRAPE_NATIVE_HISTOGRAMS_SINCE {
            job["scrape_native_histograms"] = json!(true);
            changes.push(format!(
                "scrape_configs[{}].scrape_native_histograms: true (the target serves a native histogram; \
                 prometheus {} reads this setting, not the feature flag)",
                crate::scrape::JOB,
                input.version
            ));
        }
        jobs.push(job);
        changes.push(format!(
            "scrape_configs: added job {} scraping {} every {interval}",
            crate::scrape::JOB,
            input.target
        ));
    }

    if input.mode == AgentMode::Agent {
        agent_mode_config(root, &mut changes);
    }

    let external_labels = config
        .pointer("/global/external_labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect())
        .unwrap_or_default();
    let config_text = serde_saphyr::to_string(&config)
        .map_err(|e| RenderError::Parse { path: input.paths.config.clone(), message: e.to_string() })?;

    let mut args = vec![format!("--config.file={}", input.paths.config.display())];
    match input.mode {
        AgentMode::Server => args.push(format!("--storage.tsdb.path={}", input.paths.storage.display())),
        AgentMode::Agent => {
            let flag = if input.version >= AGENT_FLAG_SINCE { "--agent" } else { "--enable-feature=agent" };
            args.push(flag.into());
            args.push(format!("--storage.agent.path={}", input.paths.storage.display()));
            changes.push(format!("{flag} --storage.agent.path (agent mode: scrape and forward, no TSDB)"));
        }
    }
    args.push(format!("--web.listen-address={}", input.listen_address));
    for arg in &input.scenario.prometheus.args {
        // Agent mode refuses to start with server-only flags.
        if input.mode == AgentMode::Agent && arg.starts_with("--storage.tsdb.") {
            changes.push(format!("{arg}: dropped (agent mode refuses --storage.tsdb.* flags)"));
            continue;
        }
        args.push(arg.clone());
    }
    let mut feature = |name: &str, why: &str| {
        let flag = format!("--enable-feature={name}");
        if !args.iter().any(|a| a.starts_with("--enable-feature=") && a.split([',', '=']).any(|f| f == name)) {
            changes.push(format!("{flag} ({why})"));
            args.push(flag);
        }
    };
    if needs.native_histograms && input.version < SCRAPE_NATIVE_HISTOGRAMS_SINCE {
        feature("native-histograms", "the target serves a native histogram");
    }
    if needs.exemplars {
        feature("exemplar-storage", "the target serves exemplars; without the storage none are kept to send");
    }

    Ok(RenderedAgent { config: config_text, args, env: environment(input), changes, external_labels })
}

/// First version with the `--agent` flag; 2.x switches agent mode on as a feature (`--enable-feature=agent`).
pub const AGENT_FLAG_SINCE: Version = Version::new(3, 0, 0);

/// Top-level config keys `prometheus --agent` refuses ("field X is not allowed in agent mode").
pub const SERVER_ONLY_KEYS: [&str; 3] = ["rule_files", "alerting", "remote_read"];

/// Removes what agent mode refuses from a (user's) config: rules, alerting, remote read and `storage.tsdb`.
fn agent_mode_config(root: &mut Map<String, Value>, changes: &mut Vec<String>) {
    for key in SERVER_ONLY_KEYS {
        if root.remove(key).is_some() {
            changes.push(format!("{key}: removed (agent mode does not allow it)"));
        }
    }
    if let Some(storage) = root.get_mut("storage").and_then(Value::as_object_mut)
        && storage.remove("tsdb").is_some()
    {
        changes.push("storage.tsdb: removed (agent mode has no TSDB)".into());
    }
}

/// Where the agent writes when a sidecar takes its remote-write.
pub fn sidecar_write_url(port: u16) -> String {
    format!("http://localhost:{port}/api/v1/write")
}

fn set(entry: &mut Map<String, Value>, key: &str, value: Value, at: &str, changes: &mut Vec<String>, why: &str) {
    if entry.get(key) != Some(&value) {
        changes.push(format!("{at}.{key}: {} ({why})", value.as_str().map_or(value.to_string(), str::to_owned)));
        entry.insert(key.into(), value);
    }
}

/// The `azuread` block Prometheus is given for this auth spec.
pub fn azuread_block(auth: &AuthSpec, paths: &AgentPaths) -> Value {
    let mut block = Map::new();
    block.insert("cloud".into(), json!(auth.cloud.to_string()));
    if let Some(mi) = &auth.managed_identity {
        block.insert("managed_identity".into(), json!({"client_id": mi.client_id}));
    }
    if let Some(o) = &auth.oauth {
        block.insert(
            "oauth".into(),
            json!({"client_id": o.client_id, "client_secret": o.client_secret, "tenant_id": o.tenant_id}),
        );
    }
    if let Some(c) = &auth.certificate {
        let mut cert = json!({
            "client_id": c.client_id,
            "tenant_id": c.tenant_id,
            "certificate_path": paths.client_certificate.display().to_string(),
            "certificate_key_path": paths.client_key.display().to_string(),
        });
        if c.send_certificate_chain {
            cert["send_certificate_chain"] = json!(true);
        }
        block.insert("certificate".into(), cert);
    }
    if let Some(w) = &auth.workload_identity {
        block.insert(
            "workload_identity".into(),
            json!({
                "client_id": w.client_id,
                "tenant_id": w.tenant_id,
                "token_file_path": paths.federated_token.display().to_string(),
            }),
        );
    }
    if let Some(s) = &auth.sdk {
        block.insert("sdk".into(), json!({"tenant_id": s.tenant_id}));
    }
    if let Some(scope) = &auth.scope {
        block.insert("scope".into(), json!(scope));
    }
    Value::Object(block)
}

/// One line naming the auth method, never a secret.
pub fn auth_summary(auth: &AuthSpec) -> String {
    let method = if let Some(mi) = &auth.managed_identity {
        if mi.client_id.is_empty() {
            "managed_identity, system-assigned".to_owned()
        } else {
            format!("managed_identity, client_id {}", mi.client_id)
        }
    } else if let Some(o) = &auth.oauth {
        format!("oauth, client_id {}, client_secret {}", o.client_id, crate::redact::PLACEHOLDER)
    } else if let Some(c) = &auth.certificate {
        format!("certificate, client_id {}", c.client_id)
    } else if let Some(w) = &auth.workload_identity {
        format!("workload_identity, client_id {}", w.client_id)
    } else if let Some(s) = &auth.sdk {
        match &s.via {
            SdkVia::WorkloadIdentity { client_id, .. } => format!("sdk via workload identity, client_id {client_id}"),
            SdkVia::ManagedIdentity { client_id } if client_id.is_empty() => {
                "sdk via managed identity, system-assigned".into()
            }
            SdkVia::ManagedIdentity { client_id } => format!("sdk via managed identity, client_id {client_id}"),
        }
    } else {
        "none".to_owned()
    };
    format!("{method}, cloud {}", auth.cloud)
}

/// What every process azrw starts in a sandbox gets (agents and sidecars): the proxy variables that lead to the
/// mock cloud and the CA it must trust (none against real Azure), and a `HOME`.
pub fn base_environment(proxy_url: Option<&str>, ca_bundle: &Path) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(proxy_url) = proxy_url {
        env.extend([
            ("HTTP_PROXY".to_owned(), proxy_url.to_owned()),
            ("HTTPS_PROXY".to_owned(), proxy_url.to_owned()),
            // Deliberately empty: 169.254.169.254 must go through the proxy to reach the mock IMDS.
            ("NO_PROXY".to_owned(), String::new()),
            ("SSL_CERT_FILE".to_owned(), ca_bundle.display().to_string()),
        ]);
    }
    env.push(("HOME".to_owned(), "/tmp".to_owned()));
    env
}

/// The agent's whole environment: proxy variables that lead to the mock cloud, the CA it must trust, and the
/// `AZURE_*` variables the auth type needs. Nothing is inherited from the harness's own environment.
fn environment(input: &RenderInput<'_>) -> Vec<(String, String)> {
    let mut env = base_environment(input.proxy_url, &input.paths.ca_bundle);
    // With a remote-write sidecar the identity is the sidecar's: the agent gets none.
    if input.scenario.remote_write_sidecar().is_some() {
        env.extend(input.scenario.prometheus.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        return env;
    }
    let auth = &input.scenario.auth;
    if let Some(sdk) = &auth.sdk {
        match &sdk.via {
            SdkVia::WorkloadIdentity { client_id, .. } => {
                env.push((azure_env::CLIENT_ID.into(), client_id.clone()));
                env.push((azure_env::TENANT_ID.into(), sdk.tenant_id.clone()));
                env.push((azure_env::FEDERATED_TOKEN_FILE.into(), input.paths.federated_token.display().to_string()));
                env.push((azure_env::AUTHORITY_HOST.into(), format!("https://{}/", auth.cloud.authority_host())));
            }
            SdkVia::ManagedIdentity { client_id } if !client_id.is_empty() => {
                env.push((azure_env::CLIENT_ID.into(), client_id.clone()));
            }
            SdkVia::ManagedIdentity { .. } => {}
        }
    }
    if let Some(w) = &auth.workload_identity {
        // What the workload-identity webhook injects; Prometheus ≥ 3.14 reads the token file from it.
        env.push((azure_env::CLIENT_ID.into(), w.client_id.clone()));
        env.push((azure_env::TENANT_ID.into(), w.tenant_id.clone()));
        env.push((azure_env::FEDERATED_TOKEN_FILE.into(), input.paths.federated_token.display().to_string()));
    }
    env.extend(input.scenario.prometheus.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// How often the agent scrapes the harness target: the scenario's `prometheus.scrape_interval`, else 1s.
pub fn scrape_interval(scenario: &Scenario) -> std::time::Duration {
    scenario.prometheus.scrape_interval.unwrap_or(std::time::Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        scenario: &'a Scenario,
        paths: &'a AgentPaths,
        proxy: Option<&'a str>,
        labels: &'a [(String, String)],
    ) -> RenderInput<'a> {
        RenderInput {
            scenario,
            scenario_dir: Path::new("."),
            version: Version::new(3, 5, 1),
            mode: AgentMode::Server,
            proxy_url: proxy,
            external_labels: labels,
            default_ingestion_url: "https://dce.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-1/streams/Microsoft-PrometheusMetrics/api/v1/write",
            target: "127.0.0.1:9",
            listen_address: "127.0.0.1:9090",
            paths,
        }
    }

    #[test]
    fn real_target_gets_no_proxy_and_no_test_ca_but_the_run_label() {
        let scenario: Scenario =
            serde_saphyr::from_str("name: r\nagents: [prometheus@3.5]\nauth: {managed_identity: {client_id: ''}}\n")
                .unwrap();
        let paths = AgentPaths::under(Path::new("/in"));
        let labels = vec![("azrw_run".to_owned(), "run-1".to_owned())];
        let real = render(&input(&scenario, &paths, None, &labels)).unwrap();
        assert!(!real.config.contains("proxy_url"), "{}", real.config);
        assert!(real.config.contains("azrw_run: run-1"), "{}", real.config);
        let keys: Vec<&str> = real.env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(!keys.iter().any(|k| k.contains("PROXY") || *k == "SSL_CERT_FILE"), "{keys:?}");

        let mock = render(&input(&scenario, &paths, Some("http://127.0.0.1:1"), &[])).unwrap();
        assert!(mock.config.contains("proxy_url: http://127.0.0.1:1"), "{}", mock.config);
        assert!(mock.env.iter().any(|(k, _)| k == "SSL_CERT_FILE"));
        assert!(!mock.config.contains("azrw_run"));
    }

    #[test]
    fn agent_mode_starts_with_agent_storage_and_drops_what_the_mode_refuses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yml"),
            "rule_files: [r.yml]\nalerting: {alertmanagers: []}\nremote_read: [{url: 'http://r'}]\n\
             storage: {tsdb: {out_of_order_time_window: 1m}}\nremote_write: [{url: 'https://x/api/v1/write'}]\n",
        )
        .unwrap();
        let scenario: Scenario = serde_saphyr::from_str(
            "name: r\nagents: [prometheus@3.5]\nauth: {managed_identity: {client_id: ''}}\n\
             prometheus: {config: p.yml, args: [--storage.tsdb.retention.time=1d]}\n",
        )
        .unwrap();
        let paths = AgentPaths::under(Path::new("/in"));
        let base = RenderInput { scenario_dir: dir.path(), ..input(&scenario, &paths, None, &[]) };
        let server = render(&base).unwrap();
        assert!(server.args.contains(&"--storage.tsdb.path=/in/data".to_owned()), "{:?}", server.args);
        assert!(server.config.contains("rule_files"), "{}", server.config);

        let agent = render(&RenderInput { mode: AgentMode::Agent, ..base }).unwrap();
        assert!(agent.args.contains(&"--agent".to_owned()), "{:?}", agent.args);
        assert!(agent.args.contains(&"--storage.agent.path=/in/data".to_owned()), "{:?}", agent.args);
        assert!(!agent.args.iter().any(|a| a.starts_with("--storage.tsdb.")), "{:?}", agent.args);
        for key in ["rule_files", "alerting", "remote_read", "tsdb"] {
            assert!(!agent.config.contains(key), "{key}: {}", agent.config);
        }
        assert!(agent.changes.iter().any(|c| c.starts_with("rule_files: removed")), "{:?}", agent.changes);
        let old = render(&RenderInput { mode: AgentMode::Agent, version: Version::new(2, 53, 4), ..base }).unwrap();
        assert!(old.args.contains(&"--enable-feature=agent".to_owned()), "{:?}", old.args);
        assert!(!old.args.contains(&"--agent".to_owned()), "{:?}", old.args);
    }

    #[test]
    fn native_histograms_and_exemplars_are_switched_on_the_way_each_version_reads() {
        let scenario: Scenario = serde_saphyr::from_str(
            "name: r\nagents: [prometheus@3.5]\nauth: {managed_identity: {client_id: ''}}\n\
             scrape: {families: [native-histogram]}\n",
        )
        .unwrap();
        let paths = AgentPaths::under(Path::new("/in"));
        let old = render(&input(&scenario, &paths, None, &[])).unwrap();
        assert!(old.args.contains(&"--enable-feature=native-histograms".to_owned()), "{:?}", old.args);
        assert!(!old.config.contains("scrape_native_histograms"), "{}", old.config);
        assert!(old.config.contains("send_native_histograms: true"), "{}", old.config);
        let new =
            render(&RenderInput { version: Version::new(3, 16, 0), ..input(&scenario, &paths, None, &[]) }).unwrap();
        assert!(!new.args.iter().any(|a| a.contains("native-histograms")), "{:?}", new.args);
        assert!(new.config.contains("scrape_native_histograms: true"), "{}", new.config);

        let scenario: Scenario = serde_saphyr::from_str(
            "name: r\nagents: [prometheus@3.5]\nauth: {managed_identity: {client_id: ''}}\n\
             scrape: {families: [exemplars]}\nprometheus: {args: [--enable-feature=exemplar-storage]}\n",
        )
        .unwrap();
        let ex = render(&input(&scenario, &paths, None, &[])).unwrap();
        assert_eq!(ex.args.iter().filter(|a| a.contains("exemplar-storage")).count(), 1, "{:?}", ex.args);
        assert!(ex.config.contains("send_exemplars: true"), "{}", ex.config);
    }
}
