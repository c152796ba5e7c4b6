//! Speed and scale figures (printed, never asserted): `cargo bench --bench speed -- [startup] [memory] [ingest]
//! [overhead] [suite]` (default: all). Needs root for the cases (network namespaces) and the provisioned agents.
//!
//! - startup: MockCloud::start, the first in the process (which generates the shared token signing key) and the
//!   median of the next ones;
//! - memory: recorder bytes per million samples, full vs accounting mode (counted by this binary's allocator);
//! - ingest: samples/s through the DCR mock path (proxy, CONNECT/TLS, auth, decode, record) against a pure
//!   snappy+prost decode loop over the same payloads;
//! - overhead: median wall time of a basic auth case over the agent's own floor (agent start → first accepted
//!   write, as the mock saw it);
//! - suite: cases/minute for scenarios/auth at --jobs 1 and at the default (cores);
//! - jobs: the default suite (`scenarios`, process runtime) at --jobs 2, 4, 6 and 8 in one run: wall time,
//!   cases/minute, ratio to --jobs 2, and every case whose verdict (pass/FAIL, observed outcome) differs from
//!   --jobs 2's. Not part of the default set (it takes ~30 min): name it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use azrw::agent::AgentCatalog;
use azrw::cloud::recorder::{Detail, Exchange, RecordMode, Recorder, Service, WriteAuth};
use azrw::cloud::{MockCloud, MockData};
use azrw::matrix::{self, MatrixOptions};
use azrw::remote_write::proto::WriteRequest;
use azrw::remote_write::{DecodedWrite, RwVersion, Sample, Series, decode, encode};
use azrw::runner::{RunOptions, Timings, run_case, run_cases, slug};
use azrw::scenario::{self, RuntimeKind};
use prost::Message;

/// Counts live heap bytes, so recorder memory is measured exactly rather than through RSS.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Counting only while `memory` runs: a shared counter bumped by every allocation on every thread would slow the
/// multi-threaded ingest figures down (cache-line contention), and measure the benchmark instead of the mock.
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Series in the synthetic load (as scenarios/load) and samples per write (Prometheus' max_samples_per_send).
const LOAD_SERIES: usize = 17_000;
const PER_WRITE: usize = 2_000;

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and must not start minutes of cases.
    if args.is_empty() && !std::env::args().any(|a| a == "--bench") {
        println!("speed: run with `cargo bench --bench speed` (or name sections)");
        return;
    }
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("# azrw speed figures — {} cores, {}", cores(), machine());
    if want("memory") {
        memory();
    }
    if want("startup") {
        rt.block_on(startup());
    }
    if want("ingest") {
        ingest();
    }
    if want("overhead") {
        rt.block_on(overhead());
    }
    if want("suite") {
        rt.block_on(suite());
    }
    if args.iter().any(|a| a == "jobs") {
        rt.block_on(jobs());
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!("load average {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Write `k` of the synthetic load: `PER_WRITE` consecutive series (cycling through `LOAD_SERIES`), one sample each
/// at the scrape that reaches them.
fn write(k: usize) -> DecodedWrite {
    let series = (0..PER_WRITE)
        .map(|j| {
            let n = k * PER_WRITE + j;
            let (i, scrape) = (n % LOAD_SERIES, n / LOAD_SERIES);
            Series {
                labels: vec![
                    ("__name__".into(), "azrw_load_series".into()),
                    ("cluster".into(), "azrw".into()),
                    ("instance".into(), "127.0.0.1:40321".into()),
                    ("job".into(), "azrw-target".into()),
                    ("series".into(), i.to_string()),
                ],
                samples: vec![Sample { timestamp: 1_764_000_000_000 + 1000 * scrape as i64, value: scrape as f64 }],
                histograms: vec![],
                exemplars: vec![],
            }
        })
        .collect();
    DecodedWrite { version: Some(RwVersion::V1), series, metadata: Vec::new(), uncompressed_len: 0 }
}

fn payloads(writes: usize) -> Vec<Vec<u8>> {
    (0..writes).map(|k| encode(&write(k), RwVersion::V1)).collect()
}

fn memory() {
    println!("\n## recorder memory ({PER_WRITE} samples per write, {LOAD_SERIES} series)");
    // Full mode once (it grows with volume); accounting at one and two million to show it stays flat. Everything
    // allocated and freed while counting nets out; what stays is what the recorder holds.
    COUNTING.store(true, Ordering::Relaxed);
    for (mode, millions) in [(RecordMode::Full, 1), (RecordMode::Accounting, 1), (RecordMode::Accounting, 2)] {
        let writes = millions * 1_000_000 / PER_WRITE;
        let before = LIVE.load(Ordering::Relaxed);
        let recorder = Recorder::new();
        recorder.set_mode(mode);
        // Unbudgeted: the figure is what full mode would hold (a case stops keeping at its body budget).
        recorder.set_body_budget(usize::MAX);
        for k in 0..writes {
            let body = encode(&write(k), RwVersion::V1);
            recorder.record(exchange(decode(&body, Some("application/x-protobuf")).map_err(|e| e.0)));
        }
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        let mib = bytes as f64 / (1024.0 * 1024.0);
        println!("{mode:?}, {millions}M samples: {mib:.1} MiB live = {:.1} MiB per million", mib / millions as f64);
        drop(recorder);
    }
    COUNTING.store(false, Ordering::Relaxed);
}

/// A write exchange as the proxy records it (headers of a Prometheus 3.x write).
fn exchange(body: Result<DecodedWrite, String>) -> Exchange {
    let headers = [
        ("content-encoding", "snappy"),
        ("content-type", "application/x-protobuf"),
        ("user-agent", "Prometheus/3.16.0"),
        ("x-prometheus-remote-write-version", "0.1.0"),
        ("authorization", "Bearer [token #1]"),
        ("content-length", "41234"),
    ];
    Exchange {
        seq: 0,
        at: Duration::ZERO,
        service: Service::Dcr,
        host: "azrw-dce-a2b0.eastus-1.metrics.ingest.monitor.azure.com".into(),
        tls: true,
        method: "POST".into(),
        target: "/dataCollectionRules/dcr-00000000000000000000000000000a2b/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24".into(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        status: 200,
        detail: Detail::Write { auth: WriteAuth::Token { id: azrw::cloud::recorder::TokenId(1), problem: None }, body },
        fault: None,
        not_kept: None,
    }
}

async fn startup() {
    let scenario: scenario::Scenario = serde_saphyr::from_str(INGEST_SCENARIO).expect("scenario");
    let url = azrw::runner::setup::default_ingestion_url(&scenario);
    let mut times = Vec::new();
    for _ in 0..11 {
        let setup = azrw::runner::setup::cloud_setup(&scenario, &url, MockData::embedded()).expect("set-up");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let started = Instant::now();
        let cloud = MockCloud::start(setup.config, listener, None).await.expect("cloud");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        cloud.shutdown().await;
    }
    let first = times.remove(0);
    println!("\n## mock cloud start-up");
    println!("first MockCloud::start (generates the shared RSA token key): {first:.1}ms");
    println!("median of the next {}: {:.1}ms", times.len(), median(times));
}

const INGEST_SCENARIO: &str = r#"
name: bench/ingest
agents: [prometheus@latest]
auth:
  managed_identity: {client_id: ""}
"#;

fn ingest() {
    let writes = 100;
    let bodies = Arc::new(payloads(writes));
    let samples_per_round = (writes * PER_WRITE) as f64;
    println!("\n## ingest: {writes} writes of {PER_WRITE} samples (RW 1.0, snappy), loopback only");

    // The ceiling: a plain snappy + prost decode loop (the generated WriteRequest, owned strings, nothing of
    // azrw's decoder, so making azrw faster cannot raise it), one thread, as many rounds as fit in ~3s; per wall
    // second and per CPU second (the machine is shared, so CPU time is the fairer measure).
    let (started, cpu_started) = (Instant::now(), thread_cpu());
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(3) {
        for b in bodies.iter() {
            let raw = snap::raw::Decoder::new().decompress_vec(b).expect("snappy");
            std::hint::black_box(WriteRequest::decode(raw.as_slice()).expect("decodes"));
        }
        rounds += 1;
    }
    let samples = samples_per_round * rounds as f64;
    let ceiling = samples / started.elapsed().as_secs_f64();
    let ceiling_cpu = samples / (thread_cpu() - cpu_started);
    println!(
        "pure snappy+prost decode (1 thread): {ceiling:.0} samples/s wall, {ceiling_cpu:.0} samples per CPU-second"
    );

    // The mock cloud runs on its own runtime (threads named azrw-cloud) so its CPU time can be told apart from the
    // client's, which shares the machine.
    let cloud_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLOUD_THREADS)
        .enable_all()
        .build()
        .expect("cloud runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    for mode in [RecordMode::Accounting, RecordMode::Full] {
        let cloud = start_ingest_cloud(&cloud_rt, mode);
        let cpu_before = cloud_cpu();
        let rate = client_rt.block_on(through_mock(&cloud, &bodies, 4, Duration::from_secs(4)));
        let cloud_seconds = cloud_cpu() - cpu_before;
        let per_cpu = rate.0 / cloud_seconds;
        println!(
            "mock DCR path, {mode:?} recorder, 4 connections: {:.0} samples/s wall = {:.0}% of pure decode; \
             {per_cpu:.0} samples per mock CPU-second = {:.0}% of pure decode",
            rate.1,
            rate.1 * 100.0 / ceiling,
            per_cpu * 100.0 / ceiling_cpu
        );
        cloud_rt.block_on(cloud.shutdown());
    }
}

const CLOUD_THREADS: &str = "azrw-cloud";

/// CPU seconds of the calling thread.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// CPU seconds (user + system) of every live thread named [`CLOUD_THREADS`], from /proc.
fn cloud_cpu() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(CLOUD_THREADS) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        total += (field(14) + field(15)) / ticks;
    }
    total
}

fn start_ingest_cloud(rt: &tokio::runtime::Runtime, mode: RecordMode) -> MockCloud {
    let scenario: scenario::Scenario = serde_saphyr::from_str(INGEST_SCENARIO).expect("scenario");
    let url = azrw::runner::setup::default_ingestion_url(&scenario);
    let setup = azrw::runner::setup::cloud_setup(&scenario, &url, MockData::embedded()).expect("set-up");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let cloud = rt.block_on(MockCloud::start(setup.config, listener, None)).expect("cloud");
    cloud.recorder().set_mode(mode);
    cloud
}

/// Posts the payloads through the mock cloud (proxy, CONNECT/TLS, bearer check, decode, record) over `connections`
/// keep-alive connections for about `budget`; (samples accepted, samples/s).
async fn through_mock(
    cloud: &MockCloud,
    bodies: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    budget: Duration,
) -> (f64, f64) {
    let url = cloud.ingestion_url();
    let ca = reqwest::Certificate::from_pem(cloud.ca_pem().as_bytes()).expect("ca");
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(cloud.proxy_url()).expect("proxy"))
        .tls_certs_only([ca])
        .build()
        .expect("client");
    let token: serde_json::Value = client
        .get("http://169.254.169.254/metadata/identity/oauth2/token")
        .query(&[("api-version", "2018-02-01"), ("resource", "https://monitor.azure.com/")])
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds")
        .json()
        .await
        .expect("token json");
    let token = token["access_token"].as_str().expect("token").to_owned();

    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, token, url, bodies) = (client.clone(), token.clone(), url.clone(), bodies.clone());
        let (next, accepted) = (next.clone(), accepted.clone());
        tasks.spawn(async move {
            while started.elapsed() < budget {
                let k = next.fetch_add(1, Ordering::Relaxed) % bodies.len();
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(bodies[k].clone())
                    .send()
                    .await;
                if resp.is_ok_and(|r| r.status().is_success()) {
                    accepted.fetch_add(PER_WRITE, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let samples = accepted.load(Ordering::Relaxed) as f64;
    (samples, samples / started.elapsed().as_secs_f64())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_options(jobs: usize, out: &std::path::Path) -> RunOptions {
    RunOptions { mocks: MockData::load(&root().join("mocks")).expect("mocks"), ..RunOptions::new(out, jobs) }
}

fn cases(path: &str, filter: Option<&str>, runtime: RuntimeKind) -> Vec<matrix::Case> {
    let files = scenario::discover(&[root().join(path)]).expect("scenarios");
    let loaded: Vec<_> = files.iter().map(|f| Arc::new(scenario::load(f).expect("scenario"))).collect();
    let opts = MatrixOptions { runtimes: vec![runtime], filter: filter.map(str::to_owned), ..MatrixOptions::default() };
    matrix::expand(&loaded, &AgentCatalog::default_catalog(), &opts).expect("cases")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Case overhead per runtime: the Docker runtime adds a network, firewall rules and a container per case.
async fn overhead() {
    for runtime in [RuntimeKind::Process, RuntimeKind::Docker] {
        overhead_in(runtime).await;
    }
}

async fn overhead_in(runtime: RuntimeKind) {
    let runs = 5;
    let case = cases("scenarios/auth/managed-identity-user-assigned.yaml", Some("*3.16*"), runtime).remove(0);
    println!("\n## case overhead: {} ({runtime} runtime), {runs} runs", case.id);
    let out = tempfile::tempdir().expect("tempdir");
    let opts = run_options(1, out.path());
    let (mut walls, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let v = run_case(&case, &opts).await;
        let timings: Timings = serde_json::from_slice(
            &std::fs::read(out.path().join(slug(&case.id)).join("timings.json")).expect("timings.json"),
        )
        .expect("timings");
        let Some(floor) = timings.agent_floor_ms.filter(|_| v.passed()) else {
            println!("run failed or delivered nothing: {:?}", v.error);
            continue;
        };
        let wall = v.duration.as_secs_f64() * 1000.0;
        println!(
            "wall {wall:.0}ms = set-up {}ms + agent floor {floor}ms + rest of run {}ms + down {}ms",
            timings.agent_start_ms,
            timings.decided_ms.saturating_sub(timings.agent_start_ms + floor),
            timings.down_ms - timings.decided_ms
        );
        walls.push(wall);
        floors.push(floor as f64);
        ratios.push(wall / floor as f64);
    }
    if !walls.is_empty() {
        println!(
            "median wall {:.0}ms, median agent floor {:.0}ms, median overhead {:.2}× the floor ({runtime} runtime)",
            median(walls),
            median(floors),
            median(ratios)
        );
    }
}

async fn suite() {
    let all = cases("scenarios/auth", None, RuntimeKind::Process);
    println!("\n## suite throughput: scenarios/auth, {} cases (process runtime)", all.len());
    let mut per_minute = Vec::new();
    for jobs in [1, cores()] {
        let out = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let verdicts = run_cases(&all, &run_options(jobs, out.path()), |_| {}).await;
        let secs = started.elapsed().as_secs_f64();
        let passed = verdicts.iter().filter(|v| v.passed()).count();
        let rate = all.len() as f64 * 60.0 / secs;
        println!("--jobs {jobs}: {secs:.1}s, {rate:.1} cases/min ({passed}/{} passed)", all.len());
        per_minute.push(rate);
    }
    println!("speed-up at --jobs {}: {:.2}×", cores(), per_minute[1] / per_minute[0]);
}

/// One case's verdict as the repeat check compares it: passed, and the outcome observed.
type Judged = std::collections::BTreeMap<String, (bool, Option<scenario::Outcome>)>;

/// The default suite at rising concurrency: cases mostly wait on the agent's ~6 s floor, so more jobs than cores
/// should raise throughput until the agents' own start-up bursts compete, and the verdicts must not move.
async fn jobs() {
    // As `azrw run scenarios` without --allow-real: the real-Azure cases are left out.
    let mut all = cases("scenarios", None, RuntimeKind::Process);
    all.retain(|c| c.scenario.scenario.target != scenario::TargetKind::Azure);
    println!("\n## default suite at rising --jobs: scenarios, {} cases (process runtime), {}", all.len(), machine());
    let mut base: Option<(f64, Judged)> = None;
    for jobs in [2, 4, 6, 8] {
        let out = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let verdicts = run_cases(&all, &run_options(jobs, out.path()), |_| {}).await;
        let secs = started.elapsed().as_secs_f64();
        let judged: Judged = verdicts.iter().map(|v| (v.case_id.clone(), (v.passed(), v.observed))).collect();
        let passed = verdicts.iter().filter(|v| v.passed()).count();
        let rate = all.len() as f64 * 60.0 / secs;
        let (ratio, moved) = match &base {
            None => (1.0, Vec::new()),
            Some((r, b)) => (rate / r, judged.iter().filter(|(id, j)| b.get(*id) != Some(*j)).collect::<Vec<_>>()),
        };
        println!(
            "--jobs {jobs}: {secs:.1}s, {rate:.1} cases/min ({ratio:.2}× --jobs 2), {passed}/{} passed, {} verdict(s) differ from --jobs 2, {}",
            all.len(),
            moved.len(),
            machine()
        );
        for (id, (passed, observed)) in moved {
            println!("  differs: {id}: passed={passed} observed={observed:?}");
        }
        for v in verdicts.iter().filter(|v| !v.passed()) {
            let first = v.findings.iter().find(|f| f.status == azrw::expect::Status::Fail);
            let why =
                first.map_or_else(|| v.error.clone().unwrap_or_default(), |f| format!("{}: {}", f.check, f.message));
            println!("  not passed: {}: {why}", v.case_id);
        }
        base.get_or_insert((rate, judged));
    }
}
