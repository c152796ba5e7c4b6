//! The user's own agents before a run: each binary or image named on the command line or in a scenario is
//! identified once — its digest, and its `--version` run in the isolation its cases get (a loopback-only network
//! namespace for a binary, an internal case network for an image) — so the matrix can apply the capability table by
//! the version it reports. During a run: which binary or image a case starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::agent::source::{self, AgentBuild, SourceError, VERSION_FLAG};
use crate::agent::store::AgentStore;
use crate::matrix::Case;
use crate::runtime::docker::Owner;
use crate::runtime::engine::Engine;
use crate::runtime::image::{self, image_id, load_hint};
use crate::runtime::sandbox::{AgentLaunch, Sandbox};
use crate::scenario::{LoadedScenario, RuntimeKind};
use crate::version::{AgentSource, Version};

/// How long `--version` may take (a Go binary answers in milliseconds; a cold container in a second or two).
const VERSION_DEADLINE: Duration = Duration::from_secs(30);

/// Identifies every own build the run names: `cli` (with `--assume-version`), else each scenario's (with its
/// `assume_version`). Catalog references are left to the matrix.
pub async fn identify_all(
    scenarios: &[Arc<LoadedScenario>],
    cli: &[AgentSource],
    assume: Option<Version>,
    run_id: &str,
) -> Result<BTreeMap<AgentSource, Arc<AgentBuild>>, String> {
    let mut wanted: Vec<(AgentSource, Option<Version>)> = Vec::new();
    if cli.is_empty() {
        for loaded in scenarios {
            wanted.extend(crate::matrix::scenario_sources(loaded).map_err(|e| e.to_string())?);
        }
    } else {
        wanted.extend(cli.iter().map(|s| (s.clone(), assume)));
    }
    let mut builds = BTreeMap::new();
    for (source, assume) in wanted {
        if !source.is_own() || builds.contains_key(&source) {
            continue;
        }
        let build = identify(&source, assume, run_id).await?;
        eprintln!("agent {source}: {}", build.describe());
        builds.insert(source, Arc::new(build));
    }
    Ok(builds)
}

/// Identifies one own build.
pub async fn identify(source: &AgentSource, assume: Option<Version>, run_id: &str) -> Result<AgentBuild, String> {
    let missing = |message: String| SourceError::Missing { agent: source.to_string(), message }.to_string();
    let input = tempfile::Builder::new().prefix("azrw-version-").tempdir().map_err(|e| e.to_string())?;
    let launch = |binary: PathBuf, image: Option<String>| AgentLaunch {
        version: Version::new(0, 0, 0),
        binary,
        image,
        args: vec![VERSION_FLAG.to_owned()],
        env: vec![("HOME".to_owned(), "/tmp".to_owned())],
        input_dir: input.path().to_owned(),
        log_path: input.path().join("version.log"),
    };
    let (digest, printed) = match source {
        AgentSource::Catalog(_) => return Err(missing("a catalog agent has no build to identify".into())),
        AgentSource::Binary(path) => {
            check_executable(path).map_err(missing)?;
            let digest = source::sha256_file(path).map_err(|e| missing(format!("read {}: {e}", path.display())))?;
            let sandbox = Sandbox::process(input.path()).map_err(|e| missing(format!("network namespace: {e}")))?;
            let printed = sandbox.run_to_exit(&launch(path.clone(), None), VERSION_DEADLINE).await;
            sandbox.close().await;
            (digest, printed)
        }
        AgentSource::Image(reference) => {
            let engine = Engine::connect().await.map_err(|e| missing(format!("an image needs Docker: {e}")))?;
            let digest =
                image_id(&engine, reference, &load_hint(reference)).await.map_err(|e| missing(e.to_string()))?;
            let owner = Owner { run: run_id.to_owned(), case: "version".to_owned() };
            let sandbox = Sandbox::docker(&engine, owner).await.map_err(|e| missing(format!("docker network: {e}")))?;
            let printed = sandbox.run_to_exit(&launch(PathBuf::new(), Some(reference.clone())), VERSION_DEADLINE).await;
            sandbox.close().await;
            (digest, printed)
        }
    };
    let printed = printed.map_err(|e| format!("running it with {VERSION_FLAG} failed: {e}"));
    source::identify(source, digest, printed, assume).map_err(|e| e.to_string())
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", path.display()));
    }
    Ok(())
}

/// The binary a case starts: the user's own, else the catalog's provisioned one.
pub(crate) fn binary(case: &Case, store: &AgentStore) -> Result<PathBuf, String> {
    match &case.build {
        Some(build) if !build.is_image() => Ok(PathBuf::from(&build.location)),
        Some(_) => Ok(PathBuf::new()),
        None => store.get(case.agent).map_err(|e| e.to_string()),
    }
}

/// The image a Docker case starts instead of the catalog's: the user's own, or the one azrw built of their binary.
pub(crate) fn docker_image(case: &Case) -> Option<String> {
    let build = case.build.as_ref()?;
    Some(if build.is_image() { build.location.clone() } else { image::own_binary_image(&build.digest) })
}

/// The own binaries the Docker cases of a run need images of (`azrw/prometheus-own:<digest>`).
pub fn binaries_needing_images(cases: &[Case]) -> Vec<Arc<AgentBuild>> {
    let mut out: Vec<Arc<AgentBuild>> = Vec::new();
    for case in cases.iter().filter(|c| c.runtime == RuntimeKind::Docker) {
        if let Some(build) = case.build.as_ref().filter(|b| !b.is_image())
            && !out.iter().any(|b| b.digest == build.digest)
        {
            out.push(Arc::clone(build));
        }
    }
    out
}
