//! One case against real Azure: the agent gets the production config (plus a run label and the harness scrape
//! target), runs in the host's network, and arrival is verified by querying the workspace until every expected
//! series carrying this run's label shows up, or the deadline passes.

use crate::Check;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::RealOptions;
use super::workspace::{QueryRecord, Workspace, selector};
use crate::agent::prometheus::{AgentPaths, RenderInput, render};
use crate::expect::{Finding, Status, Verdict, default_expected};
use crate::matrix::Case;
use crate::private_file;
use crate::report::bundle;
use crate::runner::{RunOptions, slug};
use crate::runtime::AgentState;
use crate::runtime::process::ProcessAgent;
use crate::scenario::Outcome;
use crate::scrape::ScrapeTarget;

/// The label every series of a run carries, so concurrent runs never read each other's data.
pub const RUN_LABEL: &str = "azrw_run";

/// A fresh run id: the case slug's head and a random suffix.
pub fn run_id(case_id: &str) -> String {
    let head: String = slug(case_id).chars().take(24).collect();
    format!("{head}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// Runs `case` against the real target; fills `verdict`.
pub async fn run_case_in(
    case: &Case,
    opts: &RunOptions,
    real: &RealOptions,
    verdict: &mut Verdict,
) -> Result<(), String> {
    let resolved = super::env::resolve(&case.scenario.scenario, &real.env).map_err(|e| e.to_string())?;
    let mut scenario = case.scenario.scenario.clone();
    scenario.auth = resolved.auth.clone();
    let scenario_dir = case.scenario.path.parent().unwrap_or(Path::new(".")).to_owned();
    let binary = crate::runner::sources::binary(case, &opts.agents)?;
    let case_dir = opts.out_dir.join(slug(&case.id));
    std::fs::create_dir_all(&case_dir).map_err(|e| format!("create {}: {e}", case_dir.display()))?;
    let private = tempfile::Builder::new().prefix("azrw-real-").tempdir().map_err(|e| e.to_string())?;
    let mut paths = AgentPaths::under(private.path());
    crate::credential::place_files(&scenario.auth, &mut paths)?;

    let workspace = workspace(&resolved, real)?;

    let target_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind target: {e}"))?;
    let target = ScrapeTarget::start(target_listener).map_err(|e| format!("scrape target: {e}"))?;
    let run = run_id(&case.id);
    let labels = vec![(RUN_LABEL.to_owned(), run.clone())];
    let proxy = match &real.access {
        crate::credential::Access::Direct => None,
        crate::credential::Access::Via { proxy_url, ca_pem } => {
            private_file::write(&paths.ca_bundle, ca_pem.as_bytes())?;
            Some(proxy_url.clone())
        }
    };
    let listen = format!("127.0.0.1:{}", free_port()?);
    let target_addr = target.addr().to_string();
    let rendered = render(&RenderInput {
        scenario: &scenario,
        scenario_dir: &scenario_dir,
        version: case.agent,
        mode: case.mode,
        proxy_url: proxy.as_deref(),
        external_labels: &labels,
        default_ingestion_url: &resolved.azure.ingestion_url,
        target: &target_addr,
        listen_address: &listen,
        paths: &paths,
    })
    .map_err(|e| e.to_string())?;
    verdict.config_changes = rendered.changes.clone();
    verdict.runtime = "process (host network, real target)".into();
    private_file::write(&paths.config, rendered.config.as_bytes())?;
    let _ = bundle::write_config(&case_dir, &rendered.config);

    let mut agent = ProcessAgent::start_on_host(
        &binary,
        &rendered.args,
        &rendered.env,
        private.path(),
        &case_dir.join(bundle::file::AGENT_LOG),
    )
    .await
    .map_err(|e| format!("start prometheus {}: {e}", case.agent))?;

    let expected = expected_series(&scenario, &run);
    let watch = watch_arrival(&workspace, &expected, agent.state(), scenario.deadline, real.poll, opts).await;
    agent.stop().await;
    target.shutdown();

    let _ = bundle::write_json(&case_dir, bundle::file::QUERIES, &watch.queries);
    let (observed, explanation, findings) = judge(&watch, &expected, workspace.base(), scenario.deadline);
    verdict.observed = observed;
    verdict.explanation = explanation;
    verdict.findings = findings;
    if watch.cancelled {
        verdict.error = Some("interrupted before every expectation was decided".into());
    }
    Ok(())
}

/// The workspace, read as the scenario's reader identity.
fn workspace(resolved: &super::env::Resolved, real: &RealOptions) -> Result<Workspace, String> {
    let reader = resolved.reader().ok_or("no reader identity: set azure.reader")?;
    let client = real.access.client()?;
    let cloud = resolved.auth.cloud;
    let credential = crate::credential::for_reader(&reader, cloud, &client)?;
    Ok(Workspace::new(client, &resolved.azure.query_url, credential, cloud.query_scope()))
}

/// The series that must arrive: the scenario's (or the default ones), each tagged with this run's label.
fn expected_series(scenario: &crate::scenario::Scenario, run: &str) -> Vec<BTreeMap<String, String>> {
    let series = if scenario.expect.series.is_empty() { default_expected() } else { scenario.expect.series.clone() };
    series
        .into_iter()
        .map(|mut s| {
            s.insert(RUN_LABEL.to_owned(), run.to_owned());
            s
        })
        .collect()
}

/// What polling the workspace saw.
#[derive(Debug, Default)]
pub struct Arrival {
    /// Per expected series: the query that found it.
    pub found: Vec<Option<QueryRecord>>,
    /// Per expected series: the latest query that did not.
    pub last: Vec<Option<QueryRecord>>,
    /// Every query, in order.
    pub queries: Vec<QueryRecord>,
    /// A query the workspace refused (401/403): waiting cannot help.
    pub refused: Option<QueryRecord>,
    /// The agent's last state.
    pub agent: Option<AgentState>,
    /// Whether it ever became ready.
    pub was_ready: bool,
    /// Cancelled by the user.
    pub cancelled: bool,
}

/// Polls the workspace every `poll` (Azure offers no change feed to wait on) and on every agent change, until every
/// series is found, the workspace refuses, the agent exits, the deadline passes or the run is cancelled.
pub async fn watch_arrival(
    workspace: &Workspace,
    expected: &[BTreeMap<String, String>],
    mut state: tokio::sync::watch::Receiver<AgentState>,
    deadline: Duration,
    poll: Duration,
    opts: &RunOptions,
) -> Arrival {
    let mut arrival =
        Arrival { found: vec![None; expected.len()], last: vec![None; expected.len()], ..Default::default() };
    let deadline = tokio::time::Instant::now() + deadline;
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.changed() => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = opts.cancel.cancelled() => { arrival.cancelled = true; break; }
        }
        let agent_state = state.borrow_and_update().clone();
        arrival.was_ready |= agent_state == AgentState::Ready;
        let exited = matches!(agent_state, AgentState::Exited { .. });
        arrival.agent = Some(agent_state);
        if exited {
            break;
        }
        for (i, want) in expected.iter().enumerate() {
            if arrival.found[i].is_some() {
                continue;
            }
            let record = workspace.query(&selector(want)).await;
            arrival.queries.push(record.clone());
            if record.refused() {
                arrival.refused = Some(record);
                return arrival;
            }
            if record.series.is_empty() {
                arrival.last[i] = Some(record);
            } else {
                arrival.found[i] = Some(record);
            }
        }
        if arrival.found.iter().all(Option::is_some) {
            break;
        }
    }
    arrival
}

/// The outcome, its explanation and the `series.present` finding.
pub fn judge(
    arrival: &Arrival,
    expected: &[BTreeMap<String, String>],
    base: &str,
    deadline: Duration,
) -> (Option<Outcome>, String, Vec<Finding>) {
    let check = Check::SeriesPresent;
    if let Some(AgentState::Exited { code, error }) = &arrival.agent
        && !arrival.was_ready
    {
        let why = error.clone().unwrap_or_else(|| format!("exit code {code:?}"));
        return (
            Some(Outcome::ConfigRejected),
            format!("the agent exited before it was ready: {why}"),
            vec![Finding { check, status: Status::Skipped, message: "the agent never ran".into(), evidence: vec![] }],
        );
    }
    if let Some(refused) = &arrival.refused {
        let f = Finding::fail(check, "the workspace refused the harness's query; arrival cannot be verified")
            .with_evidence(refused.describe(base));
        return (
            None,
            "the reader identity may not query the workspace (needs Monitoring Data Reader)".into(),
            vec![f],
        );
    }
    if arrival.found.iter().all(Option::is_some) {
        let mut f = Finding::pass(check, "every expected series is in the workspace");
        f.evidence = arrival.found.iter().flatten().map(|r| r.describe(base)).collect();
        return (
            Some(Outcome::Delivered),
            "the workspace answers with every expected series of this run".into(),
            vec![f],
        );
    }
    let missing: Vec<String> =
        expected.iter().zip(&arrival.found).filter(|(_, f)| f.is_none()).map(|(want, _)| selector(want)).collect();
    let mut f = Finding {
        check,
        status: Status::Undecided,
        message: format!(
            "not in the workspace within the {}s deadline: {} (ingestion can take minutes; raise `deadline` if the agent \
             delivered)",
            deadline.as_secs(),
            missing.join(", ")
        ),
        evidence: Vec::new(),
    };
    f.evidence = arrival.last.iter().flatten().map(|r| r.describe(base)).collect();
    if let Some(AgentState::Exited { error, .. }) = &arrival.agent {
        f.evidence.push(format!("the agent exited: {}", error.clone().unwrap_or_default()));
    }
    (None, "the expected series never showed up in the workspace".into(), vec![f])
}
