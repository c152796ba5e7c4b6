//! `ci/workflows/compat.yml`, checked offline: a weekly schedule, a job matrix of shards 1..N that matches the
//! `SHARDS` each one passes to `azrw compat --shard`, each shard with its own agent cache (keyed by its shard) and
//! uploading its `compatibility-I.json`, and a merge job after them that runs `azrw compat merge` and uploads
//! COMPATIBILITY.md. Each rule has a mutated copy that must be reported.

use serde_json::Value;

const FILE: &str = "ci/workflows/compat.yml";

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_array().map(|s| s.iter().collect()).unwrap_or_default()
}

fn runs(job: &Value) -> String {
    steps(job).iter().filter_map(|s| s["run"].as_str()).collect::<Vec<_>>().join("\n")
}

fn uses<'a>(job: &'a Value, action: &str) -> Vec<&'a Value> {
    steps(job).into_iter().filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action))).collect()
}

/// What is wrong with the workflow, one line each naming the job and the key.
fn problems(text: &str) -> Vec<String> {
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("{FILE}: not YAML: {e}")],
    };
    let mut out = Vec::new();
    let crons: Vec<&str> =
        doc["on"]["schedule"].as_array().into_iter().flatten().filter_map(|s| s["cron"].as_str()).collect();
    if crons.len() != 1 || crons[0].split_whitespace().count() != 5 {
        out.push(format!("{FILE}: on.schedule: one weekly cron (five fields) expected, found {crons:?}"));
    }
    out.extend(shard_problems(&doc));
    let merge = &doc["jobs"]["merge"];
    let needs = merge["needs"].as_str().map(|s| vec![s]).unwrap_or_default();
    if !needs.contains(&"shard") {
        out.push(format!("{FILE}: jobs.merge.needs: must wait for `shard`"));
    }
    if !runs(merge).contains("azrw compat merge shards/compatibility-") {
        out.push(format!("{FILE}: jobs.merge: no `azrw compat merge` of the shards' files"));
    }
    let uploads = uses(merge, "actions/upload-artifact@");
    if !uploads.iter().any(|u| u["with"]["path"].as_str().is_some_and(|p| p.contains("COMPATIBILITY.md"))) {
        out.push(format!("{FILE}: jobs.merge: COMPATIBILITY.md is not uploaded"));
    }
    out
}

fn shard_problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let shard = &doc["jobs"]["shard"];
    let matrix: Vec<u64> =
        shard["strategy"]["matrix"]["shard"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
    let count = doc["env"]["SHARDS"].as_u64().unwrap_or(0);
    if count == 0 || matrix != (1..=count).collect::<Vec<_>>() {
        out.push(format!(
            "{FILE}: jobs.shard.strategy.matrix.shard: expected 1..={count} (env.SHARDS), found {matrix:?}"
        ));
    }
    if !runs(shard).contains("azrw compat --shard ${{ matrix.shard }}/${{ env.SHARDS }}") {
        out.push(format!("{FILE}: jobs.shard: no `azrw compat --shard ${{{{ matrix.shard }}}}/${{{{ env.SHARDS }}}}`"));
    }
    let caches = uses(shard, "actions/cache@");
    let own = caches.iter().any(|c| {
        c["with"]["path"].as_str().is_some_and(|p| p.contains("~/.cache/azrw/agents"))
            && c["with"]["key"].as_str().is_some_and(|k| k.contains("matrix.shard"))
    });
    if !own {
        out.push(format!(
            "{FILE}: jobs.shard: no agent cache of its own (path ~/.cache/azrw/agents, key with matrix.shard)"
        ));
    }
    let uploads = uses(shard, "actions/upload-artifact@");
    if !uploads
        .iter()
        .any(|u| u["with"]["path"].as_str().is_some_and(|p| p.contains("compatibility-${{ matrix.shard }}.json")))
    {
        out.push(format!("{FILE}: jobs.shard: its compatibility-<shard>.json is not uploaded"));
    }
    out
}

fn text() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE)).unwrap()
}

#[test]
fn the_compat_workflow_shards_and_merges() {
    assert_eq!(problems(&text()), Vec::<String>::new());
}

#[test]
fn each_rule_catches_a_workflow_that_breaks_it() {
    let text = text();
    let cases: [(&str, &str, &str); 7] = [
        ("    - cron: \"41 4 * * 0\"", "    - cron: \"weekly\"", "on.schedule"),
        ("shard: [1, 2, 3, 4]", "shard: [1, 2, 4]", "jobs.shard.strategy.matrix.shard"),
        ("--shard ${{ matrix.shard }}/${{ env.SHARDS }}", "--shard 1/${{ env.SHARDS }}", "no `azrw compat --shard"),
        ("key: azrw-compat-${{ matrix.shard }}", "key: azrw-compat", "no agent cache of its own"),
        ("    needs: shard", "    needs: build", "jobs.merge.needs"),
        ("azrw compat merge shards", "azrw compat shards", "no `azrw compat merge`"),
        ("            COMPATIBILITY.md\n", "            README.md\n", "COMPATIBILITY.md is not uploaded"),
    ];
    crate::common::assert_each_mutation_reported(&text, &cases, problems);
    assert!(problems("jobs: [").iter().any(|p| p.contains("not YAML")));
}
