//! The stage: a mock cloud set up from a scenario, an HTTP client that reaches it the way an agent does, and the
//! evaluation of what it recorded — the harness's checks without a real agent.

use std::time::Duration;

use azrw::agent::Version;
use azrw::cloud::recorder::{Exchange, RecordMode};
use azrw::cloud::{ClientCertificate, ClusterIssuer, MockCloud, MockData};
use azrw::expect::{CaseFacts, Evaluation, Finding, Observed, evaluate};
use azrw::runner::setup::{cloud_setup, default_ingestion_url};
use azrw::runtime::AgentState;
use azrw::scenario::{Outcome, Scenario};
use azrw::scrape::{Scrape, ScrapeModel};

/// A mock cloud set up from a scenario, and an HTTP client that reaches it the way an agent does.
pub struct Stage {
    pub scenario: Scenario,
    pub cloud: MockCloud,
    pub client: reqwest::Client,
    pub ingestion_url: String,
    pub issuer: Option<std::sync::Arc<ClusterIssuer>>,
    pub subject: Option<String>,
    pub certificate: Option<ClientCertificate>,
    pub dcr_id: String,
    pub faults: azrw::cloud::FaultConfig,
    /// The known-vulnerability table the checks apply (the built-in one).
    pub vulnerabilities: azrw::agent::vulnerability::VulnerabilityTable,
    /// `--strict-security`.
    pub strict_security: bool,
}

/// Starts a mock cloud for the scenario given as YAML (the scenario's `agents`, `prometheus` and `deadline` are
/// irrelevant here). Everything listens on 127.0.0.1.
pub async fn stage(scenario_yaml: &str) -> Stage {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let scenario: Scenario = serde_saphyr::from_str(scenario_yaml).expect("test scenario parses");
    let ingestion_url = default_ingestion_url(&scenario);
    let setup = cloud_setup(&scenario, &ingestion_url, MockData::embedded()).expect("cloud set-up");
    let dcr_id = setup.config.dcr.dcr_id.clone();
    let faults = setup.config.faults.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cloud = MockCloud::start(setup.config, listener, setup.issuer.clone()).await.unwrap();
    cloud.recorder().set_mode(scenario.record);
    let ca = reqwest::Certificate::from_pem(cloud.ca_pem().as_bytes()).unwrap();
    let url = url::Url::parse(&ingestion_url).unwrap();
    let mut builder = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(cloud.proxy_url()).unwrap())
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(20));
    // Even if proxying were bypassed, these names resolve to the mock, never to the internet.
    for host in [
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "169.254.169.254",
        url.host_str().unwrap(),
    ] {
        builder = builder.resolve(host, cloud.proxy_addr());
    }
    Stage {
        scenario,
        cloud,
        client: builder.build().unwrap(),
        ingestion_url,
        issuer: setup.issuer,
        subject: setup.federated_subject,
        certificate: setup.client_certificate,
        dcr_id,
        faults,
        vulnerabilities: azrw::agent::vulnerability::VulnerabilityTable::embedded(),
        strict_security: false,
    }
}

impl Stage {
    /// Evaluates what the cloud recorded, as if agent `version` were ready and running.
    pub fn evaluate(&self, version: Version) -> Evaluation {
        self.evaluate_as(version, &AgentState::Ready, true)
    }

    /// Evaluates with a given agent state.
    pub fn evaluate_as(&self, version: Version, agent: &AgentState, was_ready: bool) -> Evaluation {
        self.evaluate_with(version, agent, was_ready, None, &[], None)
    }

    /// Evaluates as if agent `version` were ready and the scenario's sidecar had exited as `exit` says.
    pub fn evaluate_sidecar_exited(&self, version: Version, exit: &azrw::expect::SidecarExit) -> Evaluation {
        self.evaluate_with(version, &AgentState::Ready, true, None, &[], Some(exit))
    }

    /// Evaluates as if agent `version` were ready, with the payload checks judging against a scrape target.
    pub fn evaluate_payload(&self, version: Version, target: &ScrapeModel, scrapes: &[Scrape]) -> Evaluation {
        self.evaluate_with(version, &AgentState::Ready, true, Some(target), scrapes, None)
    }

    /// Evaluates as if agent `version` were ready and the harness scrape target had served `scrapes` (no payload
    /// model: the checks that judge scrapes alone, such as `security.token-scope`).
    pub fn evaluate_scrapes(&self, version: Version, scrapes: &[Scrape]) -> Evaluation {
        self.evaluate_with(version, &AgentState::Ready, true, None, scrapes, None)
    }

    fn evaluate_with(
        &self,
        version: Version,
        agent: &AgentState,
        was_ready: bool,
        target: Option<&ScrapeModel>,
        scrapes: &[Scrape],
        sidecar_exit: Option<&azrw::expect::SidecarExit>,
    ) -> Evaluation {
        let recorder = self.cloud.recorder();
        let exchanges = recorder.exchanges();
        let tokens = recorder.tokens();
        let facts = self.facts(version, target);
        let accounting = recorder.accounting();
        let accounting = (recorder.mode() == RecordMode::Accounting).then_some(&accounting);
        let seen = Observed {
            exchanges: &exchanges,
            tokens: &tokens,
            agent,
            agent_was_ready: was_ready,
            accounting,
            scrapes,
            sidecar_exit,
        };
        evaluate(&facts, &seen)
    }

    /// The agent-metrics cross-check against an exposition the "agent" reports.
    pub fn metrics_check(&self, version: Version, exposition: &str) -> Finding {
        let recorder = self.cloud.recorder();
        let (exchanges, tokens) = (recorder.exchanges(), recorder.tokens());
        let facts = self.facts(version, None);
        let seen = Observed {
            exchanges: &exchanges,
            tokens: &tokens,
            agent: &AgentState::Ready,
            agent_was_ready: true,
            accounting: None,
            scrapes: &[],
            sidecar_exit: None,
        };
        azrw::expect::metrics::cross_check(&facts, &seen, &azrw::agent::metrics::AgentMetrics::parse(exposition))
    }

    fn facts<'a>(&'a self, version: Version, target: Option<&'a ScrapeModel>) -> CaseFacts<'a> {
        let dcr_cloud = self.scenario.cloud.dcr_cloud.unwrap_or(self.scenario.auth.cloud);
        CaseFacts::new(
            &self.scenario,
            version,
            expected_outcome(&self.scenario),
            (&self.dcr_id, dcr_cloud),
            &self.faults,
        )
        .with_target(target)
        .judged_by(&self.vulnerabilities, self.strict_security)
    }

    /// Every exchange so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.cloud.recorder().exchanges()
    }

    /// Writes what the runner writes for a case into `dir` — `case.json` (with the target model), the exchanges,
    /// `scrapes.json` and `verdict.json` of `eval` — so `azrw replay` can be tried on a fake sender's run.
    pub fn write_bundle(
        &self,
        dir: &std::path::Path,
        version: Version,
        target: Option<&ScrapeModel>,
        scrapes: &[Scrape],
        eval: &Evaluation,
    ) {
        use azrw::report::bundle;
        let recorder = self.cloud.recorder();
        let record = bundle::CaseRecord {
            case_id: format!("{}@{version}", self.scenario.name),
            scenario: self.scenario.name.clone(),
            agent: version.to_string(),
            runtime: "process".into(),
            expected: expected_outcome(&self.scenario),
            auth: self.scenario.auth.clone(),
            cloud: self.scenario.cloud.clone(),
            expect: self.scenario.expect.clone(),
            ingestion_url: self.ingestion_url.clone(),
            dcr_id: self.dcr_id.clone(),
            dcr_cloud: self.scenario.cloud.dcr_cloud.unwrap_or(self.scenario.auth.cloud),
            agent_state: bundle::AgentRecord { was_ready: true, exited: None },
            target: target.cloned(),
            mode: Default::default(),
            build: None,
        };
        bundle::write_case(dir, &record, &recorder.exchanges(), &recorder, &[]).unwrap();
        bundle::write_scrapes(dir, scrapes).unwrap();
        let verdict = azrw::expect::Verdict {
            case_id: record.case_id.clone(),
            scenario: record.scenario.clone(),
            source: "fake sender".into(),
            agent: format!("prometheus@{version}"),
            runtime: record.runtime.clone(),
            mode: record.mode,
            build: None,
            expected: record.expected,
            observed: eval.observed,
            explanation: eval.explanation.clone(),
            findings: eval.findings.clone(),
            config_changes: Vec::new(),
            duration: Duration::ZERO,
            error: None,
        };
        bundle::write_verdict(dir, &verdict).unwrap();
    }
}

fn expected_outcome(s: &Scenario) -> Outcome {
    match &s.expect.outcome {
        Some(azrw::scenario::OutcomeSpec::One(o)) => *o,
        _ => Outcome::Delivered,
    }
}
