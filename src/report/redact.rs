//! Redaction of secrets in anything azrw writes: rendered configs, headers, forms.

use serde_json::Value;

/// Keys whose values are secrets wherever they appear in a Prometheus config.
const SECRET_KEYS: &[&str] =
    &["client_secret", "certificate_password", "password", "bearer_token", "credentials", "secret"];

/// The replacement text.
pub const REDACTED: &str = "[redacted]";

/// A rendered `prometheus.yml` with every secret value replaced; unparsable input is withheld entirely.
///
/// ```
/// let safe = azrw::report::redact::config("oauth:\n  client_secret: s3cr3t\n  client_id: abc\n");
/// assert!(!safe.contains("s3cr3t"));
/// assert!(safe.contains("abc"));
/// ```
pub fn config(yaml: &str) -> String {
    match serde_saphyr::from_str::<Value>(yaml) {
        Ok(mut value) => {
            scrub(&mut value);
            serde_saphyr::to_string(&value).unwrap_or_else(|_| format!("# {REDACTED}: could not re-serialise\n"))
        }
        Err(_) => format!("# {REDACTED}: the config could not be parsed, so it is withheld\n"),
    }
}

fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && !v.is_null() {
                    *v = Value::String(REDACTED.into());
                } else {
                    scrub(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}
