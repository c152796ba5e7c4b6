//! The scenario file model. Every struct rejects unknown fields so that a typo is an error, not a silent default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::azure::AzureCloud;

/// The port every agent is told to listen on (its web UI, API and `/metrics`).
pub const AGENT_PORT: u16 = 9090;

/// The port a sidecar listens on unless the scenario says otherwise: the one Azure's docs use.
pub const SIDECAR_PORT: u16 = 8081;

/// What the recorder keeps of each remote-write body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordMode {
    /// Every decoded body (the default: exact evidence per request).
    #[default]
    Full,
    /// Accepted and throttled (429) bodies are folded into per-series accounting (`cloud::accounting`) and their series dropped;
    /// headers, auth and the rest of the exchange are kept. Memory stays flat as volume grows.
    Accounting,
}

/// One scenario file: which agents to run, how they authenticate, what the mock cloud believes, what must happen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Stable name, used in case ids and reports (`auth/managed-identity/system-assigned`).
    pub name: String,
    /// One or two sentences for people reading a report.
    #[serde(default)]
    pub about: String,
    /// Agents to run, e.g. `prometheus@2.53`, `prometheus@3.5.1`, `prometheus@latest`, or the user's own build:
    /// `{binary: PATH}` (relative to the scenario file) or `{image: REPO:TAG}`, each with an optional
    /// `assume_version` for a build whose `--version` cannot be read.
    pub agents: Vec<AgentEntry>,
    /// Runtimes to run under; empty means the run's default (`--runtime`).
    #[serde(default)]
    pub runtimes: Vec<RuntimeKind>,
    /// Prometheus modes to run: `server` (default) and/or `agent` (`prometheus --agent`).
    #[serde(default)]
    pub modes: Vec<AgentMode>,
    /// How the agent is configured beyond `auth`.
    #[serde(default)]
    pub prometheus: PrometheusSpec,
    /// The `azuread` block the agent is given (same shape as Prometheus' own). With a remote-write sidecar it is the
    /// sidecar's identity instead, handed over through the sidecar's environment contract.
    pub auth: AuthSpec,
    /// Containers beside the agent, sharing its network namespace as a pod's containers do. One of them may take
    /// the agent's remote-write (`http://localhost:<port>/api/v1/write`) and authenticate towards the DCR itself.
    #[serde(default)]
    pub sidecars: Vec<SidecarSpec>,
    /// Further values the agent must keep to itself, beyond those azrw hands it (client secret, certificate key,
    /// federated token, issued tokens): e.g. a `basic_auth` password in your own `prometheus.config`. The security
    /// checks look for each in the agent's config endpoint and log; artefacts never show them.
    #[serde(default, skip_serializing)]
    pub secrets: Vec<String>,
    /// What the mock Azure cloud believes: role assignments, known secrets, token lifetime.
    #[serde(default)]
    pub cloud: CloudSpec,
    /// The metric families the harness scrape target serves; with this block the payload checks run.
    #[serde(default)]
    pub scrape: Option<ScrapeSpec>,
    /// What goes wrong in the mock cloud, and when: failing statuses, latency, resets, outages, token troubles.
    #[serde(default)]
    pub faults: FaultSpec,
    /// What must happen.
    #[serde(default)]
    pub expect: ExpectSpec,
    /// Upper bound for the case; it ends earlier as soon as every expectation is decided.
    #[serde(default = "default_deadline", with = "humantime_serde")]
    pub deadline: Duration,
    /// What the recorder keeps of write bodies: `full` (default) or `accounting` (per-series tallies, for load).
    #[serde(default)]
    pub record: RecordMode,
    /// Sustained load: the scrape target serves this many extra series and the case runs for `duration`.
    #[serde(default)]
    pub load: Option<LoadSpec>,
    /// Where the agent writes: the mock cloud (default) or a real Azure Monitor workspace (`azure`, opt-in).
    #[serde(default)]
    pub target: TargetKind,
    /// The real target's endpoints and the identity the harness reads the workspace with. Values may name
    /// environment variables as `${NAME}` (so may `auth`'s), resolved only when the case runs against Azure.
    #[serde(default)]
    pub azure: Option<AzureTargetSpec>,
}

/// The image value that selects azrw's own reference sidecar (`azrw sidecar`).
pub const REFERENCE_SIDECAR: &str = "reference";

/// `sidecars[]`: a container beside the agent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarSpec {
    /// Names the container and its log (`sidecar-<name>.log`).
    pub name: String,
    /// `reference` (default): azrw's reference remote-write sidecar, which also runs in the process runtime.
    /// Anything else is a local Docker image (never pulled), e.g. Azure's
    /// `mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-remote-write/images:prom-remotewrite-…`
    /// after `docker load`; such a sidecar runs in the docker runtime only.
    #[serde(default = "reference_image")]
    pub image: String,
    /// Environment, on top of the contract azrw derives from `auth` for the remote-write sidecar (the scenario's
    /// values win), plus the proxy and CA variables that lead to the mock cloud.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The port it listens on (`LISTENING_PORT`). Default 8081, as in Azure's docs.
    #[serde(default = "default_sidecar_port")]
    pub port: u16,
    /// Whether the agent's remote-write goes to this sidecar instead of the DCR. Default true.
    #[serde(default = "yes")]
    pub remote_write: bool,
}

impl SidecarSpec {
    /// Whether this is azrw's reference sidecar.
    pub fn is_reference(&self) -> bool {
        self.image == REFERENCE_SIDECAR
    }
}

fn reference_image() -> String {
    REFERENCE_SIDECAR.to_owned()
}

fn default_sidecar_port() -> u16 {
    SIDECAR_PORT
}

fn yes() -> bool {
    true
}

impl Scenario {
    /// The sidecar that takes the agent's remote-write, if any.
    pub fn remote_write_sidecar(&self) -> Option<&SidecarSpec> {
        self.sidecars.iter().find(|s| s.remote_write)
    }
}

/// Where a scenario's agent writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// The in-process mock Azure cloud; nothing leaves the machine.
    #[default]
    Mock,
    /// A real DCR and Azure Monitor workspace; arrival is verified by querying the workspace.
    Azure,
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetKind::Mock => "mock",
            TargetKind::Azure => "azure",
        })
    }
}

/// `azure:` — the real endpoints, usually `${NAME}` references to CI secrets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AzureTargetSpec {
    /// The DCR ingestion URL the agent writes to (`https://<dce>…/dataCollectionRules/<id>/streams/…`).
    pub ingestion_url: String,
    /// The Azure Monitor workspace query endpoint (`https://<workspace>.<region>.prometheus.monitor.azure.com`).
    pub query_url: String,
    /// The identity the harness queries the workspace with (needs Monitoring Data Reader); default: `auth.oauth`.
    #[serde(default)]
    pub reader: Option<ReaderSpec>,
}

/// An Entra app (client secret) that may read the workspace.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret. Never printed.
    pub client_secret: String,
}

/// `load`: how much the agent must carry, and for how long.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Extra series the scrape target serves (`azrw_load_series{series="N"}`), one sample each per scrape.
    pub series: usize,
    /// How long accepted writes must be sustained before the case is decided.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Accepted samples per minute the agent must sustain (Azure's default workspace limit is 1,000,000).
    #[serde(default)]
    pub min_samples_per_minute: Option<u64>,
}

fn default_deadline() -> Duration {
    Duration::from_secs(60)
}

/// Where an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A child process in a network namespace that has only loopback.
    Process,
    /// A container on an internal Docker network.
    Docker,
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeKind::Process => "process",
            RuntimeKind::Docker => "docker",
        })
    }
}

/// How Prometheus runs: as a server (TSDB, rules, queries) or in agent mode (`--agent`: scrape and forward only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    /// `prometheus` as a server, the default.
    #[default]
    Server,
    /// `prometheus --agent`.
    Agent,
}

impl std::fmt::Display for AgentMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AgentMode::Server => "server",
            AgentMode::Agent => "agent",
        })
    }
}

/// One `agents:` entry as written: a string (`prometheus@3.5`), or `{binary: PATH}` / `{image: REPO:TAG}` with an
/// optional `assume_version`. Both forms are kept in the command line's spelling (`prometheus=PATH`,
/// `prometheus=image:REPO:TAG`), which `load` validates with the entry's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEntry {
    /// The `--agent` spelling of the entry.
    pub written: String,
    /// `assume_version`, unparsed (validated by `load`).
    pub assume_version: Option<String>,
}

impl std::fmt::Display for AgentEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

impl From<&str> for AgentEntry {
    fn from(written: &str) -> AgentEntry {
        AgentEntry { written: written.to_owned(), assume_version: None }
    }
}

impl<'de> Deserialize<'de> for AgentEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<AgentEntry, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Own {
            binary: Option<String>,
            image: Option<String>,
            assume_version: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Written(String),
            Own(Own),
        }
        match Form::deserialize(deserializer)? {
            Form::Written(written) => Ok(AgentEntry { written, assume_version: None }),
            Form::Own(Own { binary: Some(path), image: None, assume_version }) => {
                Ok(AgentEntry { written: format!("prometheus={path}"), assume_version })
            }
            Form::Own(Own { binary: None, image: Some(image), assume_version }) => {
                Ok(AgentEntry { written: format!("prometheus=image:{image}"), assume_version })
            }
            Form::Own(_) => Err(serde::de::Error::custom(
                "an agent is prometheus@VERSION, or {binary: PATH} or {image: REPO:TAG} (exactly one of the two)",
            )),
        }
    }
}

/// Agent configuration beyond the auth block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    /// A user's own `prometheus.yml`, relative to the scenario file. azrw changes only what it must (proxy, CA,
    /// scrape target, queue timings) and reports every change. Without it a minimal config is used.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Scrape interval for the harness target (and `global`, unless the config sets it). Default 1s.
    #[serde(default, with = "humantime_serde::option")]
    pub scrape_interval: Option<Duration>,
    /// Extra `queue_config` keys merged into every `remote_write` entry (e.g. `retry_on_http_429: true`).
    #[serde(default)]
    pub queue_config: BTreeMap<String, serde_json::Value>,
    /// `protobuf_message` of every `remote_write` entry: `prometheus.WriteRequest` (RW 1.0) or
    /// `io.prometheus.write.v2.Request` (RW 2.0, Prometheus ≥ 3.0).
    #[serde(default)]
    pub protobuf_message: Option<String>,
    /// `remote_timeout` of every `remote_write` entry (Prometheus' default is 30s); faults that delay answers
    /// beyond it are seen by the agent as timeouts.
    #[serde(default, with = "humantime_serde::option")]
    pub remote_timeout: Option<Duration>,
    /// Extra command-line flags.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Hosts of further `remote_write` entries without `azuread` (`https://HOST/api/v1/write`), beside the one
    /// that authenticates: the mock cloud serves and records them as plain receivers, and `security.token-scope`
    /// checks that none ever gets the bearer token.
    #[serde(default)]
    pub plain_remote_writes: Vec<String>,
}

/// `target`: what the harness scrape target serves, so every sample the agent must send is known.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeSpec {
    /// A named set of families (`compliance`: every well-formed family).
    #[serde(default)]
    pub preset: Option<TargetPreset>,
    /// Families served in addition to the preset's.
    #[serde(default)]
    pub families: Vec<Family>,
    /// `honor_labels` of the harness scrape job: target-supplied `job`/`instance` win instead of becoming
    /// `exported_job`/`exported_instance`.
    #[serde(default)]
    pub honor_labels: bool,
    /// How many scrapes must arrive complete before the payload checks pass. Default 4.
    #[serde(default)]
    pub scrapes: Option<u64>,
    /// The exposition format the target answers in when the agent's `Accept` offers it (else the classic text
    /// format, which the payload checks report). Default: `protobuf` when a native histogram is served,
    /// `openmetrics` when exemplars or units are, else `text`.
    #[serde(default)]
    pub exposition: Option<Exposition>,
}

/// An exposition format of the scrape target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposition {
    /// The classic text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0.0 text: `# UNIT`, exemplars, `# EOF`.
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` protobuf: the only format with native histograms.
    Protobuf,
}

impl Exposition {
    /// The `Content-Type` the target answers with.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Text => "text/plain; version=0.0.4; charset=utf-8",
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// Whether an `Accept` header offers this format (the classic text format is always served as a fallback).
    pub fn offered_by(self, accept: &str) -> bool {
        let media = |m: &str| {
            accept.split(',').any(|part| {
                let mut params = part.split(';').map(str::trim);
                let matches = params.next().is_some_and(|t| t.eq_ignore_ascii_case(m));
                let refused = params.any(|p| p.replace(' ', "") == "q=0");
                matches && !refused
            })
        };
        match self {
            Exposition::Text => true,
            Exposition::OpenMetrics => media("application/openmetrics-text"),
            Exposition::Protobuf => {
                media("application/vnd.google.protobuf")
                    && accept.contains("proto=io.prometheus.client.MetricFamily")
                    && accept.contains("encoding=delimited")
            }
        }
    }
}

impl std::fmt::Display for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exposition::Text => "text 0.0.4",
            Exposition::OpenMetrics => "OpenMetrics 1.0.0",
            Exposition::Protobuf => "protobuf (delimited MetricFamily)",
        })
    }
}

impl ScrapeSpec {
    /// The format the target prefers: the scenario's, else the one its families need.
    pub fn exposition(&self) -> Exposition {
        self.exposition.unwrap_or_else(|| {
            let families = self.families();
            if families.contains(&Family::NativeHistogram) {
                Exposition::Protobuf
            } else if families.iter().any(|f| matches!(f, Family::Exemplars | Family::Unit)) {
                Exposition::OpenMetrics
            } else {
                Exposition::Text
            }
        })
    }

    /// A family the chosen format cannot carry, with the reason (scenario validation reports it).
    pub fn unsupported(&self) -> Option<String> {
        let format = self.exposition();
        let need = |f: Family| match f {
            Family::NativeHistogram => Some(Exposition::Protobuf),
            Family::Exemplars | Family::Unit => Some(Exposition::OpenMetrics),
            _ => None,
        };
        self.families().into_iter().find_map(|f| {
            let want = need(f)?;
            (want != format)
                .then(|| format!("family {f:?} needs exposition {want:?}, but the target serves {format:?}"))
        })
    }

    /// The preset's families followed by the listed ones, each once.
    pub fn families(&self) -> Vec<Family> {
        let mut out: Vec<Family> = self.preset.map(TargetPreset::families).unwrap_or_default().to_vec();
        for f in &self.families {
            if !out.contains(f) {
                out.push(*f);
            }
        }
        out
    }
}

/// Named family sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetPreset {
    /// Every family a well-behaved agent delivers intact (no scrape-failing or Azure-refused family).
    Compliance,
}

impl TargetPreset {
    /// The families of the preset.
    pub fn families(self) -> &'static [Family] {
        match self {
            TargetPreset::Compliance => &[
                Family::Counter,
                Family::Gauge,
                Family::SpecialValues,
                Family::Histogram,
                Family::Summary,
                Family::Labels,
                Family::HonorLabels,
                Family::Staleness,
            ],
        }
    }
}

/// One metric family of the scrape target. Values follow the scrape number, so each scrape's samples are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// `azrw_counter_total`: 0, 1, 2, … (one per scrape).
    Counter,
    /// `azrw_gauge`: cycles through negative, zero, fractional, integral, scientific values.
    Gauge,
    /// `azrw_special{case=…}`: NaN, ±Inf, 0, negative, largest and smallest floats.
    SpecialValues,
    /// `azrw_histogram`: classic histogram (`_bucket` with `le`, `_sum`, `_count`).
    Histogram,
    /// `azrw_summary`: quantiles 0.5/0.9/0.99, `_sum`, `_count`.
    Summary,
    /// `azrw_labels`: non-ASCII and escaped values, and an empty value that must be dropped.
    Labels,
    /// `azrw_honor`: the target supplies `job` and `instance` itself.
    HonorLabels,
    /// `azrw_stale`: present on two scrapes, absent on two — a stale marker on each disappearance.
    Staleness,
    /// Invalid exposition: every scrape fails, only `up == 0` arrives.
    Invalid,
    /// `azrw_repeated{a="1",a="1"}`: repeated label names fail the scrape.
    RepeatedLabels,
    /// A series with 64 labels: Azure allows at most 63 per series.
    TooManyLabels,
    /// A label name of 512 characters: Azure allows at most 511.
    LongLabelName,
    /// A label value of 1024 characters: Azure allows at most 1023.
    LongLabelValue,
    /// Label names `azrw_case` and `AZRW_CASE`: distinct for Prometheus, duplicates for Azure.
    CaseDuplicateLabels,
    /// `azrw_native`: an integer native histogram (protobuf exposition) whose buckets grow each scrape.
    NativeHistogram,
    /// `azrw_exemplar_total` and `azrw_exemplar_hist` with exemplars (OpenMetrics), a new one every other scrape.
    Exemplars,
    /// `azrw_latency_seconds` with `# UNIT azrw_latency_seconds seconds` (OpenMetrics).
    Unit,
}

/// The `azuread` block, in Prometheus' own shape. Exactly one method must be set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Cloud the agent is configured for.
    #[serde(default)]
    pub cloud: AzureCloud,
    /// Managed identity; `client_id: ""` is system-assigned (Prometheus ≥ 3.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_identity: Option<ManagedIdentityAuth>,
    /// Entra app with a client secret (Prometheus ≥ 2.48).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthAuth>,
    /// Entra app with a certificate (Prometheus ≥ 3.13). azrw generates the certificate and key files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateAuth>,
    /// Native workload identity (Prometheus ≥ 3.7). azrw writes the federated token file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentityAuth>,
    /// The Azure SDK's DefaultAzureCredential (Prometheus ≥ 2.52), driven by `AZURE_*` environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkAuth>,
    /// Custom OAuth scope (Prometheus ≥ 3.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `managed_identity`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentityAuth {
    /// Client id of a user-assigned identity; empty for system-assigned.
    #[serde(default)]
    pub client_id: String,
}

/// `oauth`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthAuth {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret. Never printed: reports show `[redacted]`.
    pub client_secret: String,
    /// Directory (tenant) id.
    pub tenant_id: String,
}

/// `certificate`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateAuth {
    /// Application (client) id.
    pub client_id: String,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Send the `x5c` chain in the assertion.
    #[serde(default)]
    pub send_certificate_chain: bool,
    /// Real target only: a PEM file holding the app's certificate and its private key (the agent gets them as
    /// `certificate_path` and `certificate_key_path`). Default `${AZURE_CLIENT_CERTIFICATE_PATH}`, the Azure SDKs'
    /// variable. In the mock cloud azrw generates the pair instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<String>,
}

/// `workload_identity`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadIdentityAuth {
    /// Client id of the federated identity.
    pub client_id: String,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Kubernetes service account the federated token is issued for, `namespace/name`.
    #[serde(default = "default_service_account")]
    pub service_account: String,
    /// Real target only: the federated service-account token file. Default `${AZURE_FEDERATED_TOKEN_FILE}`, what
    /// the AKS workload-identity webhook injects. In the mock cloud azrw issues the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

fn default_service_account() -> String {
    "monitoring/prometheus".to_owned()
}

/// `sdk`: DefaultAzureCredential, with the credential azrw sets up through the environment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SdkAuth {
    /// Directory (tenant) id passed to Prometheus.
    pub tenant_id: String,
    /// Which credential of the chain the environment drives.
    pub via: SdkVia,
}

/// The credential inside DefaultAzureCredential that azrw's environment selects.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SdkVia {
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity {
        /// Client id of the federated identity.
        client_id: String,
        /// Kubernetes service account, `namespace/name`.
        #[serde(default = "default_service_account")]
        service_account: String,
        /// Real target only: the federated token file, as for `workload_identity`. Default
        /// `${AZURE_FEDERATED_TOKEN_FILE}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<String>,
    },
    /// IMDS (the chain falls through to ManagedIdentityCredential).
    ManagedIdentity {
        /// User-assigned client id (`AZURE_CLIENT_ID`), or empty for system-assigned.
        #[serde(default)]
        client_id: String,
    },
}

/// What the mock Azure cloud believes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSpec {
    /// Role assignments. Default: the configured identity holds Monitoring Metrics Publisher on the DCR.
    #[serde(default = "default_roles")]
    pub roles: Vec<RoleAssignment>,
    /// The secret Entra knows for the app; default: the one in `auth.oauth` (set it to test a wrong secret).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Client ids that exist (apps, user-assigned identities); default: the configured one.
    #[serde(default)]
    pub client_ids: Option<Vec<String>>,
    /// The cloud the DCR lives in (whose audience it accepts); default: `auth.cloud`.
    #[serde(default)]
    pub dcr_cloud: Option<AzureCloud>,
    /// Lifetime of the access tokens the mock issues.
    #[serde(default = "default_token_lifetime", with = "humantime_serde")]
    pub token_lifetime: Duration,
    /// DCR immutable id in the ingestion URL.
    #[serde(default = "default_dcr_id")]
    pub dcr_id: String,
    /// Answer remote-write 2.0 with 415 Unsupported Media Type (Azure documents only RW 1.0).
    #[serde(default)]
    pub refuse_rw2: bool,
}

impl Default for CloudSpec {
    fn default() -> Self {
        CloudSpec {
            roles: default_roles(),
            client_secret: None,
            client_ids: None,
            dcr_cloud: None,
            token_lifetime: default_token_lifetime(),
            dcr_id: default_dcr_id(),
            refuse_rw2: false,
        }
    }
}

fn default_roles() -> Vec<RoleAssignment> {
    vec![RoleAssignment::default()]
}

fn default_token_lifetime() -> Duration {
    Duration::from_secs(3600)
}

fn default_dcr_id() -> String {
    "dcr-00000000000000000000000000000a2b".to_owned()
}

/// One role assignment in the mock's IAM.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// `configured` (the identity the agent uses), `system-assigned`, or a client id.
    #[serde(default = "default_identity")]
    pub identity: String,
    /// Role name.
    #[serde(default = "default_role")]
    pub role: String,
    /// Where the role is assigned.
    #[serde(default)]
    pub scope: RoleScope,
}

impl Default for RoleAssignment {
    fn default() -> Self {
        RoleAssignment { identity: default_identity(), role: default_role(), scope: RoleScope::Dcr }
    }
}

fn default_identity() -> String {
    "configured".to_owned()
}

fn default_role() -> String {
    "Monitoring Metrics Publisher".to_owned()
}

/// Scope of a role assignment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleScope {
    /// The data collection rule (what ingestion checks).
    #[default]
    Dcr,
    /// The Azure Monitor workspace (a common mistake: ingestion still answers 403).
    Workspace,
}

/// The outcome a case must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Authenticated writes reached the DCR and the expected series arrived.
    Delivered,
    /// The agent refused its config at start-up (an auth type its version lacks, or a malformed block).
    ConfigRejected,
    /// Writes reached the DCR, were refused (401/403) and dropped by the agent, never resent.
    Dropped,
    /// The token service refused the agent; nothing reached the DCR.
    AuthFailed,
    /// The agent is a build without `azuread` support at all (Debian's and Ubuntu's packages): it refused the
    /// config field `azuread` itself, whatever the auth type.
    NoAzuread,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Delivered => "delivered",
            Outcome::ConfigRejected => "config-rejected",
            Outcome::Dropped => "dropped",
            Outcome::AuthFailed => "auth-failed",
            Outcome::NoAzuread => "no-azuread",
        })
    }
}

/// `expect.outcome`: one outcome for every agent, or a map by agent (`default` plus `prometheus@2.53` …).
///
/// Deserialised by hand rather than `#[serde(untagged)]`: untagged enums replace every inner error with "data did
/// not match any variant", which hides the misspelt outcome and where it is.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OutcomeSpec {
    /// Same outcome everywhere.
    One(Outcome),
    /// Per agent; a missing `default` means "what the capability table predicts".
    PerAgent(BTreeMap<String, Outcome>),
}

impl<'de> Deserialize<'de> for OutcomeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<OutcomeSpec, D::Error> {
        struct OutcomeSpecVisitor;

        impl<'de> serde::de::Visitor<'de> for OutcomeSpecVisitor {
            type Value = OutcomeSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an outcome (delivered, config-rejected, dropped, auth-failed, no-azuread) or a map from agent to outcome",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OutcomeSpec, E> {
                use serde::de::IntoDeserializer;
                Outcome::deserialize(v.into_deserializer()).map(OutcomeSpec::One)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OutcomeSpec, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((agent, outcome)) = map.next_entry::<String, Outcome>()? {
                    if out.insert(agent.clone(), outcome).is_some() {
                        return Err(serde::de::Error::custom(format_args!("duplicate key `{agent}`")));
                    }
                }
                Ok(OutcomeSpec::PerAgent(out))
            }
        }

        deserializer.deserialize_any(OutcomeSpecVisitor)
    }
}

/// What must happen.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Expected outcome; default: what the capability table predicts (`delivered` or `config-rejected`).
    #[serde(default)]
    pub outcome: Option<OutcomeSpec>,
    /// Series that must arrive: each entry's labels must all be present on some received series.
    #[serde(default)]
    pub series: Vec<BTreeMap<String, String>>,
    /// Text the verdict's explanation must contain (for negative cases: "lacks Monitoring Metrics Publisher").
    #[serde(default)]
    pub reason: Option<String>,
    /// How many authenticated writes to see before the token-reuse rule is decided. Default 2: the fewest that show
    /// a token reused.
    #[serde(default)]
    pub min_writes: Option<usize>,
    /// How many token refreshes `tokens.refresh` waits for, each on schedule, before it is decided. Without it a
    /// token that outlives MSAL's 5-minute cache window is judged on its first writes; with it the case runs until
    /// the refresh, which shows that window (and Prometheus' half-life schedule on top) at work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_refreshes: Option<usize>,
    /// Checks that must fail: the cause a negative scenario provokes (e.g. `write.bearer` for a token with the
    /// wrong audience). The case fails if one of them holds instead.
    #[serde(default)]
    pub failing: Vec<crate::Check>,
}

/// `faults`: what goes wrong in the mock cloud. Rules come from a reusable profile (`mocks/faults/NAME.yaml`, same
/// shape without `profile`) first, then from the scenario.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// A profile in `mocks/faults/` whose rules apply before the scenario's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Rules, consulted in order; the first that matches a request answers it.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Troubles with the tokens the mock issues.
    #[serde(default)]
    pub tokens: TokenFaults,
}

impl FaultSpec {
    /// Whether nothing goes wrong.
    pub fn is_empty(&self) -> bool {
        self.profile.is_none() && self.rules.is_empty() && self.tokens == TokenFaults::default()
    }
}

/// The services a fault rule can disturb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultService {
    /// The DCR ingestion endpoint (remote-write POSTs).
    Dcr,
    /// The IMDS token endpoint.
    Imds,
    /// The Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`; discovery is left alone).
    Entra,
}

impl std::fmt::Display for FaultService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultService::Dcr => "dcr",
            FaultService::Imds => "imds",
            FaultService::Entra => "entra",
        })
    }
}

/// One fault rule: which requests (by count and/or mock-clock window) and what happens to them.
///
/// "503 ×3 then 200" is `{service: dcr, times: 3, status: 503}`; an outage is `{from: 5s, until: 15s, status: 503}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Name shown in evidence and recorded in each exchange it answered; default `rules[N]` / `PROFILE.rules[N]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which service.
    pub service: FaultService,
    /// Matching requests let through before the rule starts answering.
    #[serde(default)]
    pub after: usize,
    /// How many matching requests the rule answers; default: every one (bounded only by `until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<usize>,
    /// Answer only every N-th matching request after `after` (N ≥ 1) and let the others through: a steady rate,
    /// the way Azure Monitor throttles a workspace over its ingestion limit (`{status: 429, every: 10,
    /// retry_after: 1s}`). `times` still caps how many are answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<usize>,
    /// Start of the rule's window on the mock clock (since the cloud started).
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub from: Option<Duration>,
    /// End of the rule's window on the mock clock.
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub until: Option<Duration>,
    /// Answer with this status instead of the service's own answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Answer with this error template from `mocks/errors.json` (its status unless `status` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `Retry-After: <seconds>` on the answer.
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Duration>,
    /// `Retry-After: <HTTP-date>` this far in the future.
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub retry_after_date: Option<Duration>,
    /// Wait this long before answering (latency; beyond `remote_timeout` the agent sees a timeout).
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Close the connection without answering.
    #[serde(default)]
    pub reset: bool,
    /// Fail the TLS handshake of a new connection to the service's host: the mock answers the ClientHello with a
    /// fatal `handshake_failure` alert, as a broken TLS-inspecting middlebox would. Counts connections, not
    /// requests (a kept-alive connection is not handshaken again); `dcr` and `entra` only (IMDS is plain HTTP).
    #[serde(default)]
    pub tls_failure: bool,
    /// Present a certificate the agent must refuse on new TLS connections to the service's host (`dcr` or
    /// `entra`): `untrusted` (signed by a CA it was not given), `wrong-host` (for another name) or `expired`.
    /// Counts connections, as `tls_failure` does; `security.tls-verify` judges what the agent sent over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_certificate: Option<BadCertificate>,
    /// Answer with a redirect to another host (`dcr` only), which the mock serves and records:
    /// `{status: 307, to: other.example.com}`. `security.redirect` judges whether the agent followed it with its
    /// token or the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
}

/// A certificate a client must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BadCertificate {
    /// For the right host, but signed by a CA the agent was not told to trust.
    Untrusted,
    /// Signed by the trusted CA, but for another host name.
    WrongHost,
    /// For the right host, signed by the trusted CA, but expired yesterday.
    Expired,
}

impl std::fmt::Display for BadCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadCertificate::Untrusted => "signed by an untrusted CA",
            BadCertificate::WrongHost => "for the wrong host name",
            BadCertificate::Expired => "that has expired",
        })
    }
}

/// `redirect`: the status and the host the `Location` points at (same path and query).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// 307 or 308: the redirects that keep the method and body.
    pub status: u16,
    /// The other host.
    pub to: String,
}

impl FaultRule {
    /// Whether the rule stops answering at some point (a count or a window end), so the agent can recover.
    pub fn ends(&self) -> bool {
        self.times.is_some() || self.until.is_some()
    }

    /// Whether the rule acts on TLS handshakes (new connections) rather than on requests.
    pub fn on_handshake(&self) -> bool {
        self.tls_failure || self.tls_certificate.is_some()
    }
}

/// Troubles with issued tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFaults {
    /// The first N tokens are issued already expired.
    #[serde(default)]
    pub expired: usize,
    /// `refresh_in` on token responses (MSAL ≥ 1.4.2 refreshes proactively after it).
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub refresh_in: Option<Duration>,
    /// From this mock-clock time on, tokens issued before it are revoked: the DCR answers 401.
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub revoke_at: Option<Duration>,
}
