//! The plain `remote_write` entries a scenario adds beside the one that authenticates
//! (`prometheus.plain_remote_writes`): no `azuread`, through the mock cloud's proxy, which serves their hosts as
//! receivers. Added to the rendered config, so a user's own config keeps its entries as rendered.

use serde_json::{Value, json};

/// The rendered config with one plain entry per host appended to `remote_write`, and the changes to report.
pub fn append(
    config: &str,
    hosts: &[String],
    proxy_url: Option<&str>,
    scenario: &crate::scenario::PrometheusSpec,
) -> Result<(String, Vec<String>), String> {
    if hosts.is_empty() {
        return Ok((config.to_owned(), Vec::new()));
    }
    let mut root: Value = serde_saphyr::from_str(config).map_err(|e| format!("rendered config: {e}"))?;
    let entries =
        root.get_mut("remote_write").and_then(Value::as_array_mut).ok_or("rendered config has no remote_write list")?;
    let mut changes = Vec::new();
    for host in hosts {
        let mut queue = json!({"batch_send_deadline": "1s"});
        for (k, v) in &scenario.queue_config {
            queue[k] = v.clone();
        }
        let mut entry = json!({"url": format!("https://{host}/api/v1/write"), "queue_config": queue});
        if let Some(proxy) = proxy_url {
            entry["proxy_url"] = json!(proxy);
        }
        if let Some(t) = scenario.remote_timeout {
            entry["remote_timeout"] = json!(humantime::format_duration(t).to_string());
        }
        changes.push(format!(
            "remote_write[{}]: added https://{host}/api/v1/write without azuread (prometheus.plain_remote_writes)",
            entries.len()
        ));
        entries.push(entry);
    }
    let text = serde_saphyr::to_string(&root).map_err(|e| format!("rendered config: {e}"))?;
    Ok((text, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_entries_follow_the_authenticated_one_without_azuread() {
        let config = "remote_write:\n- url: https://dce.metrics.ingest.monitor.azure.com/x\n  azuread:\n    cloud: AzurePublic\n";
        let spec = crate::scenario::PrometheusSpec::default();
        let (text, changes) = append(config, &["sink.azrw.test".into()], Some("http://10.0.0.1:3128"), &spec).unwrap();
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        let rw = v["remote_write"].as_array().unwrap();
        assert_eq!(rw.len(), 2);
        assert!(rw[0].get("azuread").is_some());
        assert_eq!(rw[1]["url"], "https://sink.azrw.test/api/v1/write");
        assert_eq!(rw[1]["proxy_url"], "http://10.0.0.1:3128");
        assert!(rw[1].get("azuread").is_none());
        assert_eq!(changes.len(), 1);
        assert!(changes[0].starts_with("remote_write[1]: added"), "{changes:?}");
    }
}
