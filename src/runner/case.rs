//! One case against the mock cloud, as the steps a reader expects: [`CaseRun::up`] starts the sandbox, the mock
//! cloud, the scrape target, the sidecars and the agent; [`Live::watch`] re-evaluates every expectation whenever
//! something changes, until all are decided; [`Live::read_agent`] asks the still-running agent what `expect`
//! wants to know; [`Live::down`] stops everything, on every path; [`Plan::record`] writes the case bundle.
//!
//! A run is split in two so the facts the checks read ([`Plan`], immutable) can be borrowed while the live
//! resources ([`Live`]) are watched and then consumed by `down`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{RunOptions, SidecarStates, Timings, close_at_deadline, ms, setup, sidecar_environment, slug};
use crate::agent::prometheus::{AgentPaths, RenderInput, RenderedAgent, render};
use crate::cloud::recorder::Recorder;
use crate::cloud::{ClientCertificate, FaultConfig, MockCloud};
use crate::expect::probe::{AgentReadings, MetricsReading, Wanted};
use crate::expect::secrets::{self, Secret};
use crate::expect::{CaseFacts, Evaluation, Observed, Verdict, evaluate};
use crate::matrix::Case;
use crate::private_file;
use crate::report::bundle;
use crate::runtime::AgentState;
use crate::runtime::docker::Owner;
use crate::runtime::engine::Engine;
use crate::runtime::sandbox::{AgentLaunch, RunningAgent, Sandbox, SidecarLaunch};
use crate::scenario::{AzureCloud, Exposition, RecordMode, RuntimeKind, Scenario};
use crate::scrape::{ScrapeLog, ScrapeModel, ScrapeTarget};

/// Why a case could not be brought up: the step that failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The catalog (or the user's build) has no such agent.
    #[error("{0}")]
    Agent(String),
    /// The sandbox (network namespace, Docker network) or a listener inside it.
    #[error("{0}")]
    Sandbox(String),
    /// The mock cloud's set-up or start.
    #[error("mock cloud: {0}")]
    Cloud(String),
    /// The agent's config or input files.
    #[error("{0}")]
    Inputs(String),
    /// A sidecar or the agent did not start.
    #[error("{0}")]
    Start(String),
}

/// A case that is up: what the checks read, and what is running.
pub(super) struct CaseRun<'a> {
    /// What the checks read.
    pub plan: Plan<'a>,
    /// What is running.
    pub live: Live,
}

/// The case's facts, fixed once it is up.
pub(super) struct Plan<'a> {
    case: &'a Case,
    opts: &'a RunOptions,
    scenario: &'a Scenario,
    case_dir: PathBuf,
    ingestion_url: String,
    dcr_id: String,
    dcr_cloud: AzureCloud,
    faults: FaultConfig,
    rendered: RenderedAgent,
    model: Option<ScrapeModel>,
    /// What the agent was given to keep to itself.
    given: Vec<Secret>,
}

/// Everything running for a case; [`Live::down`] stops it all. On a panic or an early return the fields are
/// dropped in the order written here, which is the order they must go in: the agent and its sidecars (a
/// container holds its network), then the sandbox (network, firewall rules), then the rest.
pub(super) struct Live {
    agent: RunningAgent,
    sidecars: Vec<(String, RunningAgent)>,
    sandbox: Sandbox,
    cloud: MockCloud,
    target: ScrapeTarget,
    scrape_log: ScrapeLog,
    /// The agent's private inputs (secrets), removed when dropped.
    _private: tempfile::TempDir,
    /// The mock's clock when the agent was started (its floor is the first accepted write after it).
    agent_start_mock: Duration,
    started: Instant,
    pub timings: Timings,
}

/// How the watch ended.
pub(super) struct Watched {
    /// The last evaluation.
    pub evaluation: Evaluation,
    /// The run was interrupted before every expectation was decided.
    pub cancelled: bool,
    /// The agent ever became ready.
    pub was_ready: bool,
    /// Its state when the watch ended.
    pub last_state: AgentState,
}

/// What is left once everything stopped.
pub(super) struct Downed {
    /// The recorder, still readable.
    pub recorder: std::sync::Arc<Recorder>,
    scrape_log: ScrapeLog,
    sidecar_names: Vec<String>,
    agent_start_mock: Duration,
    started: Instant,
    timings: Timings,
}

impl<'a> CaseRun<'a> {
    /// Up: sandbox and listeners inside it, mock cloud, scrape target, the agent's inputs, sidecars (first: they
    /// are the agent's remote-write endpoint), the agent.
    pub async fn up(case: &'a Case, opts: &'a RunOptions, started: Instant) -> Result<CaseRun<'a>, UpError> {
        let scenario = &case.scenario.scenario;
        let scenario_dir = case.scenario.path.parent().unwrap_or(Path::new(".")).to_owned();
        let binary = super::sources::binary(case, &opts.agents).map_err(UpError::Agent)?;
        let case_dir = opts.out_dir.join(slug(&case.id));
        std::fs::create_dir_all(&case_dir)
            .map_err(|e| UpError::Inputs(format!("create {}: {e}", case_dir.display())))?;
        // Agent inputs hold secrets (client secret, keys, federated token): a private directory removed afterwards.
        let private = tempfile::Builder::new()
            .prefix(&crate::runtime::private_dir_prefix())
            .tempdir()
            .map_err(|e| UpError::Inputs(e.to_string()))?;
        let sandbox = sandbox(case, opts, private.path()).await?;
        let bind_err = |what: &str, e: std::io::Error| UpError::Sandbox(format!("bind {what}: {e}"));
        let proxy_listener = sandbox.bind().await.map_err(|e| bind_err("proxy", e))?;
        let target_listener = sandbox.bind().await.map_err(|e| bind_err("target", e))?;

        let ingestion_url = ingestion_url(scenario, &scenario_dir)?;
        let cloud_setup = setup::cloud_setup(scenario, &ingestion_url, opts.mocks.clone())
            .map_err(|e| UpError::Cloud(e.to_string()))?;
        let (dcr_id, dcr_cloud) = (cloud_setup.config.dcr.dcr_id.clone(), cloud_setup.config.dcr.cloud);
        let federated_token = cloud_setup.federated_token();
        let faults = cloud_setup.config.faults.clone();
        let cloud = MockCloud::start(cloud_setup.config, proxy_listener, cloud_setup.issuer.clone())
            .await
            .map_err(|e| UpError::Cloud(e.to_string()))?;
        cloud.recorder().set_mode(scenario.record);
        let target = scrape_target(scenario, target_listener)?;
        let scrape_log = target.log();
        // The target logs an Authorization header as the mock does, naming the mock's tokens (security.token-scope).
        target.redact_authorization_with(cloud.authorization_redactor());
        let timings = Timings { cloud_up_ms: ms(started.elapsed()), ..Timings::default() };

        let agent_paths = AgentPaths::under(&sandbox.agent_dir());
        let proxy_url = format!("http://{}", sandbox.agent_address(cloud.proxy_addr()));
        let target_addr = sandbox.agent_address(target.addr());
        let addresses = Addresses { proxy_url: &proxy_url, target: &target_addr, listen: sandbox.listen_address() };
        let rendered = render_config(case, &scenario_dir, &ingestion_url, &addresses, &agent_paths)?;
        let handed = Handed { federated_token, certificate: cloud_setup.client_certificate.as_ref() };
        let given = place_inputs(private.path(), &case_dir, scenario, &rendered, &cloud, &handed)?;

        let interval = scenario.prometheus.scrape_interval.unwrap_or(Duration::from_secs(1));
        let model = scenario.scrape.as_ref().map(|spec| {
            ScrapeModel::new(spec, &target_addr, rendered.external_labels.clone(), interval.as_millis() as i64)
        });
        let plan =
            Plan { case, opts, scenario, case_dir, ingestion_url, dcr_id, dcr_cloud, faults, rendered, model, given };
        let sidecars = plan.start_sidecars(&sandbox, &proxy_url, &agent_paths, private.path()).await?;
        let launch = plan.launch(binary, private.path());
        let mut timings = timings;
        timings.agent_start_ms = ms(started.elapsed());
        let agent_start_mock = cloud.recorder().now();
        let agent = sandbox
            .start_agent(&launch)
            .await
            .map_err(|e| UpError::Start(format!("start prometheus {}: {e}", case.agent)))?;
        tracing::info!(case = %case.id, agent = %agent.describe(), "agent started");
        let live = Live {
            _private: private,
            sandbox,
            cloud,
            target,
            scrape_log,
            agent,
            sidecars,
            agent_start_mock,
            started,
            timings,
        };
        Ok(CaseRun { plan, live })
    }
}

/// Where the agent reaches the mock cloud and the scrape target, and where it listens, as seen from its sandbox.
struct Addresses<'a> {
    proxy_url: &'a str,
    target: &'a str,
    listen: &'a str,
}

/// The agent's config for this case, with the scenario's plain remote-write receivers appended.
fn render_config(
    case: &Case,
    scenario_dir: &Path,
    ingestion_url: &str,
    at: &Addresses<'_>,
    paths: &AgentPaths,
) -> Result<RenderedAgent, UpError> {
    let scenario = &case.scenario.scenario;
    let mut rendered = render(&RenderInput {
        scenario,
        scenario_dir,
        version: case.agent,
        mode: case.mode,
        proxy_url: Some(at.proxy_url),
        external_labels: &[],
        default_ingestion_url: ingestion_url,
        target: at.target,
        listen_address: at.listen,
        paths,
    })
    .map_err(|e| UpError::Inputs(e.to_string()))?;
    let plain = &scenario.prometheus.plain_remote_writes;
    let (config, added) =
        super::plain_writes::append(&rendered.config, plain, Some(at.proxy_url), &scenario.prometheus)
            .map_err(UpError::Inputs)?;
    rendered.config = config;
    rendered.changes.extend(added);
    Ok(rendered)
}

/// Writes the agent's inputs (config, CA, credentials) into its private directory and the redacted config into
/// the bundle; returns what the agent was given that it must keep to itself.
fn place_inputs(
    private: &Path,
    case_dir: &Path,
    scenario: &Scenario,
    rendered: &RenderedAgent,
    cloud: &MockCloud,
    handed: &Handed<'_>,
) -> Result<Vec<Secret>, UpError> {
    let (federated_token, certificate) = (handed.federated_token.as_deref(), handed.certificate);
    write_inputs(private, rendered, cloud, federated_token, certificate)?;
    let _ = bundle::write_config(case_dir, &rendered.config);
    Ok(secrets::given(&scenario.auth, &scenario.secrets, federated_token, certificate.map(ClientCertificate::key_pem)))
}

/// The credentials the mock cloud made for the agent: a federated token, a client certificate.
struct Handed<'a> {
    federated_token: Option<String>,
    certificate: Option<&'a ClientCertificate>,
}

/// The sandbox of the case's runtime.
async fn sandbox(case: &Case, opts: &RunOptions, private: &Path) -> Result<Sandbox, UpError> {
    match case.runtime {
        RuntimeKind::Process => Sandbox::process(private).map_err(|e| UpError::Sandbox(e.to_string())),
        RuntimeKind::Docker => {
            let engine = Engine::connect().await.map_err(|e| UpError::Sandbox(e.to_string()))?;
            let owner = Owner { run: opts.run_id.clone(), case: slug(&case.id) };
            Sandbox::docker(&engine, owner).await.map_err(|e| UpError::Sandbox(format!("docker network: {e}")))
        }
    }
}

/// The DCR URL the mock serves: the user's config's, a remote-write sidecar's (the agent's own URL is then
/// localhost), else the default.
fn ingestion_url(scenario: &Scenario, scenario_dir: &Path) -> Result<String, UpError> {
    let (_, user_url) =
        crate::agent::prometheus::base_config(scenario, scenario_dir).map_err(|e| UpError::Inputs(e.to_string()))?;
    let url = match scenario.remote_write_sidecar() {
        Some(sidecar) => sidecar.env.get(crate::sidecar::contract::INGESTION_URL).cloned(),
        None => user_url,
    };
    Ok(url.unwrap_or_else(|| setup::default_ingestion_url(scenario)))
}

fn scrape_target(scenario: &Scenario, listener: std::net::TcpListener) -> Result<ScrapeTarget, UpError> {
    let load_series = scenario.load.as_ref().map_or(0, |l| l.series);
    let families = scenario.scrape.as_ref().map(|t| t.families()).unwrap_or_default();
    let format = scenario.scrape.as_ref().map_or(Exposition::Text, |t| t.exposition());
    ScrapeTarget::serving_as(listener, &families, load_series, format)
        .map_err(|e| UpError::Sandbox(format!("scrape target: {e}")))
}

/// The agent's private input files: config, the mock CA, a federated token and a client certificate.
fn write_inputs(
    dir: &Path,
    rendered: &RenderedAgent,
    cloud: &MockCloud,
    federated_token: Option<&str>,
    certificate: Option<&ClientCertificate>,
) -> Result<(), UpError> {
    let paths = AgentPaths::under(dir);
    let mut files = vec![(&paths.config, rendered.config.clone()), (&paths.ca_bundle, cloud.ca_pem().to_owned())];
    if let Some(token) = federated_token {
        files.push((&paths.federated_token, token.to_owned()));
    }
    if let Some(cert) = certificate {
        files.push((&paths.client_certificate, cert.cert_pem().to_owned()));
        files.push((&paths.client_key, cert.key_pem().to_owned()));
        files.push((&paths.client_bundle, format!("{}{}", cert.key_pem(), cert.cert_pem())));
    }
    files.into_iter().try_for_each(|(path, text)| private_file::write(path, text.as_bytes())).map_err(UpError::Inputs)
}

impl<'a> Plan<'a> {
    /// What the checks know about this case.
    pub fn facts(&self) -> CaseFacts<'_> {
        CaseFacts::new(self.scenario, self.case.agent, self.case.expected, (&self.dcr_id, self.dcr_cloud), &self.faults)
            .with_target(self.model.as_ref())
            .judged_by(&self.opts.vulnerabilities, self.opts.strict_security)
    }

    /// What the harness changed in the agent's config, and how it is isolated.
    pub fn config_changes(&self) -> Vec<String> {
        self.rendered.changes.clone()
    }

    async fn start_sidecars(
        &self,
        sandbox: &Sandbox,
        proxy_url: &str,
        agent_paths: &AgentPaths,
        input_dir: &Path,
    ) -> Result<Vec<(String, RunningAgent)>, UpError> {
        if self.scenario.sidecars.is_empty() {
            return Ok(Vec::new());
        }
        sandbox
            .start_pod(self.opts.azrw_binary.as_deref(), &self.case_dir.join(bundle::file::POD_LOG))
            .await
            .map_err(|e| UpError::Start(format!("start the pod's pause container: {e}")))?;
        let mut sidecars = Vec::new();
        for spec in &self.scenario.sidecars {
            let env = sidecar_environment(self.scenario, spec, &self.ingestion_url, Some(proxy_url), agent_paths)
                .map_err(UpError::Inputs)?;
            let _ = bundle::write_env(&self.case_dir.join(bundle::file::sidecar_env(&spec.name)), &env);
            let launch = SidecarLaunch {
                name: spec.name.clone(),
                image: (!spec.is_reference()).then(|| spec.image.clone()),
                azrw_binary: self.opts.azrw_binary.clone(),
                env,
                input_dir: input_dir.to_owned(),
                log_path: self.case_dir.join(bundle::file::sidecar_log(&spec.name)),
            };
            let running = sandbox
                .start_sidecar(&launch)
                .await
                .map_err(|e| UpError::Start(format!("start sidecar {}: {e}", spec.name)))?;
            tracing::info!(case = %self.case.id, sidecar = %spec.name, at = %running.describe(), "sidecar started");
            sidecars.push((spec.name.clone(), running));
        }
        Ok(sidecars)
    }

    /// How the runtime starts this case's agent.
    fn launch(&self, binary: PathBuf, input_dir: &Path) -> AgentLaunch {
        AgentLaunch {
            version: self.case.agent,
            binary,
            image: super::sources::docker_image(self.case),
            args: self.rendered.args.clone(),
            env: self.rendered.env.clone(),
            input_dir: input_dir.to_owned(),
            log_path: self.case_dir.join(bundle::file::AGENT_LOG),
        }
    }

    /// Writes the case bundle: `case.json`, the exchanges, the findings, the scrapes, the payload and timings.
    pub fn record(&self, watched: &Watched, downed: &mut Downed, verdict: &Verdict) {
        let recorder = &downed.recorder;
        let exchanges = recorder.exchanges();
        let agent = bundle::AgentRecord::new(&watched.last_state, watched.was_ready);
        let record = bundle::CaseRecord {
            target: self.model.clone(),
            ..bundle::CaseRecord::new(
                self.case,
                self.scenario,
                &self.ingestion_url,
                &self.dcr_id,
                self.dcr_cloud,
                agent,
            )
        };
        let dir = &self.case_dir;
        if let Err(e) = bundle::write_case(dir, &record, &exchanges, recorder, &self.rendered.env) {
            tracing::warn!("capture bundle {}: {e}", dir.display());
        }
        let scrapes = downed.scrape_log.snapshot();
        let _ = bundle::write_scrapes(dir, &scrapes);
        if let Some(model) = &self.model {
            let snapshot = crate::expect::payload::snapshot(model, &scrapes, &exchanges);
            let _ = std::fs::write(dir.join(bundle::file::PAYLOAD), snapshot);
        }
        // Every finding, passing ones included: what a passing case actually proved.
        let _ = bundle::write_json(dir, bundle::file::FINDINGS, &verdict.findings);
        self.write_timeline(downed, &exchanges, &scrapes, &record.agent_state, verdict);
        let timings = &mut downed.timings;
        timings.agent_floor_ms = exchanges
            .iter()
            .find(|e| e.service == crate::cloud::Service::Dcr && (200..300).contains(&e.status))
            .map(|e| ms(e.at.saturating_sub(downed.agent_start_mock)));
        timings.down_ms = ms(downed.started.elapsed());
        let _ = bundle::write_json(dir, bundle::file::TIMINGS, &timings);
    }

    /// `timeline.svg` (the case on the mock clock) and `sequence.mmd` (its decisive exchanges).
    fn write_timeline(
        &self,
        downed: &Downed,
        exchanges: &[crate::cloud::Exchange],
        scrapes: &[crate::scrape::Scrape],
        agent: &bundle::AgentRecord,
        verdict: &Verdict,
    ) {
        use crate::report::timeline;
        // The mock clock starts as the cloud comes up; timings count from the case's start.
        let decided = Duration::from_millis(downed.timings.decided_ms.saturating_sub(downed.timings.cloud_up_ms));
        let tokens = downed.recorder.tokens();
        let story = timeline::Story {
            exchanges,
            tokens: &tokens,
            scrapes,
            faults: &self.faults,
            findings: &verdict.findings,
            agent,
            agent_started: downed.agent_start_mock,
            decided,
            epoch_ms: timeline::epoch_ms(downed.recorder.now()),
        };
        if let Err(e) = std::fs::write(self.case_dir.join(bundle::file::TIMELINE), timeline::render(&story)) {
            tracing::warn!("timeline.svg {}: {e}", self.case_dir.display());
        }
        let sequence = crate::report::sequence::render(exchanges, &verdict.findings);
        let _ = std::fs::write(self.case_dir.join(bundle::file::SEQUENCE), sequence);
    }

    /// The agent's and sidecars' logs, complete once their writers stopped.
    pub fn logs(&self, downed: &Downed) -> Vec<(String, String)> {
        let read = |file: String| {
            let text = std::fs::read_to_string(self.case_dir.join(&file)).unwrap_or_default();
            (file, text)
        };
        std::iter::once(bundle::file::AGENT_LOG.to_owned())
            .chain(downed.sidecar_names.iter().map(|name| bundle::file::sidecar_log(name)))
            .map(read)
            .collect()
    }

    /// What the agent must keep to itself: what it was given, and every token the mock issued.
    pub fn secrets(&self, recorder: &Recorder) -> Vec<Secret> {
        let mut all = self.given.clone();
        all.extend(secrets::issued(&recorder.token_values()));
        all
    }
}

impl Live {
    /// Watch: re-evaluate whenever the recorder, the agent or a sidecar changes, until every expectation is
    /// decided, the agent exits, the deadline passes or the run is interrupted.
    pub async fn watch(
        &mut self,
        facts: &CaseFacts<'_>,
        deadline: Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Watched {
        let accounting = facts.record == RecordMode::Accounting;
        let recorder = self.cloud.recorder();
        let mut recorded = recorder.subscribe();
        let mut state = self.agent.state();
        let mut sidecar_states = SidecarStates::new(&self.sidecars);
        let until = tokio::time::Instant::now() + deadline;
        let mut was_ready = false;
        loop {
            let agent_state = state.borrow_and_update().clone();
            was_ready |= agent_state == AgentState::Ready;
            let (exchanges, tokens, scrapes) = (recorder.exchanges(), recorder.tokens(), self.scrape_log.snapshot());
            let sidecar_exit = sidecar_states.exited();
            // The accounting is read in place (one entry per series; copying it per evaluation would cost more).
            let evaluation = recorder.with_accounting(|acc| {
                let seen = Observed {
                    exchanges: &exchanges,
                    tokens: &tokens,
                    agent: &agent_state,
                    agent_was_ready: was_ready,
                    accounting: accounting.then_some(acc),
                    scrapes: &scrapes,
                    sidecar_exit: sidecar_exit.as_ref(),
                };
                super::selftest_panic("evaluate");
                evaluate(facts, &seen)
            });
            let ended =
                |evaluation, cancelled| Watched { evaluation, cancelled, was_ready, last_state: agent_state.clone() };
            if evaluation.decided() || matches!(agent_state, AgentState::Exited { .. }) {
                break ended(evaluation, false);
            }
            tokio::select! {
                _ = recorded.changed() => {}
                _ = state.changed() => {}
                _ = sidecar_states.changed() => {}
                _ = tokio::time::sleep_until(until) => break ended(close_at_deadline(evaluation, deadline), false),
                _ = cancel.cancelled() => break ended(evaluation, true),
            }
        }
    }

    /// Why the isolation is weaker than asked, if it is (reported with the config changes).
    pub fn isolation_warning(&self) -> Option<String> {
        self.sandbox.isolation_warning()
    }

    /// Whether the agent is still up.
    pub fn agent_running(&self) -> bool {
        matches!(*self.agent.state().borrow(), AgentState::Ready)
    }

    /// Reads from the running agent what `expect` asked for.
    pub async fn read_agent(&self, wanted: Wanted) -> AgentReadings {
        let mut read = AgentReadings::default();
        if wanted.metrics {
            let text = self.sandbox.agent_http_get(&self.agent, "/metrics").await.map_err(|e| e.to_string());
            let recorder = self.cloud.recorder();
            read.metrics = Some(MetricsReading { text, exchanges: recorder.exchanges(), tokens: recorder.tokens() });
        }
        if wanted.config {
            for path in secrets::CONFIG_ENDPOINTS {
                read.config
                    .push((path, self.sandbox.agent_http_get(&self.agent, path).await.map_err(|e| e.to_string())));
            }
        }
        read
    }

    /// Down: on every path; the agent before the sidecars whose network namespace it shares.
    pub async fn down(mut self, decided_at: Instant) -> Downed {
        self.timings.decided_ms = ms(decided_at.duration_since(self.started));
        self.agent.stop().await;
        for (_, sidecar) in &mut self.sidecars {
            sidecar.stop().await;
        }
        self.target.shutdown();
        let recorder = self.cloud.recorder();
        self.cloud.shutdown().await;
        self.sandbox.close().await;
        Downed {
            recorder,
            scrape_log: self.scrape_log,
            sidecar_names: self.sidecars.into_iter().map(|(name, _)| name).collect(),
            agent_start_mock: self.agent_start_mock,
            started: self.started,
            timings: self.timings,
        }
    }
}
