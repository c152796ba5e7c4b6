//! Matrix expansion: scenarios × agent versions × runtimes, each case with the outcome it must reach.
//!
//! Above `scenario` and `agent` (it resolves a scenario's agent references against the catalog and predicts
//! outcomes from the capability table), below `runner`, which runs the cases.

use std::sync::Arc;

use globset::{Glob, GlobMatcher};

use crate::agent::{AgentCatalog, CatalogError, capability};
use crate::scenario::{LoadedScenario, Outcome, OutcomeSpec, RuntimeKind, ScenarioError};
use crate::version::{AgentRef, AgentRefError, Version};

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
    /// The resolved agent version.
    pub agent: Version,
    /// The reference as written (`prometheus@2.53`), for reports.
    pub agent_ref: String,
    /// Where the agent runs.
    pub runtime: RuntimeKind,
    /// The outcome the case must reach.
    pub expected: Outcome,
}

/// How a run narrows or overrides what scenarios ask for.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// `--agent`: replaces every scenario's `agents` when non-empty.
    pub agents: Vec<AgentRef>,
    /// `--runtime`: replaces every scenario's `runtimes` when non-empty.
    pub runtimes: Vec<RuntimeKind>,
    /// Used when neither the command line nor the scenario names a runtime.
    pub default_runtime: RuntimeKind,
    /// Glob on the case id or the scenario name; `None` keeps every case.
    pub filter: Option<String>,
}

impl Default for MatrixOptions {
    fn default() -> Self {
        MatrixOptions { agents: Vec::new(), runtimes: Vec::new(), default_runtime: RuntimeKind::Process, filter: None }
    }
}

/// The case id for a scenario name, version and runtime.
pub fn case_id(scenario: &str, agent: Version, runtime: RuntimeKind) -> String {
    format!("{scenario} [prometheus@{agent}/{runtime}]")
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
    let cli_agents: Vec<(String, Version)> = opts
        .agents
        .iter()
        .map(|r| {
            catalog
                .resolve(r)
                .map(|v| (r.to_string(), v))
                .map_err(|error| MatrixError::Agent { context: format!("--agent {r}"), error })
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
        let agents = if cli_agents.is_empty() { scenario_agents(loaded, catalog)? } else { cli_agents.clone() };
        let runtimes = if !opts.runtimes.is_empty() {
            opts.runtimes.clone()
        } else if !s.runtimes.is_empty() {
            s.runtimes.clone()
        } else {
            vec![opts.default_runtime]
        };

        let mut seen: Vec<Version> = Vec::new();
        for (agent_ref, version) in agents {
            if seen.contains(&version) {
                continue;
            }
            seen.push(version);
            let expected = expected_outcome(loaded, catalog, &agent_ref, version);
            let mut seen_runtimes = Vec::new();
            for &runtime in &runtimes {
                if seen_runtimes.contains(&runtime) {
                    continue;
                }
                seen_runtimes.push(runtime);
                let id = case_id(&s.name, version, runtime);
                if let Some(f) = &filter
                    && !f.is_match(&id)
                    && !f.is_match(&s.name)
                {
                    continue;
                }
                cases.push(Case {
                    id,
                    scenario: Arc::clone(loaded),
                    agent: version,
                    agent_ref: agent_ref.clone(),
                    runtime,
                    expected,
                });
            }
        }
    }
    Ok(cases)
}

fn compile(pattern: &str) -> Result<GlobMatcher, MatrixError> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|error| MatrixError::Filter { pattern: pattern.to_owned(), error })
}

/// The scenario's own agents, resolved; a reference the catalog cannot satisfy points at its line in the file.
fn scenario_agents(loaded: &LoadedScenario, catalog: &AgentCatalog) -> Result<Vec<(String, Version)>, ScenarioError> {
    let mut out = Vec::new();
    for (i, written) in loaded.scenario.agents.iter().enumerate() {
        let field = format!("agents[{i}]");
        // `load` already checked the syntax; a scenario built by hand may not have been.
        let agent: AgentRef = written.parse().map_err(|e: AgentRefError| loaded.error_at(&field, e.to_string()))?;
        let version = catalog.resolve(&agent).map_err(|e| loaded.error_at(&field, e.to_string()))?;
        out.push((written.clone(), version));
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
