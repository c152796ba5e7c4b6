//! Redaction: the one placeholder and the one list of secret field names behind everything azrw keeps or shows
//! (rendered configs, recorded forms and query strings, headers, the case bundle). A leaf, so the mock cloud, the
//! scrape target and the reports redact alike.

use serde_json::Value;

/// What replaces a secret.
pub const PLACEHOLDER: &str = "[redacted]";

/// The placeholder that says which secret it replaces (`[redacted: auth.oauth.client_secret, 23 chars]`), where
/// the reader must tell secrets apart without seeing them.
pub fn labelled(what: &str) -> String {
    format!("[redacted: {what}]")
}

/// Field names whose values are secrets wherever they appear: Prometheus config keys (`client_secret`,
/// `password`, `bearer_token`, `credentials`), OAuth form and query parameters (`client_assertion`,
/// `access_token`, `code`) and the certificate's password.
pub const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "certificate_password",
    "password",
    "bearer_token",
    "credentials",
    "secret",
    "access_token",
    "refresh_token",
    "code",
];

/// Words that make an environment variable's value a secret (`AZURE_CLIENT_SECRET`, `…_PASSWORD`, `…_TOKEN`),
/// unless the name ends in `_FILE` or `_PATH`: those name where a secret is, which is shown.
const SECRET_ENV_WORDS: &[&str] = &["SECRET", "PASSWORD", "TOKEN", "KEY", "CREDENTIAL"];

/// An environment value as it may be kept: the values of variables that name secrets are withheld.
///
/// ```
/// use azrw::redact::{PLACEHOLDER, env_value};
/// assert_eq!(env_value("AZURE_CLIENT_SECRET", "s"), PLACEHOLDER);
/// assert_eq!(env_value("AZURE_FEDERATED_TOKEN_FILE", "/p"), "/p");
/// assert_eq!(env_value("HTTPS_PROXY", "http://x"), "http://x");
/// ```
pub fn env_value(key: &str, value: &str) -> String {
    let k = key.to_ascii_uppercase();
    let secret = SECRET_ENV_WORDS.iter().any(|w| k.contains(w)) && !k.ends_with("_FILE") && !k.ends_with("_PATH");
    if secret { PLACEHOLDER.to_owned() } else { value.to_owned() }
}

/// Whether `name` holds a secret.
pub fn is_secret_field(name: &str) -> bool {
    SECRET_FIELDS.contains(&name)
}

/// A rendered `prometheus.yml` with every secret value replaced; unparsable input is withheld entirely.
///
/// ```
/// let safe = azrw::redact::config("oauth:\n  client_secret: s3cr3t\n  client_id: abc\n");
/// assert!(!safe.contains("s3cr3t"));
/// assert!(safe.contains("abc"));
/// ```
pub fn config(yaml: &str) -> String {
    match serde_saphyr::from_str::<Value>(yaml) {
        Ok(mut value) => {
            scrub(&mut value);
            serde_saphyr::to_string(&value).unwrap_or_else(|_| format!("# {PLACEHOLDER}: could not re-serialise\n"))
        }
        Err(_) => format!("# {PLACEHOLDER}: the config could not be parsed, so it is withheld\n"),
    }
}

fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_field(k) && !v.is_null() {
                    *v = Value::String(PLACEHOLDER.into());
                } else {
                    scrub(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// An `application/x-www-form-urlencoded` text (a form body or a query string) with its secret fields replaced;
/// `None` when it has none, so the caller keeps the original bytes.
///
/// ```
/// let kept = azrw::redact::form(b"grant_type=client_credentials&client_secret=s3cr3t").unwrap();
/// assert_eq!(kept, "grant_type=client_credentials&client_secret=%5Bredacted%5D");
/// assert_eq!(azrw::redact::form(b"a=1"), None);
/// ```
pub fn form(text: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(text).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if !pairs.iter().any(|(k, _)| is_secret_field(k)) {
        return None;
    }
    let kept = pairs.into_iter().map(|(k, v)| {
        let v = if is_secret_field(&k) { PLACEHOLDER.to_owned() } else { v };
        (k, v)
    });
    Some(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish())
}

/// Whether `text` starts a form field with a secret name: a form sent without its content type is still a form.
pub fn looks_like_secret_form(text: &[u8]) -> bool {
    std::str::from_utf8(text)
        .is_ok_and(|b| SECRET_FIELDS.iter().any(|k| b.starts_with(&format!("{k}=")) || b.contains(&format!("&{k}="))))
}

/// An `Authorization` value with its credential replaced: `Basic [redacted]`.
pub fn authorization(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} {PLACEHOLDER}"),
        None => PLACEHOLDER.to_owned(),
    }
}
