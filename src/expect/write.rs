//! Remote-write request checks: bearer token, protocol headers, body encoding, and no resend of refused batches.

use super::{CaseFacts, Finding, Observed, pending};
use crate::Check;
use crate::cloud::recorder::{Detail, Exchange, WriteAuth};

pub(super) fn checks(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Vec<Finding> {
    let writes: Vec<&Exchange> = seen.writes().collect();
    let user_agent = format!("Prometheus/{}", facts.version);
    let mut out = vec![bearer(facts, seen, &writes)];
    out.push(header_rule(&writes, Check::WriteContentEncoding, "Content-Encoding", |_| Some("snappy".to_owned())));
    out.push(header_rule(&writes, Check::WriteContentType, "Content-Type", |w| {
        Some(expected_content_type(w).to_owned())
    }));
    out.push(header_rule(&writes, Check::WriteVersionHeader, "X-Prometheus-Remote-Write-Version", |w| {
        Some(if is_v2(w) { "2.0.0" } else { "0.1.0" }.to_owned())
    }));
    match facts.sidecar {
        // The reference sidecar forwards Prometheus' headers as they are; another image may name itself.
        Some(sidecar) if !sidecar.is_reference() => out.push(super::skipped(
            Check::WriteUserAgent,
            format!(
                "writes arrive from sidecar {} ({}), which may send its own User-Agent",
                sidecar.name, sidecar.image
            ),
        )),
        _ => out.push(header_rule(&writes, Check::WriteUserAgent, "User-Agent", |_| Some(user_agent.clone()))),
    }
    out.push(size(seen));
    out.push(body(&writes));
    out.push(refused_not_resent(facts, &writes));
    out
}

fn is_v2(w: &Exchange) -> bool {
    w.header("Content-Type").is_some_and(|ct| ct.contains("io.prometheus.write.v2.Request"))
}

fn expected_content_type(w: &Exchange) -> &'static str {
    if is_v2(w) { "application/x-protobuf;proto=io.prometheus.write.v2.Request" } else { "application/x-protobuf" }
}

/// Every write carries a bearer token this mock issued, unexpired, for the DCR's audience.
/// (A 403 is an authorisation matter — the role — not a bearer problem; the outcome explains it.)
fn bearer(facts: &CaseFacts<'_>, seen: &Observed<'_>, writes: &[&Exchange]) -> Finding {
    let check = Check::WriteBearer;
    for w in writes {
        let Detail::Write { auth, .. } = &w.detail else { continue };
        let problem = match auth {
            WriteAuth::Missing => Some("no Authorization header".to_owned()),
            WriteAuth::Invalid { reason } => Some(format!("Authorization: {}", reason)),
            // A token the mock revoked is the fault plan's doing, not the agent's.
            WriteAuth::Token { problem: Some(p), .. } if p.starts_with("revoked") => None,
            WriteAuth::Token { id, problem: Some(p) } if w.status == 401 => {
                let aud = seen.token(*id).map(|t| t.audience.clone()).unwrap_or_default();
                Some(format!(
                    "{id} (aud {aud:?}) refused: {p}; the DCR accepts {}",
                    facts.dcr_cloud.ingestion_audience()
                ))
            }
            WriteAuth::Token { .. } => None,
        };
        if let Some(p) = problem {
            return Finding::fail(check, p).with_evidence(format!("{} → {}", w.describe(), w.status));
        }
    }
    if writes.is_empty() {
        pending(check, "no write yet")
    } else {
        Finding::pass(check, format!("all {} writes carried a valid mock-issued bearer token", writes.len()))
    }
}

/// Every write carries `header` with exactly the expected value.
fn header_rule(
    writes: &[&Exchange],
    check: Check,
    header: &str,
    want: impl Fn(&Exchange) -> Option<String>,
) -> Finding {
    for w in writes {
        let Some(expected) = want(w) else { continue };
        let got = w.header(header);
        if got != Some(expected.as_str()) {
            return Finding::fail(
                check,
                format!("{header} is {}, expected {expected:?}", got.map_or("absent".to_owned(), |g| format!("{g:?}"))),
            )
            .with_evidence(format!("{} {header}: {}", w.describe(), got.unwrap_or("<absent>")));
        }
    }
    match writes.first() {
        Some(_) => Finding::pass(check, format!("every write had the right {header}")),
        None => pending(check, "no write yet"),
    }
}

/// Every body is snappy-block protobuf that decodes.
fn body(writes: &[&Exchange]) -> Finding {
    let check = Check::WriteBody;
    for w in writes {
        if let Detail::Write { body: Err(e), .. } = &w.detail {
            return Finding::fail(check, format!("body does not decode: {e}")).with_evidence(w.describe());
        }
    }
    match writes.first() {
        Some(_) => Finding::pass(check, "every body decoded (snappy block, protobuf)"),
        None => pending(check, "no write yet"),
    }
}

/// No request to any service went over its cap: the first that did is named with its size and the cap.
fn size(seen: &Observed<'_>) -> Finding {
    let check = Check::WriteSize;
    let over = seen.exchanges.iter().find_map(|e| match &e.detail {
        Detail::Oversize { what, limit, content_length, read, received, declared } => {
            Some((e, what, limit, content_length, read, received, declared))
        }
        _ => None,
    });
    let Some((e, what, limit, content_length, read, received, declared)) = over else {
        return Finding::pass(check, "every request was within its service's size limit");
    };
    let length = content_length.map_or_else(|| "none (chunked)".to_owned(), |n| n.to_string());
    let size = match declared {
        Some(d) => format!("its snappy header declares {d} uncompressed bytes"),
        None => format!("{received} bytes received"),
    };
    Finding::fail(check, format!("a request {what} was larger than the {limit} bytes {} accepts: {size}", e.host))
        .with_evidence(format!("{} → {}", e.describe(), e.status))
        .with_evidence(format!(
            "Content-Length: {length}; read {read} bytes before refusing, {received} received in all; cap {limit} bytes"
        ))
}

/// A batch refused non-recoverably (4xx; 429 unless `retry_on_http_429`) is never sent again.
fn refused_not_resent(facts: &CaseFacts<'_>, writes: &[&Exchange]) -> Finding {
    let check = Check::WriteRefusedNotResent;
    for (i, w) in writes.iter().enumerate() {
        if super::retry::answer(facts, w) != super::retry::Answer::NonRecoverable || w.status < 400 {
            continue;
        }
        let key = super::outcome::batch_key(w);
        if key.is_empty() {
            continue;
        }
        if let Some(again) = writes[i + 1..].iter().find(|later| {
            let later_key = super::outcome::batch_key(later);
            key.iter().any(|k| later_key.binary_search(k).is_ok())
        }) {
            return Finding::fail(check, format!("samples refused with {} were sent again", w.status))
                .with_evidence(format!("refused: {}", w.describe()))
                .with_evidence(format!("resent: {}", again.describe()));
        }
    }
    Finding::pass(check, "no refused sample was sent again")
}
