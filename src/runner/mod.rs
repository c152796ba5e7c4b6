//! Running cases: up (mock cloud, scrape target, agent), run (watch until every expectation is decided or the
//! deadline passes), down (stop everything on every path) — then a [`Verdict`].

mod plain_writes;
pub mod replay;
pub mod setup;

use crate::Check;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::agent::prometheus::{AgentPaths, RenderInput, render};
use crate::agent::store::AgentStore;
use crate::agent::vulnerability::VulnerabilityTable;
use crate::cloud::recorder::RecordMode;
use crate::cloud::{MockCloud, MockData};
use crate::expect::{CaseFacts, Evaluation, Finding, Observed, SidecarExit, Status, Verdict, evaluate};
use crate::report::bundle;
use crate::runtime::AgentState;
use crate::runtime::docker::Owner;
use crate::runtime::engine::Engine;
use crate::runtime::sandbox::{AgentLaunch, Sandbox, SidecarLaunch};
use crate::scenario::{Case, Outcome, RuntimeKind};
use crate::scrape::{ScrapeModel, ScrapeTarget};

/// How cases are run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Per-case artefacts (redacted config, agent log, exchanges) go under `out_dir/<case slug>/`.
    pub out_dir: PathBuf,
    /// Cases run at once.
    pub jobs: usize,
    /// Agent binaries.
    pub agents: AgentStore,
    /// Mock data (templates users can edit).
    pub mocks: MockData,
    /// Known agent vulnerabilities (`mocks/vulnerabilities.yaml`).
    pub vulnerabilities: VulnerabilityTable,
    /// A known vulnerability a case shows fails it (`--strict-security`), instead of `known-vulnerable`.
    pub strict_security: bool,
    /// Cancelled on Ctrl-C / SIGTERM: running cases stop their agents and report what they saw; cases not yet
    /// started are not started.
    pub cancel: CancellationToken,
    /// Set to allow `target: azure` cases (`--allow-real`); they refuse to run without it.
    pub real: Option<crate::real::RealOptions>,
    /// Names this run in Docker labels and names, so parallel runs and cases never collide and `azrw gc` finds
    /// what a killed run left.
    pub run_id: String,
    /// The azrw binary, which is the reference sidecar (`azrw sidecar`) as a process and in its image; `None` when
    /// it cannot be found (cases with a reference sidecar then fail saying so).
    pub azrw_binary: Option<PathBuf>,
}

impl RunOptions {
    /// Options for a run writing under `out_dir` with `jobs` cases at once: agents from `$AZRW_CACHE`, the built-in
    /// mock data, a fresh cancellation token and run id, no real target. Override fields with struct update syntax.
    pub fn new(out_dir: &Path, jobs: usize) -> RunOptions {
        RunOptions {
            out_dir: out_dir.to_owned(),
            jobs,
            agents: AgentStore::from_env(),
            mocks: MockData::embedded(),
            vulnerabilities: VulnerabilityTable::embedded(),
            strict_security: false,
            cancel: CancellationToken::new(),
            real: None,
            run_id: new_run_id(),
            azrw_binary: locate_azrw(),
        }
    }
}

/// The azrw binary: this process when it is azrw, else (a test binary in `target/*/deps/`) the `azrw` next to
/// `deps/`, as Cargo lays them out.
pub fn locate_azrw() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    if exe.file_stem().is_some_and(|n| n == "azrw") {
        return Some(exe);
    }
    let dir = exe.parent()?;
    let sibling = if dir.file_name().is_some_and(|n| n == "deps") { dir.parent()? } else { dir }.join("azrw");
    sibling.is_file().then_some(sibling)
}

/// A short id for a run.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Runs every case, at most `opts.jobs` at once; `on_verdict` sees each verdict as it is reached.
/// Verdicts are returned in case order, whatever the order they finished in.
pub async fn run_cases(cases: &[Case], opts: &RunOptions, mut on_verdict: impl FnMut(&Verdict)) -> Vec<Verdict> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, case) in cases.iter().cloned().enumerate() {
        let opts = opts.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore closed");
            (i, run_case(&case, &opts).await)
        });
    }
    let mut verdicts: Vec<Option<Verdict>> = vec![None; cases.len()];
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, v)) => {
                on_verdict(&v);
                verdicts[i] = Some(v);
            }
            Err(e) => tracing::error!("a case task failed: {e}"),
        }
    }
    verdicts.into_iter().flatten().collect()
}

/// A file-system friendly name for a case.
pub fn slug(case_id: &str) -> String {
    case_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_owned()
}

/// Runs one case to a verdict. Never panics on agent or cloud failures: they become the verdict's error.
pub async fn run_case(case: &Case, opts: &RunOptions) -> Verdict {
    let started = Instant::now();
    let scenario = &case.scenario.scenario;
    let mut verdict = Verdict {
        case_id: case.id.clone(),
        scenario: scenario.name.clone(),
        source: case.scenario.path.display().to_string(),
        agent: format!("prometheus@{}", case.agent),
        runtime: case.runtime.to_string(),
        expected: case.expected,
        observed: None,
        explanation: String::new(),
        findings: Vec::new(),
        config_changes: Vec::new(),
        duration: Duration::ZERO,
        error: None,
    };
    if opts.cancel.is_cancelled() {
        verdict.error = Some("not started: the run was interrupted".into());
    } else if let Err(e) = run_case_in(case, opts, &mut verdict, started).await {
        verdict.error = Some(e);
    }
    verdict.duration = started.elapsed();
    if let Err(e) = bundle::write_verdict(&opts.out_dir.join(slug(&case.id)), &verdict) {
        tracing::warn!("verdict.json for {}: {e}", case.id);
    }
    verdict
}

async fn run_case_in(case: &Case, opts: &RunOptions, verdict: &mut Verdict, started: Instant) -> Result<(), String> {
    let scenario = &case.scenario.scenario;
    if scenario.target == crate::scenario::TargetKind::Azure {
        let Some(real) = &opts.real else {
            return Err("`target: azure` sends to real Azure and runs the agent outside the loopback-only sandbox; \
                        pass --allow-real to do that"
                .into());
        };
        return crate::real::run::run_case_in(case, opts, real, verdict).await;
    }
    let scenario_dir = case.scenario.path.parent().unwrap_or(Path::new(".")).to_owned();
    let binary = opts.agents.get(case.agent).map_err(|e| e.to_string())?;
    let case_dir = opts.out_dir.join(slug(&case.id));
    std::fs::create_dir_all(&case_dir).map_err(|e| format!("create {}: {e}", case_dir.display()))?;
    // Agent inputs hold secrets (client secret, keys, federated token): a private directory removed afterwards.
    let private = tempfile::Builder::new().prefix("azrw-case-").tempdir().map_err(|e| e.to_string())?;
    let host_paths = AgentPaths::under(private.path());

    // Up: sandbox, listeners inside it, mock cloud, scrape target.
    let sandbox = match case.runtime {
        RuntimeKind::Process => Sandbox::process(private.path()).map_err(|e| e.to_string())?,
        RuntimeKind::Docker => {
            let engine = Engine::connect().await.map_err(|e| e.to_string())?;
            let owner = Owner { run: opts.run_id.clone(), case: slug(&case.id) };
            Sandbox::docker(&engine, owner).await.map_err(|e| format!("docker network: {e}"))?
        }
    };
    let agent_paths = AgentPaths::under(&sandbox.agent_dir());
    let proxy_listener = sandbox.bind().await.map_err(|e| format!("bind proxy: {e}"))?;
    let target_listener = sandbox.bind().await.map_err(|e| format!("bind target: {e}"))?;

    let (_, user_url) = crate::agent::prometheus::base_config(scenario, &scenario_dir).map_err(|e| e.to_string())?;
    // With a remote-write sidecar the DCR URL is the sidecar's (the agent's own URL is localhost).
    let ingestion_url = match scenario.remote_write_sidecar() {
        Some(sidecar) => sidecar.env.get(crate::sidecar::contract::INGESTION_URL).cloned(),
        None => user_url,
    }
    .unwrap_or_else(|| setup::default_ingestion_url(scenario));
    let cloud_setup = setup::cloud_setup(scenario, &ingestion_url, opts.mocks.clone()).map_err(|e| e.to_string())?;
    let dcr_id = cloud_setup.config.dcr.dcr_id.clone();
    let dcr_cloud = cloud_setup.config.dcr.cloud;
    let faults = cloud_setup.config.faults.clone();
    let cloud = MockCloud::start(cloud_setup.config, proxy_listener, cloud_setup.issuer.clone())
        .await
        .map_err(|e| format!("mock cloud: {e}"))?;
    cloud.recorder().set_mode(scenario.record);
    let load_series = scenario.load.as_ref().map_or(0, |l| l.series);
    let families = scenario.scrape.as_ref().map(|t| t.families()).unwrap_or_default();
    let format = scenario.scrape.as_ref().map_or(crate::scenario::Exposition::Text, |t| t.exposition());
    let target = ScrapeTarget::serving_as(target_listener, &families, load_series, format)
        .map_err(|e| format!("scrape target: {e}"))?;
    let scrape_log = target.log();
    // The target logs an Authorization header as the mock does, naming the mock's tokens (security.token-scope).
    target.redact_authorization_with(cloud.authorization_redactor());
    let mut timings = Timings { cloud_up_ms: ms(started.elapsed()), ..Timings::default() };

    let proxy_url = format!("http://{}", sandbox.agent_address(cloud.proxy_addr()));
    let target_addr = sandbox.agent_address(target.addr());
    let rendered = render(&RenderInput {
        scenario,
        scenario_dir: &scenario_dir,
        version: case.agent,
        proxy_url: Some(&proxy_url),
        external_labels: &[],
        default_ingestion_url: &ingestion_url,
        target: &target_addr,
        listen_address: sandbox.listen_address(),
        paths: &agent_paths,
    })
    .map_err(|e| e.to_string())?;
    let mut rendered = rendered;
    let (config, added) = plain_writes::append(
        &rendered.config,
        &scenario.prometheus.plain_remote_writes,
        Some(&proxy_url),
        &scenario.prometheus,
    )?;
    rendered.config = config;
    rendered.changes.extend(added);
    verdict.config_changes = rendered.changes.clone();
    verdict.config_changes.extend(sandbox.isolation_warning());

    write_private(&host_paths.config, rendered.config.as_bytes())?;
    write_private(&host_paths.ca_bundle, cloud.ca_pem().as_bytes())?;
    let mut federated_token = None;
    if let (Some(issuer), Some(subject)) = (&cloud_setup.issuer, &cloud_setup.federated_subject) {
        let token = issuer.federated_token(subject, Duration::from_secs(3600));
        write_private(&host_paths.federated_token, token.as_bytes())?;
        federated_token = Some(token);
    }
    if let Some(cert) = &cloud_setup.client_certificate {
        write_private(&host_paths.client_certificate, cert.cert_pem().as_bytes())?;
        write_private(&host_paths.client_key, cert.key_pem().as_bytes())?;
        write_private(&host_paths.client_bundle, format!("{}{}", cert.key_pem(), cert.cert_pem()).as_bytes())?;
    }
    let _ = std::fs::write(case_dir.join("prometheus.yml"), crate::report::redact::config(&rendered.config));

    // Sidecars first, in the agent's pod: the agent then finds its remote-write endpoint up.
    if !scenario.sidecars.is_empty() {
        sandbox
            .start_pod(opts.azrw_binary.as_deref(), &case_dir.join("pod.log"))
            .await
            .map_err(|e| format!("start the pod's pause container: {e}"))?;
    }
    let mut sidecars = Vec::new();
    for spec in &scenario.sidecars {
        let env = sidecar_environment(scenario, spec, &ingestion_url, Some(&proxy_url), &agent_paths)?;
        let _ = bundle::write_env(&case_dir.join(format!("sidecar-{}.env.json", spec.name)), &env);
        let launch = SidecarLaunch {
            name: spec.name.clone(),
            image: (!spec.is_reference()).then(|| spec.image.clone()),
            azrw_binary: opts.azrw_binary.clone(),
            env,
            input_dir: private.path().to_owned(),
            log_path: case_dir.join(format!("sidecar-{}.log", spec.name)),
        };
        let running = sandbox.start_sidecar(&launch).await.map_err(|e| format!("start sidecar {}: {e}", spec.name))?;
        tracing::info!(case = %case.id, sidecar = %spec.name, at = %running.describe(), "sidecar started");
        sidecars.push((spec.name.clone(), running));
    }

    let launch = AgentLaunch {
        version: case.agent,
        binary,
        args: rendered.args.clone(),
        env: rendered.env.clone(),
        input_dir: private.path().to_owned(),
        log_path: case_dir.join("agent.log"),
    };
    timings.agent_start_ms = ms(started.elapsed());
    let agent_start_mock = cloud.recorder().now();
    let mut agent = sandbox.start_agent(&launch).await.map_err(|e| format!("start prometheus {}: {e}", case.agent))?;
    tracing::info!(case = %case.id, agent = %agent.describe(), "agent started");

    // Run: re-evaluate whenever the recorder or the agent changes, until decided, deadline or cancellation.
    let interval = scenario.prometheus.scrape_interval.unwrap_or(Duration::from_secs(1));
    let model = scenario.scrape.as_ref().map(|spec| {
        ScrapeModel::new(spec, &target_addr, rendered.external_labels.clone(), interval.as_millis() as i64)
    });
    let facts = CaseFacts {
        auth: &scenario.auth,
        version: case.agent,
        expect: &scenario.expect,
        expected: case.expected,
        dcr_id: &dcr_id,
        dcr_cloud,
        load: scenario.load.as_ref(),
        scrape_interval: crate::agent::prometheus::scrape_interval(scenario),
        target: model.as_ref(),
        faults: &faults,
        retry: crate::expect::RetryPolicy::from_queue_config(&scenario.prometheus.queue_config),
        token_lifetime: scenario.cloud.token_lifetime,
        sidecar: scenario.remote_write_sidecar(),
        vulnerabilities: &opts.vulnerabilities,
        strict_security: opts.strict_security,
        plain_writes: &scenario.prometheus.plain_remote_writes,
    };
    let accounting = scenario.record == RecordMode::Accounting;
    let recorder = cloud.recorder();
    let mut recorded = recorder.subscribe();
    let mut state = agent.state();
    let mut sidecar_states = SidecarStates::new(&sidecars);
    let deadline = tokio::time::Instant::now() + scenario.deadline;
    let mut was_ready = false;
    let mut cancelled = false;
    let mut last_state: AgentState;
    let evaluation = loop {
        let agent_state = state.borrow_and_update().clone();
        last_state = agent_state.clone();
        was_ready |= agent_state == AgentState::Ready;
        let exchanges = recorder.exchanges();
        let tokens = recorder.tokens();
        let scrapes = scrape_log.snapshot();
        let sidecar_exit = sidecar_states.exited();
        // The accounting is read in place (one entry per series; copying it per evaluation would cost more).
        let evaluation = recorder.with_accounting(|acc| {
            let accounting = accounting.then_some(acc);
            let seen = Observed {
                exchanges: &exchanges,
                tokens: &tokens,
                agent: &agent_state,
                agent_was_ready: was_ready,
                accounting,
                scrapes: &scrapes,
                sidecar_exit: sidecar_exit.as_ref(),
            };
            evaluate(&facts, &seen)
        });
        let agent_gone = matches!(agent_state, AgentState::Exited { .. });
        if evaluation.decided() || agent_gone {
            break evaluation;
        }
        tokio::select! {
            _ = recorded.changed() => {}
            _ = state.changed() => {}
            _ = sidecar_states.changed() => {}
            _ = tokio::time::sleep_until(deadline) => break close_at_deadline(evaluation, scenario.deadline),
            _ = opts.cancel.cancelled() => { cancelled = true; break evaluation; }
        }
    };

    timings.decided_ms = ms(started.elapsed());
    // Before stopping: the agent's own account of what it sent — against the mock's (agent.metrics), and its queue
    // under load (load.agent). One scrape of its /metrics serves both.
    let mut evaluation = evaluation;
    let running = matches!(*state.borrow(), AgentState::Ready);
    let delivered_or_dropped = matches!(evaluation.observed, Some(Outcome::Delivered | Outcome::Dropped));
    let cross_check = running && delivered_or_dropped && !cancelled;
    let load = scenario.load.is_some() && !cancelled;
    if cross_check || load {
        let scraped = sandbox.agent_http_get(&agent, "/metrics").await;
        let plain = &scenario.prometheus.plain_remote_writes;
        let parsed = scraped.as_ref().ok().map(|text| crate::expect::metrics::AgentMetrics::parse_without(text, plain));
        if load {
            evaluation.findings.push(load_agent_finding(&scraped, parsed.as_ref()));
        }
        if cross_check {
            let finding = match (&scraped, &parsed) {
                (Ok(_), Some(_)) if accounting => Finding {
                    check: Check::AgentMetrics,
                    status: crate::expect::Status::Skipped,
                    message: "accepted bodies are folded into per-series accounting (`record: accounting`); \
                              the cross-check needs full bodies (see load.agent for the agent's own counters)"
                        .into(),
                    evidence: Vec::new(),
                },
                (Ok(_), Some(metrics)) => {
                    let exchanges = recorder.exchanges();
                    let tokens = recorder.tokens();
                    let agent_state = state.borrow().clone();
                    let seen = Observed {
                        exchanges: &exchanges,
                        tokens: &tokens,
                        agent: &agent_state,
                        agent_was_ready: was_ready,
                        accounting: None,
                        scrapes: &scrape_log.snapshot(),
                        sidecar_exit: None,
                    };
                    crate::expect::metrics::cross_check(&facts, &seen, metrics)
                }
                (Err(e), _) => {
                    Finding::fail(Check::AgentMetrics, format!("could not scrape the agent's /metrics: {e}"))
                }
                (Ok(_), None) => unreachable!("parsed whenever scraped"),
            };
            evaluation.findings.push(finding);
        }
    }

    // The agent's config endpoint must not show what it was given (security.config-redaction); read while it runs.
    let given = crate::expect::secrets::given(
        &scenario.auth,
        &scenario.secrets,
        federated_token.as_deref(),
        cloud_setup.client_certificate.as_ref().map(|c| c.key_pem()),
    );
    let mut after = Vec::new();
    let configured = evaluation.observed.is_some_and(|o| o != Outcome::ConfigRejected);
    if running && configured && !cancelled {
        let mut served = Vec::new();
        for path in crate::expect::secrets::CONFIG_ENDPOINTS {
            served.push((path, sandbox.agent_http_get(&agent, path).await.map_err(|e| e.to_string())));
        }
        after.push(crate::expect::secrets::config_redaction(&given, &served));
    }

    // Down: on every path; the agent before the sidecars whose network namespace it shares.
    agent.stop().await;
    for (_, sidecar) in &mut sidecars {
        sidecar.stop().await;
    }
    target.shutdown();
    let exchanges = recorder.exchanges();
    cloud.shutdown().await;
    sandbox.close().await;

    // Logs are complete once their writers stopped: neither the agent's nor a sidecar's may hold a secret or token.
    let mut secrets = given;
    secrets.extend(crate::expect::secrets::issued(&recorder.token_values()));
    let mut logs =
        vec![("agent.log".to_owned(), std::fs::read_to_string(case_dir.join("agent.log")).unwrap_or_default())];
    for (name, _) in &sidecars {
        let file = format!("sidecar-{name}.log");
        logs.push((file.clone(), std::fs::read_to_string(case_dir.join(&file)).unwrap_or_default()));
    }
    let logs: Vec<(&str, &str)> = logs.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    after.push(crate::expect::secrets::log_secrets(&secrets, &logs));
    evaluation.findings.extend(crate::expect::conclude(&facts, after));

    let record = bundle::CaseRecord {
        target: model.clone(),
        ..bundle::CaseRecord::new(
            case,
            scenario,
            &ingestion_url,
            &dcr_id,
            dcr_cloud,
            bundle::AgentRecord::new(&last_state, was_ready),
        )
    };
    if let Err(e) = bundle::write_case(&case_dir, &record, &exchanges, &recorder, &rendered.env) {
        tracing::warn!("capture bundle {}: {e}", case_dir.display());
    }
    if let Ok(json) = serde_json::to_string_pretty(&evaluation.findings) {
        let _ = std::fs::write(case_dir.join("findings.json"), json);
    }
    let scrapes = scrape_log.snapshot();
    let _ = bundle::write_scrapes(&case_dir, &scrapes);
    if let Some(model) = &model {
        let text = crate::expect::payload::snapshot(model, &scrapes, &exchanges);
        let _ = std::fs::write(case_dir.join("payload.txt"), text);
    }
    timings.agent_floor_ms = exchanges
        .iter()
        .find(|e| e.service == crate::cloud::Service::Dcr && (200..300).contains(&e.status))
        .map(|e| ms(e.at.saturating_sub(agent_start_mock)));
    timings.down_ms = ms(started.elapsed());
    if let Ok(json) = serde_json::to_string_pretty(&timings) {
        let _ = std::fs::write(case_dir.join("timings.json"), json);
    }
    verdict.observed = evaluation.observed;
    verdict.explanation = evaluation.explanation;
    verdict.findings = evaluation.findings;
    // Every finding, passing ones included: what a passing case actually proved.
    if let Ok(json) = serde_json::to_string_pretty(&verdict.findings) {
        let _ = std::fs::write(case_dir.join("findings.json"), json);
    }
    if cancelled {
        verdict.error = Some("interrupted before every expectation was decided".into());
    }
    Ok(())
}

/// A sidecar's environment: the proxy and CA variables every sandboxed process gets, for the remote-write sidecar
/// the contract derived from the scenario's `auth`, and the scenario's own `env` (which wins).
fn sidecar_environment(
    scenario: &crate::scenario::Scenario,
    spec: &crate::scenario::SidecarSpec,
    ingestion_url: &str,
    proxy_url: Option<&str>,
    paths: &AgentPaths,
) -> Result<Vec<(String, String)>, String> {
    use crate::sidecar::contract::{SidecarFiles, contract_env};
    let mut env = crate::agent::prometheus::base_environment(proxy_url, &paths.ca_bundle);
    let own = if spec.remote_write {
        let files =
            SidecarFiles { federated_token: paths.federated_token.clone(), certificate: paths.client_bundle.clone() };
        contract_env(&scenario.auth, ingestion_url, spec.port, &files, &spec.env)
            .map_err(|e| format!("sidecar {}: {e}", spec.name))?
    } else {
        spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    env.retain(|(k, _)| !own.iter().any(|(o, _)| o == k));
    env.extend(own);
    Ok(env)
}

/// The sidecars' states, watched alongside the agent's: a sidecar that exits ends the case.
struct SidecarStates {
    watched: Vec<(String, tokio::sync::watch::Receiver<AgentState>)>,
}

impl SidecarStates {
    fn new(sidecars: &[(String, crate::runtime::sandbox::RunningAgent)]) -> SidecarStates {
        SidecarStates { watched: sidecars.iter().map(|(name, s)| (name.clone(), s.state())).collect() }
    }

    /// The first sidecar that has exited.
    fn exited(&self) -> Option<SidecarExit> {
        self.watched.iter().find_map(|(name, state)| match &*state.borrow() {
            AgentState::Exited { code, error } => {
                Some(SidecarExit { name: name.clone(), code: *code, error: error.clone() })
            }
            _ => None,
        })
    }

    /// Resolves when any sidecar's state changes; never, without sidecars.
    async fn changed(&mut self) {
        if self.watched.is_empty() {
            return std::future::pending().await;
        }
        let changes = self.watched.iter_mut().map(|(_, s)| Box::pin(s.changed()));
        let _ = futures_util::future::select_all(changes).await;
    }
}

/// Where a case's wall time went (`out/<case>/timings.json`), in milliseconds since the case started; benchmarks
/// read it to set the case's overhead against the agent's own floor.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Timings {
    /// The mock cloud and scrape target are listening.
    pub cloud_up_ms: u64,
    /// The agent is being started.
    pub agent_start_ms: u64,
    /// Agent start → the first accepted write, as the mock saw it: the agent's own floor.
    pub agent_floor_ms: Option<u64>,
    /// Every expectation decided (or deadline, or cancellation).
    pub decided_ms: u64,
    /// Agent stopped, cloud down, artefacts written.
    pub down_ms: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The agent's own view of its remote-write queue (shards, send latency), scraped from its web listener
/// ([`Sandbox::agent_http_get`]); reported, not judged.
fn load_agent_finding(
    scraped: &std::io::Result<String>,
    parsed: Option<&crate::expect::metrics::AgentMetrics>,
) -> Finding {
    let check = Check::LoadAgent;
    match (scraped, parsed) {
        (Ok(_), Some(metrics)) => {
            let stats = crate::agent::metrics::RemoteWriteStats::from_metrics(metrics);
            let mut f = Finding::pass(check, "the agent's own remote-write metrics, at the end of the load");
            f.evidence = stats.describe();
            f
        }
        (Err(e), _) => Finding {
            check,
            status: Status::Skipped,
            message: format!("could not scrape the agent's /metrics: {e}"),
            evidence: Vec::new(),
        },
        (Ok(_), None) => Finding {
            check,
            status: Status::Skipped,
            message: "the agent's /metrics could not be parsed".into(),
            evidence: Vec::new(),
        },
    }
}

/// At the deadline, open checks stay undecided (a failure) and say so.
pub(crate) fn close_at_deadline(mut evaluation: Evaluation, deadline: Duration) -> Evaluation {
    for f in &mut evaluation.findings {
        if f.status == Status::Undecided {
            f.message = format!("{} (undecided at the {}s deadline)", f.message, deadline.as_secs());
        }
    }
    if evaluation.observed.is_none() {
        evaluation.findings.push(Finding {
            check: Check::Outcome,
            status: Status::Undecided,
            message: format!("no outcome was reached within the {}s deadline", deadline.as_secs()),
            evidence: Vec::new(),
        });
    }
    evaluation
}

/// Writes a file only its owner can read (agent inputs hold secrets).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| format!("write {}: {e}", path.display()))
}
