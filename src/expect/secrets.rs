//! Credentials the agent must keep to itself: `security.config-redaction` (its config endpoint and page show none of
//! the case's secrets) and `security.log-secrets` (its own log, and a sidecar's, holds none of them nor any token
//! the mock issued). Evidence names the endpoint or log, the YAML path or line, and a redacted excerpt — never the
//! secret itself.

use super::Finding;
use crate::Check;
use crate::scenario::AuthSpec;

/// One value the agent was given (or issued) that must not show: what it is, and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// What it is, e.g. `auth.oauth.client_secret`, `token #2`.
    pub what: String,
    /// The value.
    pub value: String,
}

impl Secret {
    /// A named secret.
    pub fn new(what: impl Into<String>, value: impl Into<String>) -> Secret {
        Secret { what: what.into(), value: value.into() }
    }

    /// Values this short would match by chance; no real secret is.
    fn searchable(&self) -> bool {
        self.value.len() >= 6
    }

    /// `[redacted: auth.oauth.client_secret, 24 chars]`.
    fn placeholder(&self) -> String {
        crate::redact::labelled(&format!("{}, {} chars", self.what, self.value.chars().count()))
    }
}

/// What the case handed the agent that it must keep to itself: the client secret, the certificate's private key
/// (its longest base64 line: the agent reads the key from a file, so a leak shows it as text), the federated token,
/// and the values the scenario lists under `secrets:`.
pub fn given(auth: &AuthSpec, listed: &[String], federated_token: Option<&str>, key_pem: Option<&str>) -> Vec<Secret> {
    let mut secrets = Vec::new();
    if let Some(oauth) = &auth.oauth {
        secrets.push(Secret::new("auth.oauth.client_secret", oauth.client_secret.clone()));
    }
    if let Some(key) = key_pem.and_then(|pem| pem.lines().filter(|l| !l.starts_with("-----")).max_by_key(|l| l.len())) {
        secrets.push(Secret::new("the client certificate's private key", key));
    }
    if let Some(token) = federated_token {
        secrets.push(Secret::new("the federated token", token));
    }
    for (i, value) in listed.iter().enumerate() {
        secrets.push(Secret::new(format!("secrets[{i}]"), value.clone()));
    }
    secrets
}

/// Every token the mock cloud issued, as secrets (`token #N`).
pub fn issued(tokens: &[(crate::cloud::recorder::TokenId, String)]) -> Vec<Secret> {
    tokens.iter().map(|(id, jwt)| Secret::new(format!("token #{}", id.0), jwt.clone())).collect()
}

/// The check names.
const CONFIG: Check = Check::SecurityConfigRedaction;
const LOGS: Check = Check::SecurityLogSecrets;

/// The agent endpoints whose bodies `security.config-redaction` judges: the API the web UI reads, and the page.
pub const CONFIG_ENDPOINTS: [&str; 2] = ["/api/v1/status/config", "/config"];

/// Longest excerpt in evidence.
const EXCERPT: usize = 160;

/// Judges what the agent's config endpoints served (`path`, body or the error reading it).
pub fn config_redaction(secrets: &[Secret], served: &[(&str, Result<String, String>)]) -> Finding {
    let secrets: Vec<&Secret> = secrets.iter().filter(|s| s.searchable()).collect();
    if secrets.is_empty() {
        return super::skipped(CONFIG, "the case gave the agent no secret to look for");
    }
    let mut leaks = Vec::new();
    let mut read = Vec::new();
    let mut unread = Vec::new();
    for (path, body) in served {
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                unread.push(format!("GET {path}: {e}"));
                continue;
            }
        };
        // The API wraps the YAML in JSON (Go escapes `<`, `>`, `&`); judge the YAML it carries when it parses.
        let yaml = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.pointer("/data/yaml").and_then(|y| y.as_str()).map(str::to_owned));
        let text = yaml.as_deref().unwrap_or(body);
        read.push(*path);
        for secret in &secrets {
            for (line_no, line) in text.lines().enumerate().filter(|(_, l)| l.contains(&secret.value)) {
                let place = if yaml.is_some() {
                    yaml_path(text, line_no).unwrap_or_else(|| format!("line {}", line_no + 1))
                } else {
                    format!("line {}", line_no + 1)
                };
                leaks.push(format!(
                    "GET {path} shows {} in plain text at {place}: {}",
                    secret.what,
                    excerpt(&redact(line, &secrets))
                ));
            }
            // A body whose YAML did not parse may still hold it on no line boundary we split at.
            if yaml.is_none() && !text.lines().any(|l| l.contains(&secret.value)) && text.contains(&secret.value) {
                leaks.push(format!("GET {path} shows {} in plain text", secret.what));
            }
        }
    }
    if !leaks.is_empty() {
        let mut f = Finding::fail(CONFIG, format!("the agent's config endpoint shows {} secret value(s)", leaks.len()));
        f.evidence = leaks;
        return f;
    }
    if read.is_empty() {
        let mut f = Finding::fail(CONFIG, "could not read the agent's config endpoint to look for secrets");
        f.evidence = unread;
        return f;
    }
    let whats: Vec<&str> = secrets.iter().map(|s| s.what.as_str()).collect();
    let mut f = Finding::pass(CONFIG, format!("{} show(s) none of: {}", read.join(" and "), whats.join(", ")));
    f.evidence.extend(unread);
    f
}

/// Judges the agent's and sidecars' logs (`name`, text) for the case's secrets and every token the mock issued.
pub fn log_secrets(secrets: &[Secret], logs: &[(&str, &str)]) -> Finding {
    let secrets: Vec<&Secret> = secrets.iter().filter(|s| s.searchable()).collect();
    let mut leaks = Vec::new();
    for (name, text) in logs {
        for (line_no, line) in text.lines().enumerate() {
            for secret in secrets.iter().filter(|s| line.contains(&s.value)) {
                leaks.push(format!(
                    "{name} line {} holds {}: {}",
                    line_no + 1,
                    secret.what,
                    excerpt(&redact(line, &secrets))
                ));
            }
        }
    }
    if !leaks.is_empty() {
        let mut f = Finding::fail(LOGS, format!("{} log line(s) hold a secret or token", leaks.len()));
        f.evidence = leaks;
        return f;
    }
    let names: Vec<&str> = logs.iter().map(|(n, _)| *n).collect();
    Finding::pass(
        LOGS,
        format!("{} hold(s) none of the case's {} secret(s) and token(s)", names.join(" and "), secrets.len()),
    )
}

/// `line` with every secret replaced by its placeholder.
fn redact(line: &str, secrets: &[&Secret]) -> String {
    secrets.iter().fold(line.trim().to_owned(), |l, s| l.replace(&s.value, &s.placeholder()))
}

fn excerpt(line: &str) -> String {
    if line.chars().count() <= EXCERPT {
        return line.to_owned();
    }
    format!("{}…", line.chars().take(EXCERPT).collect::<String>())
}

/// The path of the key on line `at` of block-style YAML (as Go's yaml.v2/v3 write a config), e.g.
/// `remote_write[0].azuread.oauth.client_secret`.
fn yaml_path(text: &str, at: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let shape = |l: &str| -> Option<(usize, bool, usize)> {
        // (item indent, starts a list item, key indent)
        let indent = l.len() - l.trim_start().len();
        let rest = l.trim_start();
        if rest.is_empty() || rest.starts_with('#') {
            return None;
        }
        match rest.strip_prefix("- ") {
            Some(after) => Some((indent, true, indent + 2 + (after.len() - after.trim_start().len()))),
            None => Some((indent, false, indent)),
        }
    };
    let key = |l: &str| -> String {
        let rest = l.trim_start().trim_start_matches("- ").trim_start();
        rest.split(':').next().unwrap_or(rest).trim().to_owned()
    };
    let mut parts = vec![key(lines[at])];
    let (mut item_indent, mut is_item, mut key_indent) = shape(lines[at])?;
    let mut i = at;
    loop {
        if is_item {
            // Count the earlier items of this list, up to its parent key.
            let mut index = 0;
            let mut j = i;
            while j > 0 {
                j -= 1;
                let Some((ii, item, ki)) = shape(lines[j]) else { continue };
                if item && ii == item_indent {
                    index += 1;
                } else if ki <= item_indent {
                    break;
                }
            }
            parts.push(format!("[{index}]"));
            key_indent = item_indent + 1; // the list's parent key is less indented than or level with its dashes
        }
        // The container: the nearest line above that is less indented, or the start of this list item.
        let mut found = None;
        let mut j = i;
        while j > 0 {
            j -= 1;
            let Some((ii, item, ki)) = shape(lines[j]) else { continue };
            if !is_item && item && ki == key_indent {
                found = Some((j, true, ii));
                break;
            }
            if ki < key_indent {
                found = Some((j, false, ii));
                break;
            }
        }
        match found {
            Some((j, true, ii)) => {
                // Same mapping, started by a list item: that item's index, then its list's parent.
                i = j;
                is_item = true;
                item_indent = ii;
            }
            Some((j, false, _)) => {
                parts.push(key(lines[j]));
                i = j;
                let (ii, item, ki) = shape(lines[j])?;
                item_indent = ii;
                is_item = item;
                key_indent = ki;
                if is_item {
                    // The key sits on an item line: the item index comes next.
                    continue;
                }
            }
            None => break,
        }
    }
    parts.reverse();
    let mut path = String::new();
    for p in parts {
        if !p.starts_with('[') && !path.is_empty() {
            path.push('.');
        }
        path.push_str(&p);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Status;

    const SECRET: &str = "azrw-test-secret-0f1e2d3c";

    fn config_yaml(secret: &str) -> String {
        format!(
            "global:\n  scrape_interval: 1s\nremote_write:\n- url: http://other.example/api/v1/write\n  name: first\n\
             - url: https://dce.metrics.ingest.monitor.azure.com/x\n  remote_timeout: 30s\n  azuread:\n    cloud: AzurePublic\n\
             \x20   oauth:\n      client_id: 8e547ddf\n      client_secret: {secret}\n      tenant_id: 72f988bf\n\
             scrape_configs:\n- job_name: azrw\n"
        )
    }

    fn api(secret: &str) -> String {
        serde_json::json!({"status": "success", "data": {"yaml": config_yaml(secret)}}).to_string()
    }

    fn secrets() -> Vec<Secret> {
        vec![Secret::new("auth.oauth.client_secret", SECRET)]
    }

    #[test]
    fn a_plain_client_secret_fails_with_endpoint_path_and_redacted_excerpt() {
        let f = config_redaction(
            &secrets(),
            &[("/api/v1/status/config", Ok(api(SECRET))), ("/config", Ok("<html>".into()))],
        );
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert_eq!(
            f.evidence,
            vec![
                "GET /api/v1/status/config shows auth.oauth.client_secret in plain text at \
                 remote_write[1].azuread.oauth.client_secret: client_secret: [redacted: auth.oauth.client_secret, 25 chars]"
            ]
        );
        assert!(!format!("{f:?}").contains(SECRET));
    }

    #[test]
    fn a_secret_shown_as_secret_passes() {
        let f = config_redaction(
            &secrets(),
            &[("/api/v1/status/config", Ok(api("<secret>"))), ("/config", Ok("<html>".into()))],
        );
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert!(f.message.contains("auth.oauth.client_secret"), "{f:?}");
    }

    #[test]
    fn the_page_is_judged_too_and_an_unreadable_endpoint_is_not_a_pass() {
        let page = format!("<pre>client_secret: {SECRET}</pre>");
        let f = config_redaction(&secrets(), &[("/api/v1/status/config", Ok(api("<secret>"))), ("/config", Ok(page))]);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.evidence[0].starts_with("GET /config shows auth.oauth.client_secret in plain text at line 1"),
            "{f:?}"
        );
        let f = config_redaction(&secrets(), &[("/api/v1/status/config", Err("connection refused".into()))]);
        assert_eq!(f.status, Status::Fail);
        assert_eq!(f.evidence, vec!["GET /api/v1/status/config: connection refused"]);
    }

    #[test]
    fn no_secret_to_look_for_is_skipped() {
        assert_eq!(config_redaction(&[], &[("/config", Ok(String::new()))]).status, Status::Skipped);
    }

    #[test]
    fn yaml_paths_follow_lists_and_nesting() {
        let text = config_yaml("s");
        let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap();
        assert_eq!(yaml_path(&text, line("scrape_interval")).unwrap(), "global.scrape_interval");
        assert_eq!(yaml_path(&text, line("name: first")).unwrap(), "remote_write[0].name");
        assert_eq!(yaml_path(&text, line("- url: https")).unwrap(), "remote_write[1].url");
        assert_eq!(yaml_path(&text, line("tenant_id")).unwrap(), "remote_write[1].azuread.oauth.tenant_id");
        assert_eq!(yaml_path(&text, line("job_name")).unwrap(), "scrape_configs[0].job_name");
    }

    #[test]
    fn a_logged_token_fails_with_log_line_and_no_token() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let mut s = secrets();
        s.push(Secret::new("token #1", token));
        let log = format!("ts=1 level=info msg=start\nts=2 level=debug msg=\"got token\" token={token}\n");
        let f = log_secrets(&s, &[("agent.log", &log), ("sidecar-remote-write.log", "ok\n")]);
        assert_eq!(f.status, Status::Fail);
        assert_eq!(
            f.evidence,
            vec![
                "agent.log line 2 holds token #1: ts=2 level=debug msg=\"got token\" token=[redacted: token #1, 49 chars]"
            ]
        );
        let clean = log_secrets(&s, &[("agent.log", "ts=1 level=info msg=start\n")]);
        assert_eq!(clean.status, Status::Pass, "{clean:?}");
    }
}
