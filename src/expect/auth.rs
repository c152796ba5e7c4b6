//! Auth-flow checks: the right token service, the exact request shape Azure expects, and token reuse.

use super::{CaseFacts, DEFAULT_MIN_WRITES, Finding, Observed, pending, skipped};
use crate::Check;
use crate::cloud::recorder::{Detail, EntraCredential, Exchange, Service, TokenRequest, WriteAuth};
use crate::scenario::{AuthSpec, SdkVia};

/// The IMDS api-version azidentity sends.
const IMDS_API_VERSION: &str = "2018-02-01";

/// How the configured auth type must obtain tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flow {
    /// IMDS, with this `client_id` (None: system-assigned).
    Imds { client_id: Option<String> },
    /// Entra token endpoint for this tenant, client and credential kind.
    Entra { tenant: String, client_id: String, credential: &'static str },
}

fn flow(auth: &AuthSpec) -> Flow {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    if let Some(mi) = &auth.managed_identity {
        return Flow::Imds { client_id: non_empty(&mi.client_id) };
    }
    if let Some(o) = &auth.oauth {
        return Flow::Entra {
            tenant: o.tenant_id.clone(),
            client_id: o.client_id.clone(),
            credential: "client-secret",
        };
    }
    if let Some(c) = &auth.certificate {
        return Flow::Entra { tenant: c.tenant_id.clone(), client_id: c.client_id.clone(), credential: "certificate" };
    }
    if let Some(w) = &auth.workload_identity {
        return Flow::Entra { tenant: w.tenant_id.clone(), client_id: w.client_id.clone(), credential: "federated" };
    }
    match auth.sdk.as_ref().map(|s| (&s.via, &s.tenant_id)) {
        Some((SdkVia::WorkloadIdentity { client_id, .. }, tenant)) => {
            Flow::Entra { tenant: tenant.clone(), client_id: client_id.clone(), credential: "federated" }
        }
        Some((SdkVia::ManagedIdentity { client_id }, _)) => Flow::Imds { client_id: non_empty(client_id) },
        None => Flow::Imds { client_id: None },
    }
}

fn credential_kind(c: &EntraCredential) -> &'static str {
    match c {
        EntraCredential::ClientSecret { .. } => "client-secret",
        EntraCredential::Certificate { .. } => "certificate",
        EntraCredential::Federated { .. } => "federated",
        EntraCredential::Missing => "none",
    }
}

/// The scopes the sender may request from Entra: exactly Prometheus' own (`<audience>//.default`, or the configured
/// scope), or — from a sidecar, whose SDK is not Prometheus' — either spelling of the audience Azure accepts.
fn expected_scopes(facts: &CaseFacts<'_>) -> Vec<String> {
    let auth = facts.auth;
    if let Some(scope) = &auth.scope {
        return vec![scope.clone()];
    }
    let mut scopes = vec![auth.cloud.ingestion_scope()];
    if facts.sidecar.is_some() {
        scopes.push(format!("{}/.default", auth.cloud.ingestion_audience().trim_end_matches('/')));
    }
    scopes
}

/// The resources the sender may request from IMDS (the scopes without `/.default`).
fn expected_resources(facts: &CaseFacts<'_>) -> Vec<String> {
    expected_scopes(facts).iter().map(|s| s.strip_suffix("/.default").unwrap_or(s).to_owned()).collect()
}

/// Whether an IMDS api-version is acceptable: Prometheus' azidentity sends exactly [`IMDS_API_VERSION`]; a sidecar
/// may send any identity api-version IMDS serves (dated from that one on).
fn imds_version_ok(facts: &CaseFacts<'_>, version: Option<&str>) -> bool {
    match (version, facts.sidecar) {
        (Some(v), None) => v == IMDS_API_VERSION,
        (Some(v), Some(_)) => {
            let dated = v.len() == 10
                && v.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
            dated && v >= IMDS_API_VERSION
        }
        (None, _) => false,
    }
}

fn one_of(values: &[String]) -> String {
    values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(" or ")
}

pub(super) fn checks(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Vec<Finding> {
    let token_requests: Vec<&Exchange> = seen
        .exchanges
        .iter()
        .filter(|e| matches!(e.service, Service::Imds | Service::Entra))
        // MSAL's instance discovery legitimately goes to the public host (AzureChina on MSAL 1.3–1.4), and the
        // header-less IMDS probe of DefaultAzureCredential is not a token request.
        .filter(|e| {
            !matches!(
                &e.detail,
                Detail::Token { request: TokenRequest::InstanceDiscovery | TokenRequest::ImdsProbe, .. }
            )
        })
        .collect();
    let flow = flow(facts.auth);
    vec![endpoint(facts, &flow, &token_requests), request_shape(facts, &flow, &token_requests), reuse(facts, seen)]
}

/// Token requests go only to the service the auth type uses (and, for Entra, the configured cloud's host).
fn endpoint(facts: &CaseFacts<'_>, flow: &Flow, requests: &[&Exchange]) -> Finding {
    let check = Check::AuthEndpoint;
    let (service, host) = match flow {
        Flow::Imds { .. } => (Service::Imds, crate::azure::IMDS_HOST),
        Flow::Entra { .. } => (Service::Entra, facts.auth.cloud.authority_host()),
    };
    if let Some(wrong) = requests.iter().find(|e| e.service != service || e.host != host) {
        return Finding::fail(check, format!("a token request went to {} instead of {host}", wrong.host))
            .with_evidence(wrong.describe());
    }
    match requests.first() {
        Some(first) => Finding::pass(check, format!("token requests go to {host}")).with_evidence(first.describe()),
        None => pending(check, format!("no token request to {host} yet")),
    }
}

/// Each token request has the exact shape Azure expects.
fn request_shape(facts: &CaseFacts<'_>, flow: &Flow, requests: &[&Exchange]) -> Finding {
    let check = Check::AuthRequest;
    let mut decided = false;
    for e in requests {
        let Detail::Token { request, .. } = &e.detail else { continue };
        let problem = match (flow, request) {
            (
                Flow::Imds { client_id },
                TokenRequest::Imds { api_version, resource, client_id: sent, metadata_header },
            ) => {
                decided = true;
                let resources = expected_resources(facts);
                if metadata_header.as_deref() != Some("true") {
                    Some(format!(
                        "Metadata header is {:?}, IMDS requires \"true\"",
                        metadata_header.as_deref().unwrap_or("absent")
                    ))
                } else if !imds_version_ok(facts, api_version.as_deref()) {
                    let want = if facts.sidecar.is_some() { "from" } else { "expected" };
                    Some(format!("api-version is {api_version:?}, {want} {IMDS_API_VERSION:?}"))
                } else if !resources.iter().any(|r| resource.as_deref() == Some(r.as_str())) {
                    Some(format!("resource is {resource:?}, expected {}", one_of(&resources)))
                } else if sent != client_id {
                    Some(match client_id {
                        Some(want) => format!("client_id is {sent:?}, expected {want:?} (user-assigned)"),
                        None => format!("client_id is {sent:?}, expected none (system-assigned)"),
                    })
                } else {
                    None
                }
            }
            (
                Flow::Entra { tenant, client_id, credential },
                TokenRequest::Entra { tenant: t, grant_type, client_id: c, scope, credential: sent },
            ) => {
                decided = true;
                let scopes_want = expected_scopes(facts);
                let scopes: Vec<&str> = scope.as_deref().unwrap_or("").split(' ').collect();
                if t != tenant {
                    Some(format!("tenant in the path is {t:?}, expected {tenant:?}"))
                } else if grant_type.as_deref() != Some("client_credentials") {
                    Some(format!("grant_type is {grant_type:?}, expected \"client_credentials\""))
                } else if c.as_deref() != Some(client_id.as_str()) {
                    Some(format!("client_id is {c:?}, expected {client_id:?}"))
                } else if !scopes_want.iter().any(|w| scopes.contains(&w.as_str())) {
                    Some(format!("scope is {scope:?}, expected it to contain {}", one_of(&scopes_want)))
                } else if credential_kind(sent) != *credential {
                    Some(format!("credential is {}, expected {credential}", credential_kind(sent)))
                } else {
                    None
                }
            }
            (_, TokenRequest::Imds { .. } | TokenRequest::Entra { .. }) => {
                Some("token request of the wrong kind for the configured auth type".to_owned())
            }
            _ => None,
        };
        if let Some(p) = problem {
            return Finding::fail(check, p).with_evidence(e.describe());
        }
    }
    if decided {
        Finding::pass(check, "every token request has the shape Azure expects")
    } else {
        pending(check, "no token request yet")
    }
}

/// Tokens are reused: no new token is fetched while the previous one is before half its life (Prometheus'
/// refresh point), and writes share tokens.
fn reuse(facts: &CaseFacts<'_>, seen: &Observed<'_>) -> Finding {
    let check = Check::AuthTokenReused;
    let issued: Vec<(&Exchange, crate::cloud::recorder::TokenId)> = seen
        .exchanges
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Token { issued: Some(id), .. } => Some((e, *id)),
            _ => None,
        })
        .collect();
    for pair in issued.windows(2) {
        let (prev_ex, prev_id) = pair[0];
        let (next_ex, next_id) = pair[1];
        if let Some(prev) = seen.token(prev_id) {
            let half_life = prev.issued_at + (prev.expires_at.saturating_sub(prev.issued_at)) / 2;
            if super::tokens::fetched_early(next_ex.at, half_life) {
                return Finding::fail(
                    check,
                    format!(
                        "{next_id} was fetched at +{:.1}s while {prev_id} was still fresh (issued +{:.1}s, refresh due at +{:.1}s)",
                        next_ex.at.as_secs_f64(),
                        prev.issued_at.as_secs_f64(),
                        half_life.as_secs_f64()
                    ),
                )
                .with_evidence(next_ex.describe())
                .with_evidence(format!("previous token from {}", prev_ex.describe()));
            }
        }
    }
    let writes: Vec<&Exchange> = seen.writes().collect();
    let min = facts.expect.min_writes.unwrap_or(DEFAULT_MIN_WRITES);
    if writes.len() < min {
        return if issued.is_empty() && writes.is_empty() {
            skipped_or_pending(seen, check)
        } else {
            pending(check, format!("{} of {min} writes seen", writes.len()))
        };
    }
    let mut per_token = std::collections::BTreeMap::new();
    for w in &writes {
        if let Detail::Write { auth: WriteAuth::Token { id, .. }, .. } = &w.detail {
            *per_token.entry(*id).or_insert(0usize) += 1;
        }
    }
    match per_token.iter().max_by_key(|(_, n)| **n) {
        Some((id, n)) if *n >= 2 => Finding::pass(check, format!("{id} carried {n} of {} writes", writes.len())),
        _ => Finding::fail(
            check,
            format!("no token carried two writes ({} writes, {} tokens)", writes.len(), per_token.len()),
        )
        .with_evidence(writes[writes.len() - 1].describe()),
    }
}

fn skipped_or_pending(seen: &Observed<'_>, check: Check) -> Finding {
    if matches!(seen.agent, crate::runtime::AgentState::Exited { .. }) {
        skipped(check, "the agent fetched no token")
    } else {
        pending(check, "no token fetched yet")
    }
}
