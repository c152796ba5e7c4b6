//! Requests and replies as the services see them: plain data, so each service's decisions are unit-testable
//! without sockets.

use bytes::Bytes;

use super::recorder::Detail;

/// One HTTP request, already routed to a service. Holds secrets (form fields, bearer tokens): never recorded as is.
#[derive(Clone)]
pub(crate) struct Request {
    pub method: String,
    /// Host the client addressed (lower case, no port).
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// First value of a query parameter (decoded).
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// A test request.
    #[cfg(test)]
    pub(crate) fn new(method: &str, host: &str, target: &str) -> Request {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        Request { method: method.into(), host: host.into(), path, query, headers: Vec::new(), body: Bytes::new() }
    }

    #[cfg(test)]
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    #[cfg(test)]
    pub(crate) fn with_body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = body.into();
        self
    }
}

/// What a service answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply { status, headers: vec![("content-type".into(), "application/json; charset=utf-8".into())], body }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into().into_bytes(),
        }
    }

    #[cfg(test)]
    pub(crate) fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("<binary>")
    }
}

/// A reply and what the recorder should remember about the exchange.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub reply: Reply,
    pub detail: Detail,
}

/// Values every error template may use: a fresh trace/correlation id and the time.
pub(crate) fn error_vars() -> [(&'static str, String); 3] {
    let now = time::OffsetDateTime::now_utc();
    let ts = now
        .format(&time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
        .unwrap_or_default();
    [
        ("trace_id", uuid::Uuid::new_v4().to_string()),
        ("correlation_id", uuid::Uuid::new_v4().to_string()),
        ("timestamp", ts),
    ]
}
