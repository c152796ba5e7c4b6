//! Judging versions: for each selected version, reuse a result judged with the same azrw and scenario revision, or
//! provision the agent (timed), run the auth and security scenarios through the ordinary runner and turn the
//! verdicts into cells. Then the files: `compatibility.json`, `COMPATIBILITY.md`, one result per version.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cell::{self, Contradiction};
use super::{AZRW_VERSION, Compatibility, FileError, Shard, VersionList, VersionResult, read_json, table, write_json};
use crate::agent::{AgentCatalog, capability};
use crate::matrix::{self, Case, MatrixOptions};
use crate::runner::{RunOptions, run_cases};
use crate::scenario::{self, AgentMode, Outcome, RuntimeKind};
use crate::version::{AgentSource, Version};

/// First guesses before anything was measured: a cold build (~5 min on 2 cores), one version's cases.
const FIRST_BUILD: Duration = Duration::from_secs(5 * 60);
const FIRST_RUN: Duration = Duration::from_secs(90);

/// What `azrw compat` judges and where it writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The served versions (from `ci/compat/versions.json`, or asked just now).
    pub list: VersionList,
    /// `--versions`: these instead of the plan.
    pub versions: Option<Vec<Version>>,
    /// `--shard I/N`.
    pub shard: Option<Shard>,
    /// Per-version results (`results/<version>.json`) and case bundles (`cases/<version>/`).
    pub out_dir: PathBuf,
    /// `COMPATIBILITY.md`.
    pub markdown: PathBuf,
    /// `compatibility.json` (an existing one also supplies results to reuse).
    pub json: PathBuf,
    /// Scenario directories.
    pub scenarios: Vec<PathBuf>,
    /// The mock data directory, when it is a directory (part of the revision).
    pub mocks_dir: Option<PathBuf>,
    /// Where agents run.
    pub runtime: RuntimeKind,
    /// Build missing agents (else a missing one is reported with the command that builds it).
    pub provision: bool,
    /// How cases run (agents, mock data, vulnerability table, jobs, cancellation); `out_dir` is set per version.
    pub run: RunOptions,
}

/// What a run produced.
#[derive(Debug)]
pub struct Summary {
    /// The file as written.
    pub doc: Compatibility,
    /// Cells contradicting the capability table.
    pub contradictions: Vec<Contradiction>,
    /// Versions that could not be judged (provisioning failed …), with why.
    pub unjudged: Vec<(Version, String)>,
}

/// Why the run could not start or finish its files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompatError {
    /// A scenario file is wrong (file:line:column).
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// The cases could not be expanded.
    #[error(transparent)]
    Matrix(#[from] matrix::MatrixError),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The scenarios could not be hashed.
    #[error("hashing the scenarios: {0}")]
    Revision(std::io::Error),
}

/// The versions this run judges: `--versions` or the plan, then the shard's slice, oldest first.
pub fn selection(list: &VersionList, versions: Option<&[Version]>, shard: Option<Shard>) -> Vec<Version> {
    let mut all = versions.map_or_else(|| list.plan(), <[Version]>::to_vec);
    all.sort();
    all.dedup();
    match shard {
        Some(s) => s.slice(&all),
        None => all,
    }
}

/// The document for these results (the plan and what the proxy does not serve come from the list).
pub fn document(
    list: &VersionList,
    revision: &str,
    selected: &[Version],
    shard: Option<Shard>,
    results: Vec<VersionResult>,
) -> Compatibility {
    let mut results = results;
    results.sort_by_key(|r| r.version);
    Compatibility {
        azrw: AZRW_VERSION.to_owned(),
        scenario_revision: revision.to_owned(),
        plan: list.plan(),
        not_served: list.not_served(),
        unserved_minors: list.unserved_minors().iter().map(|(a, b)| format!("{a}.{b}")).collect(),
        selected: selected.to_vec(),
        shard: shard.map(|s| s.to_string()),
        results,
    }
}

/// Results judged before with this azrw and revision: the existing `compatibility.json`, then `results/*.json`.
pub fn previous(json: &Path, out_dir: &Path, revision: &str, versions: &[Version]) -> Vec<VersionResult> {
    let mut found: Vec<VersionResult> = Compatibility::read(json).map(|d| d.results).unwrap_or_default();
    for v in versions {
        if let Ok(r) = read_json::<VersionResult>(&result_path(out_dir, *v)) {
            found.retain(|f| f.version != r.version);
            found.push(r);
        }
    }
    found.retain(|r| r.is_current(revision) && versions.contains(&r.version));
    found
}

fn result_path(out_dir: &Path, v: Version) -> PathBuf {
    out_dir.join("results").join(format!("{v}.json"))
}

/// Judges the selection and writes the files.
pub async fn run(opts: &Options) -> Result<Summary, CompatError> {
    let selected = selection(&opts.list, opts.versions.as_deref(), opts.shard);
    let mut hashed = opts.scenarios.clone();
    hashed.extend(opts.mocks_dir.clone());
    let revision = super::revision(&hashed).map_err(CompatError::Revision)?;
    let loaded = load_scenarios(&opts.scenarios)?;
    let reusable = previous(&opts.json, &opts.out_dir, &revision, &selected);
    let mut results = Vec::new();
    let mut unjudged = Vec::new();
    let (mut runs, mut builds): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    let total = selected.len();
    eprintln!("compat: {total} version(s) to judge, scenario revision {revision}: {}", list(&selected));
    for (n, &version) in selected.iter().enumerate() {
        let place = format!("[{} of {total}] prometheus {version}", n + 1);
        if let Some(r) = reusable.iter().find(|r| r.version == version) {
            eprintln!("{place}: already judged (azrw {AZRW_VERSION}, revision {revision}): kept");
            results.push(r.clone());
            continue;
        }
        let started = Instant::now();
        match judge_version(opts, &loaded, version, &revision).await {
            Ok(result) => {
                write_json(&result_path(&opts.out_dir, version), &result)?;
                runs.push(Duration::from_secs_f64(result.run_seconds));
                builds.extend(result.build_seconds.map(Duration::from_secs_f64));
                let built = result.build_seconds.map_or("already built".to_owned(), |s| format!("built in {s:.0}s"));
                eprintln!("{place}: judged in {:.0}s ({built})", started.elapsed().as_secs_f64());
                results.push(result);
            }
            Err(why) => {
                eprintln!("{place}: NOT judged: {why}");
                unjudged.push((version, why));
            }
        }
        let rest: Vec<Version> =
            selected[n + 1..].iter().copied().filter(|v| !reusable.iter().any(|r| r.version == *v)).collect();
        if !rest.is_empty() {
            let to_build = rest.iter().filter(|v| opts.run.agents.get(**v).is_err()).count();
            let left = estimate(&runs, &builds, rest.len(), to_build);
            eprintln!("compat: {} version(s) left ({to_build} to build), about {left} to go", rest.len());
        }
    }
    let doc = document(&opts.list, &revision, &selected, opts.shard, results);
    doc.write(&opts.json)?;
    std::fs::write(&opts.markdown, table::render(&doc))
        .map_err(|e| FileError { path: opts.markdown.display().to_string(), message: e.to_string() })?;
    let contradictions = doc.contradictions();
    Ok(Summary { doc, contradictions, unjudged })
}

fn list(versions: &[Version]) -> String {
    versions.iter().map(Version::to_string).collect::<Vec<_>>().join(", ")
}

/// Mean measured run × versions left + mean measured build × versions still to build (first guesses before any).
fn estimate(runs: &[Duration], builds: &[Duration], left: usize, to_build: usize) -> String {
    let mean = |d: &[Duration], guess: Duration| {
        if d.is_empty() { guess } else { d.iter().sum::<Duration>() / d.len() as u32 }
    };
    let secs = mean(runs, FIRST_RUN).as_secs() * left as u64 + mean(builds, FIRST_BUILD).as_secs() * to_build as u64;
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

fn load_scenarios(paths: &[PathBuf]) -> Result<Vec<Arc<scenario::LoadedScenario>>, CompatError> {
    let mut loaded = Vec::new();
    for f in scenario::discover(paths)? {
        let l = scenario::load(&f)?;
        // Real-Azure scenarios are not part of a mock matrix.
        if l.scenario.target == scenario::TargetKind::Mock {
            loaded.push(Arc::new(l));
        }
    }
    Ok(loaded)
}

/// The cases of one version: every scenario on it, expected to reach what the capability table predicts when the
/// version lacks the auth type (scenarios name outcomes per catalog line, which this version may not be).
pub fn cases(
    loaded: &[Arc<scenario::LoadedScenario>],
    version: Version,
    runtime: RuntimeKind,
) -> Result<Vec<Case>, matrix::MatrixError> {
    // Server mode only: the matrix answers which build supports which auth type; agent mode authenticates the same
    // way (measured on the catalog versions) and would double the cost of every cell.
    let opts = MatrixOptions {
        agents: vec![AgentSource::Catalog(format!("prometheus@{version}"))],
        modes: vec![AgentMode::Server],
        runtimes: vec![runtime],
        default_runtime: runtime,
        ..MatrixOptions::default()
    };
    let mut cases = matrix::expand(loaded, &AgentCatalog::default_catalog(), &opts)?;
    for case in &mut cases {
        let sidecar = case.scenario.scenario.remote_write_sidecar().is_some();
        let missing = capability::missing(&case.scenario.scenario.auth, version).is_some();
        if missing && !sidecar {
            case.expected = Outcome::ConfigRejected;
        } else if case.expected == Outcome::ConfigRejected {
            case.expected = Outcome::Delivered;
        }
    }
    Ok(cases)
}

async fn judge_version(
    opts: &Options,
    loaded: &[Arc<scenario::LoadedScenario>],
    version: Version,
    revision: &str,
) -> Result<VersionResult, String> {
    let store = &opts.run.agents;
    let build_seconds = if store.get(version).is_ok() {
        None
    } else if !opts.provision {
        return Err(format!("not provisioned; run: azrw agents provision {version}"));
    } else {
        let started = Instant::now();
        eprintln!("prometheus {version}: provisioning (Go module and build caches are shared across versions)");
        store.provision(&[version]).await.map_err(|e| e.to_string())?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!("prometheus {version}: build took {secs:.0}s");
        Some(secs)
    };
    let cases = cases(loaded, version, opts.runtime).map_err(|e| e.to_string())?;
    let run = RunOptions { out_dir: opts.out_dir.join("cases").join(version.to_string()), ..opts.run.clone() };
    let started = Instant::now();
    let verdicts =
        run_cases(&cases, &run, |v| eprintln!("  {} {} ({:.1}s)", v.result(), v.case_id, v.duration.as_secs_f64()))
            .await;
    if opts.run.cancel.is_cancelled() {
        return Err("interrupted".into());
    }
    // Matched by id: a case whose task died has no verdict, and must not shift the others.
    let cells =
        cases.iter().filter_map(|c| verdicts.iter().find(|v| v.case_id == c.id).map(|v| cell::judge(c, v))).collect();
    Ok(VersionResult {
        version,
        azrw: AZRW_VERSION.to_owned(),
        scenario_revision: revision.to_owned(),
        build_seconds,
        run_seconds: started.elapsed().as_secs_f64(),
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::store::AgentStore;
    use crate::runner::compat::testdata::recorded;

    fn options(dir: &Path, list: VersionList, versions: Vec<Version>) -> Options {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Options {
            list,
            versions: Some(versions),
            shard: None,
            out_dir: dir.join("out"),
            markdown: dir.join("COMPATIBILITY.md"),
            json: dir.join("compatibility.json"),
            scenarios: crate::runner::compat::SCENARIOS.iter().map(|s| root.join(s)).collect(),
            mocks_dir: None,
            runtime: RuntimeKind::Process,
            provision: false,
            // No agent is provisioned here: a version that is not kept shows up as not judged, never runs.
            run: RunOptions { agents: AgentStore::at(&dir.join("agents")), ..RunOptions::new(&dir.join("out"), 1) },
        }
    }

    #[tokio::test]
    async fn judged_versions_are_kept_and_a_rerun_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (list, results) = recorded();
        let versions: Vec<Version> = results.iter().map(|r| r.version).collect();
        let opts = options(dir.path(), list, versions.clone());
        let revision = crate::runner::compat::revision(&opts.scenarios).unwrap();
        for mut r in results {
            (r.azrw, r.scenario_revision) = (AZRW_VERSION.to_owned(), revision.clone());
            write_json(&result_path(&opts.out_dir, r.version), &r).unwrap();
        }
        let first = run(&opts).await.unwrap();
        assert!(first.unjudged.is_empty(), "{:?}", first.unjudged);
        assert_eq!(first.doc.results.len(), versions.len());
        let (md, json) = (std::fs::read(&opts.markdown).unwrap(), std::fs::read(&opts.json).unwrap());
        // Again, and again without the per-version files (compatibility.json alone supplies them).
        run(&opts).await.unwrap();
        std::fs::remove_dir_all(opts.out_dir.join("results")).unwrap();
        run(&opts).await.unwrap();
        assert_eq!(std::fs::read(&opts.markdown).unwrap(), md);
        assert_eq!(std::fs::read(&opts.json).unwrap(), json);
    }

    #[tokio::test]
    async fn a_result_of_another_revision_is_judged_again() {
        let dir = tempfile::tempdir().unwrap();
        let (list, results) = recorded();
        let stale = results[0].clone();
        let opts = options(dir.path(), list, vec![stale.version]);
        write_json(
            &result_path(&opts.out_dir, stale.version),
            &VersionResult { scenario_revision: "old".into(), ..stale.clone() },
        )
        .unwrap();
        let summary = run(&opts).await.unwrap();
        assert!(summary.doc.results.is_empty());
        assert_eq!(summary.unjudged.len(), 1);
        assert!(
            summary.unjudged[0].1.contains(&format!("run: azrw agents provision {}", stale.version)),
            "{:?}",
            summary.unjudged
        );
    }

    #[test]
    fn the_selection_is_the_plan_or_the_named_versions_then_the_shard() {
        let (list, _) = recorded();
        assert_eq!(selection(&list, None, None), list.plan());
        let v: Vec<Version> = ["3.16.0", "2.53.4", "3.5.5"].iter().map(|s| s.parse().unwrap()).collect();
        let mine = selection(&list, Some(&v), Some(Shard { index: 2, count: 2 }));
        assert_eq!(mine, vec!["3.5.5".parse().unwrap()]);
    }

    #[test]
    fn estimates_use_what_was_measured() {
        assert_eq!(estimate(&[], &[], 2, 1), "8m00s");
        let runs = [Duration::from_secs(60), Duration::from_secs(120)];
        assert_eq!(estimate(&runs, &[Duration::from_secs(240)], 20, 10), "1h10m");
    }

    #[test]
    fn cases_expect_what_the_capability_table_predicts() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = load_scenarios(&[root.join("scenarios/auth")]).unwrap();
        let cases = cases(&loaded, Version::new(2, 47, 2), RuntimeKind::Process).unwrap();
        let of = |name: &str| cases.iter().find(|c| c.scenario.scenario.name == name).unwrap().expected;
        // oauth arrived in 2.48: even a scenario that says `outcome: delivered` must be refused on 2.47.
        assert_eq!(of("auth/entra/client-secret"), Outcome::ConfigRejected);
        assert_eq!(of("auth/negative/wrong-client-secret"), Outcome::ConfigRejected);
        assert_eq!(of("auth/managed-identity/user-assigned"), Outcome::Delivered);
        assert_eq!(of("auth/negative/no-role-on-dcr"), Outcome::Dropped);
        let cases = super::cases(&loaded, Version::new(3, 5, 5), RuntimeKind::Process).unwrap();
        let seed = cases.iter().find(|c| c.scenario.scenario.name.ends_with("seed-example")).unwrap();
        assert_eq!(seed.expected, Outcome::Delivered);
    }
}
