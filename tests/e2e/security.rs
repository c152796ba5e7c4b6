//! The security scenarios on the real agents.

// The real agents: what the README's table of observed behaviour states, pinned so a change upstream shows.

/// `scenarios/security` on every catalog version (process runtime): every case passes but `security/redirect`,
/// which fails on `security.redirect` alone — each agent follows the DCR's 307 and 308 to another host with its
/// bearer token. Needs root (network namespaces) and the agents from `ci/setup.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agents_keep_their_tokens_except_on_a_followed_redirect() {
    use azrw::agent::AgentCatalog;
    use azrw::matrix::MatrixOptions;
    use azrw::runner::{RunOptions, run_cases};
    use azrw::scenario::RuntimeKind;
    use std::sync::Arc;

    let _turn = crate::agent_turn(crate::agent_slots()).await; // the default --jobs
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = azrw::scenario::discover(&[root.join("scenarios/security")]).unwrap();
    let loaded: Vec<_> = files.iter().map(|f| Arc::new(azrw::scenario::load(f).unwrap())).collect();
    let opts = MatrixOptions { runtimes: vec![RuntimeKind::Process], ..MatrixOptions::default() };
    let cases = azrw::matrix::expand(&loaded, &AgentCatalog::default_catalog(), &opts).unwrap();
    let out = tempfile::tempdir().unwrap();
    let verdicts = run_cases(&cases, &RunOptions::new(out.path(), crate::agent_slots() as usize), |_| {}).await;
    assert_eq!(verdicts.len(), cases.len());
    for v in &verdicts {
        let failed: Vec<&str> = v.findings.iter().filter(|f| f.is_failure()).map(|f| f.check.name()).collect();
        if v.scenario == "security/redirect" {
            assert_eq!(failed, ["security.redirect"], "{}", azrw::report::render_details(v));
            let f = v.findings.iter().find(|f| f.check == azrw::Check::SecurityRedirect).unwrap();
            let leaks =
                f.evidence.iter().filter(|e| e.contains("followed: request #") && e.contains("Bearer [token #"));
            assert_eq!(leaks.count(), 2, "both the 307 and the 308 were followed with the token: {f:#?}");
        } else {
            assert!(v.passed(), "{}", azrw::report::render_details(v));
        }
        let tls = v.findings.iter().find(|f| f.check == azrw::Check::SecurityTlsVerify);
        if v.scenario == "security/tls-verify" {
            let refused = tls.map_or(0, |f| f.evidence.iter().filter(|e| e.contains("refused by the client")).count());
            assert_eq!(refused, 6, "three bad certificates each on Entra and the DCR were refused: {tls:#?}");
        }
    }
}
