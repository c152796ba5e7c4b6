//! The command line, as a library function so the binary stays a thin shell.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::agent::catalog::AgentCatalog;
use crate::agent::store::AgentStore;
use crate::agent::vulnerability::VulnerabilityTable;
use crate::agent::{AgentSource, Version};
use crate::cloud::MockData;
use crate::matrix::{self, Case, MatrixOptions};
use crate::report::{self, bundle};
use crate::runner::real::RealOptions;
use crate::runner::{RunOptions, run_cases};
use crate::runtime::engine::Engine;
use crate::runtime::image::{self, ImageSpec, agent_image};
use crate::scenario::{self, RuntimeKind};

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
        /// Afterwards, answer one HTTP request on this address with the results, as an agent serves its /metrics
        /// (readiness announced with the agent's own log line).
        #[arg(long)]
        serve: Option<String>,
        /// `host:port` addresses.
        addresses: Vec<String>,
    },
    /// Hold a network namespace until SIGTERM (a Docker case's pod container, which the agent and its sidecars
    /// join).
    #[command(hide = true)]
    Pause,
    /// Preflight a real Azure set-up (`target: azure` scenario): tokens, DCR probe write, workspace query.
    Doctor(DoctorArgs),
    /// Re-send a capture bundle's exchanges to a fresh mock cloud (or elsewhere) and print the verdict.
    Replay(ReplayArgs),
    /// Start the mock Azure cloud on its own and print how to point a local Prometheus at it.
    Mock(MockArgs),
    /// The compatibility matrix: the newest served patch of every Prometheus minor since 2.45 × the auth and security
    /// scenarios → COMPATIBILITY.md and compatibility.json (`compat merge` joins shards' files).
    Compat(CompatArgs),
    /// Run the reference remote-write sidecar: configured by the Azure sidecar's environment contract
    /// (INGESTION_URL, LISTENING_PORT, IDENTITY_TYPE, AZURE_CLIENT_ID, …), it authenticates with azure_identity and
    /// forwards Prometheus' writes to the DCR.
    Sidecar,
}

/// `azrw doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A `target: azure` scenario file (its `${NAME}` references are read from the environment).
    pub scenario: PathBuf,
    /// Contact Azure (the endpoints the scenario names). Without it doctor refuses.
    #[arg(long)]
    pub allow_real: bool,
}

/// `azrw replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A case's bundle directory (`out/<case>/`).
    pub bundle: PathBuf,
    /// Send to this proxy (e.g. one `azrw mock` printed) instead of a fresh mock cloud; no verdict is drawn.
    #[arg(long)]
    pub to: Option<String>,
    /// CA to trust with `--to` (PEM).
    #[arg(long, requires = "to")]
    pub ca: Option<PathBuf>,
    /// Mock data directory, as for `run`.
    #[arg(long)]
    pub mocks: Option<PathBuf>,
}

/// `azrw compat`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CompatArgs {
    /// `merge`: join shards' compatibility.json files.
    #[command(subcommand)]
    pub action: Option<CompatAction>,
    /// Only these versions (comma-separated, e.g. 2.53.4,3.5.5,3.16.0) instead of the plan.
    #[arg(long, value_delimiter = ',')]
    pub versions: Vec<String>,
    /// Judge the I-th of N deterministic slices of the versions (e.g. 1/4).
    #[arg(long)]
    pub shard: Option<String>,
    /// Per-version results and case bundles.
    #[arg(long, default_value = "out/compat")]
    pub out: PathBuf,
    /// The Markdown matrix.
    #[arg(long, default_value = "COMPATIBILITY.md")]
    pub markdown: PathBuf,
    /// The JSON matrix (an existing one supplies results to keep).
    #[arg(long, default_value = "compatibility.json")]
    pub json: PathBuf,
    /// The served-version list (what the Go module proxy lists and serves when asked).
    #[arg(long, default_value = "ci/compat/versions.json")]
    pub version_list: PathBuf,
    /// Ask the Go module proxy again and rewrite the version list.
    #[arg(long)]
    pub refresh_versions: bool,
    /// Cases run at once (default: 4 per core, fewer where memory is short: cases mostly wait on the agent).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Mock data directory, as for `run`.
    #[arg(long)]
    pub mocks: Option<PathBuf>,
    /// Do not build missing agents (such versions are reported, not judged).
    #[arg(long)]
    pub no_provision: bool,
}

/// `azrw compat merge`.
#[derive(Debug, Subcommand)]
pub enum CompatAction {
    /// Join shards' compatibility.json files into the COMPATIBILITY.md one machine would write.
    Merge {
        /// The shards' files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The Markdown matrix.
        #[arg(long, default_value = "COMPATIBILITY.md")]
        markdown: PathBuf,
        /// The merged JSON.
        #[arg(long, default_value = "compatibility.json")]
        json: PathBuf,
    },
}

/// `azrw mock`.
#[derive(Debug, Args)]
pub struct MockArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Where to write the CA, the env file and, on exit, the exchanges (default: a new directory under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// A fault plan for the mock: a profile file (same shape as `mocks/faults/*.yaml`) or a profile name
    /// (`dcr-503-x3`).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Mock data directory, as for `run`.
    #[arg(long)]
    pub mocks: Option<PathBuf>,
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
    /// Run these agents instead of the scenarios' own lists (repeatable): prometheus@3.5 (the catalog), your own
    /// binary prometheus=/path/to/prometheus, or your own local image prometheus=image:REPO:TAG (Docker; never pulled).
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    /// The version whose capability and vulnerability tables apply to an own build whose `--version` cannot be read.
    #[arg(long, value_name = "X.Y.Z")]
    pub assume_version: Option<String>,
    /// Prometheus modes to run instead of the scenarios' own (repeatable): server, agent (`prometheus --agent`).
    #[arg(long = "mode", value_enum)]
    pub modes: Vec<ModeChoice>,
    /// Runtime for scenarios that do not name one.
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: RuntimeChoice,
    /// Run every selected scenario against this target (`azure` needs each scenario's `azure:` block).
    #[arg(long, value_enum)]
    pub target: Option<TargetChoice>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// Prometheus as a server.
    Server,
    /// `prometheus --agent`.
    Agent,
}

impl From<ModeChoice> for scenario::AgentMode {
    fn from(m: ModeChoice) -> scenario::AgentMode {
        match m {
            ModeChoice::Server => scenario::AgentMode::Server,
            ModeChoice::Agent => scenario::AgentMode::Agent,
        }
    }
}

/// `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetChoice {
    /// The mock cloud.
    Mock,
    /// Real Azure (with `--allow-real`).
    Azure,
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
    /// Cases run at once (default: 4 per core, fewer where memory is short: cases mostly wait on the agent).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Per-case artefacts and capture bundles (`<dir>/<case>/`: case, verdict, exchanges with raw bodies, redacted
    /// config and env, agent log).
    #[arg(long, alias = "bundle", default_value = "out")]
    pub out: PathBuf,
    /// Write a Markdown summary (for `$GITHUB_STEP_SUMMARY`) here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Run `target: azure` cases: the agent then runs in the host network and talks to real Azure.
    #[arg(long)]
    pub allow_real: bool,
    /// Mock data directory (OIDC documents, error bodies); default: ./mocks if present, else the built-in copy.
    #[arg(long)]
    pub mocks: Option<PathBuf>,
    /// Do not build missing agents; stop with the command that would.
    #[arg(long)]
    pub no_provision: bool,
    /// Release gate: a known vulnerability (`mocks/vulnerabilities.yaml`) that a case shows fails it, instead of
    /// being reported as `known-vulnerable`.
    #[arg(long)]
    pub strict_security: bool,
}

/// Runs the CLI; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::List(args) => list(&args).await,
        Command::Agents { action } => agents(action.unwrap_or(AgentsAction::List)).await,
        Command::Gc { all } => gc(all).await,
        Command::Probe { serve, addresses } => probe(&addresses, serve.as_deref()).await,
        Command::Doctor(args) => doctor(args).await,
        Command::Replay(args) => replay(args).await,
        Command::Mock(args) => mock(args).await,
        Command::Compat(args) => compat(args).await,
        Command::Sidecar => Ok(crate::sidecar::run_from_env().await),
        Command::Pause => {
            crate::runtime::until_terminated().await;
            Ok(0)
        }
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
        let mut l = scenario::load(f)?;
        match args.target {
            Some(TargetChoice::Azure) if l.scenario.azure.is_none() => {
                return Err(l
                    .error_at("target", "--target azure needs an `azure:` block with the real endpoints")
                    .into());
            }
            Some(TargetChoice::Azure) => l.scenario.target = scenario::TargetKind::Azure,
            Some(TargetChoice::Mock) => l.scenario.target = scenario::TargetKind::Mock,
            None => {}
        }
        loaded.push(Arc::new(l));
    }
    let agents = args.agents.iter().map(|a| a.parse::<AgentSource>()).collect::<Result<Vec<_>, _>>()?;
    let assume = args
        .assume_version
        .as_deref()
        .map(str::parse::<Version>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--assume-version: {e}"))?;
    let builds = crate::runner::sources::identify_all(&loaded, &agents, assume, &crate::runner::new_run_id())
        .await
        .map_err(anyhow::Error::msg)?;
    let default_runtime = resolve_runtime(args.runtime).await;
    let forced = match args.runtime {
        RuntimeChoice::Auto => Vec::new(),
        _ => vec![default_runtime],
    };
    let opts = MatrixOptions {
        agents,
        builds,
        modes: args.modes.iter().map(|&m| m.into()).collect(),
        runtimes: forced,
        default_runtime,
        filter: args.filter.clone(),
    };
    Ok(matrix::expand(&loaded, &AgentCatalog::default_catalog(), &opts)?)
}

async fn list(args: &MatrixArgs) -> anyhow::Result<i32> {
    for case in expand(args).await? {
        println!("{}", case.id);
    }
    Ok(0)
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut cases = expand(&args.matrix).await?;
    if cases.is_empty() {
        anyhow::bail!("no case matches");
    }
    let real_cases = cases.iter().filter(|c| c.scenario.scenario.target == scenario::TargetKind::Azure).count();
    if real_cases > 0 && !args.allow_real {
        if real_cases == cases.len() {
            anyhow::bail!(
                "{real_cases} case(s) target real Azure, which runs the agent outside the loopback-only sandbox; pass \
                 --allow-real to run them (and `azrw doctor SCENARIO --allow-real` first)"
            );
        }
        eprintln!("skipping {real_cases} real-Azure case(s) (target: azure); pass --allow-real to run them");
        cases.retain(|c| c.scenario.scenario.target != scenario::TargetKind::Azure);
    }
    let real = if args.allow_real { Some(RealOptions::from_process_env().map_err(anyhow::Error::msg)?) } else { None };
    let store = AgentStore::from_env();
    // Own builds were identified before expansion; only catalog versions are provisioned.
    let mut versions: Vec<Version> = cases.iter().filter(|c| c.build.is_none()).map(|c| c.agent).collect();
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
        let mut v: Vec<Version> =
            cases.iter().filter(|c| c.runtime == RuntimeKind::Docker && c.build.is_none()).map(|c| c.agent).collect();
        v.sort();
        v.dedup();
        v
    };
    let own_binaries = crate::runner::sources::binaries_needing_images(&cases);
    if !docker_versions.is_empty() || !own_binaries.is_empty() {
        ensure_images(&store, &docker_versions, args.no_provision).await?;
        ensure_own_images(&own_binaries).await?;
        // Said once up front as well as in each verdict's config changes: a passing table would hide it.
        if crate::runtime::firewall::disabled_by_env() {
            eprintln!(
                "WARNING: {}=1: Docker cases run without host firewall rules; agent containers can reach every \
                 address of this host",
                crate::runtime::firewall::NO_FIREWALL_ENV
            );
        }
    }

    let mocks = mock_data(args.mocks.as_deref())?;
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let vulnerabilities = vulnerability_table(args.mocks.as_deref())?;
    let opts = RunOptions {
        agents: store,
        mocks,
        vulnerabilities,
        strict_security: args.strict_security,
        cancel,
        real,
        ..RunOptions::new(&args.out, jobs)
    };

    eprintln!("running {} case(s), {jobs} at a time", cases.len());
    let mut progress = report::progress::Progress::new(cases.len());
    let verdicts = run_cases(&cases, &opts, |v| {
        let result = v.result();
        progress.finished(&format!("{result} {} ({:.1}s)", v.case_id, v.duration.as_secs_f64()));
    })
    .await;
    progress.clear();

    // Load cases print their figures (rate, shards, send latency) even when they pass.
    for v in verdicts.iter().filter(|v| !v.passed() || v.findings.iter().any(|f| f.check.family() == "load")) {
        println!("{}", report::console::render_details(v));
    }
    println!("{}", report::console::render_table(&verdicts));
    if let Some(path) = &args.junit {
        report::junit::write_junit(&verdicts, path)?;
        eprintln!("JUnit written to {}", path.display());
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::render_summary(&verdicts, Some(&args.out)))?;
        eprintln!("Markdown summary written to {}", path.display());
    }
    match report::html::write_html(&verdicts, &args.out) {
        Ok(path) => eprintln!("HTML report written to {}", path.display()),
        Err(e) => eprintln!("HTML report in {}: {e}", args.out.display()),
    }
    eprintln!("capture bundles in {}/<case>/ (azrw replay DIR re-sends one)", args.out.display());
    Ok(if verdicts.iter().all(|v| v.passed()) && verdicts.len() == cases.len() { 0 } else { 1 })
}

/// The known-vulnerability table from the same directory as the mock data (`--mocks`, else ./mocks, else built in).
fn vulnerability_table(dir: Option<&std::path::Path>) -> anyhow::Result<VulnerabilityTable> {
    let local = std::path::Path::new("mocks");
    Ok(match dir.or(local.is_dir().then_some(local)) {
        Some(dir) => VulnerabilityTable::from_mocks_dir(dir)?,
        None => VulnerabilityTable::embedded(),
    })
}

fn mock_data(dir: Option<&std::path::Path>) -> anyhow::Result<MockData> {
    Ok(match dir {
        Some(dir) => MockData::load(dir)?,
        None if std::path::Path::new("mocks").is_dir() => MockData::load(std::path::Path::new("mocks"))?,
        None => MockData::embedded(),
    })
}

async fn compat(args: CompatArgs) -> anyhow::Result<i32> {
    use crate::runner::compat;
    if let Some(CompatAction::Merge { files, markdown, json }) = args.action {
        let docs = files.iter().map(|f| compat::Compatibility::read(f)).collect::<Result<Vec<_>, _>>()?;
        let merged = compat::shard::merge(docs)?;
        merged.write(&json)?;
        std::fs::write(&markdown, compat::table::render(&merged))?;
        eprintln!(
            "merged {} file(s): {} version(s) → {} and {}",
            files.len(),
            merged.results.len(),
            markdown.display(),
            json.display()
        );
        return Ok(compat_exit(&merged.contradictions(), &[]));
    }
    let list = if args.refresh_versions {
        let list = compat::versions::query(&mut compat::versions::GoProxy)?;
        list.write(&args.version_list)?;
        eprintln!("version list written to {}", args.version_list.display());
        list
    } else {
        compat::VersionList::read(&args.version_list)?
    };
    let versions = if args.versions.is_empty() {
        None
    } else {
        Some(args.versions.iter().map(|v| v.trim().parse()).collect::<Result<Vec<Version>, _>>()?)
    };
    let shard = args.shard.as_deref().map(str::parse::<compat::Shard>).transpose()?;
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let mocks_dir = args.mocks.clone().or_else(|| Some(PathBuf::from("mocks")).filter(|d| d.is_dir()));
    let run = RunOptions {
        mocks: mock_data(args.mocks.as_deref())?,
        vulnerabilities: vulnerability_table(args.mocks.as_deref())?,
        cancel,
        ..RunOptions::new(&args.out, jobs)
    };
    let opts = compat::run::Options {
        list,
        versions,
        shard,
        out_dir: args.out.clone(),
        markdown: args.markdown.clone(),
        json: args.json.clone(),
        scenarios: compat::SCENARIOS.iter().map(PathBuf::from).collect(),
        mocks_dir,
        // Process: the loopback-only namespace needs no images, so a new version costs only its build.
        runtime: RuntimeKind::Process,
        provision: !args.no_provision,
        run,
    };
    let summary = compat::run::run(&opts).await?;
    eprintln!(
        "{} and {} written ({} version(s))",
        args.markdown.display(),
        args.json.display(),
        summary.doc.results.len()
    );
    Ok(compat_exit(&summary.contradictions, &summary.unjudged))
}

/// 1 when the capability table is contradicted (each cell named) or a version could not be judged.
fn compat_exit(contradictions: &[crate::runner::compat::Contradiction], unjudged: &[(Version, String)]) -> i32 {
    for c in contradictions {
        eprintln!("CAPABILITY TABLE CONTRADICTED: {c}");
    }
    for (v, why) in unjudged {
        eprintln!("prometheus {v} not judged: {why}");
    }
    i32::from(!contradictions.is_empty() || !unjudged.is_empty())
}

async fn doctor(args: DoctorArgs) -> anyhow::Result<i32> {
    let loaded = scenario::load(&args.scenario)?;
    if loaded.scenario.azure.is_none() {
        return Err(loaded
            .error_at("azure", "doctor checks a real set-up: the scenario needs an `azure:` block")
            .into());
    }
    if !args.allow_real {
        anyhow::bail!(
            "doctor contacts the Azure endpoints and identities the scenario names; pass --allow-real (or point it at \
             `azrw mock` with {} and {})",
            crate::runner::real::VIA_PROXY_ENV,
            crate::runner::real::VIA_CA_ENV
        );
    }
    let real = RealOptions::from_process_env().map_err(anyhow::Error::msg)?;
    let report = crate::runner::real::doctor::run(&loaded.scenario, &real).await;
    print!("{}", report.render());
    Ok(if report.ok() { 0 } else { 1 })
}

async fn replay(args: ReplayArgs) -> anyhow::Result<i32> {
    let to = match &args.to {
        Some(proxy_url) => {
            let ca_pem = match &args.ca {
                Some(f) => std::fs::read_to_string(f)?,
                None => anyhow::bail!("--to needs --ca (the target mock's CA file)"),
            };
            Some(crate::runner::real::Access::Via { proxy_url: proxy_url.clone(), ca_pem })
        }
        None => None,
    };
    let report = crate::runner::replay::replay(&args.bundle, to, mock_data(args.mocks.as_deref())?)
        .await
        .map_err(anyhow::Error::msg)?;
    for line in &report.sent {
        eprintln!("{line}");
    }
    let Some(verdict) = &report.verdict else { return Ok(0) };
    println!("{}", report::console::render_details(verdict));
    match report.reproduced() {
        Some(true) => println!("reproduced: the same verdict as the bundle's"),
        Some(false) => println!("NOT reproduced: the bundle's verdict was {:?}", report.recorded),
        None => println!("the bundle has no verdict.json to compare with"),
    }
    Ok(if verdict.passed() { 0 } else { 1 })
}

async fn mock(args: MockArgs) -> anyhow::Result<i32> {
    use std::fmt::Write as _;
    let standalone = crate::cloud::Standalone::default();
    let mut config = standalone.config(mock_data(args.mocks.as_deref())?);
    if let Some(profile) = &args.faults {
        crate::cloud::apply_fault_profile(&mut config, profile)?;
    }
    // Ctrl-C and SIGTERM (what CI and `timeout` send) end it the same way: exchanges written, exit 0.
    let terminated = crate::runtime::termination()?;
    let listener = std::net::TcpListener::bind(args.listen)?;
    let cloud = crate::cloud::MockCloud::start(config, listener, Some(standalone.issuer.clone())).await?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("azrw-mock-{}", cloud.proxy_addr().port())),
    };
    std::fs::create_dir_all(&dir)?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cloud.ca_pem())?;
    let files = standalone.write_files(&dir).map_err(anyhow::Error::msg)?;
    let mut env = String::new();
    let proxy = cloud.proxy_url();
    for (k, v) in [
        ("HTTPS_PROXY", proxy.clone()),
        ("HTTP_PROXY", proxy.clone()),
        ("NO_PROXY", String::new()),
        ("SSL_CERT_FILE", ca.display().to_string()),
        (crate::runner::real::VIA_PROXY_ENV, proxy.clone()),
        (crate::runner::real::VIA_CA_ENV, ca.display().to_string()),
    ]
    .into_iter()
    .chain(standalone.env().iter().chain(&files).map(|(k, v)| (k.as_str(), v.clone())))
    {
        let _ = writeln!(env, "export {k}='{v}'");
    }
    let env_file = dir.join("env");
    crate::private_file::write(&env_file, env.as_bytes()).map_err(anyhow::Error::msg)?;
    println!("mock Azure cloud (IMDS, Entra, DCR, workspace query) on {proxy}");
    println!();
    println!("# 1. the environment (proxy, CA, and the mock's app credentials; 0600, secrets stay in the file):");
    println!("source {}", env_file.display());
    println!();
    println!("# 2. a remote_write block for any local Prometheus (>= 2.45; started with that environment):");
    println!("remote_write:");
    println!("  - url: {}", standalone.ingestion_url());
    println!("    proxy_from_environment: true");
    println!("    azuread:");
    println!("      cloud: AzurePublic");
    println!("      managed_identity: {{client_id: {}}}", standalone.identity_id);
    println!(
        "    # or oauth: {{client_id: $AZRW_CLIENT_ID, client_secret: $AZRW_CLIENT_SECRET, tenant_id: {}}}",
        standalone.tenant_id
    );
    println!();
    println!("# 3. read back and check the set-up like a real one:");
    println!("azrw doctor scenarios/real/oauth.yaml --allow-real   # also workload-identity.yaml, certificate.yaml");
    println!("azrw run scenarios/real --allow-real");
    println!();
    println!("Ctrl-C or SIGTERM stops it and writes every exchange to {}", dir.join(bundle::file::EXCHANGES).display());
    terminated.await;
    let recorder = cloud.recorder();
    let exchanges = recorder.exchanges();
    cloud.shutdown().await;
    bundle::write_json(&dir, bundle::file::EXCHANGES, &exchanges)?;
    eprintln!("{} exchange(s) written to {}", exchanges.len(), dir.join(bundle::file::EXCHANGES).display());
    Ok(0)
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

/// Images of the user's own binaries for their Docker cases (`azrw/prometheus-own:<digest>`), built when missing.
async fn ensure_own_images(builds: &[Arc<crate::agent::source::AgentBuild>]) -> anyhow::Result<()> {
    if builds.is_empty() {
        return Ok(());
    }
    let engine = Engine::connect().await?;
    for build in builds {
        let spec = ImageSpec::own_binary(&build.digest, std::path::Path::new(&build.location));
        if image::require(&engine, &spec.tag, "").await.is_err() {
            eprintln!("building image {} (FROM scratch + {})", spec.tag, build.location);
            image::build(&engine, &spec).await?;
        }
    }
    Ok(())
}

async fn gc(all: bool) -> anyhow::Result<i32> {
    // A killed process-runtime run leaves only its private directories (its agent dies with it, PR_SET_PDEATHSIG,
    // and its network namespace with the agent); a Docker run leaves containers, networks and firewall rules.
    let mut removed = crate::runtime::gc_private_dirs(&std::env::temp_dir(), all);
    match Engine::connect().await {
        Ok(engine) => removed.extend(engine.gc(all).await?),
        Err(e) => eprintln!("gc: no Docker daemon ({e}); only directories were looked at"),
    }
    for r in &removed {
        println!("removed {r}");
    }
    eprintln!("gc: {} removed", removed.len());
    Ok(0)
}

/// Per address, one line: `ADDRESS reached` or `ADDRESS unreachable: WHY`; with `serve`, the same lines are then
/// the body of the answer to one HTTP request on that address.
async fn probe(addresses: &[String], serve: Option<&str>) -> anyhow::Result<i32> {
    let mut results = String::new();
    for address in addresses {
        let attempt = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(address.as_str()));
        let line = match attempt.await {
            Ok(Ok(_)) => format!("{address} reached"),
            Ok(Err(e)) => format!("{address} unreachable: {e}"),
            Err(_) => format!("{address} unreachable: no answer within 3s"),
        };
        println!("{line}");
        results.push_str(&line);
        results.push('\n');
    }
    if let Some(serve) = serve {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(serve).await?;
        println!(r#"level=info msg="Server is ready to receive web requests." address={serve}"#);
        let (mut stream, peer) = listener.accept().await?;
        // The request head is all a GET sends; its content does not matter.
        let mut head = [0u8; 1024];
        let _ = stream.read(&mut head).await?;
        stream.write_all(format!("HTTP/1.0 200 OK\r\n\r\n{results}").as_bytes()).await?;
        stream.shutdown().await?;
        println!("served {peer}");
    }
    Ok(0)
}
