//! The recorder: every exchange the mock cloud saw, in arrival order, with secrets already redacted.
//!
//! Expectations read snapshots of it and wait on [`Recorder::changed`] — never on a timer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::accounting::Accounting;
use crate::remote_write::{DecodedWrite, WriteView};

pub use crate::scenario::RecordMode;

/// Which mock service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// Instance Metadata Service (169.254.169.254).
    Imds,
    /// Entra ID (login.microsoftonline.* and the sovereign hosts).
    Entra,
    /// DCR ingestion endpoint (*.metrics.ingest.monitor.*).
    Dcr,
    /// Azure Monitor workspace query endpoint (*.prometheus.monitor.*).
    Query,
    /// Another host the case declares (a plain remote-write receiver, a redirect's target): answered as a receiver
    /// without authentication would, and recorded — what reached it is the evidence.
    Receiver,
    /// Anything else: answered 502 by the proxy, recorded as a finding.
    Unrouted,
}

/// Identifies a token the mock issued; reports say `token #3`, never the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TokenId(pub u32);

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token #{}", self.0)
    }
}

/// Who a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Principal {
    /// The VM's / cluster's system-assigned managed identity.
    SystemAssigned {
        /// Object id of the identity.
        object_id: String,
    },
    /// A user-assigned managed identity.
    UserAssigned {
        /// Client id.
        client_id: String,
    },
    /// An Entra application (client secret, certificate or federated credential).
    App {
        /// Application (client) id.
        client_id: String,
    },
}

impl Principal {
    /// The name used in role assignments and verdicts.
    pub fn describe(&self) -> String {
        match self {
            Principal::SystemAssigned { object_id } => {
                format!("system-assigned identity {object_id}")
            }
            Principal::UserAssigned { client_id } => format!("user-assigned identity {client_id}"),
            Principal::App { client_id } => format!("app {client_id}"),
        }
    }
}

/// A token the mock issued.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// Its id.
    pub id: TokenId,
    /// The service that issued it.
    pub issuer: Service,
    /// Tenant id in the token.
    pub tenant: String,
    /// Who it is for.
    pub principal: Principal,
    /// `aud` claim.
    pub audience: String,
    /// When it was issued (mock clock).
    pub issued_at: Duration,
    /// When it expires (mock clock).
    pub expires_at: Duration,
}

/// How the agent asked for a token, as seen on the wire.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "flow", rename_all = "kebab-case")]
pub enum TokenRequest {
    /// IMDS token request.
    Imds {
        /// `api-version` query parameter.
        api_version: Option<String>,
        /// `resource` query parameter.
        resource: Option<String>,
        /// `client_id` query parameter (user-assigned only).
        client_id: Option<String>,
        /// Value of the `Metadata` header.
        metadata_header: Option<String>,
    },
    /// The header-less IMDS availability probe of DefaultAzureCredential.
    ImdsProbe,
    /// OpenID discovery document for a tenant.
    Discovery {
        /// Tenant in the path.
        tenant: String,
    },
    /// MSAL instance discovery (`/common/discovery/instance`).
    InstanceDiscovery,
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Entra {
        /// Tenant in the path.
        tenant: String,
        /// `grant_type` form field.
        grant_type: Option<String>,
        /// `client_id` form field.
        client_id: Option<String>,
        /// `scope` form field, verbatim.
        scope: Option<String>,
        /// Which credential the form carried.
        credential: EntraCredential,
    },
}

/// The credential in an Entra token request (never the secret itself).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EntraCredential {
    /// `client_secret` present; whether it matched what the mock knows.
    ClientSecret {
        /// Did it match.
        matches: bool,
    },
    /// A certificate-signed `client_assertion`.
    Certificate {
        /// JWT `alg`.
        alg: String,
        /// Which thumbprint header carried the key id (`x5t` or `x5t#S256`).
        thumbprint_header: Option<String>,
        /// Whether the signature verified against the registered certificate.
        signature_valid: bool,
        /// Problems found in the assertion's claims (`aud`, `iss`, `sub`, `exp`).
        claim_errors: Vec<String>,
    },
    /// A federated (workload identity) `client_assertion`.
    Federated {
        /// `iss` claim.
        issuer: Option<String>,
        /// `sub` claim.
        subject: Option<String>,
        /// `aud` claim.
        audience: Option<String>,
        /// Whether the signature verified against the mock cluster issuer's key.
        signature_valid: bool,
        /// Problems found (expired, wrong audience, unknown subject …).
        claim_errors: Vec<String>,
    },
    /// No usable credential in the form.
    Missing,
}

/// How the DCR judged a write's bearer token.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum WriteAuth {
    /// No `Authorization` header.
    Missing,
    /// Not a token this mock issued, or its signature does not verify.
    Invalid {
        /// Why.
        reason: String,
    },
    /// A mock-issued token; `problem` says why it was refused, if it was.
    Token {
        /// Which token.
        id: TokenId,
        /// Why it was refused (expired, wrong audience, no role), or `None` if accepted.
        problem: Option<String>,
    },
}

/// What an exchange carried, per service.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Detail {
    /// A token-service exchange.
    Token {
        /// The request as parsed.
        request: TokenRequest,
        /// The token issued, if any.
        issued: Option<TokenId>,
        /// Error code answered (AADSTS code, IMDS error), if any.
        error: Option<String>,
    },
    /// A remote-write request.
    Write {
        /// Bearer token judgement.
        auth: WriteAuth,
        /// The decoded body, or why it could not be decoded.
        body: Result<DecodedWrite, String>,
    },
    /// A request refused with 413 because it was larger than the service's cap; its body was not kept.
    Oversize {
        /// What was too large: `body` (as sent) or `uncompressed body` (what its snappy header declared).
        what: String,
        /// The cap, in bytes.
        limit: u64,
        /// The request's `Content-Length`, if it sent one.
        content_length: Option<u64>,
        /// Bytes the mock read and held before it stopped (a declared length over the cap: none).
        read: u64,
        /// Bytes received in all, the rest read and discarded so the sender sees the answer.
        received: u64,
        /// The uncompressed length the snappy header declared, when that was over the cap.
        declared: Option<u64>,
    },
    /// Anything else.
    Other,
}

/// One request and the mock's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Arrival order, from 1.
    pub seq: usize,
    /// Arrival time on the mock clock (since the cloud started).
    pub at: Duration,
    /// Which service answered.
    pub service: Service,
    /// Host the agent addressed.
    pub host: String,
    /// Whether it came through a TLS tunnel (CONNECT).
    pub tls: bool,
    /// HTTP method.
    pub method: String,
    /// Path and query, secrets redacted.
    pub target: String,
    /// Request headers in order, secrets redacted (`Authorization: Bearer [token #2]`).
    pub headers: Vec<(String, String)>,
    /// Response status.
    pub status: u16,
    /// Service-specific detail.
    pub detail: Detail,
    /// The fault rule that answered instead of (or delayed) the service, if any. Status 0 means no answer
    /// reached the agent (reset, or an answer after its timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<super::FaultMark>,
    /// Why the recorder did not keep this request's body and decoded series (its full-mode budget was spent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_kept: Option<String>,
}

impl Exchange {
    /// First request header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `#3 POST https://host/path` — how evidence names a request.
    pub fn describe(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("request #{} {} {scheme}://{}{}", self.seq, self.method, self.host, self.target)
    }
}

/// Everything one mock cloud saw. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    state: Mutex<State>,
    /// Apart from `state`: folding a write takes longer than recording an exchange, and must not hold up others.
    accounting: Mutex<Accounting>,
    version: watch::Sender<usize>,
}

/// What a recorder keeps of bodies (raw request bodies and decoded series) per case, by default: beyond it, later
/// exchanges are recorded without them and say so (`not_kept`). Bounds the mock's memory whatever a sender sends;
/// a case that needs volume uses `record: accounting`, which keeps no accepted body at all.
pub const DEFAULT_BODY_BUDGET: usize = 64 << 20;

#[derive(Debug)]
struct State {
    mode: RecordMode,
    /// Bytes of bodies kept so far, and the most that may be.
    kept: usize,
    budget: usize,
    /// The first exchange whose body was not kept, once the budget is spent.
    spent_at: Option<usize>,
    exchanges: Vec<Exchange>,
    /// Request bodies, index-aligned with `exchanges`, secrets already redacted by whoever recorded them.
    bodies: Vec<bytes::Bytes>,
    tokens: Vec<IssuedToken>,
    /// Issued tokens' values; never serialised.
    token_values: TokenValues,
}

impl Default for State {
    fn default() -> Self {
        State {
            mode: RecordMode::default(),
            kept: 0,
            budget: DEFAULT_BODY_BUDGET,
            spent_at: None,
            exchanges: Vec::new(),
            bodies: Vec::new(),
            tokens: Vec::new(),
            token_values: TokenValues::default(),
        }
    }
}

impl State {
    /// Charges `cost` bytes against the body budget: `true` if they may be kept, else the exchange about to be
    /// numbered is marked, and the first such one is logged.
    fn keep(&mut self, cost: usize, exchange: &mut Exchange) -> bool {
        if cost == 0 {
            return true;
        }
        if self.spent_at.is_none() && self.kept.saturating_add(cost) <= self.budget {
            self.kept += cost;
            return true;
        }
        let seq = self.exchanges.len() + 1;
        let first = *self.spent_at.get_or_insert(seq);
        if first == seq {
            tracing::warn!(
                seq,
                budget = self.budget,
                "recorder: body budget spent; later bodies and decoded series are not kept (record: accounting keeps none)"
            );
        }
        exchange.not_kept = Some(format!(
            "the recorder's body budget ({} bytes per case) was spent at request #{first}; this request's {cost} bytes \
             of body and decoded series were not kept",
            self.budget
        ));
        false
    }
}

/// Issued tokens' values, whose `Debug` shows only how many there are.
#[derive(Default, Clone)]
struct TokenValues(Vec<(TokenId, String)>);

impl std::fmt::Debug for TokenValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} token value(s)]", self.0.len())
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A new, empty recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            state: Mutex::default(),
            accounting: Mutex::default(),
            version: watch::channel(0).0,
        }
    }

    /// Time on the mock clock.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records an exchange; `seq` and `at` are filled in here. Returns its `seq`.
    pub fn record(&self, exchange: Exchange) -> usize {
        self.record_with_body(exchange, bytes::Bytes::new())
    }

    /// Records an exchange and its request body (for capture bundles and replay). The caller redacts secrets in
    /// the body first (form fields such as `client_secret`); bearer tokens live in headers, which are redacted.
    /// In [`RecordMode::Accounting`] the raw body of an accepted or throttled write is not kept either.
    pub fn record_with_body(&self, mut exchange: Exchange, mut raw: bytes::Bytes) -> usize {
        let (seq, at, accepted) = self.push(|state| {
            let mut accepted = None;
            if state.mode == RecordMode::Accounting
                && let Detail::Write { body: Ok(body), .. } = &mut exchange.detail
            {
                // Refusals other than throttling keep their bodies: they are rare, and the checks on refused
                // batches (dropped, not resent) need their samples.
                if (200..300).contains(&exchange.status) {
                    accepted = Some(std::mem::take(&mut body.series));
                    raw = bytes::Bytes::new();
                } else if exchange.status == 429 {
                    body.series = Vec::new();
                    raw = bytes::Bytes::new();
                }
            }
            let decoded = match &exchange.detail {
                Detail::Write { body: Ok(body), .. } => body.heap_bytes(),
                _ => 0,
            };
            if !state.keep(raw.len() + decoded, &mut exchange) {
                raw = bytes::Bytes::new();
                if let Detail::Write { body: Ok(body), .. } = &mut exchange.detail {
                    body.series = Vec::new();
                }
            }
            (exchange, raw, accepted)
        });
        if let Some(accepted) = accepted {
            let series = accepted.iter().map(|s| (s.labels.as_slice(), s.samples.as_slice()));
            self.accounting.lock().expect("recorder poisoned").fold(seq, at.as_millis() as u64, series);
        }
        self.version.send_modify(|v| *v += 1);
        seq
    }

    /// Records an accepted write whose series are still in `view` (borrowed from its body): in
    /// [`RecordMode::Accounting`] they are folded straight from the view, exactly as [`Recorder::record_with_body`]
    /// folds an owned write, and neither body nor series is kept. In any other mode, or for a status that is not
    /// 2xx, the exchange keeps the series as owned, as it would have.
    pub fn record_folded(&self, mut exchange: Exchange, view: &WriteView<'_>) -> usize {
        let (seq, at, fold) = self.push(|state| {
            let fold = state.mode == RecordMode::Accounting && (200..300).contains(&exchange.status);
            if !fold
                && state.keep(view.owned_heap_bytes(), &mut exchange)
                && let Detail::Write { body: Ok(body), .. } = &mut exchange.detail
            {
                body.series = view.to_owned().series;
            }
            (exchange, bytes::Bytes::new(), fold.then_some(()))
        });
        if fold.is_some() {
            let series = view.series().map(|s| (s.labels, s.samples));
            self.accounting.lock().expect("recorder poisoned").fold(seq, at.as_millis() as u64, series);
        }
        self.version.send_modify(|v| *v += 1);
        seq
    }

    /// Numbers and stamps an exchange under the lock; `prepare` sees the state (its mode) and hands back what is
    /// stored, plus what the caller folds after the lock is released.
    fn push<T>(
        &self,
        prepare: impl FnOnce(&mut State) -> (Exchange, bytes::Bytes, Option<T>),
    ) -> (usize, Duration, Option<T>) {
        let mut state = self.state.lock().expect("recorder poisoned");
        let (mut exchange, raw, fold) = prepare(&mut state);
        exchange.seq = state.exchanges.len() + 1;
        exchange.at = self.now();
        let (seq, at) = (exchange.seq, exchange.at);
        state.exchanges.push(exchange);
        state.bodies.push(raw);
        (seq, at, fold)
    }

    /// Registers an issued token and returns its id.
    pub fn issue(&self, make: impl FnOnce(TokenId) -> IssuedToken) -> IssuedToken {
        let mut state = self.state.lock().expect("recorder poisoned");
        let token = make(TokenId(state.tokens.len() as u32 + 1));
        state.tokens.push(token.clone());
        token
    }

    /// Chooses what is kept of write bodies; set it before traffic arrives.
    pub fn set_mode(&self, mode: RecordMode) {
        self.state.lock().expect("recorder poisoned").mode = mode;
    }

    /// Sets the body budget (see [`DEFAULT_BODY_BUDGET`]); set it before traffic arrives.
    pub fn set_body_budget(&self, bytes: usize) {
        self.state.lock().expect("recorder poisoned").budget = bytes;
    }

    /// The first exchange whose body the recorder did not keep because its budget was spent, if any.
    pub fn budget_spent_at(&self) -> Option<usize> {
        self.state.lock().expect("recorder poisoned").spent_at
    }

    /// The recording mode.
    pub fn mode(&self) -> RecordMode {
        self.state.lock().expect("recorder poisoned").mode
    }

    /// A copy of the per-series accounting (empty unless the mode is [`RecordMode::Accounting`]).
    pub fn accounting(&self) -> Accounting {
        self.accounting.lock().expect("recorder poisoned").clone()
    }

    /// Runs `f` on the accounting without copying it (it holds one entry per series).
    pub fn with_accounting<R>(&self, f: impl FnOnce(&Accounting) -> R) -> R {
        f(&self.accounting.lock().expect("recorder poisoned"))
    }

    /// Visits every exchange so far without copying them (the query service reads accepted writes this way).
    pub fn for_each_exchange(&self, mut visit: impl FnMut(&Exchange)) {
        self.state.lock().expect("recorder poisoned").exchanges.iter().for_each(&mut visit);
    }

    /// A copy of every exchange so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.lock().expect("recorder poisoned").exchanges.clone()
    }

    /// The recorded request body of exchange `seq` (empty if none was kept).
    pub fn body(&self, seq: usize) -> Option<bytes::Bytes> {
        self.state.lock().expect("recorder poisoned").bodies.get(seq.checked_sub(1)?).cloned()
    }

    /// A copy of every token issued so far.
    pub fn tokens(&self) -> Vec<IssuedToken> {
        self.state.lock().expect("recorder poisoned").tokens.clone()
    }

    /// Keeps an issued token's value, for the checks that look for it where it must not be (the agent's log). In
    /// memory only: nothing serialises it, and every artefact shows `[token #N]` instead.
    pub(crate) fn keep_token_value(&self, id: TokenId, jwt: &str) {
        self.state.lock().expect("recorder poisoned").token_values.0.push((id, jwt.to_owned()));
    }

    /// Every issued token's value, by id (see [`Recorder::keep_token_value`]).
    pub fn token_values(&self) -> Vec<(TokenId, String)> {
        self.state.lock().expect("recorder poisoned").token_values.0.clone()
    }

    /// A token by id.
    pub fn token(&self, id: TokenId) -> Option<IssuedToken> {
        self.state.lock().expect("recorder poisoned").tokens.iter().find(|t| t.id == id).cloned()
    }

    /// A receiver that changes whenever something is recorded.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.version.subscribe()
    }
}

#[cfg(test)]
impl Exchange {
    /// A write the DCR accepted, for tests that feed the recorder directly.
    pub(crate) fn accepted_write(write: DecodedWrite) -> Exchange {
        Exchange {
            seq: 0,
            at: Duration::ZERO,
            service: Service::Dcr,
            host: "dce".into(),
            tls: true,
            method: "POST".into(),
            target: "/".into(),
            headers: vec![],
            status: 200,
            detail: Detail::Write { auth: WriteAuth::Missing, body: Ok(write) },
            fault: None,
            not_kept: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::{Sample, Series};

    fn write_exchange(series: usize) -> Exchange {
        let write = DecodedWrite {
            series: (0..series)
                .map(|i| Series {
                    labels: vec![("__name__".into(), format!("s{i}"))],
                    samples: vec![Sample { timestamp: 1, value: 1.0 }],
                    histograms: vec![],
                    exemplars: vec![],
                })
                .collect(),
            ..Default::default()
        };
        Exchange::accepted_write(write)
    }

    #[test]
    fn full_mode_keeps_bodies_within_its_budget_and_says_where_it_stopped() {
        let recorder = Recorder::new();
        let one = write_exchange(100);
        let cost = match &one.detail {
            Detail::Write { body: Ok(b), .. } => b.heap_bytes() + 1000,
            _ => unreachable!(),
        };
        recorder.set_body_budget(2 * cost);
        for _ in 0..4 {
            recorder.record_with_body(write_exchange(100), bytes::Bytes::from(vec![0u8; 1000]));
        }
        let exchanges = recorder.exchanges();
        let kept: Vec<bool> = exchanges.iter().map(|e| e.not_kept.is_none()).collect();
        assert_eq!(kept, [true, true, false, false]);
        assert_eq!(recorder.budget_spent_at(), Some(3));
        assert!(exchanges[3].not_kept.as_deref().unwrap().contains("spent at request #3"));
        assert!(matches!(&exchanges[3].detail, Detail::Write { body: Ok(b), .. } if b.series.is_empty()));
        assert_eq!(recorder.body(1).unwrap().len(), 1000);
        assert!(recorder.body(3).unwrap().is_empty());
        // Exchanges without a body are still recorded as they are.
        recorder.record(Exchange { detail: Detail::Other, ..write_exchange(0) });
        assert!(recorder.exchanges()[4].not_kept.is_none());
    }
}
