//! The command line, as a library function so the binary stays a thin shell.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::agent::catalog::AgentCatalog;
use crate::agent::store::AgentStore;
use crate::agent::{AgentRef, Version};
use crate::cloud::MockData;
use crate::report;
use crate::runner::{RunOptions, run_cases};
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
    /// List or provision agent binaries.
    Agents {
        /// `list` (default) or `provision`.
        #[command(subcommand)]
        action: Option<AgentsAction>,
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
        Command::List(args) => list(&args),
        Command::Agents { action } => agents(action.unwrap_or(AgentsAction::List)).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

fn expand(args: &MatrixArgs) -> anyhow::Result<Vec<Case>> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("scenarios")] } else { args.paths.clone() };
    let files = scenario::discover(&paths)?;
    let mut loaded = Vec::new();
    for f in &files {
        loaded.push(Arc::new(scenario::load(f)?));
    }
    let agents = args.agents.iter().map(|a| a.parse::<AgentRef>()).collect::<Result<Vec<_>, _>>()?;
    let default_runtime = match args.runtime {
        RuntimeChoice::Process => RuntimeKind::Process,
        RuntimeChoice::Docker => RuntimeKind::Docker,
        RuntimeChoice::Auto => {
            eprintln!("runtime auto: process (the docker runtime is not part of this build)");
            RuntimeKind::Process
        }
    };
    let forced = match args.runtime {
        RuntimeChoice::Auto => Vec::new(),
        _ => vec![default_runtime],
    };
    let opts = MatrixOptions { agents, runtimes: forced, default_runtime, filter: args.filter.clone() };
    Ok(scenario::expand(&loaded, &AgentCatalog::default_catalog(), &opts)?)
}

fn list(args: &MatrixArgs) -> anyhow::Result<i32> {
    for case in expand(args)? {
        println!("{}", case.id);
    }
    Ok(0)
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let cases = expand(&args.matrix)?;
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

    let mocks = match &args.mocks {
        Some(dir) => MockData::load(dir)?,
        None if std::path::Path::new("mocks").is_dir() => MockData::load(std::path::Path::new("mocks"))?,
        None => MockData::embedded(),
    };
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = RunOptions { out_dir: args.out.clone(), jobs, agents: store, mocks, cancel };

    eprintln!("running {} case(s), {jobs} at a time", cases.len());
    let mut progress = report::progress::Progress::new(cases.len());
    let verdicts = run_cases(&cases, &opts, |v| {
        let result = if v.passed() { "pass" } else { "FAIL" };
        progress.finished(&format!("{result} {} ({:.1}s)", v.case_id, v.duration.as_secs_f64()));
    })
    .await;
    progress.clear();

    // Load cases print their figures (rate, shards, send latency) even when they pass.
    for v in verdicts.iter().filter(|v| !v.passed() || v.findings.iter().any(|f| f.check.starts_with("load."))) {
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
    }
}
