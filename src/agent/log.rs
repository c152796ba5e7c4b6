//! Reading an agent's log: readiness and the agent's own error messages, for Prometheus 2.x (go-kit logfmt) and
//! 3.x (slog) alike.

/// What a log line tells the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSignal {
    /// The agent serves its web API (Prometheus: "Server is ready to receive web requests.").
    Ready,
    /// An error-level line: `msg` and, when present, `err`.
    Error(String),
}

/// Classifies one line.
///
/// ```
/// use azrw::agent::log::{classify, LogSignal};
/// let line = r#"time=2026-11-25T15:32:47Z level=ERROR source=main.go:1 msg="Error loading config" err="parsing YAML file x: bad""#;
/// assert_eq!(classify(line), Some(LogSignal::Error("Error loading config: parsing YAML file x: bad".into())));
/// ```
pub fn classify(line: &str) -> Option<LogSignal> {
    let fields = logfmt(line);
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let msg = get("msg").unwrap_or("");
    if msg.starts_with("Server is ready to receive web requests") {
        return Some(LogSignal::Ready);
    }
    let level = get("level").unwrap_or("");
    if level.eq_ignore_ascii_case("error") {
        return Some(LogSignal::Error(match get("err") {
            Some(err) => format!("{msg}: {err}"),
            None => msg.to_owned(),
        }));
    }
    None
}

/// Splits a logfmt line into key/value pairs (quoted values unescaped).
fn logfmt(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ' ')).collect();
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            if chars.peek().is_none() {
                break;
            }
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(match n {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ' ')).collect();
        }
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_in_both_log_formats() {
        let v2 = r#"ts=2026-11-25T15:32:47.444Z caller=main.go:1273 level=info msg="Server is ready to receive web requests.""#;
        let v3 = r#"time=2026-11-25T15:32:47.444Z level=INFO source=main.go:1273 msg="Server is ready to receive web requests.""#;
        assert_eq!(classify(v2), Some(LogSignal::Ready));
        assert_eq!(classify(v3), Some(LogSignal::Ready));
    }

    #[test]
    fn errors_keep_the_agents_own_words() {
        let line = r#"ts=x caller=main.go:1 level=error msg="Error loading config (--config.file=/c.yml)" file=/c.yml err="parsing YAML file /c.yml: must provide an Azure Managed Identity client_id \"x\"""#;
        assert_eq!(
            classify(line),
            Some(LogSignal::Error(
                "Error loading config (--config.file=/c.yml): parsing YAML file /c.yml: must provide an Azure Managed Identity client_id \"x\"".into()
            ))
        );
        assert_eq!(classify("level=info msg=hello"), None);
    }
}
