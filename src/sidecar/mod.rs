//! The reference remote-write sidecar (`azrw sidecar`): what Azure's closed-source sidecar image does, in the open.
//! Prometheus writes to it on `http://localhost:<LISTENING_PORT>/api/v1/write` without credentials; it fetches a
//! token with azure_identity for the identity its environment names ([`contract`]) and forwards each request to the
//! DCR unchanged but for the `Authorization` header, then answers Prometheus with the DCR's own answer.
//!
//! Two decisions where Azure documents nothing: a write that cannot get a token is answered `503` (Prometheus
//! retries it, so an auth outage delays data instead of dropping it), and a DCR that cannot be reached is `502`.
//! `GET /health` and `GET /ready` answer `200` once the contract is read; a contract error exits with status 2 (as
//! Azure's container restarts on misconfiguration).

pub mod contract;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

pub use contract::{SidecarConfig, SidecarIdentity};

/// The largest request body forwarded: what the DCR accepts (more would be refused there anyway), held at most once.
const MAX_BODY: usize = crate::remote_write::limits::MAX_REQUEST_BYTES;
/// Request headers that describe the hop, not the payload: never forwarded.
const HOP_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-authorization",
];

/// A running sidecar's shared parts.
struct Forwarder {
    config: SidecarConfig,
    credential: Arc<dyn TokenCredential>,
    client: reqwest::Client,
    forwarded: AtomicU64,
    failed: AtomicU64,
}

/// Reads the contract from the process environment and serves until SIGTERM/SIGINT. Returns the exit status.
pub async fn run_from_env() -> i32 {
    let config = match SidecarConfig::from_vars(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            log("error", "invalid configuration", &[("err", &e.to_string())]);
            return 2;
        }
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        crate::runtime::until_terminated().await;
        on_signal.cancel();
    });
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await {
        Ok(l) => l,
        Err(e) => {
            log("error", "cannot listen", &[("port", &config.port.to_string()), ("err", &e.to_string())]);
            return 1;
        }
    };
    let client = match http_client_from_env() {
        Ok(c) => c,
        Err(e) => {
            log("error", "invalid configuration", &[("err", &e)]);
            return 2;
        }
    };
    match serve(config, listener, client, shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            log("error", "sidecar failed", &[("err", &e)]);
            1
        }
    }
}

/// Serves on `listener` until `shutdown` is cancelled; `client` carries both token requests and writes (what
/// [`http_client_from_env`] builds in production).
pub async fn serve(
    config: SidecarConfig,
    listener: tokio::net::TcpListener,
    client: reqwest::Client,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let credential = credential(&config, &client)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    log(
        "info",
        "Server is ready to forward remote-write",
        &[
            ("listen", &addr.to_string()),
            ("ingestion_url", config.ingestion_url.as_str()),
            ("identity", &config.identity.describe()),
            ("scope", &config.scope),
            ("cluster", config.cluster.as_deref().unwrap_or("")),
        ],
    );
    let forwarder =
        Arc::new(Forwarder { config, credential, client, forwarded: AtomicU64::new(0), failed: AtomicU64::new(0) });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { log("warn", "accept failed", &[("err", &e.to_string())]); continue; }
            },
            _ = shutdown.cancelled() => break,
        };
        let forwarder = forwarder.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let forwarder = forwarder.clone();
                async move { Ok::<_, Infallible>(forwarder.handle(req, peer).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
    // In-flight writes get a moment to finish, so a stopped sidecar does not turn delivered data into errors.
    let _ =
        tokio::time::timeout(Duration::from_secs(2), async { while connections.join_next().await.is_some() {} }).await;
    log(
        "info",
        "Shutting down",
        &[
            ("forwarded", &forwarder.forwarded.load(Ordering::Relaxed).to_string()),
            ("failed", &forwarder.failed.load(Ordering::Relaxed).to_string()),
        ],
    );
    Ok(())
}

impl Forwarder {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        match (req.method().as_str(), req.uri().path()) {
            ("GET", "/health" | "/ready") => reply(StatusCode::OK, "ok\n"),
            ("POST", "/api/v1/write") => self.forward(req, peer).await,
            _ => reply(StatusCode::NOT_FOUND, "the sidecar serves POST /api/v1/write, GET /health and GET /ready\n"),
        }
    }

    async fn forward(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("azrw sidecar: the write is over {MAX_BODY} bytes, which the DCR refuses\n"),
                );
            }
            Err(e) => return reply(StatusCode::BAD_REQUEST, &format!("reading the request body: {e}\n")),
        };
        let token = match self.credential.get_token(&[self.config.scope.as_str()], None).await {
            Ok(t) => t,
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let why = flatten(&e.to_string());
                log(
                    "error",
                    "no token for the write",
                    &[("identity", &self.config.identity.describe()), ("err", &why)],
                );
                return reply(StatusCode::SERVICE_UNAVAILABLE, &format!("azrw sidecar: no token: {why}\n"));
            }
        };
        let mut upstream = self.client.post(self.config.ingestion_url.clone()).body(body);
        for (name, value) in &parts.headers {
            if !HOP_HEADERS.contains(&name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        let upstream = upstream.bearer_auth(token.token.secret());
        let answer = match upstream.send().await {
            Ok(a) => a,
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let why = flatten(&format!("{e:#}"));
                log("error", "forwarding failed", &[("peer", &peer.to_string()), ("err", &why)]);
                return reply(StatusCode::BAD_GATEWAY, &format!("azrw sidecar: the DCR could not be reached: {why}\n"));
            }
        };
        let status = answer.status();
        let mut response = Response::builder().status(status.as_u16());
        for (name, value) in answer.headers() {
            if !HOP_HEADERS.contains(&name.as_str()) {
                response = response.header(name, value);
            }
        }
        let body = answer.bytes().await.unwrap_or_default();
        if status.is_success() {
            self.forwarded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let text = String::from_utf8_lossy(&body);
            log("warn", "the DCR refused a write", &[("status", status.as_str()), ("body", text.trim())]);
        }
        response.body(Full::new(body)).unwrap_or_else(|_| reply(StatusCode::BAD_GATEWAY, "bad upstream answer\n"))
    }
}

fn reply(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = status;
    r
}

/// The sidecar's HTTP client: proxy variables from the environment (as azidentity honours them) and, when
/// `SSL_CERT_FILE` is set, exactly the CAs in that file.
pub fn http_client_from_env() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut builder =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).connect_timeout(Duration::from_secs(10));
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let pem = std::fs::read(&path).map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.to_string_lossy()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.to_string_lossy()))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

fn credential(config: &SidecarConfig, client: &reqwest::Client) -> Result<Arc<dyn TokenCredential>, String> {
    use crate::credential as build;
    let cloud = config.cloud;
    match &config.identity {
        SidecarIdentity::ManagedIdentity { client_id } => build::managed_identity(client_id.clone(), cloud, client),
        SidecarIdentity::ClientSecret { tenant_id, client_id, secret } => {
            build::client_secret(tenant_id, client_id, secret, cloud, client)
        }
        SidecarIdentity::Certificate { tenant_id, client_id, path } => {
            let certificate = build::load_certificate(&path.display().to_string())?;
            build::certificate(tenant_id, client_id, certificate, cloud, client)
        }
        SidecarIdentity::WorkloadIdentity { tenant_id, client_id, token_file } => {
            build::workload_identity(tenant_id, client_id, token_file, cloud, client)
        }
    }
    .map_err(|e| format!("{}: {}", config.identity.describe(), flatten(&e)))
}

fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One logfmt line on stderr (the format Azure's sidecar and Prometheus use, so the harness reads all three alike).
fn log(level: &str, msg: &str, fields: &[(&str, &str)]) {
    let now =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut line = format!("time={now} level={level} msg={msg:?}");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v:?}"));
    }
    eprintln!("{line}");
}
