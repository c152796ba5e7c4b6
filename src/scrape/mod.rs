//! The scrape target the harness serves to the agent: known metric families whose values follow the scrape count,
//! so that what each scrape must have produced is known. It logs when it served each scrape, which is how the
//! payload checks tie a sample's timestamp to the scrape that produced it.

pub(crate) mod exposition;
pub mod family;
pub(crate) mod model;
pub(crate) mod proto;

pub use model::{Expected, ExpectedExemplar, ExpectedSample, ScrapeModel};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

use crate::scenario::Exposition;

/// Name of the counter that counts scrapes of the target.
pub const SCRAPES_METRIC: &str = "azrw_target_scrapes_total";

/// The job name azrw gives the target in the agent's config.
pub const JOB: &str = "azrw-target";

/// Name of the extra series a load scenario asks for (`azrw_load_series{series="0"}` …).
pub const LOAD_METRIC: &str = "azrw_load_series";

/// One scrape the target served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scrape {
    /// Scrape number, from 1.
    pub n: u64,
    /// When the response was built, in milliseconds since the Unix epoch (the clock Prometheus stamps samples with).
    pub served_at_ms: i64,
    /// The format it was served in.
    pub format: Exposition,
    /// The agent's `Accept` header, which chose the format.
    pub accept: String,
    /// The agent's `Authorization` header, redacted (`Bearer [token #2]` for a token the mock cloud issued): a
    /// scrape target must never get the remote-write token (`security.token-scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

impl Scrape {
    /// A scrape served in the classic text format (what fake senders and older tests assume).
    pub fn text(n: u64, served_at_ms: i64) -> Scrape {
        Scrape { n, served_at_ms, format: Exposition::Text, accept: String::new(), authorization: None }
    }
}

/// The scrapes served so far, shared between the server and the checks.
#[derive(Debug, Clone, Default)]
pub struct ScrapeLog(Arc<Mutex<Vec<Scrape>>>);

impl ScrapeLog {
    /// A copy of every scrape so far, in order.
    pub fn snapshot(&self) -> Vec<Scrape> {
        self.0.lock().expect("scrape log poisoned").clone()
    }

    fn push(&self, scrape: Scrape) {
        self.0.lock().expect("scrape log poisoned").push(scrape);
    }
}

/// What the target serves: the harness's own families plus the scenario's, in the format it prefers.
#[derive(Debug, Clone)]
struct Content {
    families: Vec<crate::scenario::Family>,
    /// Extra series of [`LOAD_METRIC`] in every scrape (load scenarios).
    load_series: usize,
    /// The format served when the agent's `Accept` offers it (else text 0.0.4).
    preferred: Exposition,
    /// Redacts an `Authorization` header before it is logged (set by whoever can recognise the tokens).
    redactor: RedactorCell,
}

/// Turns an `Authorization` value into what may be kept of it.
pub type Redactor = Box<dyn Fn(&str) -> String + Send + Sync>;

/// The target's redactor, once set; shared with its connections.
#[derive(Clone, Default)]
struct RedactorCell(Arc<std::sync::OnceLock<Redactor>>);

impl std::fmt::Debug for RedactorCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "RedactorCell(set)" } else { "RedactorCell(unset)" })
    }
}

/// A running scrape target.
#[derive(Debug)]
pub struct ScrapeTarget {
    addr: SocketAddr,
    scrapes: Arc<AtomicU64>,
    log: ScrapeLog,
    tasks: JoinSet<()>,
    redactor: RedactorCell,
}

impl ScrapeTarget {
    /// Serves the target on a pre-bound listener (bound inside the agent's namespace or network).
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let target = azrw::scrape::ScrapeTarget::start(listener)?;
    /// println!("scrape http://{}/metrics", target.addr());
    /// # Ok(()) }
    /// ```
    pub fn start(listener: std::net::TcpListener) -> std::io::Result<ScrapeTarget> {
        ScrapeTarget::serving(listener, &[])
    }

    /// Like [`ScrapeTarget::start`], plus `load_series` series of [`LOAD_METRIC`] in every scrape.
    pub fn start_with_load(listener: std::net::TcpListener, load_series: usize) -> std::io::Result<ScrapeTarget> {
        ScrapeTarget::serving_with_load(listener, &[], load_series)
    }

    /// Serves the harness's own families plus `families` (see [`family`]).
    pub fn serving(
        listener: std::net::TcpListener,
        families: &[crate::scenario::Family],
    ) -> std::io::Result<ScrapeTarget> {
        ScrapeTarget::serving_with_load(listener, families, 0)
    }

    /// Like [`ScrapeTarget::serving`], plus `load_series` series of [`LOAD_METRIC`] in every scrape.
    pub fn serving_with_load(
        listener: std::net::TcpListener,
        families: &[crate::scenario::Family],
        load_series: usize,
    ) -> std::io::Result<ScrapeTarget> {
        ScrapeTarget::serving_as(listener, families, load_series, Exposition::Text)
    }

    /// Like [`ScrapeTarget::serving_with_load`], answering in `preferred` whenever the agent's `Accept` offers it.
    pub fn serving_as(
        listener: std::net::TcpListener,
        families: &[crate::scenario::Family],
        load_series: usize,
        preferred: Exposition,
    ) -> std::io::Result<ScrapeTarget> {
        let redactor = RedactorCell::default();
        let content =
            Arc::new(Content { families: families.to_vec(), load_series, preferred, redactor: redactor.clone() });
        let log = ScrapeLog::default();
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let scrapes = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let counter = scrapes.clone();
        let served = log.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let content = content.clone();
                let served = served.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (counter, content, served) = (counter.clone(), content.clone(), served.clone());
                        async move { Ok::<_, Infallible>(respond(&req, &counter, &content, &served)) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(ScrapeTarget { addr, scrapes, log, tasks, redactor })
    }

    /// How an `Authorization` header the agent sends is logged (e.g. the mock cloud's, which names its own tokens);
    /// set it before the agent starts. Without one the value is logged as `[redacted]`. Only the first call counts.
    pub fn redact_authorization_with(&self, redactor: Redactor) {
        let _ = self.redactor.0.set(redactor);
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times it has been scraped.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::SeqCst)
    }

    /// The log of scrapes served (shared: it keeps growing while the target runs).
    pub fn log(&self) -> ScrapeLog {
        self.log.clone()
    }

    /// Stops serving.
    pub fn shutdown(mut self) {
        self.tasks.abort_all();
    }
}

fn respond(req: &Request<Incoming>, scrapes: &AtomicU64, content: &Content, log: &ScrapeLog) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return Response::builder().status(404).body(Full::new(Bytes::from_static(b"not found\n"))).unwrap();
    }
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let format = if content.preferred.offered_by(&accept) { content.preferred } else { Exposition::Text };
    let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
    let authorization = req.headers().get("authorization").map(|v| {
        let v = String::from_utf8_lossy(v.as_bytes());
        content.redactor.0.get().map_or_else(|| crate::redact::authorization(&v), |r| r(&v))
    });
    log.push(Scrape { n, served_at_ms: unix_ms(), format, accept, authorization });
    let body = exposition::render(format, &content.families, n, content.load_series);
    Response::builder().header("Content-Type", format.content_type()).body(Full::new(Bytes::from(body))).unwrap()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The harness's own series on scrape `n` (also served when the scenario declares no families).
pub fn builtin_series(n: u64) -> Vec<family::RawSeries> {
    let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    vec![
        family::RawSeries { labels: l(&[("__name__", SCRAPES_METRIC)]), value: n as f64 },
        family::RawSeries { labels: l(&[("__name__", "azrw_target_info"), ("harness", "azrw")]), value: 1.0 },
    ]
}

/// Appends `series` gauges of [`LOAD_METRIC`], each valued `n` (the scrape count), to an exposition.
pub fn load_exposition(out: &mut String, n: u64, series: usize) {
    use std::fmt::Write as _;
    out.reserve(series * (LOAD_METRIC.len() + 24));
    let _ = writeln!(out, "# HELP {LOAD_METRIC} Load series of the azrw target.\n# TYPE {LOAD_METRIC} gauge");
    for i in 0..series {
        let _ = writeln!(out, "{LOAD_METRIC}{{series=\"{i}\"}} {n}");
    }
}
