//! Running cases: up (mock cloud, scrape target, agent), run (watch until every expectation is decided or the
//! deadline passes), down (stop everything on every path) — then a [`Verdict`].

pub mod setup;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::agent::prometheus::{AgentPaths, RenderInput, render};
use crate::agent::store::AgentStore;
use crate::cloud::recorder::RecordMode;
use crate::cloud::{MockCloud, MockData};
use crate::expect::{CaseFacts, Evaluation, Finding, Observed, Status, Verdict, evaluate};
use crate::runtime::AgentState;
use crate::runtime::sandbox::{AgentLaunch, Sandbox};
use crate::scenario::{Case, RuntimeKind};
use crate::target::ScrapeTarget;

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
    /// Cancelled on Ctrl-C / SIGTERM: running cases stop their agents and report what they saw.
    pub cancel: CancellationToken,
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
    if let Err(e) = run_case_in(case, opts, &mut verdict, started).await {
        verdict.error = Some(e);
    }
    verdict.duration = started.elapsed();
    verdict
}

async fn run_case_in(case: &Case, opts: &RunOptions, verdict: &mut Verdict, started: Instant) -> Result<(), String> {
    let scenario = &case.scenario.scenario;
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
        RuntimeKind::Docker => return Err("the docker runtime is not available in this build".to_owned()),
    };
    let agent_paths = AgentPaths::under(&sandbox.agent_dir());
    let proxy_listener = sandbox.bind().await.map_err(|e| format!("bind proxy: {e}"))?;
    let target_listener = sandbox.bind().await.map_err(|e| format!("bind target: {e}"))?;

    let (_, user_url) = crate::agent::prometheus::base_config(scenario, &scenario_dir).map_err(|e| e.to_string())?;
    let ingestion_url = user_url.unwrap_or_else(|| setup::default_ingestion_url(scenario));
    let cloud_setup = setup::cloud_setup(scenario, &ingestion_url, opts.mocks.clone()).map_err(|e| e.to_string())?;
    let dcr_id = cloud_setup.config.dcr.dcr_id.clone();
    let dcr_cloud = cloud_setup.config.dcr.cloud;
    let cloud = MockCloud::start(cloud_setup.config, proxy_listener, cloud_setup.issuer.clone())
        .await
        .map_err(|e| format!("mock cloud: {e}"))?;
    cloud.recorder().set_mode(scenario.record);
    if let Some(throttle) = &scenario.cloud.throttle {
        cloud.throttle(throttle.clone());
    }
    let load_series = scenario.load.as_ref().map_or(0, |l| l.series);
    let target =
        ScrapeTarget::start_with_load(target_listener, load_series).map_err(|e| format!("scrape target: {e}"))?;
    let mut timings = Timings { cloud_up_ms: ms(started.elapsed()), ..Timings::default() };

    let proxy_url = format!("http://{}", sandbox.agent_address(cloud.proxy_addr()));
    let target_addr = sandbox.agent_address(target.addr());
    let rendered = render(&RenderInput {
        scenario,
        scenario_dir: &scenario_dir,
        version: case.agent,
        proxy_url: &proxy_url,
        default_ingestion_url: &ingestion_url,
        target: &target_addr,
        listen_address: sandbox.listen_address(),
        paths: &agent_paths,
    })
    .map_err(|e| e.to_string())?;
    verdict.config_changes = rendered.changes.clone();

    write_private(&host_paths.config, rendered.config.as_bytes())?;
    write_private(&host_paths.ca_bundle, cloud.ca_pem().as_bytes())?;
    if let (Some(issuer), Some(subject)) = (&cloud_setup.issuer, &cloud_setup.federated_subject) {
        write_private(
            &host_paths.federated_token,
            issuer.federated_token(subject, Duration::from_secs(3600)).as_bytes(),
        )?;
    }
    if let Some(cert) = &cloud_setup.client_certificate {
        write_private(&host_paths.client_certificate, cert.cert_pem().as_bytes())?;
        write_private(&host_paths.client_key, cert.key_pem().as_bytes())?;
    }
    let _ = std::fs::write(case_dir.join("prometheus.yml"), crate::report::redact::config(&rendered.config));

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
    let facts = CaseFacts {
        auth: &scenario.auth,
        version: case.agent,
        expect: &scenario.expect,
        expected: case.expected,
        dcr_id: &dcr_id,
        dcr_cloud,
        load: scenario.load.as_ref(),
        scrape_interval: crate::agent::prometheus::scrape_interval(scenario),
    };
    let accounting = scenario.record == RecordMode::Accounting;
    let recorder = cloud.recorder();
    let mut recorded = recorder.subscribe();
    let mut state = agent.state();
    let deadline = tokio::time::Instant::now() + scenario.deadline;
    let mut was_ready = false;
    let mut cancelled = false;
    let evaluation = loop {
        let agent_state = state.borrow_and_update().clone();
        was_ready |= agent_state == AgentState::Ready;
        let exchanges = recorder.exchanges();
        let tokens = recorder.tokens();
        // The accounting is read in place (one entry per series; copying it per evaluation would cost more).
        let evaluation = recorder.with_accounting(|acc| {
            let accounting = accounting.then_some(acc);
            let seen = Observed {
                exchanges: &exchanges,
                tokens: &tokens,
                agent: &agent_state,
                agent_was_ready: was_ready,
                accounting,
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
            _ = tokio::time::sleep_until(deadline) => break close_at_deadline(evaluation, scenario.deadline),
            _ = opts.cancel.cancelled() => { cancelled = true; break evaluation; }
        }
    };

    timings.decided_ms = ms(started.elapsed());
    let mut evaluation = evaluation;
    if scenario.load.is_some() && !cancelled {
        evaluation.findings.push(agent_metrics(&sandbox).await);
    }

    // Down: on every path.
    agent.stop().await;
    target.shutdown();
    let exchanges = recorder.exchanges();
    cloud.shutdown().await;
    drop(sandbox);

    if let Ok(json) = serde_json::to_string_pretty(&exchanges) {
        let _ = std::fs::write(case_dir.join("exchanges.json"), json);
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
    if cancelled {
        verdict.error = Some("interrupted before every expectation was decided".into());
    }
    Ok(())
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

/// The agent's own view of its remote-write queue (shards, send latency), scraped from its listen address inside
/// the sandbox; reported, not judged.
async fn agent_metrics(sandbox: &Sandbox) -> Finding {
    let check = "load.agent";
    let address = sandbox.listen_address();
    let scraped = match address.parse::<std::net::SocketAddr>() {
        Ok(addr) => match sandbox.connect(addr).await {
            Ok(stream) => {
                let host = address.to_owned();
                tokio::task::spawn_blocking(move || crate::agent::metrics::scrape(stream, &host))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(std::io::Error::other(format!("listen address {address}: {e}"))),
    };
    match scraped {
        Ok(text) => {
            let stats = crate::agent::metrics::RemoteWriteStats::parse(&text);
            let mut f = Finding::pass(check, "the agent's own remote-write metrics, at the end of the load");
            f.evidence = stats.describe();
            f
        }
        Err(e) => Finding {
            check: check.into(),
            status: Status::Skipped,
            message: format!("could not scrape the agent's /metrics at {address}: {e}"),
            evidence: Vec::new(),
        },
    }
}

/// At the deadline, open checks stay undecided (a failure) and say so.
fn close_at_deadline(mut evaluation: Evaluation, deadline: Duration) -> Evaluation {
    for f in &mut evaluation.findings {
        if f.status == Status::Undecided {
            f.message = format!("{} (undecided at the {}s deadline)", f.message, deadline.as_secs());
        }
    }
    if evaluation.observed.is_none() {
        evaluation.findings.push(Finding {
            check: "outcome".into(),
            status: Status::Undecided,
            message: format!("no outcome was reached within the {}s deadline", deadline.as_secs()),
            evidence: Vec::new(),
        });
    }
    evaluation
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
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
