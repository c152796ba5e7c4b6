//! Local images built from binaries on this machine: `FROM scratch` plus the binary (and, when it is dynamically
//! linked, the libraries it loads), an empty `/etc/azrw` where each case's inputs and CA bundle are copied, and
//! `/tmp`. No base image and no registry are involved, and nothing is ever pulled: a missing image is an error
//! that names the command that builds it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;

use super::engine::bollard::query_parameters::BuildImageOptions;
use super::engine::{Engine, EngineError};
use crate::agent::Version;

/// Repository of the Prometheus agent images.
pub const AGENT_REPOSITORY: &str = "azrw/prometheus";
/// Directory in every azrw image that receives a case's input files (config, CA bundle, credentials).
pub const INPUT_DIR: &str = "/etc/azrw";
/// Label that marks images azrw built (never removed by `azrw gc`: they are a cache, not a leftover).
pub const LABEL_IMAGE: &str = "azrw.image";

/// The image of a Prometheus version, e.g. `azrw/prometheus:3.5.1`.
pub fn agent_image(version: Version) -> String {
    format!("{AGENT_REPOSITORY}:{version}")
}

/// The image azrw builds of a user's own binary for the Docker runtime, named by the binary's digest
/// (`sha256:ab12…` → `azrw/prometheus-own:ab12…`, 12 hex digits), so a rebuilt binary gets a new image.
pub fn own_binary_image(digest: &str) -> String {
    let hex: String = digest.trim_start_matches("sha256:").chars().take(12).collect();
    format!("{AGENT_REPOSITORY}-own:{hex}")
}

/// How to get a user's own image into the local store: azrw never pulls.
pub fn load_hint(image: &str) -> String {
    format!("docker load -i <archive of {image}> (or docker pull/build it yourself; azrw never pulls)")
}

/// What to put in an image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `repository:tag`.
    pub tag: String,
    /// The binary on the host.
    pub binary: PathBuf,
    /// Where it goes in the image; it is the entrypoint.
    pub path: String,
    /// What the image is (the value of [`LABEL_IMAGE`]).
    pub kind: String,
}

impl ImageSpec {
    /// The image of a user's own Prometheus `binary` ([`own_binary_image`]).
    pub fn own_binary(digest: &str, binary: &Path) -> ImageSpec {
        ImageSpec {
            tag: own_binary_image(digest),
            binary: binary.to_owned(),
            path: "/bin/prometheus".into(),
            kind: "prometheus-own".into(),
        }
    }

    /// The Prometheus image of `version` from its provisioned `binary`.
    pub fn agent(version: Version, binary: &Path) -> ImageSpec {
        ImageSpec {
            tag: agent_image(version),
            binary: binary.to_owned(),
            path: "/bin/prometheus".into(),
            kind: "prometheus".into(),
        }
    }
}

/// The image of azrw itself (`azrw/azrw:local`): the reference sidecar (`azrw sidecar`) and the isolation
/// tests' probe run from it. Built from the running harness's own binary, at most once per process
/// ([`ensure_azrw_image`]), so it always matches the harness.
pub const AZRW_IMAGE: &str = "azrw/azrw:local";

impl ImageSpec {
    /// azrw's own image from its `binary`.
    pub fn azrw(binary: &Path) -> ImageSpec {
        ImageSpec { tag: AZRW_IMAGE.into(), binary: binary.to_owned(), path: "/bin/azrw".into(), kind: "azrw".into() }
    }
}

/// Builds [`AZRW_IMAGE`] from `binary` once per process (cases running at once share the build); returns its tag.
pub async fn ensure_azrw_image(engine: &Engine, binary: &Path) -> Result<&'static str, String> {
    static BUILT: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async { build(engine, &ImageSpec::azrw(binary)).await.map_err(|e| e.to_string()) })
        .await
        .clone()
        .map(|()| AZRW_IMAGE)
}

/// Why an image cannot be used or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image is not in the local store.
    #[error("image {tag} is not built on this Docker (azrw never pulls); build it with: {command}")]
    Missing {
        /// `repository:tag`.
        tag: String,
        /// The command that builds it.
        command: String,
    },
    /// Reading the binary or its libraries failed.
    #[error("image {tag}: {message}")]
    Context {
        /// `repository:tag`.
        tag: String,
        /// What failed.
        message: String,
    },
    /// The daemon refused the build.
    #[error("building image {tag}: {message}")]
    Build {
        /// `repository:tag`.
        tag: String,
        /// The daemon's words.
        message: String,
    },
    /// Docker itself.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Fails with [`ImageError::Missing`] (naming `build_command`) unless `tag` is in the local store.
pub async fn require(engine: &Engine, tag: &str, build_command: &str) -> Result<(), ImageError> {
    image_id(engine, tag, build_command).await.map(drop)
}

/// The image id (`sha256:…`) of a local image; [`ImageError::Missing`] (naming `build_command`) when absent.
pub async fn image_id(engine: &Engine, tag: &str, build_command: &str) -> Result<String, ImageError> {
    match engine.docker().inspect_image(tag).await {
        Ok(inspect) => Ok(inspect.id.unwrap_or_default()),
        Err(super::engine::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            Err(ImageError::Missing { tag: tag.to_owned(), command: build_command.to_owned() })
        }
        Err(e) => Err(ImageError::Engine(e.into())),
    }
}

/// Builds (or rebuilds) an image from `spec`; the build context is made in memory.
pub async fn build(engine: &Engine, spec: &ImageSpec) -> Result<(), ImageError> {
    let context = {
        let owned = spec.clone();
        tokio::task::spawn_blocking(move || build_context(&owned))
            .await
            .map_err(|e| ImageError::Context { tag: spec.tag.clone(), message: e.to_string() })??
    };
    let options = BuildImageOptions {
        t: Some(spec.tag.clone()),
        rm: true,
        forcerm: true,
        labels: Some(HashMap::from([(LABEL_IMAGE.to_owned(), spec.kind.clone())])),
        ..Default::default()
    };
    let docker = engine.docker();
    let mut progress = docker.build_image(options, None, Some(super::engine::bollard::body_full(context)));
    let mut said = Vec::new();
    while let Some(item) = progress.next().await {
        let info = item.map_err(|e| ImageError::Build { tag: spec.tag.clone(), message: e.to_string() })?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(ImageError::Build { tag: spec.tag.clone(), message: error });
        }
        if let Some(line) = info.stream {
            said.push(line);
        }
    }
    // A build that ended without an error but did not tag the image would otherwise show up at first use.
    require(engine, &spec.tag, "azrw agents image").await.map_err(|_| ImageError::Build {
        tag: spec.tag.clone(),
        message: format!("the daemon built nothing: {}", said.concat().trim()),
    })
}

/// The build context: a Dockerfile and the image's whole file system under `rootfs/`.
fn build_context(spec: &ImageSpec) -> Result<Bytes, ImageError> {
    let fail = |message: String| ImageError::Context { tag: spec.tag.clone(), message };
    let mut files = vec![(spec.path.clone(), spec.binary.clone())];
    for lib in shared_libraries(&spec.binary).map_err(|e| fail(e.to_string()))? {
        files.push((lib.display().to_string(), lib));
    }
    let dockerfile = format!("FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"{}\"]\n", spec.path);
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    let header = |path: &str, size: u64, mode: u32, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        (h, path.to_owned())
    };
    let (mut h, p) = header("Dockerfile", dockerfile.len() as u64, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut h, p, dockerfile.as_bytes()).map_err(|e| fail(e.to_string()))?;
    for (dir, mode) in [("rootfs/etc/azrw/", 0o755), ("rootfs/tmp/", 0o1777)] {
        let (mut h, p) = header(dir, 0, mode, tar::EntryType::Directory);
        tar.append_data(&mut h, p, std::io::empty()).map_err(|e| fail(e.to_string()))?;
    }
    for (inside, host) in files {
        let bytes = std::fs::read(&host).map_err(|e| fail(format!("read {}: {e}", host.display())))?;
        let (mut h, p) = header(&format!("rootfs{inside}"), bytes.len() as u64, 0o755, tar::EntryType::Regular);
        tar.append_data(&mut h, p, bytes.as_slice()).map_err(|e| fail(e.to_string()))?;
    }
    tar.into_inner().map(Bytes::from).map_err(|e| fail(e.to_string()))
}

/// The shared libraries a dynamically linked binary loads (none for a static one, like the Go-built agents).
fn shared_libraries(binary: &Path) -> std::io::Result<Vec<PathBuf>> {
    let out = std::process::Command::new("ldd").arg(binary).output()?;
    // ldd exits non-zero for a static binary ("not a dynamic executable").
    if !out.status.success() {
        return Ok(Vec::new());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}
