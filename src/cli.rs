//! The command line, as a library function so the binary stays a thin shell.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::agent::catalog::AgentCatalog;
use crate::agent::store::AgentStore;
use crate::agent::{AgentRef, Version};
use crate::cloud::MockData;
use crate::report;
use crate::runner::{RunOptions, new_run_id, run_cases};
use crate::runtime::engine::Engine;
use crate::runtime::image::{self, ImageSpec, agent_image};
use crate::scenario::{self, Case, MatrixOptions, RuntimeKind};

/// azrw — end-to-end conformance for Prometheus remote-write into Azure Monitor.
#[derive(Debug, Parser)]
#[command(name = "azrw", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios and print a verdict table (exit 1 if any case fails).
    Run(RunArgs),
    /// List the cases the scenarios expand to, one per line.
    List(MatrixArgs),
    /// List or provision agent binaries, or build their local Docker images.
    Agents {
        /// `list` (default), `provision` or `image`.
        #[command(subcommand)]
        action: Option<AgentsAction>,
    },
    /// Remove Docker containers and networks that killed runs left behind (found by their `azrw.run` label).
    Gc {
        /// Also remove those of runs that are still going.
        #[arg(long)]
        all: bool,
    },
    /// Try TCP connections and print what each gave (used inside containers by the isolation tests).
    #[command(hide = true)]
    Probe {
        /// `host:port` addresses.
        addresses: Vec<String>,
    },
}

/// `azrw agents …`.
#[derive(Debug, Subcommand)]
pub enum AgentsAction {
    /// Each catalog version and whether it is provisioned.
    List,
    /// Build missing agents (default: the whole catalog) with the Go toolchain; cached, idempotent.
    Provision {
        /// Versions, e.g. 3.5.1; default: every version in the catalog.
        versions: Vec<String>,
    },
    /// Build local Docker images `azrw/prometheus:<version>` (FROM scratch + the provisioned binary; no registry).
    Image {
        /// Versions, e.g. 3.5.1; default: every provisioned version in the catalog.
        versions: Vec<String>,
    },
}

/// Which runtime to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// A child process in an isolated network namespace.
    Process,
    /// A container on an internal Docker network.
    Docker,
    /// Docker when it answers, else process.
    Auto,
}

/// Scenario selection and matrix flags shared by `run` and `list`.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// Only cases whose id or scenario name matches this glob.
    #[arg(long)]
    pub filter: Option<String>,
    /// Run these agents instead of the scenarios' own lists (repeatable), e.g. prometheus@3.5.
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    /// Runtime for scenarios that do not name one.
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: RuntimeChoice,
}

/// `azrw run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Selection and matrix.
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Cases run at once (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Per-case artefacts (redacted config, agent log, exchanges).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Mock data directory (OIDC documents, error bodies); default: ./mocks if present, else the built-in copy.
    #[arg(long)]
    pub mocks: Option<PathBuf>,
    /// Do not build missing agents; stop with the command that would.
    #[arg(long)]
    pub no_provision: bool,
}

/// Runs the CLI; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::List(args) => list(&args).await,
        Command::Agents { action } => agents(action.unwrap_or(AgentsAction::List)).await,
        Command::Gc { all } => gc(all).await,
        Command::Probe { addresses } => Ok(probe(&addresses).await),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// `--runtime` as a runtime: `auto` asks the Docker daemon and says what it chose.
async fn resolve_runtime(choice: RuntimeChoice) -> RuntimeKind {
    match choice {
        RuntimeChoice::Process => RuntimeKind::Process,
        RuntimeChoice::Docker => RuntimeKind::Docker,
        RuntimeChoice::Auto => match Engine::connect().await {
            Ok(engine) => {
                eprintln!("runtime auto: docker (the daemon answers, API {})", engine.api_version());
                RuntimeKind::Docker
            }
            Err(e) => {
                eprintln!("runtime auto: process ({e})");
                RuntimeKind::Process
            }
        },
    }
}

async fn expand(args: &MatrixArgs) -> anyhow::Result<Vec<Case>> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("scenarios")] } else { args.paths.clone() };
    let files = scenario::discover(&paths)?;
    let mut loaded = Vec::new();
    for f in &files {
        loaded.push(Arc::new(scenario::load(f)?));
    }
    let agents = args.agents.iter().map(|a| a.parse::<AgentRef>()).collect::<Result<Vec<_>, _>>()?;
    let default_runtime = resolve_runtime(args.runtime).await;
    let forced = match args.runtime {
        RuntimeChoice::Auto => Vec::new(),
        _ => vec![default_runtime],
    };
    let opts = MatrixOptions { agents, runtimes: forced, default_runtime, filter: args.filter.clone() };
    Ok(scenario::expand(&loaded, &AgentCatalog::default_catalog(), &opts)?)
}

async fn list(args: &MatrixArgs) -> anyhow::Result<i32> {
    for case in expand(args).await? {
        println!("{}", case.id);
    }
    Ok(0)
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let cases = expand(&args.matrix).await?;
    if cases.is_empty() {
        anyhow::bail!("no case matches");
    }
    let store = AgentStore::from_env();
    let mut versions: Vec<Version> = cases.iter().map(|c| c.agent).collect();
    versions.sort();
    versions.dedup();
    let missing: Vec<Version> = versions.iter().copied().filter(|v| store.get(*v).is_err()).collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(Version::to_string).collect();
        if args.no_provision {
            anyhow::bail!("agents not provisioned: {}; run: azrw agents provision {}", list.join(", "), list.join(" "));
        }
        eprintln!("provisioning prometheus {} (built from Go modules; cached for later runs)", list.join(", "));
        store.provision(&missing).await?;
    }
    let docker_versions: Vec<Version> = {
        let mut v: Vec<Version> = cases.iter().filter(|c| c.runtime == RuntimeKind::Docker).map(|c| c.agent).collect();
        v.sort();
        v.dedup();
        v
    };
    if !docker_versions.is_empty() {
        ensure_images(&store, &docker_versions, args.no_provision).await?;
    }

    let mocks = match &args.mocks {
        Some(dir) => MockData::load(dir)?,
        None if std::path::Path::new("mocks").is_dir() => MockData::load(std::path::Path::new("mocks"))?,
        None => MockData::embedded(),
    };
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let run_id = new_run_id();
    let opts = RunOptions { out_dir: args.out.clone(), jobs, agents: store, mocks, cancel, run_id };

    eprintln!("running {} case(s), {jobs} at a time", cases.len());
    let verdicts = run_cases(&cases, &opts, |v| {
        eprintln!("{} {} ({:.1}s)", if v.passed() { "pass" } else { "FAIL" }, v.case_id, v.duration.as_secs_f64());
    })
    .await;

    for v in verdicts.iter().filter(|v| !v.passed()) {
        println!("{}", report::console::render_details(v));
    }
    println!("{}", report::console::render_table(&verdicts));
    if let Some(path) = &args.junit {
        report::junit::write_junit(&verdicts, path)?;
        eprintln!("JUnit written to {}", path.display());
    }
    Ok(if verdicts.iter().all(|v| v.passed()) && verdicts.len() == cases.len() { 0 } else { 1 })
}

/// First Ctrl-C or SIGTERM: cancel running cases (agents are stopped, reports flushed). Second: exit now.
fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for round in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            if round == 0 {
                eprintln!("interrupted: stopping agents and writing what was seen (again to exit at once)");
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}

async fn agents(action: AgentsAction) -> anyhow::Result<i32> {
    let store = AgentStore::from_env();
    let catalog = AgentCatalog::default_catalog();
    match action {
        AgentsAction::List => {
            for v in &catalog.versions {
                let path = store.binary(*v);
                let state = if path.is_file() { "provisioned" } else { "missing" };
                println!("prometheus@{v}\t{state}\t{}", path.display());
            }
            Ok(0)
        }
        AgentsAction::Provision { versions } => {
            let versions: Vec<Version> = if versions.is_empty() {
                catalog.versions.clone()
            } else {
                versions.iter().map(|v| v.parse()).collect::<Result<_, _>>()?
            };
            store.provision(&versions).await?;
            for v in versions {
                println!("prometheus@{v}\t{}", store.binary(v).display());
            }
            Ok(0)
        }
        AgentsAction::Image { versions } => {
            let versions: Vec<Version> = if versions.is_empty() {
                catalog.versions.iter().copied().filter(|v| store.get(*v).is_ok()).collect()
            } else {
                versions.iter().map(|v| v.parse()).collect::<Result<_, _>>()?
            };
            let engine = Engine::connect().await?;
            for v in versions {
                let binary = store.get(v)?;
                eprintln!("building {} from {}", agent_image(v), binary.display());
                image::build(&engine, &ImageSpec::agent(v, &binary)).await?;
                println!("prometheus@{v}\t{}", agent_image(v));
            }
            Ok(0)
        }
    }
}

/// Builds the missing agent images among `versions` (or, with `no_build`, stops with the command that would).
async fn ensure_images(store: &AgentStore, versions: &[Version], no_build: bool) -> anyhow::Result<()> {
    let engine = Engine::connect().await?;
    for &v in versions {
        let command = format!("azrw agents image {v}");
        match image::require(&engine, &agent_image(v), &command).await {
            Ok(()) => {}
            Err(image::ImageError::Missing { .. }) if !no_build => {
                eprintln!("building image {} (FROM scratch + the provisioned binary)", agent_image(v));
                image::build(&engine, &ImageSpec::agent(v, &store.get(v)?)).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn gc(all: bool) -> anyhow::Result<i32> {
    let engine = Engine::connect().await?;
    let removed = engine.gc(all).await?;
    for r in &removed {
        println!("removed {r}");
    }
    eprintln!("gc: {} removed", removed.len());
    Ok(0)
}

/// Per address, one line: `ADDRESS reached` or `ADDRESS unreachable: WHY`.
async fn probe(addresses: &[String]) -> i32 {
    for address in addresses {
        let attempt = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(address.as_str()));
        match attempt.await {
            Ok(Ok(_)) => println!("{address} reached"),
            Ok(Err(e)) => println!("{address} unreachable: {e}"),
            Err(_) => println!("{address} unreachable: no answer within 3s"),
        }
    }
    0
}
