//! The Docker runtime against the real daemon: an agent container reaches the mock cloud's gateway listener and
//! nothing else (not even the host's own addresses), while the host reads the container's own listener; a real
//! case passes and leaves nothing behind; SIGINT or SIGTERM mid-run still cleans up; `gc` removes what a dead run left and
//! spares a live one.
//!
//! Without a daemon these tests say so and return — unless `AZRW_REQUIRE_DOCKER=1` (CI), where that is a failure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azrw::agent::catalog::AgentCatalog;
use azrw::agent::store::AgentStore;
use azrw::matrix::MatrixOptions;
use azrw::runner::{RunOptions, new_run_id, run_case};
use azrw::runtime::AgentState;
use azrw::runtime::docker::{CaseNetwork, ContainerSpec, DockerAgent, Owner};
use azrw::runtime::engine::bollard::models::NetworkCreateRequest;
use azrw::runtime::engine::bollard::query_parameters::{EventsOptions, ListContainersOptions, ListNetworksOptions};
use azrw::runtime::engine::{Engine, LABEL_CASE, LABEL_PID, LABEL_RUN};
use azrw::runtime::firewall;
use azrw::runtime::image::{self, ImageSpec, agent_image};
use azrw::runtime::sandbox::{RunningAgent, Sandbox};
use azrw::scenario::{self, RuntimeKind};
use futures_util::StreamExt;

/// The daemon, or `None` after saying why; with `AZRW_REQUIRE_DOCKER=1` a missing daemon fails the test.
async fn docker() -> Option<Engine> {
    match Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(e) if std::env::var("AZRW_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("AZRW_REQUIRE_DOCKER=1 but Docker is not usable: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED (no Docker; set AZRW_REQUIRE_DOCKER=1 to make this a failure): {e}");
            None
        }
    }
}

/// What is left with `label=VALUE`: container and network names.
async fn leftovers(engine: &Engine, label: &str, value: &str) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{label}={value}")])]);
    let docker = engine.docker();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap();
    let networks = docker.list_networks(Some(ListNetworksOptions { filters: Some(filters) })).await.unwrap();
    containers
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .chain(networks.into_iter().filter_map(|n| n.name))
        .collect()
}

/// azrw's host firewall rules (their tags) left for `run`.
fn firewall_leftovers(run: &str) -> Vec<String> {
    firewall::list_tags().unwrap().into_iter().filter(|t| firewall::tag_run(t) == Some(run)).collect()
}

/// The host's address on Docker's default `bridge` network (docker0), e.g. 172.17.0.1: its IPAM gateway, or, where
/// the daemon does not list one (20.10 does not), the subnet's first address, which is what Docker gives docker0.
async fn bridge_gateway(engine: &Engine) -> std::net::IpAddr {
    let inspect = engine.docker().inspect_network("bridge", None).await.unwrap();
    let configs: Vec<_> = inspect.ipam.and_then(|ipam| ipam.config).into_iter().flatten().collect();
    let listed = configs.iter().filter_map(|c| c.gateway.as_deref()).find_map(|g| g.parse().ok());
    let address = listed.unwrap_or_else(|| {
        let subnet = configs.iter().filter_map(|c| c.subnet.as_deref()).find(|s| !s.contains(':')).expect("subnet");
        let network: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
        std::net::IpAddr::V4((u32::from(network) + 1).into())
    });
    // Binding to it proves it is one of this host's addresses, i.e. the probe below really aims at the host.
    std::net::TcpListener::bind((address, 0)).unwrap_or_else(|e| panic!("{address} is not a host address: {e}"));
    address
}

/// The agent image of `version`, built if this Docker lacks it (seconds: FROM scratch + the binary).
async fn agent_image_for(engine: &Engine, store: &AgentStore, version: azrw::agent::Version) -> bool {
    let Ok(binary) = store.get(version) else {
        eprintln!("SKIPPED: prometheus {version} is not provisioned (ci/setup.sh provisions it)");
        return false;
    };
    if image::require(engine, &agent_image(version), "").await.is_err() {
        image::build(engine, &ImageSpec::agent(version, &binary)).await.unwrap();
    }
    true
}

async fn wait_exited(agent: &DockerAgent) -> AgentState {
    let mut state = agent.state();
    tokio::time::timeout(Duration::from_secs(60), state.wait_for(|s| matches!(s, AgentState::Exited { .. })))
        .await
        .expect("the container exits within 60s")
        .expect("state channel open")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_container_reaches_the_mock_cloud_and_nothing_else_while_the_host_reaches_it() {
    let Some(engine) = docker().await else { return };
    let _turn = crate::agent_turn(1).await;
    let owner = Owner { run: new_run_id(), case: "isolation".into() };
    let sandbox = Sandbox::docker(&engine, owner.clone()).await.unwrap();
    let Sandbox::Docker { network, .. } = &sandbox else { unreachable!("a docker sandbox") };
    let gateway = network.gateway();
    let network_name = network.name().to_owned();

    // The mock cloud's side: a listener on the gateway address that counts who connected, bound (and its port
    // opened in the case's firewall) as every mock service is.
    let listener = sandbox.bind().await.unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let mock = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
    // A host service bound on loopback only: the container must not reach it.
    let loopback = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // A host service on every address (kept open: the kernel completes connections to its backlog, so a probe
    // that gets through says "reached"). Without the case's firewall, the container reaches it on docker0's
    // address and on its own gateway.
    let host_service = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let any_port = host_service.local_addr().unwrap().port();
    let docker0 = bridge_gateway(&engine).await;

    // The probe is azrw itself (hidden `probe` subcommand) in its own FROM-scratch image, built from this build.
    let azrw = std::path::Path::new(env!("CARGO_BIN_EXE_azrw"));
    let probe_image = image::ensure_azrw_image(&engine, azrw).await.unwrap();

    let targets = [
        mock.to_string(),                         // the mock cloud: must answer
        "169.254.169.254:80".to_owned(),          // the real IMDS
        "1.1.1.1:443".to_owned(),                 // a public address
        "8.8.8.8:53".to_owned(),                  // another
        format!("127.0.0.1:{}", loopback.port()), // the container's own loopback, not the host's
        format!("{docker0}:{any_port}"),          // the host, on docker0's address
        format!("{gateway}:{any_port}"),          // the host, on the case's own gateway but not a mock port
    ];
    // Then, like an agent, it serves on the sandbox's listen address and says it is ready: the harness reads it
    // from the host (as it reads an agent's /metrics) through the same firewall.
    let serve = ["probe", "--serve", sandbox.listen_address()].map(str::to_owned);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("probe.log");
    let probe = DockerAgent::start(
        &engine,
        &ContainerSpec {
            image: probe_image.into(),
            name: owner.name("probe"),
            cmd: serve.into_iter().chain(targets.iter().cloned()).collect(),
            env: Vec::new(),
            labels: owner.labels(),
            network: network_name,
            input_dir: None,
        },
        &log,
    )
    .await
    .unwrap();
    let mut probe = RunningAgent::Docker(probe);
    let mut state = probe.state();
    let ready = tokio::time::timeout(
        Duration::from_secs(60),
        state.wait_for(|s| matches!(s, AgentState::Ready | AgentState::Exited { .. })),
    )
    .await
    .expect("the probe is ready or gone within 60s")
    .expect("state channel open")
    .clone();
    let served = sandbox.agent_http_get(&probe, "/").await;
    let web = sandbox.agent_web_address(&probe).await;
    let RunningAgent::Docker(container) = &probe else { unreachable!("a container") };
    let exited = wait_exited(container).await;
    probe.stop().await;
    sandbox.close().await;

    let lines: Vec<String> = BufReader::new(std::fs::File::open(&log).unwrap()).lines().map(Result::unwrap).collect();
    eprintln!("probe output:\n{}", lines.join("\n"));
    assert_eq!(ready, AgentState::Ready, "the probe never served; exit {exited:?}");
    let said = |target: &str| {
        lines.iter().find(|l| l.starts_with(&format!("{target} "))).cloned().unwrap_or_else(|| {
            panic!("the probe said nothing about {target}; exit {exited:?}; output:\n{}", lines.join("\n"))
        })
    };
    assert_eq!(said(&targets[0]), format!("{} reached", targets[0]), "the gateway listener must answer");
    let peer = accepted.await.unwrap().unwrap();
    assert_ne!(peer.ip(), gateway, "the connection came from the container, not the host");
    for target in &targets[1..] {
        let line = said(target);
        assert!(line.contains("unreachable"), "{target} must be unreachable from an agent container, got: {line}");
    }
    // The host opened a connection into the container and the firewall let its replies in.
    let served = served.unwrap_or_else(|e| panic!("the host could not read the container's listener: {e}"));
    assert!(served.starts_with(&format!("{} reached\n", targets[0])), "served: {served}");
    assert_eq!(web.unwrap().ip(), peer.ip(), "the harness reads the container at its address on the case network");
    assert!(lines.iter().any(|l| l.starts_with("served ")), "the probe answered the host");
    assert!(leftovers(&engine, LABEL_RUN, &owner.run).await.is_empty());
    assert_eq!(firewall_leftovers(&owner.run), Vec::<String>::new(), "the network's firewall rules are gone");
    drop(host_service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_passes_in_docker_and_leaves_nothing_behind() {
    let Some(engine) = docker().await else { return };
    let _turn = crate::agent_turn(1).await;
    let store = AgentStore::from_env();
    let loaded = Arc::new(scenario::load(Path::new("scenarios/auth/managed-identity-user-assigned.yaml")).unwrap());
    let opts = MatrixOptions {
        agents: vec!["prometheus@3.5".parse().unwrap()],
        runtimes: vec![RuntimeKind::Docker],
        ..MatrixOptions::default()
    };
    let case = azrw::matrix::expand(&[loaded], &AgentCatalog::default_catalog(), &opts).unwrap().remove(0);
    if !agent_image_for(&engine, &store, case.agent).await {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run_opts = RunOptions { agents: store, ..RunOptions::new(out.path(), 1) };
    let verdict = run_case(&case, &run_opts).await;
    assert!(verdict.passed(), "{}", azrw::report::console::render_details(&verdict));
    assert_eq!(verdict.runtime, "docker");
    assert!(leftovers(&engine, LABEL_RUN, &run_opts.run_id).await.is_empty(), "the case left Docker resources");
    assert_eq!(firewall_leftovers(&run_opts.run_id), Vec::<String>::new(), "the case left firewall rules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_midway_still_removes_containers_and_networks() {
    interrupted_midway(libc::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_midway_still_removes_containers_and_networks() {
    interrupted_midway(libc::SIGTERM).await;
}

/// `azrw run` in the Docker runtime, signalled once its agent container has started: it exits 1 saying it was
/// interrupted, and no container, network or firewall rule of the run is left.
async fn interrupted_midway(signal: libc::c_int) {
    let Some(engine) = docker().await else { return };
    let _turn = crate::agent_turn(1).await;
    let Some((mut child, pid, run, _out)) = run_until_container_starts(&engine, &[]).await else { return };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("azrw exits").unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).await.unwrap();
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(status.code(), Some(1), "an interrupted run is not a pass: {stderr}");
    assert_eq!(leftovers(&engine, LABEL_RUN, &run).await, Vec::<String>::new(), "after signal {signal}: {stderr}");
    assert_eq!(firewall_leftovers(&run), Vec::<String>::new(), "firewall rules after signal {signal}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_check_still_removes_containers_and_networks() {
    let Some(engine) = docker().await else { return };
    let _turn = crate::agent_turn(1).await;
    let planted = [(azrw::runner::SELFTEST_PANIC_ENV, "evaluate")];
    let Some((child, _, run, _out)) = run_until_container_starts(&engine, &planted).await else { return };
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.expect("exits").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a panicked case is not a pass: {stdout}");
    assert!(stdout.contains("azrw panicked during the case"), "{stdout}");
    assert_eq!(leftovers(&engine, LABEL_RUN, &run).await, Vec::<String>::new(), "after a panic: {stdout}");
    assert_eq!(firewall_leftovers(&run), Vec::<String>::new(), "firewall rules after a panic: {stdout}");
}

/// Starts `azrw run` on one Docker case (extra environment `env`) and waits for its agent container to start: the
/// run, its pid, its run id and its output directory. `None` (said why) when the agent's image cannot be built.
async fn run_until_container_starts(
    engine: &Engine,
    env: &[(&str, &str)],
) -> Option<(tokio::process::Child, u32, String, tempfile::TempDir)> {
    let store = AgentStore::from_env();
    let version: azrw::agent::Version = "3.5.5".parse().unwrap();
    if !agent_image_for(engine, &store, version).await {
        return None;
    }
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let out = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_azrw"))
        .args(["run", "scenarios/auth/managed-identity-user-assigned.yaml", "--runtime", "docker", "--jobs", "1"])
        .args(["--agent", "prometheus@3.5", "--mode", "server", "--no-provision", "--out"])
        .arg(out.path())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // The child's agent container starting (events since before the spawn, so none is missed).
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("event".to_owned(), vec!["start".to_owned()]),
        ("label".to_owned(), vec![format!("{LABEL_PID}={pid}")]),
    ]);
    let options = EventsOptions { since: Some(since), filters: Some(filters), ..Default::default() };
    let mut started = engine.docker().events(Some(options));
    let event = match tokio::time::timeout(Duration::from_secs(60), started.next()).await {
        Ok(Some(event)) => event.unwrap(),
        waited => {
            let _ = child.start_kill();
            let mut stderr = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).await;
            let _ = tokio::io::AsyncReadExt::read_to_string(child.stdout.as_mut().unwrap(), &mut stderr).await;
            panic!("no agent container of azrw (pid {pid}) started within 60s ({waited:?}); its stderr:\n{stderr}");
        }
    };
    let labels = event.actor.and_then(|a| a.attributes).unwrap_or_default();
    assert_eq!(labels.get(LABEL_PID).map(String::as_str), Some(pid.to_string().as_str()), "{labels:?}");
    let run = labels.get(LABEL_RUN).cloned().expect("run label");
    assert!(labels.contains_key(LABEL_CASE));
    assert!(!leftovers(engine, LABEL_RUN, &run).await.is_empty(), "the run's container is there once started");
    Some((child, pid, run, out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_what_a_dead_run_left_and_spares_a_live_one() {
    let Some(engine) = docker().await else { return };
    // A pid that surely no longer exists: a child that has exited and been reaped.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let _ = { dead }.wait();
    let run = new_run_id();
    let create = |name: &str, pid: u32| NetworkCreateRequest {
        name: format!("azrw-{run}-{name}"),
        internal: Some(true),
        labels: Some(HashMap::from([
            (LABEL_RUN.to_owned(), run.clone()),
            (LABEL_CASE.to_owned(), name.to_owned()),
            (LABEL_PID.to_owned(), pid.to_string()),
        ])),
        ..Default::default()
    };
    engine.docker().create_network(create("dead", dead_pid)).await.unwrap();
    engine.docker().create_network(create("live", std::process::id())).await.unwrap();
    // Firewall rules: a killed run's (its network already gone; on an interface that does not exist, so the rule
    // touches nothing), and a live case network's.
    let dead_run = new_run_id();
    let dead_tag = firewall::tag(&dead_run, "killed");
    let inserted = std::process::Command::new("iptables")
        .args(["-w", "-I", "INPUT", "-i", "azrwgctest0", "-j", "DROP", "-m", "comment", "--comment", &dead_tag])
        .status()
        .unwrap();
    assert!(inserted.success());
    let live_owner = Owner { run: new_run_id(), case: "live-firewall".into() };
    let mut live_network = CaseNetwork::create(&engine, &live_owner).await.unwrap();
    assert!(!firewall_leftovers(&live_owner.run).is_empty(), "a case network has firewall rules");

    let removed = engine.gc(false).await.unwrap();
    assert!(removed.contains(&format!("network azrw-{run}-dead")), "{removed:?}");
    assert!(removed.contains(&format!("firewall rules {dead_tag}")), "{removed:?}");
    assert!(firewall_leftovers(&dead_run).is_empty());
    assert!(!firewall_leftovers(&live_owner.run).is_empty(), "gc spared the live network's rules");
    live_network.remove().await;
    assert!(firewall_leftovers(&live_owner.run).is_empty());
    assert_eq!(leftovers(&engine, LABEL_CASE, "live").await, vec![format!("azrw-{run}-live")]);
    assert!(leftovers(&engine, LABEL_CASE, "dead").await.is_empty());

    // Not `gc --all` here: it would also remove the resources of tests running beside this one.
    engine.docker().remove_network(&format!("azrw-{run}-live")).await.unwrap();
    assert!(leftovers(&engine, LABEL_RUN, &run).await.is_empty());
}
