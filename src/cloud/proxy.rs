//! The one listener that is the whole cloud: an HTTP/1.1 forward proxy that terminates TLS itself and routes every
//! request by the host the agent addressed.
//!
//! Hand-written on hyper rather than wiremock: wiremock 0.6 has no TLS and no forward-proxy/CONNECT mode, and its
//! synchronous responders and unbounded request recording do not suit high-rate ingestion. wiremock stays for tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::recorder::{Detail, Exchange, Service};
use super::wire::{self, Outcome, Reply};
use super::{CertificateAuthority, State, body, dcr, entra, imds, query};
use crate::azure::{self, AzureCloud};
use crate::redact;

/// Where a host's requests go.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Imds,
    Entra(AzureCloud),
    Dcr,
    Query,
    Receiver,
    Unrouted,
}

impl Route {
    fn service(self) -> Service {
        match self {
            Route::Imds => Service::Imds,
            Route::Entra(_) => Service::Entra,
            Route::Dcr => Service::Dcr,
            Route::Query => Service::Query,
            Route::Receiver => Service::Receiver,
            Route::Unrouted => Service::Unrouted,
        }
    }
}

/// The route of `host`: an Azure service by its name, else one of the case's other hosts (`receivers`).
fn route(host: &str, receivers: &[String]) -> Route {
    match azure_route(host) {
        Route::Unrouted if receivers.iter().any(|r| r == host) => Route::Receiver,
        route => route,
    }
}

fn azure_route(host: &str) -> Route {
    match azure::Service::of_host(host) {
        Some(azure::Service::Imds) => Route::Imds,
        Some(azure::Service::Entra(c)) => Route::Entra(c),
        Some(azure::Service::Dcr) => Route::Dcr,
        Some(azure::Service::Query) => Route::Query,
        None => Route::Unrouted,
    }
}

/// `host[:port]` → lower-case host without port (IPv6 brackets removed).
fn bare_host(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        a.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(a, |(h, _)| h)
    };
    host.to_ascii_lowercase()
}

/// Everything a connection needs.
struct Ctx {
    state: Arc<State>,
    ca: Arc<CertificateAuthority>,
    cancel: CancellationToken,
}

/// Accepts connections until cancelled; each connection ends when the cloud is cancelled.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    ca: Arc<CertificateAuthority>,
    cancel: CancellationToken,
) {
    let ctx = Arc::new(Ctx { state, ca, cancel: cancel.clone() });
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "mock cloud accept failed");
                    continue;
                }
            },
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let cancel = ctx.cancel.clone();
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = connection(stream, ctx) => {}
            }
        });
    }
}

async fn connection(stream: TcpStream, ctx: Arc<Ctx>) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    // A TLS ClientHello straight to the listener (no CONNECT): terminate it and route by SNI.
    if matches!(stream.peek(&mut first).await, Ok(1)) && first[0] == 0x16 {
        let acceptor = TlsAcceptor::from(ctx.ca.server_config(None));
        match acceptor.accept(stream).await {
            Ok(tls) => {
                let sni = tls.get_ref().1.server_name().map(bare_host);
                serve_http(tls, ctx, sni, None).await;
            }
            Err(e) => tracing::debug!(error = %e, "direct TLS handshake failed"),
        }
    } else {
        serve_http(stream, ctx, None, None).await;
    }
}

/// Serves HTTP/1.1 on `io`; `tls_host` is set inside a TLS session (the CONNECT target or SNI name), `bad` when
/// that session presented a certificate the client should have refused (the rule's mark).
fn serve_http<I>(
    io: I,
    ctx: Arc<Ctx>,
    tls_host: Option<String>,
    bad: Option<super::FaultMark>,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        let tls = tls_host.is_some();
        let svc_ctx = ctx.clone();
        let svc = service_fn(move |req| {
            let ctx = svc_ctx.clone();
            let tls_host = tls_host.clone();
            let bad = bad.clone();
            async move { handle(ctx, req, tls_host, bad).await }
        });
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), svc).with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, tls, "mock cloud connection ended with an error");
        }
    })
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    builder.body(Full::new(Bytes::from(reply.body))).expect("valid response parts")
}

async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    tls_host: Option<String>,
    bad: Option<super::FaultMark>,
) -> Result<Response<Full<Bytes>>, Reset> {
    if req.method() == Method::CONNECT {
        return Ok(connect(ctx, req));
    }
    let tls = tls_host.is_some();
    let host_header = req.headers().get(hyper::header::HOST).and_then(|v| v.to_str().ok()).map(bare_host);
    let host =
        tls_host.or_else(|| req.uri().authority().map(|a| bare_host(a.as_str()))).or(host_header).unwrap_or_default();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let route = route(&host, &ctx.state.config.receivers);
    let content_length = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let state = ctx.state.clone();
    let mut request = wire::Request { method, host, path, query, headers, body: Bytes::new() };
    match body::read(req.into_body(), content_length, body::limit(route.service())).await {
        Ok(b) => request.body = b,
        Err(body::BodyError::TooLarge(detail, close)) => {
            // Refused before any service or fault rule sees it: the mock cannot judge what it did not read.
            let reply = body::too_large_reply(&state.config.mocks, &detail, close);
            record(&state, route.service(), &request, tls, reply.status, *detail, None);
            return Ok(respond(reply));
        }
        Err(body::BodyError::Broken(e)) => {
            tracing::debug!(error = %e, "request body could not be read");
            return Ok(respond(Reply::text(400, "request body could not be read")));
        }
    }
    if let Some(mark) = bad {
        // The client went on over a connection it should have refused: what it sent is the evidence. Judged
        // (the token request's credential, the write's token) but never served: nothing is issued or ingested.
        let Outcome { detail, .. } = serve(&state, route, &request, false).await;
        record(&state, route.service(), &request, tls, 495, detail, Some(mark));
        return Ok(respond(Reply::text(495, "azrw: this connection presented a certificate the client must refuse\n")));
    }
    let Some(hit) = state.faults.consult(route.service(), &request, state.recorder.now()) else {
        if route == Route::Dcr {
            // Decoding, signature checks and recording (folding into the accounting) are CPU work: off the I/O
            // threads, and on the thread that decoded, so the body is freed where it was allocated.
            return Ok(
                match tokio::task::spawn_blocking(move || {
                    dcr::serve_and_record(&state, &request, |status, detail, accepted| {
                        record_write(&state, &request, tls, status, detail, accepted)
                    })
                })
                .await
                {
                    Ok(reply) => respond(reply),
                    Err(e) => respond(Reply::text(500, format!("mock DCR failed: {e}"))),
                },
            );
        }
        // The detail moves into the recorder: a decoded body can be large, never copy it.
        let Outcome { reply, detail } = serve(&state, route, &request, true).await;
        record(&state, route.service(), &request, tls, reply.status, detail, None);
        return Ok(respond(reply));
    };
    if hit.reset || hit.times_out(state.faults.client_timeout()) {
        // The agent gets nothing it can use: record now (its retry clock starts from here), answer late or never.
        let Outcome { detail, .. } = serve(&state, route, &request, false).await;
        record(&state, route.service(), &request, tls, 0, detail, Some(super::FaultMark::new(hit.rule.clone(), true)));
        if hit.reset {
            return Err(Reset(hit.rule));
        }
        tokio::time::sleep(hit.delay.unwrap_or_default()).await;
        return Ok(respond(Reply::text(504, "azrw fault: answered after the client's timeout")));
    }
    if let Some(delay) = hit.delay {
        // Latency is the mock's behaviour under test, not a wait of the harness.
        tokio::time::sleep(delay).await;
    }
    let mut outcome = serve(&state, route, &request, !hit.answers()).await;
    let mut mark = super::FaultMark::new(hit.rule.clone(), false);
    if let Some((reply, location)) = hit.redirect_reply(&request) {
        outcome.reply = reply;
        mark.location = Some(location);
    } else if hit.answers() {
        let vars = wire::error_vars();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (outcome.reply, mark.retry_after) = hit.reply(&state.config.mocks, &vars);
        if let Detail::Token { issued, error, .. } = &mut outcome.detail {
            *issued = None;
            *error = Some(hit.error.clone().unwrap_or_else(|| format!("fault {}", hit.rule)));
        }
    }
    let Outcome { reply, detail } = outcome;
    record(&state, route.service(), &request, tls, reply.status, detail, Some(mark));
    Ok(respond(reply))
}

/// A connection the fault plan resets instead of answering.
#[derive(Debug)]
struct Reset(String);

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection reset by fault rule {}", self.0)
    }
}

impl std::error::Error for Reset {}

/// The routed service's answer. `mint: false` asks token services to judge without issuing (a fault answers).
async fn serve(state: &Arc<State>, route: Route, request: &wire::Request, mint: bool) -> Outcome {
    match route {
        Route::Imds => imds::serve(state, request, mint),
        Route::Entra(cloud) => entra::serve(state, cloud, request, mint),
        // Decoding and signature checks are CPU work: keep them off the I/O threads.
        Route::Dcr => {
            let (state, request) = (state.clone(), request.clone());
            match tokio::task::spawn_blocking(move || dcr::serve(&state, &request)).await {
                Ok(o) => o,
                Err(e) => Outcome { reply: Reply::text(500, format!("mock DCR failed: {e}")), detail: Detail::Other },
            }
        }
        Route::Query => query::serve(state, request),
        Route::Receiver => receiver(request),
        Route::Unrouted => unrouted(&request.host),
    }
}

/// Another host of the case (a plain remote-write receiver, a redirect's target): it accepts whatever it is sent,
/// as a receiver without authentication does; what it was sent is the evidence.
fn receiver(request: &wire::Request) -> Outcome {
    let status = if request.method == "POST" { 204 } else { 200 };
    Outcome { reply: Reply { status, headers: Vec::new(), body: Vec::new() }, detail: Detail::Other }
}

fn unrouted(host: &str) -> Outcome {
    Outcome {
        reply: Reply::text(
            502,
            format!(
                "azrw mock cloud: no service for host {host:?}; the agent tried to reach something outside the mock Azure cloud\n"
            ),
        ),
        detail: Detail::Other,
    }
}

/// `CONNECT host:port`: refuse unknown hosts at once, else tunnel and terminate TLS with a leaf for that host (or
/// fail the handshake, if a `tls_failure` rule says so).
fn connect(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let authority = req.uri().authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
    let host = bare_host(&authority);
    let request = wire::Request {
        method: "CONNECT".into(),
        host: host.clone(),
        path: authority,
        query: None,
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: Bytes::new(),
    };
    let service = route(&host, &ctx.state.config.receivers).service();
    if service == Service::Unrouted {
        let Outcome { reply, detail } = unrouted(&host);
        record(&ctx.state, Service::Unrouted, &request, false, reply.status, detail, None);
        return respond(reply);
    }
    tokio::spawn(async move {
        let cancel = ctx.cancel.clone();
        let tunnel = async move {
            let upgraded = match hyper::upgrade::on(req).await {
                Ok(u) => u,
                Err(e) => return tracing::debug!(error = %e, "CONNECT upgrade failed"),
            };
            let fault = ctx.state.faults.consult_handshake(service, ctx.state.recorder.now());
            let (rule, bad) = match fault {
                Some((rule, None)) => {
                    let mark = super::FaultMark::new(rule, true);
                    record(&ctx.state, service, &request, true, 0, Detail::Other, Some(mark));
                    return fail_handshake(TokioIo::new(upgraded)).await;
                }
                Some((rule, Some(kind))) => (rule, Some(kind)),
                None => (String::new(), None),
            };
            let config = match bad {
                Some(kind) => match ctx.ca.bad_server_config(&host, kind) {
                    Ok(config) => config,
                    Err(e) => return tracing::warn!(error = %e, %host, "could not mint a bad certificate"),
                },
                None => ctx.ca.server_config(Some(host.clone())),
            };
            let accepted = TlsAcceptor::from(config).accept(TokioIo::new(upgraded)).await;
            let bad = bad.map(|kind| {
                let handshake = match &accepted {
                    Ok(_) => "completed: the client accepted the certificate".to_owned(),
                    Err(e) => format!("refused by the client: {e}"),
                };
                let mut mark = super::FaultMark::new(rule, accepted.is_err());
                mark.certificate = Some(super::CertificateMark { kind, accepted: accepted.is_ok(), handshake });
                record(&ctx.state, service, &request, true, 0, Detail::Other, Some(mark.clone()));
                mark
            });
            match accepted {
                Ok(tls) => serve_http(tls, ctx, Some(host), bad).await,
                Err(e) => {
                    tracing::debug!(error = %e, %host, "TLS handshake in CONNECT tunnel failed")
                }
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tunnel => {}
        }
    });
    Response::builder().status(StatusCode::OK).body(Full::new(Bytes::new())).expect("valid response parts")
}

/// Answers a ClientHello with a fatal `handshake_failure` alert and closes: what the client's TLS stack reports
/// as "remote error: tls: handshake failure". The hello is read first so the alert is not lost to a reset.
async fn fail_handshake(mut io: impl AsyncRead + AsyncWrite + Unpin) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hello = [0u8; 2048];
    let _ = io.read(&mut hello).await;
    // One TLS record: content type alert (21), version TLS 1.2 (3, 3), length 2; level fatal (2), handshake_failure (40).
    let _ = io.write_all(&[21, 3, 3, 0, 2, 2, 40]).await;
    let _ = io.shutdown().await;
}

/// The request target as it may be kept: secret query parameters (a client may put them in a URL) replaced.
fn redacted_target(request: &wire::Request) -> String {
    match request.query.as_deref() {
        None => request.path.clone(),
        Some(query) => match redact::form(query.as_bytes()) {
            Some(q) => format!("{}?{q}", request.path),
            None => format!("{}?{query}", request.path),
        },
    }
}

/// The request body as it may be kept: form bodies with their secret fields replaced, anything else as sent.
fn redacted_body(request: &wire::Request) -> Bytes {
    let is_form = request
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form && !redact::looks_like_secret_form(&request.body) {
        return request.body.clone();
    }
    redact::form(&request.body).map_or_else(|| request.body.clone(), Bytes::from)
}

fn redacted_headers(state: &State, headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("authorization") {
                dcr::redact_authorization(state, v)
            } else if k.eq_ignore_ascii_case("proxy-authorization") || k.eq_ignore_ascii_case("cookie") {
                redact::PLACEHOLDER.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Records a DCR exchange: an accepted write still borrowed from its body is folded by the recorder (no body kept),
/// anything else recorded as [`record`] does.
fn record_write(
    state: &State,
    request: &wire::Request,
    tls: bool,
    status: u16,
    detail: Detail,
    accepted: Option<&crate::remote_write::WriteView<'_>>,
) {
    match accepted {
        None => record(state, Service::Dcr, request, tls, status, detail, None),
        Some(view) => {
            let seq =
                state.recorder.record_folded(exchange(state, Service::Dcr, request, tls, status, detail, None), view);
            tracing::debug!(seq, host = %request.host, status, "mock cloud write folded");
        }
    }
}

fn exchange(
    state: &State,
    service: Service,
    request: &wire::Request,
    tls: bool,
    status: u16,
    detail: Detail,
    fault: Option<super::FaultMark>,
) -> Exchange {
    Exchange {
        seq: 0,
        at: Default::default(),
        service,
        host: request.host.clone(),
        tls,
        method: request.method.clone(),
        target: redacted_target(request),
        headers: redacted_headers(state, &request.headers),
        status,
        detail,
        fault,
        not_kept: None,
    }
}

fn record(
    state: &State,
    service: Service,
    request: &wire::Request,
    tls: bool,
    status: u16,
    detail: Detail,
    fault: Option<super::FaultMark>,
) {
    let exchange = exchange(state, service, request, tls, status, detail, fault);
    let seq = state.recorder.record_with_body(exchange, redacted_body(request));
    tracing::debug!(seq, ?service, host = %request.host, status, "mock cloud exchange");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_host() {
        let route = |host: &str| route(host, &["sink.azrw.test".to_owned()]);
        assert_eq!(route("169.254.169.254"), Route::Imds);
        assert_eq!(route("login.chinacloudapi.cn"), Route::Entra(AzureCloud::AzureChina));
        assert_eq!(route("x.eastus-1.metrics.ingest.monitor.azure.us"), Route::Dcr);
        assert_eq!(route("amw.eastus.prometheus.monitor.azure.com"), Route::Query);
        assert_eq!(route("sink.azrw.test"), Route::Receiver);
        assert_eq!(route("example.com"), Route::Unrouted);
        assert_eq!(route("metrics.ingest.monitor.azure.com"), Route::Unrouted);
    }

    #[test]
    fn bare_hosts() {
        assert_eq!(bare_host("Login.MicrosoftOnline.com:443"), "login.microsoftonline.com");
        assert_eq!(bare_host("[::1]:80"), "::1");
        assert_eq!(bare_host("169.254.169.254"), "169.254.169.254");
    }
}
