//! How the harness itself reaches Azure: directly with the system's trust store, or — in tests and with
//! `azrw mock` — through the mock cloud's proxy trusting its CA. Everything else about real mode is the same
//! code path; this is the one place that differs.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::request::{Body, Request};
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Method, RetryOptions, StatusCode, Transport};

/// Where the harness's own requests go.
#[derive(Clone)]
pub enum Access {
    /// Straight to Azure.
    Direct,
    /// Through a mock cloud's forward proxy, trusting its CA (tests, `azrw mock`). Never reaches a real host: the
    /// proxy answers every Azure host name itself.
    Via {
        /// `http://127.0.0.1:PORT`.
        proxy_url: String,
        /// The mock CA (PEM).
        ca_pem: String,
    },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Direct => f.write_str("Direct"),
            Access::Via { proxy_url, .. } => {
                f.debug_struct("Via").field("proxy_url", proxy_url).finish_non_exhaustive()
            }
        }
    }
}

impl Access {
    /// The harness's HTTP client for this access.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let builder =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).connect_timeout(Duration::from_secs(10));
        let builder = match self {
            Access::Direct => builder,
            Access::Via { proxy_url, ca_pem } => {
                let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| format!("mock CA: {e}"))?;
                let proxy = reqwest::Proxy::all(proxy_url).map_err(|e| format!("proxy {proxy_url}: {e}"))?;
                builder.proxy(proxy).tls_certs_only([ca])
            }
        };
        builder.build().map_err(|e| format!("HTTP client: {e}"))
    }

    /// Whether host names are resolved by the harness (direct) or by the mock proxy.
    pub fn resolves_names(&self) -> bool {
        matches!(self, Access::Direct)
    }
}

/// azure_identity's transport over the harness's own client, so credentials take the same route (and trust) as
/// every other harness request. No retries: doctor reports the first answer, and the run loop polls anyway.
pub fn client_options(client: &reqwest::Client) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(AzureTransport(client.clone())))),
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

#[derive(Debug)]
struct AzureTransport(reqwest::Client);

#[async_trait::async_trait]
impl HttpClient for AzureTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let method = match request.method() {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            Method::Patch => reqwest::Method::PATCH,
            _ => reqwest::Method::GET,
        };
        let mut req = self.0.request(method, request.url().clone());
        for (name, value) in request.headers().iter() {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = match request.body() {
            Body::Bytes(b) => req.body(b.to_vec()),
            _ => {
                return Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Other,
                    "streaming bodies are not used by credentials",
                ));
            }
        };
        let rsp = req
            .send()
            .await
            .map_err(|e| azure_core::Error::with_message(azure_core::error::ErrorKind::Io, format!("{e}")))?;
        let status = StatusCode::from(rsp.status().as_u16());
        let mut headers = Headers::new();
        for (k, v) in rsp.headers() {
            if let Ok(v) = v.to_str() {
                headers.insert(HeaderName::from(k.as_str().to_owned()), HeaderValue::from(v.to_owned()));
            }
        }
        let body = rsp
            .bytes()
            .await
            .map_err(|e| azure_core::Error::with_message(azure_core::error::ErrorKind::Io, format!("{e}")))?;
        Ok(AsyncRawResponse::from_bytes(status, headers, body))
    }
}
