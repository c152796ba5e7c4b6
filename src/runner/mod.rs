//! Running cases: up (mock cloud, scrape target, agent), run (watch until every expectation is decided or the
//! deadline passes), down (stop everything on every path) — then a [`Verdict`].

mod case;
pub mod compat;
mod plain_writes;
pub mod real;
pub mod replay;
pub mod setup;
pub mod sources;

use crate::Check;
use case::CaseRun;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::agent::prometheus::AgentPaths;
use crate::agent::store::AgentStore;
use crate::agent::vulnerability::VulnerabilityTable;
use crate::cloud::MockData;
use crate::expect::{Evaluation, Finding, Observed, SidecarExit, Status, Verdict};
use crate::matrix::Case;
use crate::report::bundle;
use crate::runtime::AgentState;

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
    pub real: Option<crate::runner::real::RealOptions>,
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

/// Set to `evaluate` to make azrw panic while judging a case: how the tests show that a harness bug still ends
/// the case with an error verdict and stops everything the case started.
pub const SELFTEST_PANIC_ENV: &str = "AZRW_SELFTEST_PANIC";

/// Panics if [`SELFTEST_PANIC_ENV`] names `at`.
pub(crate) fn selftest_panic(at: &str) {
    static PLANTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if PLANTED.get_or_init(|| std::env::var(SELFTEST_PANIC_ENV).ok()).as_deref() == Some(at) {
        panic!("{SELFTEST_PANIC_ENV}={at}: a planted panic");
    }
}

/// Cases per core when `--jobs` is not given. A case spends most of its life waiting on the agent (Prometheus'
/// first write comes ~6 s after start, on its discovery tick), so cases per minute rise with jobs well past the
/// core count: measured on 2 cores (BENCHMARKS.md, "Concurrency"), 2 → 4 → 6 → 8 jobs gave 1.00 : 1.96 : 3.00 :
/// 3.89 the throughput, every verdict unchanged.
pub const JOBS_PER_CORE: usize = 4;

/// Memory one case may take (an agent's resident set, its TSDB head and WAL, the mock's recorder), so that the
/// default never starts more cases than the machine can hold.
pub const MEMORY_PER_JOB: u64 = 512 * 1024 * 1024;

/// The default `--jobs`: [`JOBS_PER_CORE`] per core, fewer where available memory allows fewer (at
/// [`MEMORY_PER_JOB`] each), never less than one.
///
/// ```
/// assert!(azrw::runner::default_jobs() >= 1);
/// ```
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_memory = available_memory().map_or(usize::MAX, |bytes| (bytes / MEMORY_PER_JOB) as usize);
    (cores * JOBS_PER_CORE).min(by_memory).max(1)
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
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

/// A file-system friendly name for a case (its bundle directory's name; the reports link to it).
pub use crate::report::bundle::slug;

/// Runs one case to a verdict. Never panics on agent or cloud failures: they become the verdict's error.
pub async fn run_case(case: &Case, opts: &RunOptions) -> Verdict {
    let started = Instant::now();
    let scenario = &case.scenario.scenario;
    let mut verdict = Verdict {
        case_id: case.id.clone(),
        scenario: scenario.name.clone(),
        source: case.scenario.path.display().to_string(),
        agent: case.build.as_ref().map_or_else(|| format!("prometheus@{}", case.agent), |b| b.label()),
        runtime: case.runtime.to_string(),
        mode: case.mode,
        build: case.build.as_deref().cloned(),
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
    } else {
        // A panic is a harness bug, but it must not lose the case: unwinding stops the agent and removes its
        // inputs (Drop), and the verdict says what happened.
        let run = std::panic::AssertUnwindSafe(run_case_in(case, opts, &mut verdict, started));
        match futures_util::FutureExt::catch_unwind(run).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => verdict.error = Some(e),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                verdict.error = Some(format!("azrw panicked during the case (a harness bug): {message}"));
            }
        }
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
        return crate::runner::real::run::run_case_in(case, opts, real, verdict).await;
    }
    let CaseRun { plan, mut live } = CaseRun::up(case, opts, started).await.map_err(|e| e.to_string())?;
    verdict.config_changes = plan.config_changes();
    verdict.config_changes.extend(live.isolation_warning());
    let facts = plan.facts();
    let watched = live.watch(&facts, scenario.deadline, &opts.cancel).await;
    let decided_at = Instant::now();
    let wanted = crate::expect::probe::wanted(&facts, &watched.evaluation, live.agent_running(), watched.cancelled);
    let mut read = live.read_agent(wanted).await;
    let mut downed = live.down(decided_at).await;
    read.logs = plan.logs(&downed);
    read.secrets = plan.secrets(&downed.recorder);

    let mut evaluation = watched.evaluation.clone();
    let (exchanges, tokens) = (downed.recorder.exchanges(), downed.recorder.tokens());
    let seen = Observed {
        exchanges: &exchanges,
        tokens: &tokens,
        agent: &watched.last_state,
        agent_was_ready: watched.was_ready,
        accounting: None,
        scrapes: &[],
        sidecar_exit: None,
    };
    evaluation.findings.extend(crate::expect::probe::judge_agent(&facts, &seen, &evaluation, &read));
    verdict.observed = evaluation.observed;
    verdict.explanation = evaluation.explanation;
    verdict.findings = evaluation.findings;
    plan.record(&watched, &mut downed, verdict);
    if watched.cancelled {
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
