//! `azrw doctor` against the mock cloud with one fault injected per set-up: each broken set-up must be named in the
//! step where it shows, with the likely cause. Same code as against Azure; only the route (mock proxy, mock CA)
//! differs.

use std::path::PathBuf;
use std::time::Duration;

use azrw::cloud::{ClientCertificate, CloudConfig, MockCloud, MockData, Standalone};
use azrw::runner::real::doctor::{DoctorReport, StepStatus, steps};
use azrw::runner::real::{Access, RealOptions};
use azrw::scenario::{AzureCloud, RoleScope, Scenario};

/// Doctor on `scenarios/real/oauth.yaml`.
async fn doctor(
    break_cloud: impl FnOnce(&mut CloudConfig),
    break_env: impl FnOnce(&mut Vec<(String, String)>),
) -> DoctorReport {
    doctor_on("oauth", break_cloud, break_env).await
}

/// Doctor on `scenarios/real/NAME.yaml` against the standalone mock, its credential files written to a temp dir
/// and named by the environment the way a cluster or CI names them.
async fn doctor_on(
    name: &str,
    break_cloud: impl FnOnce(&mut CloudConfig),
    break_env: impl FnOnce(&mut Vec<(String, String)>),
) -> DoctorReport {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let standalone = Standalone::default();
    let mut config = standalone.config(MockData::embedded());
    break_cloud(&mut config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cloud = MockCloud::start(config, listener, Some(standalone.issuer.clone())).await.unwrap();
    let path = root.join(format!("scenarios/real/{name}.yaml"));
    let scenario: Scenario = azrw::scenario::load(&path).unwrap().scenario;
    let files = tempfile::tempdir().unwrap();
    let mut env = standalone.env();
    env.extend(standalone.write_files(files.path()).unwrap());
    break_env(&mut env);
    let real = RealOptions {
        env: env.into_iter().collect(),
        access: Access::Via { proxy_url: cloud.proxy_url(), ca_pem: cloud.ca_pem().to_owned() },
        poll: Duration::from_millis(200),
    };
    let report = azrw::runner::real::doctor::run(&scenario, &real).await;
    cloud.shutdown().await;
    assert_secret_free(&report, &standalone, files.path());
    report
}

/// No secret of the set-up in the report: client secrets, tokens (JWTs start `eyJ`), the certificate key, the
/// federated token.
fn assert_secret_free(r: &DoctorReport, standalone: &Standalone, files: &std::path::Path) {
    let text = r.render() + &serde_json::to_string(r).unwrap();
    assert!(!text.contains("azrw-mock-"), "a mock secret leaked:\n{text}");
    assert!(!text.contains("eyJ"), "a token or assertion leaked:\n{text}");
    let key_body: String = standalone.certificate.key_pem().lines().nth(1).unwrap().to_owned();
    assert!(!text.contains(&key_body), "the certificate key leaked:\n{text}");
    let federated = std::fs::read_to_string(files.join("azure-identity-token")).unwrap();
    assert!(!text.contains(federated.split('.').nth(2).unwrap()), "the federated token leaked:\n{text}");
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
    // Every doctor run above is scanned by `doctor_on`; these add a wrong secret that Entra echoes nothing of.
    doctor(|_| {}, |env| set(env, "AZRW_CLIENT_SECRET", "azrw-mock-wrong")).await;
    doctor_on("certificate", |_| {}, |_| {}).await;
}

fn writer(c: &mut CloudConfig) -> &mut azrw::cloud::App {
    c.directory.apps.first_mut().unwrap()
}

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token_file() {
    let r = doctor_on("workload-identity", |_| {}, |_| {}).await;
    assert!(r.ok(), "{}", r.render());
    let token = r.step(steps::AGENT_TOKEN).unwrap();
    // Which file, for which service account, and the identity Entra answered for.
    assert!(
        token.detail.contains("workload_identity, client_id 00000000-0000-4000-8000-0000000a2b02"),
        "{}",
        r.render()
    );
    assert!(token.detail.contains("subject system:serviceaccount:monitoring:prometheus"), "{}", r.render());
    assert!(token.detail.contains("azure-identity-token"), "{}", r.render());
    assert!(token.detail.contains("token for app 00000000-0000-4000-8000-0000000a2b02"), "{}", r.render());
    assert!(r.step(steps::DCR).unwrap().detail.contains("accepted a probe write"), "{}", r.render());
}

#[tokio::test]
async fn sdk_via_workload_identity_exchanges_the_same_token_file() {
    let r = doctor_on("sdk-workload-identity", |_| {}, |_| {}).await;
    assert!(r.ok(), "{}", r.render());
    let token = r.step(steps::AGENT_TOKEN).unwrap();
    assert!(
        token.detail.contains("sdk via workload identity, client_id 00000000-0000-4000-8000-0000000a2b02"),
        "{}",
        r.render()
    );
    assert!(token.detail.contains("subject system:serviceaccount:monitoring:prometheus"), "{}", r.render());
    assert!(token.detail.contains("token for app 00000000-0000-4000-8000-0000000a2b02"), "{}", r.render());
    let r =
        doctor_on("sdk-workload-identity", |_| {}, |env| env.retain(|(k, _)| k != "AZURE_FEDERATED_TOKEN_FILE")).await;
    assert_named(&r, steps::ENVIRONMENT, "AZURE_FEDERATED_TOKEN_FILE (for auth.sdk.via.workload_identity.token_file)");
}

#[tokio::test]
async fn workload_identity_wrong_subject() {
    // The app trusts another service account than the one the cluster's token is for.
    let r = doctor_on(
        "workload-identity",
        |c| writer(c).federated[0].subject = "system:serviceaccount:other:prometheus".into(),
        |_| {},
    )
    .await;
    assert_named(&r, steps::AGENT_TOKEN, "no federated credential matches the token");
    assert_named(&r, steps::AGENT_TOKEN, "AADSTS70021");
    assert_named(&r, steps::AGENT_TOKEN, "Assertion Subject: 'system:serviceaccount:monitoring:prometheus'");
    assert_eq!(r.step(steps::DCR).unwrap().status, StepStatus::Skipped);
}

#[tokio::test]
async fn workload_identity_token_file_missing() {
    let r = doctor_on("workload-identity", |_| {}, |env| env.retain(|(k, _)| k != "AZURE_FEDERATED_TOKEN_FILE")).await;
    assert_named(&r, steps::ENVIRONMENT, "AZURE_FEDERATED_TOKEN_FILE (for auth.workload_identity.token_file)");
    let r = doctor_on("workload-identity", |_| {}, |env| set(env, "AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token"))
        .await;
    assert_named(&r, steps::AGENT_TOKEN, "federated token file /nonexistent/token: No such file");
}

#[tokio::test]
async fn certificate_signs_a_client_assertion() {
    let r = doctor_on("certificate", |_| {}, |_| {}).await;
    assert!(r.ok(), "{}", r.render());
    let token = r.step(steps::AGENT_TOKEN).unwrap();
    assert!(token.detail.contains("certificate, client_id 00000000-0000-4000-8000-0000000a2b02"), "{}", r.render());
    assert!(token.detail.contains("CN=azrw-standalone-writer, x5t#S256 "), "{}", r.render());
    assert!(token.detail.contains("token for app 00000000-0000-4000-8000-0000000a2b02"), "{}", r.render());
    assert!(r.step(steps::DCR).unwrap().detail.contains("accepted a probe write"), "{}", r.render());
}

#[tokio::test]
async fn certificate_wrong_thumbprint() {
    // The app registration holds another certificate than the one in the PEM file.
    let other = ClientCertificate::generate("another").unwrap();
    let r = doctor_on("certificate", |c| writer(c).certificate_der = Some(other.der().to_vec()), |_| {}).await;
    assert_named(&r, steps::AGENT_TOKEN, "certificate not registered on the app");
    assert_named(&r, steps::AGENT_TOKEN, "AADSTS700027");
    assert_named(&r, steps::AGENT_TOKEN, "Thumbprint of key used by client");
    assert_eq!(r.step(steps::DCR).unwrap().status, StepStatus::Skipped);
}

#[tokio::test]
async fn certificate_file_without_key() {
    let dir = tempfile::tempdir().unwrap();
    let cert_only = dir.path().join("cert-only.pem");
    std::fs::write(&cert_only, ClientCertificate::generate("x").unwrap().cert_pem()).unwrap();
    let path = cert_only.display().to_string();
    let r = doctor_on("certificate", |_| {}, |env| set(env, "AZURE_CLIENT_CERTIFICATE_PATH", &path)).await;
    assert_named(&r, steps::AGENT_TOKEN, "no private key");
    assert_named(&r, steps::AGENT_TOKEN, &path);
}
