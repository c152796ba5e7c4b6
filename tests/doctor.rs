//! `azrw doctor` against the mock cloud with one fault injected per set-up: each broken set-up must be named in the
//! step where it shows, with the likely cause. Same code as against Azure; only the route (mock proxy, mock CA)
//! differs.

use std::path::PathBuf;
use std::time::Duration;

use azrw::cloud::{CloudConfig, MockCloud, MockData, Standalone};
use azrw::real::doctor::{DoctorReport, StepStatus, steps};
use azrw::real::{Access, RealOptions};
use azrw::scenario::{AzureCloud, RoleScope, Scenario};

async fn doctor(
    break_cloud: impl FnOnce(&mut CloudConfig),
    break_env: impl FnOnce(&mut Vec<(String, String)>),
) -> DoctorReport {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let standalone = Standalone::default();
    let mut config = standalone.config(MockData::embedded());
    break_cloud(&mut config);
    let cloud = MockCloud::start(config, std::net::TcpListener::bind("127.0.0.1:0").unwrap(), None).await.unwrap();
    let scenario: Scenario = azrw::scenario::load(&root.join("scenarios/real/oauth.yaml")).unwrap().scenario;
    let mut env = standalone.env();
    break_env(&mut env);
    let real = RealOptions {
        env: env.into_iter().collect(),
        access: Access::Via { proxy_url: cloud.proxy_url(), ca_pem: cloud.ca_pem().to_owned() },
        poll: Duration::from_millis(200),
    };
    let report = azrw::real::doctor::run(&scenario, &real).await;
    cloud.shutdown().await;
    report
}

fn assert_named(report: &DoctorReport, step: &str, words: &str) {
    let s = report.step(step).unwrap_or_else(|| panic!("no step {step}:\n{}", report.render()));
    assert_eq!(s.status, StepStatus::Fail, "{}", report.render());
    let text = format!("{} {}", s.detail, s.hint.clone().unwrap_or_default());
    assert!(text.contains(words), "step {step} should name {words:?}:\n{}", report.render());
    assert!(!report.ok());
}

fn set(env: &mut [(String, String)], key: &str, value: &str) {
    env.iter_mut().find(|(k, _)| k == key).unwrap().1 = value.to_owned();
}

#[tokio::test]
async fn a_working_setup_passes_every_step_and_names_the_identities() {
    let r = doctor(|_| {}, |_| {}).await;
    assert!(r.ok(), "{}", r.render());
    assert!(r.steps.iter().all(|s| s.status == StepStatus::Ok), "{}", r.render());
    let token = r.step(steps::AGENT_TOKEN).unwrap();
    assert!(token.detail.contains("app 00000000-0000-4000-8000-0000000a2b02"), "{}", r.render());
    assert!(r.step(steps::DCR).unwrap().detail.contains("accepted a probe write"), "{}", r.render());
    // The probe written to the DCR is read back through the query endpoint.
    assert!(r.step(steps::QUERY).unwrap().detail.contains("already visible"), "{}", r.render());
}

#[tokio::test]
async fn missing_environment_is_listed_with_the_fields_that_need_it() {
    let r = doctor(|_| {}, |env| env.retain(|(k, _)| k != "AZRW_CLIENT_SECRET" && k != "AZRW_QUERY_URL")).await;
    assert_named(&r, steps::ENVIRONMENT, "AZRW_CLIENT_SECRET (for auth.oauth.client_secret)");
    assert_named(&r, steps::ENVIRONMENT, "AZRW_QUERY_URL (for azure.query_url)");
}

#[tokio::test]
async fn wrong_secret() {
    let r = doctor(|_| {}, |env| set(env, "AZRW_CLIENT_SECRET", "not-the-secret")).await;
    assert_named(&r, steps::AGENT_TOKEN, "wrong client secret");
    assert_named(&r, steps::AGENT_TOKEN, "AADSTS7000215");
    assert_eq!(r.step(steps::DCR).unwrap().status, StepStatus::Skipped);
}

#[tokio::test]
async fn unknown_tenant() {
    let r = doctor(|c| c.directory.tenant_id = "11111111-2222-4333-8444-555555555555".into(), |_| {}).await;
    assert_named(&r, steps::AGENT_TOKEN, "unknown tenant");
    assert_named(&r, steps::AGENT_TOKEN, "AADSTS90002");
}

#[tokio::test]
async fn no_role_on_the_dcr() {
    let r = doctor(|c| c.roles.retain(|g| g.scope != RoleScope::Dcr), |_| {}).await;
    assert_named(&r, steps::DCR, "role missing or still propagating");
    assert_named(&r, steps::DCR, "Monitoring Metrics Publisher on the DCR");
    // Everything else works, and says so.
    assert_eq!(r.step(steps::AGENT_TOKEN).unwrap().status, StepStatus::Ok);
    assert_eq!(r.step(steps::QUERY).unwrap().status, StepStatus::Ok, "{}", r.render());
}

#[tokio::test]
async fn wrong_audience_or_cloud() {
    // The DCR lives in Azure Government; the agent is configured for the public cloud.
    let r = doctor(|c| c.dcr.cloud = AzureCloud::AzureGovernment, |_| {}).await;
    assert_named(&r, steps::DCR, "wrong audience or cloud");
    assert_named(&r, steps::DCR, "InvalidAudience");
}

#[tokio::test]
async fn query_endpoint_refusing_the_reader() {
    let r = doctor(|c| c.roles.retain(|g| g.scope != RoleScope::Workspace), |_| {}).await;
    assert_named(&r, steps::QUERY, "query endpoint refuses the reader");
    assert_named(&r, steps::QUERY, "Monitoring Data Reader");
    assert_eq!(r.step(steps::DCR).unwrap().status, StepStatus::Ok);
}

#[tokio::test]
async fn wrong_dcr_id() {
    let r = doctor(
        |_| {},
        |env| {
            let url = env.iter().find(|(k, _)| k == "AZRW_INGESTION_URL").unwrap().1.replace("dcr-", "dcr-ffff");
            set(env, "AZRW_INGESTION_URL", &url);
        },
    )
    .await;
    assert_named(&r, steps::DCR, "no such DCR or stream");
}

#[tokio::test]
async fn nothing_secret_in_the_report() {
    let standalone_secrets = |r: &DoctorReport| {
        let text = r.render() + &serde_json::to_string(r).unwrap();
        assert!(!text.contains("azrw-mock-"), "a mock secret leaked:\n{text}");
        assert!(!text.contains("eyJ"), "a token leaked:\n{text}");
    };
    standalone_secrets(&doctor(|_| {}, |_| {}).await);
    standalone_secrets(&doctor(|_| {}, |env| set(env, "AZRW_CLIENT_SECRET", "azrw-mock-wrong")).await);
}
