//! Where the agent's credentials go on the wire: `security.token-scope` (the bearer token only to the DCR host of
//! the `remote_write` entry that authenticates — never to a plain entry's host nor to the scrape target),
//! `security.redirect` (whether a redirect from the DCR to another host was followed, with the token or the body)
//! and `security.tls-verify` (nothing sent over a connection that presented a certificate the agent must refuse).
//! Evidence names the request, the host and the header, tokens as `[token #N]`.

use super::{CaseFacts, Finding, Observed, pending};
use crate::Check;
use crate::cloud::recorder::{Detail, EntraCredential, Exchange, Service, TokenRequest, WriteAuth};

const SCOPE: Check = Check::SecurityTokenScope;
const REDIRECT: Check = Check::SecurityRedirect;
const TLS: Check = Check::SecurityTlsVerify;

/// Every exposure check that applies to the case.
pub(super) fn checks(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(token_scope(facts, seen));
    out.extend(redirect(facts, seen));
    out.extend(tls_verify(facts, seen));
    out
}

/// The `Authorization` value of a request that carried a token the mock issued (recorded as `Bearer [token #N]`).
fn mock_token(authorization: Option<&str>) -> Option<&str> {
    authorization.filter(|v| v.contains("[token #"))
}

/// `Authorization: Bearer [token #2]`, or that there was none.
fn authorization(e: &Exchange) -> String {
    e.header("authorization").map_or_else(|| "no Authorization".to_owned(), |v| format!("Authorization: {v}"))
}

fn body(e: &Exchange) -> String {
    match e.header("content-length") {
        Some(n) => format!("a body (Content-Length: {n})"),
        None => "no body".to_owned(),
    }
}

/// Hosts that some redirect rule points at: what reaches them is `security.redirect`'s to judge.
fn redirect_targets<'a>(facts: &'a CaseFacts<'_>) -> impl Iterator<Item = &'a str> {
    facts.faults.rules.iter().filter_map(|r| r.rule.redirect.as_ref()).map(|r| r.to.as_str())
}

/// The bearer token goes only to the DCR: no plain `remote_write` host and no scrape of the target may carry it.
/// Decided once every plain host has received a write (else nothing shows where the agent sends them).
fn token_scope(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Option<Finding> {
    let redirected: Vec<&str> = redirect_targets(facts).collect();
    let mut leaks = Vec::new();
    for e in seen.exchanges.iter().filter(|e| !matches!(e.service, Service::Dcr | Service::Entra)) {
        if redirected.contains(&e.host.as_str()) {
            continue;
        }
        if let Some(v) = mock_token(e.header("authorization")) {
            leaks.push(format!("{} carried Authorization: {v}", e.describe()));
        }
    }
    for s in seen.scrapes {
        if let Some(v) = mock_token(s.authorization.as_deref()) {
            leaks.push(format!("scrape #{} of the harness target carried Authorization: {v}", s.n));
        }
    }
    if !leaks.is_empty() {
        let mut f = Finding::fail(SCOPE, format!("the bearer token went beyond the DCR host {} time(s)", leaks.len()));
        f.evidence = leaks;
        return Some(f);
    }
    if facts.plain_writes.is_empty() {
        return None;
    }
    let mut evidence = Vec::new();
    for host in facts.plain_writes {
        let writes: Vec<&Exchange> = seen.exchanges.iter().filter(|e| &e.host == host && e.method == "POST").collect();
        if writes.is_empty() {
            return Some(pending(SCOPE, format!("no write reached the plain remote_write host {host} yet")));
        }
        let seqs: Vec<String> = writes.iter().map(|e| format!("#{}", e.seq)).collect();
        evidence.push(format!(
            "{host}: {} write(s) ({}), none with a mock-issued token; first: {}, {}",
            writes.len(),
            seqs.join(", "),
            writes[0].describe(),
            authorization(writes[0])
        ));
    }
    let with_auth = seen.scrapes.iter().filter(|s| s.authorization.is_some()).count();
    evidence.push(format!(
        "the harness scrape target: {} scrape(s), {with_auth} with an Authorization header, none with a mock-issued token",
        seen.scrapes.len()
    ));
    let mut f = Finding::pass(SCOPE, "the bearer token went only to the DCR host of the remote_write that has azuread");
    f.evidence = evidence;
    Some(f)
}

/// Each redirect the DCR answered: followed or not, and whether its target received the token or the body.
fn redirect(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Option<Finding> {
    // Only where a rule redirects: other cases have nothing to judge.
    redirect_targets(facts).next()?;
    let answered: Vec<(&Exchange, &str)> =
        seen.exchanges.iter().filter_map(|e| Some((e, e.fault.as_ref()?.location.as_deref()?))).collect();
    if answered.is_empty() {
        return Some(pending(REDIRECT, "the DCR has not answered with a redirect yet"));
    }
    let mut paired = Vec::new();
    let (mut leaks, mut evidence, mut followed) = (Vec::new(), Vec::new(), 0);
    for (e, location) in &answered {
        let host = url::Url::parse(location).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        let asked = format!("{} answered {}, Location: {location}", e.describe(), e.status);
        let next = seen
            .exchanges
            .iter()
            .find(|f| f.seq > e.seq && f.host == host && f.method != "CONNECT" && !paired.contains(&f.seq));
        match next {
            Some(f) => {
                paired.push(f.seq);
                followed += 1;
                let line = format!("{asked}; followed: {} with {} and {}", f.describe(), authorization(f), body(f));
                if mock_token(f.header("authorization")).is_some() {
                    leaks.push(line);
                } else {
                    evidence.push(line);
                }
            }
            None if seen.writes().any(|w| w.seq > e.seq) => {
                evidence.push(format!("{asked}; not followed: the agent wrote to the DCR again and never to {host}"));
            }
            None => return Some(pending(REDIRECT, format!("waiting to see whether the agent follows {asked}"))),
        }
    }
    if !leaks.is_empty() {
        let mut f = Finding::fail(
            REDIRECT,
            format!(
                "the agent followed the DCR's redirect to another host with its bearer token ({} time(s))",
                leaks.len()
            ),
        );
        f.evidence = leaks;
        f.evidence.extend(evidence);
        return Some(f);
    }
    let message = if followed == 0 {
        format!("the agent did not follow the DCR's {} redirect(s) to another host", answered.len())
    } else {
        format!(
            "the agent followed {followed} of {} redirect(s) to another host without its bearer token (the body went there)",
            answered.len()
        )
    };
    let mut f = Finding::pass(REDIRECT, message);
    f.evidence = evidence;
    Some(f)
}

/// What a request sent over a connection it should have refused carried.
fn carried(e: &Exchange) -> String {
    let mut what = Vec::new();
    if let Detail::Token { request: TokenRequest::Entra { credential, .. }, .. } = &e.detail {
        what.push(
            match credential {
                EntraCredential::ClientSecret { .. } => "the client secret",
                EntraCredential::Certificate { .. } => "a client assertion signed with the certificate's key",
                EntraCredential::Federated { .. } => "the federated token (client_assertion)",
                EntraCredential::Missing => "no credential",
            }
            .to_owned(),
        );
    }
    if let Detail::Write { auth: WriteAuth::Token { id, .. }, .. } = &e.detail {
        what.push(format!("{id}"));
    } else if let Some(v) = e.header("authorization") {
        what.push(format!("Authorization: {v}"));
    }
    what.push(body(e));
    what.join(", ")
}

/// Each connection that presented a bad certificate (`tls_certificate` rules): refused, or what went over it.
fn tls_verify(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Option<Finding> {
    let rules: Vec<_> = facts.faults.rules.iter().filter(|r| r.rule.tls_certificate.is_some()).collect();
    if rules.is_empty() {
        return None;
    }
    let (mut leaks, mut evidence) = (Vec::new(), Vec::new());
    for r in &rules {
        let marked = |e: &&Exchange| e.fault.as_ref().is_some_and(|f| f.rule == r.name);
        let handshakes: Vec<&Exchange> =
            seen.exchanges.iter().filter(marked).filter(|e| e.method == "CONNECT").collect();
        let due = r.rule.times.unwrap_or(1);
        if handshakes.len() < due {
            let kind = r.rule.tls_certificate.expect("filtered");
            return Some(pending(
                TLS,
                format!(
                    "rule {}: {} of {due} connection(s) presented a certificate {kind} so far",
                    r.name,
                    handshakes.len()
                ),
            ));
        }
        for h in handshakes {
            let Some(cert) = h.fault.as_ref().and_then(|f| f.certificate.as_ref()) else { continue };
            let what = format!("CONNECT #{} to {} (rule {}, a certificate {})", h.seq, h.host, r.name, cert.kind);
            if !cert.accepted {
                evidence.push(format!("{what}: handshake {}", cert.handshake));
                continue;
            }
            // Requests over an accepted connection follow its CONNECT, before the next handshake of the rule.
            let sent: Vec<&Exchange> = seen
                .exchanges
                .iter()
                .filter(marked)
                .filter(|e| e.method != "CONNECT" && e.seq > h.seq && e.host == h.host)
                .collect();
            if sent.is_empty() {
                evidence.push(format!("{what}: the client accepted the certificate but sent nothing over it"));
            }
            for e in sent {
                leaks.push(format!("{what} was accepted; then {} sent {}", e.describe(), carried(e)));
            }
        }
    }
    if !leaks.is_empty() {
        let mut f = Finding::fail(
            TLS,
            format!("the agent sent {} request(s) over connections whose certificate it must refuse", leaks.len()),
        );
        leaks.sort();
        leaks.dedup();
        f.evidence = leaks;
        f.evidence.extend(evidence);
        return Some(f);
    }
    let mut f = Finding::pass(TLS, "the agent sent nothing over a connection presenting a certificate it must refuse");
    f.evidence = evidence;
    Some(f)
}
