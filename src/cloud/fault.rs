//! Fault plans: what goes wrong in the mock cloud and when. The services stay plain request→outcome functions; the
//! proxy asks the plan before (and instead of) them, and records in each exchange which rule answered.
//!
//! Rules are driven by request counts and by the mock clock only, never by timers in the harness, so a plan does
//! the same thing on a loaded machine as on an idle one.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::recorder::{Exchange, IssuedToken, Service};
use super::wire::{Reply, Request};
use super::{CloudError, MockData};
use crate::scenario::{FaultRule, FaultService, FaultSpec, TokenFaults};

/// Prometheus' default `remote_timeout`.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A resolved fault plan: profile and scenario rules in order, each with its name.
///
/// ```
/// let plan = azrw::cloud::FaultConfig::default();
/// assert!(plan.rules.is_empty());
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct FaultConfig {
    /// Rules with their names, consulted in order.
    pub rules: Vec<NamedRule>,
    /// Token troubles.
    pub tokens: TokenFaults,
    /// How long the agent waits for an answer (`remote_timeout`); a delay at least this long is a timeout to it.
    pub client_timeout: Duration,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig { rules: Vec::new(), tokens: TokenFaults::default(), client_timeout: DEFAULT_CLIENT_TIMEOUT }
    }
}

/// A rule and the name evidence uses for it.
#[derive(Debug, Clone, Serialize)]
pub struct NamedRule {
    /// `rules[0]`, `PROFILE.rules[1]`, or the rule's own `name`.
    pub name: String,
    /// The rule.
    pub rule: FaultRule,
}

impl FaultConfig {
    /// Resolves a scenario's `faults` block: the profile's rules (from `mocks/faults/PROFILE.yaml`) first, then the
    /// scenario's; the scenario's token settings win where set.
    ///
    /// ```
    /// let spec = azrw::scenario::FaultSpec { profile: Some("dcr-503-x3".into()), ..Default::default() };
    /// let plan = azrw::cloud::FaultConfig::resolve(&spec, &azrw::cloud::MockData::embedded(), None).unwrap();
    /// assert_eq!(plan.rules[0].name, "dcr-503-x3"); // the profile names its rule
    /// assert!(plan.recovers());
    /// ```
    pub fn resolve(
        spec: &FaultSpec,
        mocks: &MockData,
        client_timeout: Option<Duration>,
    ) -> Result<FaultConfig, CloudError> {
        let mut plan =
            FaultConfig { client_timeout: client_timeout.unwrap_or(DEFAULT_CLIENT_TIMEOUT), ..Default::default() };
        if let Some(name) = &spec.profile {
            let profile = mocks.fault_profile(name).ok_or_else(|| {
                CloudError::Config(format!(
                    "faults.profile: no fault profile `{name}` (known: {})",
                    mocks.fault_profile_names().join(", ")
                ))
            })?;
            let parsed = parse_profile(&profile.0, &profile.1)?;
            plan.rules.extend(name_rules(&parsed.rules, &format!("{name}.")));
            plan.tokens = parsed.tokens;
        }
        plan.rules.extend(name_rules(&spec.rules, ""));
        let t = &spec.tokens;
        if t.expired > 0 {
            plan.tokens.expired = t.expired;
        }
        plan.tokens.refresh_in = t.refresh_in.or(plan.tokens.refresh_in);
        plan.tokens.revoke_at = t.revoke_at.or(plan.tokens.revoke_at);
        for r in &plan.rules {
            if let Some(e) = &r.rule.error
                && mocks.error_template(e).is_none()
            {
                return Err(CloudError::Config(format!(
                    "fault rule {}: error `{e}` is not defined in mocks/errors.json",
                    r.name
                )));
            }
        }
        Ok(plan)
    }

    /// Whether nothing goes wrong.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.tokens == TokenFaults::default()
    }

    /// Whether every rule ends (by count or window), so the agent is meant to recover.
    pub fn recovers(&self) -> bool {
        self.rules.iter().all(|r| r.rule.ends()) && self.tokens.revoke_at.is_none()
    }

    /// When the plan was over, judged from what was recorded: every counted rule used up and every window closed
    /// by the time of the latest exchange. `None` while some rule may still answer (or never stops).
    pub fn over_at(&self, exchanges: &[Exchange]) -> Option<Duration> {
        let latest = exchanges.iter().map(|e| e.at).max().unwrap_or_default();
        let mut over = Duration::ZERO;
        for r in &self.rules {
            let answered: Vec<&Exchange> =
                exchanges.iter().filter(|e| e.fault.as_ref().is_some_and(|f| f.rule == r.name)).collect();
            let last = answered.iter().map(|e| e.at).max().unwrap_or_default();
            let ended_by_count = r.rule.times.is_some_and(|n| answered.len() >= n);
            let ended_by_window = r.rule.until.is_some_and(|u| latest >= u);
            if !(ended_by_count || ended_by_window) {
                return None;
            }
            over = over.max(if ended_by_window && !ended_by_count { r.rule.until.unwrap_or(last) } else { last });
        }
        Some(over)
    }
}

fn name_rules(rules: &[FaultRule], prefix: &str) -> Vec<NamedRule> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| NamedRule {
            name: r.name.clone().unwrap_or_else(|| format!("{prefix}rules[{i}]")),
            rule: r.clone(),
        })
        .collect()
}

/// A profile file parsed by the scenario loader, its error as the cloud's.
pub(crate) fn parse_profile(path: &std::path::Path, text: &str) -> Result<FaultSpec, CloudError> {
    crate::scenario::load::parse_fault_profile(path, text).map_err(|e| CloudError::Config(format!("fault profile {e}")))
}

/// What a fault rule did to one exchange; recorded with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultMark {
    /// The rule's name.
    pub rule: String,
    /// The `Retry-After` the answer carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<RetryAfter>,
    /// The agent got no answer it could use: the connection was reset, or the answer came after its timeout.
    pub unanswered: bool,
    /// The `Location` of a redirect the rule answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What became of a connection that presented a bad certificate (the rule's `tls_certificate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateMark>,
}

/// A bad certificate the mock presented, and whether the client went on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateMark {
    /// Which bad certificate.
    pub kind: crate::scenario::BadCertificate,
    /// The client completed the handshake (it should have refused).
    pub accepted: bool,
    /// How the handshake ended, as the mock's TLS stack saw it (`received fatal alert: UnknownCA`).
    pub handshake: String,
}

impl FaultMark {
    /// The mark of rule `rule`, without `Retry-After` (a replaced answer adds the one it sent).
    pub(crate) fn new(rule: String, unanswered: bool) -> FaultMark {
        FaultMark { rule, retry_after: None, unanswered, location: None, certificate: None }
    }
}

/// A `Retry-After` header as the mock sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryAfter {
    /// The value, exactly as sent: delta-seconds (`3`) or an HTTP-date (`Wed, 25 Nov 2026 20:59:10 GMT`).
    pub header: String,
    /// The wait it asks for, from the moment of the answer. An HTTP-date has whole seconds and is rounded up, so
    /// this is never less than the rule's value (and less than a second more).
    pub wait: Duration,
}

impl RetryAfter {
    /// Whether the header is the HTTP-date form.
    pub fn is_date(&self) -> bool {
        self.header.ends_with(" GMT")
    }

    /// The wait asked for, in words: `2s`, or `3.42s` for an HTTP-date.
    pub fn asked(&self) -> String {
        if self.is_date() { format!("{:.2}s", self.wait.as_secs_f64()) } else { format!("{}s", self.wait.as_secs()) }
    }

    /// `Retry-After: <value> (<wait>s ahead)`, for evidence.
    pub fn describe(&self) -> String {
        if self.is_date() {
            format!("Retry-After: {} ({:.2}s ahead)", self.header, self.wait.as_secs_f64())
        } else {
            format!("Retry-After: {}", self.header)
        }
    }

    fn seconds(d: Duration) -> RetryAfter {
        RetryAfter { header: d.as_secs().to_string(), wait: d }
    }

    /// The date `ahead` from `now`, rounded up to the next whole second: rounding down would ask for less than
    /// the rule says, and an agent that floors the remaining time (Prometheus does) would then be told a second
    /// less again, which made `retry.retry-after` flaky when an answer fell just before a second's boundary.
    fn date(now: SystemTime, ahead: Duration) -> RetryAfter {
        let due = now + ahead;
        let since_epoch = due.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let rounded = if since_epoch.subsec_nanos() == 0 { since_epoch.as_secs() } else { since_epoch.as_secs() + 1 };
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(rounded);
        RetryAfter { header: http_date(date), wait: date.duration_since(now).unwrap_or(ahead) }
    }
}

/// What to do with one request.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub rule: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
    pub retry_after_date: Option<Duration>,
    pub delay: Option<Duration>,
    pub reset: bool,
    pub redirect: Option<crate::scenario::Redirect>,
}

impl Hit {
    /// Whether the agent waits for this answer longer than it is willing to.
    pub(crate) fn times_out(&self, client_timeout: Duration) -> bool {
        self.delay.is_some_and(|d| d >= client_timeout)
    }

    /// Whether the rule replaces the service's answer.
    pub(crate) fn answers(&self) -> bool {
        self.status.is_some() || self.error.is_some() || self.redirect.is_some()
    }

    /// The redirect answer for `req`: the same path and query on the rule's host.
    pub(crate) fn redirect_reply(&self, req: &Request) -> Option<(Reply, String)> {
        let r = self.redirect.as_ref()?;
        let query = req.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
        let location = format!("https://{}{}{query}", r.to, req.path);
        let reply = Reply { status: r.status, headers: vec![("Location".into(), location.clone())], body: Vec::new() };
        Some((reply, location))
    }

    /// The replacement answer, with `Retry-After` if the rule sets one (also returned, for the exchange's mark).
    pub(crate) fn reply(&self, mocks: &MockData, vars: &[(&str, &str)]) -> (Reply, Option<RetryAfter>) {
        let (status, body) = match &self.error {
            Some(name) => {
                let (status, body) = mocks.error(name, vars);
                (self.status.unwrap_or(status), body)
            }
            None => {
                let status = self.status.unwrap_or(500);
                let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
                let body =
                    serde_json::json!({"error": {"code": reason, "message": format!("azrw fault rule {}", self.rule)}});
                (status, serde_json::to_vec(&body).expect("JSON serialises"))
            }
        };
        let mut reply = Reply::json(status, body);
        let retry_after = match (self.retry_after, self.retry_after_date) {
            (Some(d), _) => Some(RetryAfter::seconds(d)),
            (None, Some(d)) => Some(RetryAfter::date(SystemTime::now(), d)),
            (None, None) => None,
        };
        if let Some(r) = &retry_after {
            reply.headers.push(("Retry-After".into(), r.header.clone()));
        }
        (reply, retry_after)
    }
}

/// `Tue, 15 Nov 1994 08:12:31 GMT`.
fn http_date(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap_or_default()
}

/// How the next token is issued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    pub lifetime: Duration,
    pub expired: bool,
    pub refresh_in: Option<Duration>,
}

/// The live plan: the config plus request counters.
#[derive(Debug)]
pub(crate) struct FaultPlan {
    config: FaultConfig,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    matched: Vec<usize>,
    answered: Vec<usize>,
    tokens: usize,
}

impl FaultPlan {
    pub(crate) fn new(config: FaultConfig) -> FaultPlan {
        let n = config.rules.len();
        FaultPlan { config, counters: Mutex::new(Counters { matched: vec![0; n], answered: vec![0; n], tokens: 0 }) }
    }

    pub(crate) fn client_timeout(&self) -> Duration {
        self.config.client_timeout
    }

    /// The rule that answers this request, if any; counts it against every rule it matches.
    pub(crate) fn consult(&self, service: Service, req: &Request, now: Duration) -> Option<Hit> {
        let kind = match service {
            Service::Dcr if req.method == "POST" => FaultService::Dcr,
            Service::Imds if req.path == "/metadata/identity/oauth2/token" => FaultService::Imds,
            Service::Entra if req.method == "POST" && req.path.ends_with("/oauth2/v2.0/token") => FaultService::Entra,
            _ => return None,
        };
        let rule = &self.config.rules[self.pick(kind, now, false)?];
        Some(Hit {
            rule: rule.name.clone(),
            status: rule.rule.status,
            error: rule.rule.error.clone(),
            retry_after: rule.rule.retry_after,
            retry_after_date: rule.rule.retry_after_date,
            delay: rule.rule.delay,
            reset: rule.rule.reset,
            redirect: rule.rule.redirect.clone(),
        })
    }

    /// The handshake rule (`tls_failure`, `tls_certificate`) that faults this new TLS connection to `service`'s
    /// host, if any: its name, and the bad certificate to present (`None`: fail the handshake).
    pub(crate) fn consult_handshake(
        &self,
        service: Service,
        now: Duration,
    ) -> Option<(String, Option<crate::scenario::BadCertificate>)> {
        let kind = match service {
            Service::Dcr => FaultService::Dcr,
            Service::Entra => FaultService::Entra,
            _ => return None,
        };
        let rule = &self.config.rules[self.pick(kind, now, true)?];
        Some((rule.name.clone(), rule.rule.tls_certificate))
    }

    /// Counts one request (or, for `handshake`, one new TLS connection) against every rule of its kind and returns
    /// the first that answers it. Requests and handshakes are counted by different rules: `tls_failure` ones count
    /// connections.
    fn pick(&self, kind: FaultService, now: Duration, handshake: bool) -> Option<usize> {
        let mut c = self.counters.lock().expect("fault plan poisoned");
        let mut hit = None;
        for (i, r) in self.config.rules.iter().enumerate() {
            let rule = &r.rule;
            let in_window = rule.from.is_none_or(|f| now >= f) && rule.until.is_none_or(|u| now < u);
            if rule.service != kind || rule.on_handshake() != handshake || !in_window {
                continue;
            }
            c.matched[i] += 1;
            let past = c.matched[i].saturating_sub(rule.after);
            let eligible = past > 0
                && rule.every.is_none_or(|n| past.is_multiple_of(n.max(1)))
                && rule.times.is_none_or(|n| c.answered[i] < n);
            if hit.is_none() && eligible {
                c.answered[i] += 1;
                hit = Some(i);
            }
        }
        hit
    }

    /// Terms of the next token issued.
    pub(crate) fn token_terms(&self, lifetime: Duration) -> Terms {
        let mut c = self.counters.lock().expect("fault plan poisoned");
        c.tokens += 1;
        Terms { lifetime, expired: c.tokens <= self.config.tokens.expired, refresh_in: self.config.tokens.refresh_in }
    }

    /// Why the DCR must refuse this token now, if it was revoked.
    pub(crate) fn revoked(&self, token: &IssuedToken, now: Duration) -> Option<String> {
        let at = self.config.tokens.revoke_at?;
        (now >= at && token.issued_at < at)
            .then(|| format!("revoked at +{:.1}s (issued +{:.1}s)", at.as_secs_f64(), token.issued_at.as_secs_f64()))
    }
}

/// Profiles compiled into the binary (copies of the repository's `mocks/faults/`).
pub(crate) const EMBEDDED_PROFILES: &[(&str, &str)] = &[
    ("dcr-503-x3", include_str!("../../mocks/faults/dcr-503-x3.yaml")),
    ("dcr-outage", include_str!("../../mocks/faults/dcr-outage.yaml")),
    ("dcr-throttled", include_str!("../../mocks/faults/dcr-throttled.yaml")),
    ("imds-flaky", include_str!("../../mocks/faults/imds-flaky.yaml")),
    ("imds-404", include_str!("../../mocks/faults/imds-404.yaml")),
    ("imds-throttled", include_str!("../../mocks/faults/imds-throttled.yaml")),
    ("entra-outage", include_str!("../../mocks/faults/entra-outage.yaml")),
];

/// Reads `dir/faults/*.yaml` into (name, path, text).
pub(crate) fn load_profiles(dir: &std::path::Path) -> Result<Vec<(String, PathBuf, String)>, CloudError> {
    let faults = dir.join("faults");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&faults) else { return Ok(out) };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".yaml")) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CloudError::MockData { file: path.clone(), problem: format!("cannot read: {e}") })?;
        out.push((name.to_owned(), path.clone(), text));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> FaultRule {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn plan(rules: &[&str]) -> FaultPlan {
        FaultPlan::new(FaultConfig {
            rules: name_rules(&rules.iter().map(|r| rule(r)).collect::<Vec<_>>(), ""),
            ..Default::default()
        })
    }

    fn dcr() -> Request {
        Request::new(
            "POST",
            "x.eastus-1.metrics.ingest.monitor.azure.com",
            "/dataCollectionRules/d/streams/s/api/v1/write",
        )
    }

    #[test]
    fn counts_then_lets_through() {
        let p = plan(&["{service: dcr, after: 1, times: 2, status: 503}"]);
        let hits: Vec<bool> = (0..5).map(|_| p.consult(Service::Dcr, &dcr(), Duration::ZERO).is_some()).collect();
        assert_eq!(hits, [false, true, true, false, false]);
    }

    #[test]
    fn every_nth_after_the_first_ones() {
        let p = plan(&["{service: dcr, after: 1, every: 3, times: 2, status: 429}"]);
        let hits: Vec<bool> = (0..11).map(|_| p.consult(Service::Dcr, &dcr(), Duration::ZERO).is_some()).collect();
        assert_eq!(hits, [false, false, false, true, false, false, true, false, false, false, false]);
    }

    #[test]
    fn windows_follow_the_mock_clock_and_other_services_are_untouched() {
        let p = plan(&["{service: dcr, from: 2s, until: 4s, status: 503}"]);
        assert!(p.consult(Service::Dcr, &dcr(), Duration::from_secs(1)).is_none());
        assert!(p.consult(Service::Dcr, &dcr(), Duration::from_secs(3)).is_some());
        assert!(p.consult(Service::Dcr, &dcr(), Duration::from_secs(4)).is_none());
        let imds = Request::new("GET", "169.254.169.254", "/metadata/identity/oauth2/token");
        assert!(p.consult(Service::Imds, &imds, Duration::from_secs(3)).is_none());
    }

    #[test]
    fn retry_after_in_both_forms() {
        let p = plan(&[
            "{service: dcr, status: 429, retry_after: 3s}",
            "{service: dcr, status: 503, retry_after_date: 2s}",
        ]);
        let h = p.consult(Service::Dcr, &dcr(), Duration::ZERO).unwrap();
        let (r, sent) = h.reply(&MockData::embedded(), &[]);
        assert_eq!((r.status, r.headers.last().unwrap().1.as_str()), (429, "3"));
        assert_eq!(sent.map(|r| r.wait), Some(Duration::from_secs(3)));
        let p = plan(&["{service: dcr, status: 503, retry_after_date: 2s}"]);
        let (r, sent) = p.consult(Service::Dcr, &dcr(), Duration::ZERO).unwrap().reply(&MockData::embedded(), &[]);
        let sent = sent.unwrap();
        assert!(sent.is_date() && r.headers.last().unwrap().1 == sent.header, "{:?} {sent:?}", r.headers);
        assert!(sent.wait >= Duration::from_secs(2) && sent.wait < Duration::from_secs(3), "{sent:?}");
    }

    #[test]
    fn an_http_date_rounds_up_so_it_never_asks_for_less_than_the_rule() {
        let at = |secs: u64, nanos: u32| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
        // Just before a second's boundary: rounding down would have asked for 2.001s instead of 3s.
        let r = RetryAfter::date(at(1_795_640_346, 999_000_000), Duration::from_secs(3));
        assert_eq!(r.header, "Wed, 25 Nov 2026 20:59:10 GMT");
        assert_eq!(r.wait, Duration::from_millis(3001));
        assert!(r.describe().contains("(3.00s ahead)"), "{}", r.describe());
        // On the boundary nothing is added.
        let r = RetryAfter::date(at(1_795_640_346, 0), Duration::from_secs(3));
        assert_eq!((r.header.as_str(), r.wait), ("Wed, 25 Nov 2026 20:59:09 GMT", Duration::from_secs(3)));
        assert!(!RetryAfter::seconds(Duration::from_secs(2)).is_date());
    }

    #[test]
    fn embedded_profiles_resolve() {
        for (name, _) in EMBEDDED_PROFILES {
            let spec = FaultSpec { profile: Some((*name).into()), ..Default::default() };
            let plan = FaultConfig::resolve(&spec, &MockData::embedded(), None).unwrap();
            assert!(!plan.is_empty() && plan.recovers(), "{name}");
        }
        let spec = FaultSpec { profile: Some("nope".into()), ..Default::default() };
        let e = FaultConfig::resolve(&spec, &MockData::embedded(), None).unwrap_err().to_string();
        assert!(e.contains("faults.profile") && e.contains("dcr-503-x3"), "{e}");
    }
}
