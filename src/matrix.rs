//! Matrix expansion: scenarios × agent versions × runtimes, each case with the outcome it must reach.
//!
//! Above `scenario` and `agent` (it resolves a scenario's agent references against the catalog and predicts
//! outcomes from the capability table), below `runner`, which runs the cases.

use std::collections::BTreeMap;
use std::sync::Arc;

use globset::{Glob, GlobMatcher};

use crate::agent::source::AgentBuild;
use crate::agent::{AgentCatalog, CatalogError, capability};
use crate::scenario::{AgentMode, LoadedScenario, Outcome, OutcomeSpec, RuntimeKind, ScenarioError};
use crate::version::{AgentRef, AgentSource, AgentSourceError, Version};

/// Why scenarios could not be expanded into cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// A scenario's own field is wrong (an agent it names, its name); points at the file and line.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// An agent given on the command line does not resolve against the catalog.
    #[error("{context}: {error}")]
    Agent {
        /// Where the reference came from, e.g. `--agent prometheus@3.9`.
        context: String,
        /// Why it does not resolve.
        error: CatalogError,
    },
    /// The user's own agent was not identified before expansion (a caller's omission), or cannot run as asked.
    #[error("{agent}: {message}")]
    Own {
        /// As given.
        agent: String,
        /// What is wrong.
        message: String,
    },
    /// The case filter is not a valid glob.
    #[error("filter `{pattern}`: {error}")]
    Filter {
        /// The pattern as given.
        pattern: String,
        /// Why globset refused it.
        error: globset::Error,
    },
}

/// One run of one scenario: an agent version under a runtime.
#[derive(Debug, Clone)]
pub struct Case {
    /// `{scenario name} [prometheus@{version}/{runtime}]`, unique within a run.
    pub id: String,
    /// The scenario it comes from.
    pub scenario: Arc<LoadedScenario>,
    /// The resolved agent version (the one the user's own build reports, or is assumed to be).
    pub agent: Version,
    /// The reference as written (`prometheus@2.53`, `prometheus=/tmp/myprom`), for reports.
    pub agent_ref: String,
    /// The user's own build (binary or image); `None` for the catalog's.
    pub build: Option<Arc<AgentBuild>>,
    /// Where the agent runs.
    pub runtime: RuntimeKind,
    /// Server or agent mode.
    pub mode: AgentMode,
    /// The outcome the case must reach.
    pub expected: Outcome,
}

/// How a run narrows or overrides what scenarios ask for.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// `--agent`: replaces every scenario's `agents` when non-empty.
    pub agents: Vec<AgentSource>,
    /// The user's own builds named on the command line or in scenarios, identified beforehand
    /// (`runner::sources::identify_all`): expansion needs their versions.
    pub builds: BTreeMap<AgentSource, Arc<AgentBuild>>,
    /// `--mode`: replaces every scenario's `modes` when non-empty.
    pub modes: Vec<AgentMode>,
    /// `--runtime`: replaces every scenario's `runtimes` when non-empty.
    pub runtimes: Vec<RuntimeKind>,
    /// Used when neither the command line nor the scenario names a runtime.
    pub default_runtime: RuntimeKind,
    /// Glob on the case id or the scenario name; `None` keeps every case.
    pub filter: Option<String>,
}

impl Default for MatrixOptions {
    fn default() -> Self {
        MatrixOptions {
            agents: Vec::new(),
            builds: BTreeMap::new(),
            modes: Vec::new(),
            runtimes: Vec::new(),
            default_runtime: RuntimeKind::Process,
            filter: None,
        }
    }
}

/// The case id for a scenario name, agent, runtime and mode: `name [prometheus@3.5.5/process]`, the user's own
/// `name [prometheus=/tmp/myprom@3.5.5/process]`; agent mode adds `/agent` (server mode keeps the ids it always had).
pub fn case_id(scenario: &str, agent: &Agent, runtime: RuntimeKind, mode: AgentMode) -> String {
    let who = match &agent.build {
        Some(b) => format!("{}@{}", b.source, agent.version),
        None => format!("prometheus@{}", agent.version),
    };
    let mode = match mode {
        AgentMode::Server => String::new(),
        AgentMode::Agent => "/agent".to_owned(),
    };
    format!("{scenario} [{who}/{runtime}{mode}]")
}

/// An agent resolved for expansion.
#[derive(Debug, Clone)]
pub struct Agent {
    /// As written.
    pub written: String,
    /// The version the tables apply by.
    pub version: Version,
    /// The user's own build, if it is one.
    pub build: Option<Arc<AgentBuild>>,
}

/// Expands scenarios into cases, in scenario, agent, runtime order. Agent references that resolve to the same
/// version give one case (the first reference names it).
pub fn expand(
    scenarios: &[Arc<LoadedScenario>],
    catalog: &AgentCatalog,
    opts: &MatrixOptions,
) -> Result<Vec<Case>, MatrixError> {
    let filter = match &opts.filter {
        Some(pattern) => Some(compile(pattern)?),
        None => None,
    };
    // Command-line agents are resolved once: a failure there is not any scenario's fault.
    let cli_agents: Vec<Agent> = opts
        .agents
        .iter()
        .map(|source| {
            resolve(source, catalog, &opts.builds).map_err(|e| match e {
                Resolve::Catalog(error) => MatrixError::Agent { context: format!("--agent {source}"), error },
                Resolve::Own(message) => MatrixError::Own { agent: source.to_string(), message },
            })
        })
        .collect::<Result<_, _>>()?;

    let mut cases = Vec::new();
    // Case ids are built from scenario names, so two files with one name would give ambiguous reports.
    let mut names: Vec<(&str, &std::path::Path)> = Vec::new();
    for loaded in scenarios {
        let s = &loaded.scenario;
        match names.iter().find(|(name, _)| *name == s.name) {
            Some((_, path)) if *path == loaded.path => continue, // the same file listed twice
            Some((_, path)) => {
                return Err(MatrixError::Scenario(
                    loaded.error_at("name", format!("`{}` is also the name of {}", s.name, path.display())),
                ));
            }
            None => names.push((&s.name, &loaded.path)),
        }
        let agents =
            if cli_agents.is_empty() { scenario_agents(loaded, catalog, &opts.builds)? } else { cli_agents.clone() };
        let modes = if !opts.modes.is_empty() {
            opts.modes.clone()
        } else if !s.modes.is_empty() {
            s.modes.clone()
        } else {
            vec![AgentMode::Server]
        };
        let runtimes = if !opts.runtimes.is_empty() {
            opts.runtimes.clone()
        } else if !s.runtimes.is_empty() {
            s.runtimes.clone()
        } else {
            vec![opts.default_runtime]
        };

        let mut seen: Vec<(Version, Option<String>)> = Vec::new();
        for agent in agents {
            // Catalog references collapse by version; each own build is its own agent.
            let key = (agent.version, agent.build.as_ref().map(|b| b.source.clone()));
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            if agent.build.as_ref().is_some_and(|b| b.is_image()) && !runtimes.contains(&RuntimeKind::Docker) {
                return Err(MatrixError::Own {
                    agent: agent.written.clone(),
                    message: format!("an image runs only in the docker runtime, and {} asks for {}", s.name, {
                        let names: Vec<String> = runtimes.iter().map(ToString::to_string).collect();
                        names.join(", ")
                    }),
                });
            }
            let expected = expected_outcome(loaded, catalog, &agent.written, agent.version);
            for (runtime, mode) in combinations(&runtimes, &modes) {
                if agent.build.as_ref().is_some_and(|b| b.is_image()) && runtime != RuntimeKind::Docker {
                    // An image runs only in Docker: its cases are the Docker ones.
                    continue;
                }
                let id = case_id(&s.name, &agent, runtime, mode);
                if let Some(f) = &filter
                    && !f.is_match(&id)
                    && !f.is_match(&s.name)
                {
                    continue;
                }
                cases.push(Case {
                    id,
                    scenario: Arc::clone(loaded),
                    agent: agent.version,
                    agent_ref: agent.written.clone(),
                    build: agent.build.clone(),
                    runtime,
                    mode,
                    expected,
                });
            }
        }
    }
    Ok(cases)
}

/// Runtimes × modes, each once, in the order given.
fn combinations(runtimes: &[RuntimeKind], modes: &[AgentMode]) -> Vec<(RuntimeKind, AgentMode)> {
    let mut out = Vec::new();
    for &runtime in runtimes {
        for &mode in modes {
            if !out.contains(&(runtime, mode)) {
                out.push((runtime, mode));
            }
        }
    }
    out
}

/// Why an agent did not resolve.
enum Resolve {
    Catalog(CatalogError),
    Own(String),
}

fn resolve(
    source: &AgentSource,
    catalog: &AgentCatalog,
    builds: &BTreeMap<AgentSource, Arc<AgentBuild>>,
) -> Result<Agent, Resolve> {
    let written = source.to_string();
    if let Some(agent) = source.catalog_ref() {
        let version = catalog.resolve(&agent).map_err(Resolve::Catalog)?;
        return Ok(Agent { written, version, build: None });
    }
    let build = builds.get(source).ok_or_else(|| {
        Resolve::Own("not identified: its version must be read (runner::sources::identify_all) before expansion".into())
    })?;
    Ok(Agent { written, version: build.version, build: Some(Arc::clone(build)) })
}

/// A scenario's agents as sources, with their `assume_version`; a relative binary path is relative to the
/// scenario file.
pub fn scenario_sources(loaded: &LoadedScenario) -> Result<Vec<(AgentSource, Option<Version>)>, ScenarioError> {
    let dir = loaded.path.parent().unwrap_or(std::path::Path::new("."));
    let mut out = Vec::new();
    for (i, entry) in loaded.scenario.agents.iter().enumerate() {
        let field = format!("agents[{i}]");
        // `load` already checked the syntax; a scenario built by hand may not have been.
        let source = match entry.written.parse::<AgentSource>() {
            Ok(AgentSource::Binary(path)) if path.is_relative() => AgentSource::Binary(dir.join(path)),
            Ok(source) => source,
            Err(e @ AgentSourceError(_)) => return Err(loaded.error_at(&field, e.to_string())),
        };
        let assume = match &entry.assume_version {
            Some(v) => Some(v.parse::<Version>().map_err(|e| loaded.error_at(&field, e.to_string()))?),
            None => None,
        };
        out.push((source, assume));
    }
    Ok(out)
}

fn compile(pattern: &str) -> Result<GlobMatcher, MatrixError> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|error| MatrixError::Filter { pattern: pattern.to_owned(), error })
}

/// The scenario's own agents, resolved; a reference the catalog cannot satisfy points at its line in the file.
fn scenario_agents(
    loaded: &LoadedScenario,
    catalog: &AgentCatalog,
    builds: &BTreeMap<AgentSource, Arc<AgentBuild>>,
) -> Result<Vec<Agent>, ScenarioError> {
    let mut out = Vec::new();
    for (i, (source, _)) in scenario_sources(loaded)?.into_iter().enumerate() {
        let field = format!("agents[{i}]");
        let mut agent = resolve(&source, catalog, builds).map_err(|e| match e {
            Resolve::Catalog(e) => loaded.error_at(&field, e.to_string()),
            Resolve::Own(m) => loaded.error_at(&field, format!("{source}: {m}")),
        })?;
        // Outcome keys name the agent as the scenario wrote it.
        agent.written = loaded.scenario.agents[i].written.clone();
        out.push(agent);
    }
    Ok(out)
}

/// `expect.outcome` for this agent: the entry written as this reference, else one resolving to the same version,
/// else `default`, else what the capability table predicts.
fn expected_outcome(loaded: &LoadedScenario, catalog: &AgentCatalog, agent_ref: &str, version: Version) -> Outcome {
    let s = &loaded.scenario;
    // A remote-write sidecar authenticates in the agent's place: every version can deliver through it.
    let predicted = || match s.remote_write_sidecar() {
        Some(_) => Outcome::Delivered,
        None => capability::predicted_outcome(&s.auth, version),
    };
    match &s.expect.outcome {
        None => predicted(),
        Some(OutcomeSpec::One(o)) => *o,
        Some(OutcomeSpec::PerAgent(map)) => {
            if let Some(o) = map.get(agent_ref) {
                return *o;
            }
            let same_version = map
                .iter()
                .find(|(key, _)| key.parse::<AgentRef>().ok().and_then(|r| catalog.resolve(&r).ok()) == Some(version));
            match same_version {
                Some((_, o)) => *o,
                None => map.get("default").copied().unwrap_or_else(predicted),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::load::parse;

    fn catalog() -> AgentCatalog {
        AgentCatalog::parse("2.53.3\n3.5.0\n3.5.1\n3.16.0\n", "test").unwrap()
    }

    fn scenario(src: &str) -> Arc<LoadedScenario> {
        Arc::new(parse(Path::new("s.yaml"), src.to_owned()).unwrap())
    }

    fn system_assigned(extra: &str) -> Arc<LoadedScenario> {
        scenario(&format!(
            "name: mi/system\nagents: [prometheus@2.53, prometheus@3.5, prometheus@latest]\n\
             auth: {{managed_identity: {{client_id: \"\"}}}}\n{extra}"
        ))
    }

    fn ids(cases: &[Case]) -> Vec<&str> {
        cases.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn expands_agents_and_default_runtime_with_predicted_outcomes() {
        let cases = expand(&[system_assigned("")], &catalog(), &MatrixOptions::default()).unwrap();
        assert_eq!(
            ids(&cases),
            vec![
                "mi/system [prometheus@2.53.3/process]",
                "mi/system [prometheus@3.5.1/process]",
                "mi/system [prometheus@3.16.0/process]"
            ]
        );
        assert_eq!(cases[0].agent_ref, "prometheus@2.53");
        // System-assigned needs 3.5: the table predicts a rejected config before it.
        let expected: Vec<Outcome> = cases.iter().map(|c| c.expected).collect();
        assert_eq!(expected, vec![Outcome::ConfigRejected, Outcome::Delivered, Outcome::Delivered]);
    }

    #[test]
    fn per_agent_outcomes_default_and_prediction() {
        let s = system_assigned("expect:\n  outcome:\n    prometheus@3.5: dropped\n    default: auth-failed\n");
        let cases = expand(&[s], &catalog(), &MatrixOptions::default()).unwrap();
        let expected: Vec<Outcome> = cases.iter().map(|c| c.expected).collect();
        assert_eq!(expected, vec![Outcome::AuthFailed, Outcome::Dropped, Outcome::AuthFailed]);

        // Without `default` the table decides the rest.
        let s = system_assigned("expect:\n  outcome:\n    prometheus@3.5: dropped\n");
        let cases = expand(&[s], &catalog(), &MatrixOptions::default()).unwrap();
        let expected: Vec<Outcome> = cases.iter().map(|c| c.expected).collect();
        assert_eq!(expected, vec![Outcome::ConfigRejected, Outcome::Dropped, Outcome::Delivered]);
    }

    #[test]
    fn one_outcome_applies_everywhere() {
        let cases =
            expand(&[system_assigned("expect: {outcome: dropped}\n")], &catalog(), &MatrixOptions::default()).unwrap();
        assert!(cases.iter().all(|c| c.expected == Outcome::Dropped));
    }

    #[test]
    fn cli_agents_match_outcome_keys_by_resolved_version() {
        let s = system_assigned("expect:\n  outcome:\n    prometheus@3.5: dropped\n");
        let opts = MatrixOptions { agents: vec!["prometheus@3.5.1".parse().unwrap()], ..MatrixOptions::default() };
        let cases = expand(&[s], &catalog(), &opts).unwrap();
        assert_eq!(ids(&cases), vec!["mi/system [prometheus@3.5.1/process]"]);
        assert_eq!(cases[0].agent_ref, "prometheus@3.5.1");
        assert_eq!(cases[0].expected, Outcome::Dropped);
    }

    #[test]
    fn duplicate_versions_collapse() {
        let s = scenario(
            "name: d\nagents: [prometheus@3.16, prometheus@latest, prometheus@3.16.0]\nauth: {managed_identity: {}}\n",
        );
        let cases = expand(&[s], &catalog(), &MatrixOptions::default()).unwrap();
        assert_eq!(ids(&cases), vec!["d [prometheus@3.16.0/process]"]);
        assert_eq!(cases[0].agent_ref, "prometheus@3.16");
    }

    #[test]
    fn runtimes_cli_over_scenario_over_default() {
        let s = system_assigned("runtimes: [docker, process]\n");
        let cases = expand(std::slice::from_ref(&s), &catalog(), &MatrixOptions::default()).unwrap();
        assert_eq!(cases.len(), 6);
        assert_eq!(cases[0].runtime, RuntimeKind::Docker);
        let opts = MatrixOptions { runtimes: vec![RuntimeKind::Process], ..MatrixOptions::default() };
        let cases = expand(&[s], &catalog(), &opts).unwrap();
        assert!(cases.iter().all(|c| c.runtime == RuntimeKind::Process));
        let opts = MatrixOptions { default_runtime: RuntimeKind::Docker, ..MatrixOptions::default() };
        let cases = expand(&[system_assigned("")], &catalog(), &opts).unwrap();
        assert!(cases.iter().all(|c| c.runtime == RuntimeKind::Docker));
    }

    #[test]
    fn filter_matches_case_id_or_scenario_name() {
        let s = system_assigned("");
        let opts = |f: &str| MatrixOptions { filter: Some(f.to_owned()), ..MatrixOptions::default() };
        assert_eq!(expand(std::slice::from_ref(&s), &catalog(), &opts("mi/*")).unwrap().len(), 3);
        assert_eq!(expand(std::slice::from_ref(&s), &catalog(), &opts("*3.5.1*")).unwrap().len(), 1);
        assert_eq!(expand(std::slice::from_ref(&s), &catalog(), &opts("nothing")).unwrap().len(), 0);
        let err = expand(&[s], &catalog(), &opts("[")).unwrap_err().to_string();
        assert!(err.starts_with("filter `[`"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused_and_repeated_files_ignored() {
        let a = system_assigned("");
        assert_eq!(expand(&[a.clone(), a.clone()], &catalog(), &MatrixOptions::default()).unwrap().len(), 3);
        let mut b = (*a).clone();
        b.path = "other.yaml".into();
        let err = expand(&[a, Arc::new(b)], &catalog(), &MatrixOptions::default()).unwrap_err().to_string();
        assert!(err.starts_with("other.yaml:1:1: name: `mi/system` is also the name of s.yaml"), "{err}");
    }

    fn own(source: &str, version: Version) -> (AgentSource, Arc<AgentBuild>) {
        let source: AgentSource = source.parse().unwrap();
        let printed = format!("prometheus, version {version} (branch: HEAD, revision: r1)");
        let build = crate::agent::source::identify(&source, "sha256:00".into(), Ok(printed), None).unwrap();
        (source, Arc::new(build))
    }

    #[test]
    fn own_builds_expand_by_their_version_and_images_only_in_docker() {
        let (bin, bin_build) = own("prometheus=/opt/p", Version::new(2, 53, 3));
        let (img, img_build) = own("prometheus=image:acme/p:1", Version::new(3, 5, 1));
        let opts = MatrixOptions {
            agents: vec![bin.clone(), img.clone()],
            builds: [(bin, bin_build), (img.clone(), img_build)].into(),
            runtimes: vec![RuntimeKind::Process, RuntimeKind::Docker],
            modes: vec![AgentMode::Server, AgentMode::Agent],
            ..MatrixOptions::default()
        };
        let cases = expand(&[system_assigned("")], &catalog(), &opts).unwrap();
        assert_eq!(
            ids(&cases),
            vec![
                "mi/system [prometheus=/opt/p@2.53.3/process]",
                "mi/system [prometheus=/opt/p@2.53.3/process/agent]",
                "mi/system [prometheus=/opt/p@2.53.3/docker]",
                "mi/system [prometheus=/opt/p@2.53.3/docker/agent]",
                "mi/system [prometheus=image:acme/p:1@3.5.1/docker]",
                "mi/system [prometheus=image:acme/p:1@3.5.1/docker/agent]",
            ]
        );
        // The table applies by the version the build reports.
        assert_eq!(cases[0].expected, Outcome::ConfigRejected);
        assert_eq!(cases[4].expected, Outcome::Delivered);

        let process_only = MatrixOptions { runtimes: vec![RuntimeKind::Process], ..opts.clone() };
        let err = expand(&[system_assigned("")], &catalog(), &process_only).unwrap_err().to_string();
        assert!(err.starts_with("prometheus=image:acme/p:1: an image runs only in the docker runtime"), "{err}");
        let unidentified = MatrixOptions { agents: vec![img], ..MatrixOptions::default() };
        let err = expand(&[system_assigned("")], &catalog(), &unidentified).unwrap_err().to_string();
        assert!(err.contains("not identified"), "{err}");
    }

    #[test]
    fn unresolvable_line_points_at_the_agent() {
        let s = scenario("name: x\nagents:\n  - prometheus@3.5\n  - prometheus@3.9\nauth: {managed_identity: {}}\n");
        let err = expand(&[s], &catalog(), &MatrixOptions::default()).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:4:5: agents[1]: prometheus@3.9: no 3.9.x version"), "{err}");
        let opts = MatrixOptions { agents: vec!["prometheus@3.9".parse().unwrap()], ..MatrixOptions::default() };
        let err = expand(&[], &catalog(), &opts).unwrap_err().to_string();
        assert!(err.starts_with("--agent prometheus@3.9: "), "{err}");
    }
}
