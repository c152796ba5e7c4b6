//! Every auth-flow and write expectation, broken by a fake sender one rule at a time: the harness must report the
//! violation with evidence (which request, which header, which value). And a conforming sender passes them all.

use azrw::Check;
use azrw::agent::Version;
use azrw::expect::Status;
use azrw::runtime::AgentState;
use azrw::scenario::Outcome;

use crate::common::{Bearer, CLAIMED_VERSION, Knobs, assert_clean, assert_violation, finding, send, stage};

const USER_ASSIGNED: &str = r#"
name: fake/user-assigned
agents: [prometheus@3.5]
auth:
  managed_identity: {client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}
"#;

const CLIENT_SECRET: &str = r#"
name: fake/client-secret
agents: [prometheus@3.5]
auth:
  oauth:
    client_id: 8e547ddf-a7de-46ed-9269-5526a55d3211
    client_secret: fake-sender-secret
    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
"#;

const WORKLOAD_IDENTITY: &str = r#"
name: fake/workload-identity
agents: [prometheus@latest]
auth:
  workload_identity:
    client_id: 0d3e7a51-94c2-4b8f-8a61-2c9f0e4d7b13
    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
"#;

const CERTIFICATE: &str = r#"
name: fake/certificate
agents: [prometheus@latest]
auth:
  certificate:
    client_id: 5b0c3e6e-1f7a-4c53-9a8e-7d1f2a3b4c5d
    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
"#;

async fn run(scenario: &str, knobs: Knobs) -> crate::common::Stage {
    let stage = stage(scenario).await;
    send(&stage, &knobs).await;
    stage
}

#[tokio::test]
async fn conforming_senders_pass_every_check() {
    let newest = Version::new(3, 16, 0);
    for (scenario, version) in [
        (USER_ASSIGNED, CLAIMED_VERSION),
        (CLIENT_SECRET, CLAIMED_VERSION),
        (WORKLOAD_IDENTITY, newest),
        (CERTIFICATE, newest),
    ] {
        let knobs = Knobs { user_agent: Some(format!("Prometheus/{version}")), ..Knobs::default() };
        let stage = run(scenario, knobs).await;
        let eval = stage.evaluate(version);
        assert_clean(&eval);
        assert_eq!(eval.observed, Some(Outcome::Delivered), "{scenario}");
        assert!(eval.decided());
    }
}

#[tokio::test]
async fn missing_metadata_header_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { imds_metadata: None, ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &["Metadata header is \"absent\"", "request #1 GET http://169.254.169.254/metadata/identity/oauth2/token"],
    );
}

#[tokio::test]
async fn wrong_imds_api_version_and_resource_are_caught() {
    let stage = run(USER_ASSIGNED, Knobs { imds_api_version: "2017-09-01".into(), ..Knobs::default() }).await;
    assert_violation(&stage.evaluate(CLAIMED_VERSION), Check::AuthRequest, &["api-version", "2017-09-01"]);

    let stage =
        run(USER_ASSIGNED, Knobs { imds_resource: Some("https://monitor.azure.com".into()), ..Knobs::default() }).await;
    assert_violation(&stage.evaluate(CLAIMED_VERSION), Check::AuthRequest, &["resource", "https://monitor.azure.com"]);
}

#[tokio::test]
async fn user_assigned_without_client_id_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { imds_drop_client_id: true, ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &["client_id is None", "381a840f-f3c9-426b-9259-d868b14d9b38"],
    );
}

#[tokio::test]
async fn wrong_scope_is_caught() {
    let knobs = Knobs { entra_scope: Some("https://monitor.azure.com/.default".into()), ..Knobs::default() };
    let stage = run(CLIENT_SECRET, knobs).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &[
            "scope is Some(\"https://monitor.azure.com/.default\")",
            "https://monitor.azure.com//.default",
            "/oauth2/v2.0/token",
        ],
    );
}

#[tokio::test]
async fn wrong_tenant_is_caught() {
    let knobs = Knobs { entra_tenant: Some("common".into()), ..Knobs::default() };
    let stage = run(CLIENT_SECRET, knobs).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &["tenant in the path is \"common\"", "https://login.microsoftonline.com/common/oauth2/v2.0/token"],
    );
}

#[tokio::test]
async fn wrong_grant_type_is_caught() {
    let stage = run(CLIENT_SECRET, Knobs { grant_type: "password".into(), ..Knobs::default() }).await;
    assert_violation(&stage.evaluate(CLAIMED_VERSION), Check::AuthRequest, &["grant_type", "password"]);
}

#[tokio::test]
async fn wrong_credential_kind_is_caught() {
    // Workload identity configured, but the sender authenticates with a client secret.
    let stage = run(WORKLOAD_IDENTITY, Knobs { force_secret: Some("s".into()), ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthRequest,
        &["credential is client-secret, expected federated"],
    );
}

#[tokio::test]
async fn token_request_to_the_wrong_cloud_is_caught() {
    let stage =
        run(CLIENT_SECRET, Knobs { entra_host: Some("login.microsoftonline.us".into()), ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthEndpoint,
        &["went to login.microsoftonline.us instead of login.microsoftonline.com", "https://login.microsoftonline.us/"],
    );
}

#[tokio::test]
async fn fresh_token_per_write_is_caught() {
    let stage = run(CLIENT_SECRET, Knobs { token_per_write: true, ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::AuthTokenReused,
        &["token #2 was fetched", "while token #1 was still fresh", "POST https://login.microsoftonline.com/"],
    );
}

#[tokio::test]
async fn write_without_bearer_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { bearer: Bearer::Missing, ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteBearer,
        &["no Authorization header", "POST https://azrw-dce-"],
    );
}

#[tokio::test]
async fn write_with_a_token_the_mock_never_issued_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { bearer: Bearer::Garbage, ..Knobs::default() }).await;
    assert_violation(&stage.evaluate(CLAIMED_VERSION), Check::WriteBearer, &["Authorization:", "→ 401"]);
}

#[tokio::test]
async fn token_for_the_wrong_audience_is_caught() {
    // The sender asks IMDS for the Government audience while the DCR is public.
    let knobs = Knobs { imds_resource: Some("https://monitor.azure.us/".into()), ..Knobs::default() };
    let stage = run(USER_ASSIGNED, knobs).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteBearer,
        &["aud \"https://monitor.azure.us/\"", "→ 401"],
    );
}

#[tokio::test]
async fn wrong_content_encoding_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { content_encoding: Some("gzip".into()), ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteContentEncoding,
        &["Content-Encoding is \"gzip\", expected \"snappy\"", "request #2 POST"],
    );
}

#[tokio::test]
async fn wrong_content_type_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { content_type: Some("application/json".into()), ..Knobs::default() }).await;
    assert_violation(&stage.evaluate(CLAIMED_VERSION), Check::WriteContentType, &["\"application/json\""]);
}

#[tokio::test]
async fn missing_version_header_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { version_header: None, ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteVersionHeader,
        &["X-Prometheus-Remote-Write-Version is absent", "<absent>"],
    );
}

#[tokio::test]
async fn user_agent_of_another_version_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs::default()).await;
    // The sender says Prometheus/3.5.1; the case is about 3.16.0.
    assert_violation(
        &stage.evaluate(Version::new(3, 16, 0)),
        Check::WriteUserAgent,
        &["User-Agent is \"Prometheus/3.5.1\", expected \"Prometheus/3.16.0\""],
    );
}

#[tokio::test]
async fn framed_snappy_is_caught() {
    let stage = run(USER_ASSIGNED, Knobs { framed_snappy: true, ..Knobs::default() }).await;
    assert_violation(&stage.evaluate(CLAIMED_VERSION), Check::WriteBody, &["framed", "request #2 POST"]);
}

#[tokio::test]
async fn resending_a_refused_batch_is_caught() {
    let no_role = format!("{USER_ASSIGNED}cloud:\n  roles: []\n");
    let stage = run(&no_role, Knobs { resend_refused: true, ..Knobs::default() }).await;
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteRefusedNotResent,
        &["samples refused with 403 were sent again", "refused: request #2", "resent: request #3"],
    );
}

#[tokio::test]
async fn dropped_data_is_explained_with_identity_role_and_dcr() {
    let no_role = format!("{USER_ASSIGNED}cloud:\n  roles: []\nexpect:\n  outcome: dropped\n");
    let stage = run(&no_role, Knobs::default()).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_eq!(eval.observed, Some(Outcome::Dropped));
    assert!(
        eval.explanation.contains(
            "user-assigned identity 381a840f-f3c9-426b-9259-d868b14d9b38 lacks Monitoring Metrics Publisher on DCR dcr-"
        ),
        "{}",
        eval.explanation
    );
}

#[tokio::test]
async fn missing_series_stays_undecided_with_what_did_arrive() {
    let stage = run(USER_ASSIGNED, Knobs { omit_up: true, ..Knobs::default() }).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    let f = finding(&eval, Check::SeriesPresent);
    assert_eq!(f.status, Status::Undecided, "{f:#?}");
    assert!(f.message.contains("\"up\""), "{f:#?}");
    assert!(f.evidence[0].contains("azrw_target_scrapes_total"), "{f:#?}");
    assert_eq!(eval.observed, None);
}

#[tokio::test]
async fn capability_table_contradicted_by_the_agent_is_caught() {
    // Client secret is supported by 3.5.1; an agent that refuses the config contradicts the table.
    let stage = stage(CLIENT_SECRET).await;
    let exited = AgentState::Exited { code: Some(1), error: Some("field oauth not found".into()) };
    let eval = stage.evaluate_as(CLAIMED_VERSION, &exited, false);
    assert_eq!(eval.observed, Some(Outcome::ConfigRejected));
    let f = finding(&eval, Check::CapabilityTable);
    assert_eq!(f.status, Status::Fail);
    assert!(f.message.contains("the table says prometheus 3.5.1 supports oauth"), "{f:#?}");

    // Certificate needs 3.13: 3.5.1 accepting it contradicts the table the other way.
    let stage = run(CERTIFICATE, Knobs::default()).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    let f = finding(&eval, Check::CapabilityTable);
    assert_eq!(f.status, Status::Fail);
    assert!(f.message.contains("lacks certificate (needs ≥ 3.13.0)"), "{f:#?}");
}

#[tokio::test]
async fn unsupported_auth_is_reported_as_not_supported_with_the_agents_words() {
    let stage = stage(CERTIFICATE).await;
    let exited = AgentState::Exited {
        code: Some(1),
        error: Some("field certificate not found in type azuread.AzureADConfig".into()),
    };
    let eval = stage.evaluate_as(Version::new(3, 5, 1), &exited, false);
    assert_eq!(eval.observed, Some(Outcome::ConfigRejected));
    assert_eq!(
        eval.explanation,
        "certificate not supported by prometheus 3.5.1 (needs ≥ 3.13.0); the agent said: field certificate not found in type azuread.AzureADConfig"
    );
}

/// Debian's and Ubuntu's builds have no azuread at all: the config field itself is unknown, which is its own
/// outcome, not a capability a version lacks. A build that rejects a field *inside* azuread is not that.
#[tokio::test]
async fn a_build_without_azuread_is_its_own_outcome_with_the_agents_line() {
    let stage = stage(CLIENT_SECRET).await;
    let debian = "Error loading config (--config.file=/in/prometheus.yml): parsing YAML file /in/prometheus.yml: \
                  yaml: unmarshal errors:\n  line 5: field azuread not found in type config.plain";
    let exited = AgentState::Exited { code: Some(1), error: Some(debian.into()) };
    let eval = stage.evaluate_as(Version::new(2, 42, 0), &exited, false);
    assert_eq!(eval.observed, Some(Outcome::NoAzuread));
    assert!(
        eval.explanation.starts_with(
            "this build of prometheus 2.42.0 has no azuread support (config field azuread unknown); the agent said: "
        ),
        "{}",
        eval.explanation
    );
    assert!(eval.explanation.ends_with("unmarshal errors: line 5: field azuread not found in type config.plain"));
    assert!(eval.findings.iter().all(|f| f.check != azrw::Check::CapabilityTable), "{:#?}", eval.findings);

    // An upstream build that lacks one auth type inside azuread is a config rejection, as before.
    let inside =
        AgentState::Exited { code: Some(1), error: Some("field oauth not found in type azuread.plain".into()) };
    assert_eq!(stage.evaluate_as(Version::new(2, 42, 0), &inside, false).observed, Some(Outcome::ConfigRejected));
}
