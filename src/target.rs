//! The scrape target the harness serves to the agent: known metric families whose values follow the scrape count,
//! so that what each scrape must have produced is known.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

/// Name of the counter that counts scrapes of the target.
pub const SCRAPES_METRIC: &str = "azrw_target_scrapes_total";

/// The job name azrw gives the target in the agent's config.
pub const JOB: &str = "azrw-target";

/// Name of the extra series a load scenario asks for (`azrw_load_series{series="0"}` …).
pub const LOAD_METRIC: &str = "azrw_load_series";

/// A running scrape target.
#[derive(Debug)]
pub struct ScrapeTarget {
    addr: SocketAddr,
    scrapes: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl ScrapeTarget {
    /// Serves the target on a pre-bound listener (bound inside the agent's namespace or network).
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let target = azrw::target::ScrapeTarget::start(listener)?;
    /// println!("scrape http://{}/metrics", target.addr());
    /// # Ok(()) }
    /// ```
    pub fn start(listener: std::net::TcpListener) -> std::io::Result<ScrapeTarget> {
        ScrapeTarget::start_with_load(listener, 0)
    }

    /// Like [`ScrapeTarget::start`], plus `load_series` series of [`LOAD_METRIC`] in every scrape.
    pub fn start_with_load(listener: std::net::TcpListener, load_series: usize) -> std::io::Result<ScrapeTarget> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let scrapes = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let counter = scrapes.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let counter = counter.clone();
                        async move { Ok::<_, Infallible>(respond(&req, &counter, load_series)) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(ScrapeTarget { addr, scrapes, tasks })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times it has been scraped.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::SeqCst)
    }

    /// Stops serving.
    pub fn shutdown(mut self) {
        self.tasks.abort_all();
    }
}

fn respond(req: &Request<Incoming>, scrapes: &AtomicU64, load_series: usize) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return Response::builder().status(404).body(Full::new(Bytes::from_static(b"not found\n"))).unwrap();
    }
    let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
    let mut body = exposition(n);
    if load_series > 0 {
        load_exposition(&mut body, n, load_series);
    }
    Response::builder()
        .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The exposition served on the `n`-th scrape.
pub fn exposition(n: u64) -> String {
    format!(
        "# HELP {SCRAPES_METRIC} Scrapes served by the azrw target.\n\
         # TYPE {SCRAPES_METRIC} counter\n\
         {SCRAPES_METRIC} {n}\n\
         # HELP azrw_target_info Constant series with a label, to check labels arrive.\n\
         # TYPE azrw_target_info gauge\n\
         azrw_target_info{{harness=\"azrw\"}} 1\n"
    )
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
