//! `ci/workflows/azure-pipelines.yml`, checked offline (Azure publishes no schema a test can fetch without the
//! network): it parses as YAML, has only keys Azure Pipelines knows at the top, runs nightly on a schedule and as a
//! release gate on tags, and every job caches the agents with Cache@2, publishes the JUnit `azrw run` wrote with
//! PublishTestResults@2 and `out/` (report.html, bundles) as a pipeline artifact, and runs only scripts that exist.
//! Each rule has a mutated copy of the file that breaks it and must be reported.

use serde_json::Value;

const FILE: &str = "ci/workflows/azure-pipelines.yml";
const TOP_LEVEL: [&str; 8] = ["trigger", "pr", "schedules", "parameters", "variables", "stages", "resources", "name"];

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_array().map(|s| s.iter().collect()).unwrap_or_default()
}

fn task<'a>(job: &'a Value, name: &str) -> Option<&'a Value> {
    steps(job).into_iter().find(|s| s["task"].as_str() == Some(name))
}

/// What is wrong with the pipeline, one line each naming the stage/job and the key.
fn problems(text: &str) -> Vec<String> {
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("{FILE}: not YAML: {e}")],
    };
    let mut out = Vec::new();
    for key in doc.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            out.push(format!("{FILE}: unknown top-level key `{key}`"));
        }
    }
    let crons: Vec<&str> =
        doc["schedules"].as_array().into_iter().flatten().filter_map(|s| s["cron"].as_str()).collect();
    if crons.is_empty() || crons.iter().any(|c| c.split_whitespace().count() != 5) {
        out.push(format!("{FILE}: schedules: a nightly cron (five fields) is required, found {crons:?}"));
    }
    if doc["trigger"]["tags"]["include"].as_array().is_none_or(|t| t.is_empty()) {
        out.push(format!("{FILE}: trigger.tags.include: the release gate runs on tags"));
    }
    let stages = doc["stages"].as_array().cloned().unwrap_or_default();
    if stages.len() < 2 {
        out.push(format!("{FILE}: stages: nightly and release gate expected, found {}", stages.len()));
    }
    for stage in &stages {
        for job in stage["jobs"].as_array().into_iter().flatten() {
            let at = format!("{FILE}: stage {} job {}", stage["stage"], job["job"]);
            out.extend(job_problems(job).into_iter().map(|p| format!("{at}: {p}")));
        }
    }
    out
}

fn job_problems(job: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match task(job, "Cache@2") {
        Some(c)
            if c["inputs"]["key"].as_str().is_some_and(|k| k.contains("ci/agents.txt"))
                && c["inputs"]["path"].as_str().is_some_and(|p| p.ends_with("/agents")) => {}
        _ => out.push("Cache@2 with a key on ci/agents.txt and the agents' path is required".to_owned()),
    }
    let scripts: Vec<&str> = steps(job).into_iter().filter_map(|s| s["script"].as_str()).collect();
    let junit = scripts.iter().find_map(|s| {
        let rest = &s[s.find("--junit ")? + "--junit ".len()..];
        rest.split_whitespace().next()
    });
    match (junit, task(job, "PublishTestResults@2")) {
        (None, _) => out.push("no `azrw run … --junit FILE`".to_owned()),
        (Some(file), Some(t))
            if t["inputs"]["testResultsFormat"] == "JUnit"
                && t["inputs"]["testResultsFiles"].as_str() == Some(file)
                && matches!(t["condition"].as_str(), Some("succeededOrFailed()" | "always()")) => {}
        (Some(file), _) => out.push(format!(
            "PublishTestResults@2 (JUnit, testResultsFiles: {file}, condition: succeededOrFailed()) is required"
        )),
    }
    match task(job, "PublishPipelineArtifact@1") {
        Some(t) if t["inputs"]["targetPath"] == "out" && t["condition"] == "always()" => {}
        _ => out.push("PublishPipelineArtifact@1 of out/ (report.html, bundles) with condition: always()".to_owned()),
    }
    for script in &scripts {
        for word in script.split_whitespace().filter(|w| w.starts_with("ci/")) {
            if !root().join(word).is_file() {
                out.push(format!("script runs {word}, which does not exist"));
            }
        }
    }
    out
}

#[test]
fn the_azure_pipeline_has_what_the_readme_promises() {
    let text = std::fs::read_to_string(root().join(FILE)).unwrap();
    assert_eq!(problems(&text), Vec::<String>::new());
}

#[test]
fn each_rule_catches_a_pipeline_that_breaks_it() {
    let text = std::fs::read_to_string(root().join(FILE)).unwrap();
    let cases: [(&str, &str, &str); 7] = [
        ("schedules:", "schedule:", "unknown top-level key `schedule`"),
        ("    include: [\"v*\"]", "    include: []", "trigger.tags.include"),
        ("task: Cache@2", "task: Cache@1", "stage \"nightly\" job \"mock\": Cache@2"),
        ("testResultsFiles: out/junit.xml", "testResultsFiles: junit.xml", "testResultsFiles: out/junit.xml"),
        ("condition: succeededOrFailed()", "condition: succeeded()", "PublishTestResults@2"),
        ("targetPath: out", "targetPath: out/junit.xml", "PublishPipelineArtifact@1"),
        ("AZRW_CACHE ci/setup.sh", "AZRW_CACHE ci/set-up.sh", "script runs ci/set-up.sh, which does not exist"),
    ];
    crate::common::assert_each_mutation_reported(&text, &cases, problems);
    assert!(problems("stages: [").iter().any(|p| p.contains("not YAML")));
}
