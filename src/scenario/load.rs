//! Finding scenario files, parsing them with precise errors, and the rules serde cannot express.

use std::path::{Path, PathBuf};

use super::error::ScenarioError;
use super::model::{OutcomeSpec, Scenario};
use super::source_map::{Position, SourceMap};
use crate::version::{AgentSource, Version};

/// A parsed and validated scenario with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// The file as given (relative paths stay relative, so reports show what the user typed).
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
    /// The file's text, kept so later errors (an agent line the catalog lacks) can point into it.
    pub source: String,
}

impl LoadedScenario {
    /// `prometheus.config` resolved against the scenario file's directory.
    pub fn config_path(&self) -> Option<PathBuf> {
        let config = self.scenario.prometheus.config.as_ref()?;
        Some(self.path.parent().unwrap_or(Path::new("")).join(config))
    }

    /// Where the entry at a field path (`agents[1]`, `auth.oauth`) starts: its key, or the item for list entries.
    pub fn position_of(&self, field: &str) -> Option<Position> {
        SourceMap::new(&self.source).key_or_value(field)
    }

    /// An error about `field` of this scenario, pointing at it.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.path.clone(),
            position: self.position_of(field),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads, parses and validates one scenario file.
pub fn load(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let source = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read { path: path.to_owned(), error })?;
    parse(path, source)
}

/// Parses and validates scenario text as if read from `path` (which `prometheus.config` is relative to).
pub fn parse(path: &Path, source: String) -> Result<LoadedScenario, ScenarioError> {
    let (scenario, mut errors) = parse_collecting(path, &source);
    if let Some(scenario) = scenario {
        let loaded = LoadedScenario { path: path.to_owned(), scenario, source };
        errors.extend(validate(&loaded));
        if errors.is_empty() {
            return Ok(loaded);
        }
    }
    Err(ScenarioError::all(errors))
}

/// The most parse errors reported from one file (each costs a parse of the rest).
const MAX_PARSE_ERRORS: usize = 20;

/// Parses `source`, and after an error parses on without the offending entry (its lines blanked, so every later
/// position stays where it was) to report the next: every parse error of the file, and the scenario the rest
/// makes when blanking got it through (so the rules can be checked too).
fn parse_collecting(path: &Path, source: &str) -> (Option<Scenario>, Vec<ScenarioError>) {
    let mut text = source.to_owned();
    let mut errors: Vec<ScenarioError> = Vec::new();
    for _ in 0..MAX_PARSE_ERRORS {
        let err = match serde_saphyr::from_str::<Scenario>(&text) {
            Ok(s) => return (Some(s), errors),
            Err(err) => parse_error(path, &text, &err),
        };
        // A required field missing once entries were blanked is the blanking's doing, not the author's.
        let consequence = !errors.is_empty() && err.to_string().contains("missing field");
        let line = err.position().map(|p| p.line as usize);
        if !consequence {
            errors.push(err);
        }
        match line {
            Some(line) if !consequence && blank_entry(&mut text, line) => {}
            _ => break,
        }
    }
    (None, errors)
}

/// Blanks line `line` (1-based) and the lines indented under it; `false` when there was nothing left to blank.
fn blank_entry(text: &mut String, line: usize) -> bool {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(first) = lines.get(line - 1).filter(|l| !l.trim().is_empty()) else { return false };
    // A list item's children sit deeper than its dash.
    let own = indent(first);
    let mut end = line;
    while end < lines.len() && (lines[end].trim().is_empty() || indent(lines[end]) > own) {
        end += 1;
    }
    let mut kept: Vec<&str> =
        lines.iter().enumerate().map(|(i, l)| if (line - 1..end).contains(&i) { "" } else { *l }).collect();
    // A block key left without children would read as null (`expected mapping start`): blank it too, upwards.
    let mut child = own;
    let mut at = line - 1;
    while let Some(parent) = (0..at).rev().find(|&i| !kept[i].trim().is_empty() && indent(kept[i]) < child) {
        let childless =
            kept[parent + 1..].iter().find(|l| !l.trim().is_empty()).is_none_or(|l| indent(l) <= indent(kept[parent]));
        if !(kept[parent].trim_end().ends_with(':') && childless) {
            break;
        }
        child = indent(kept[parent]);
        kept[parent] = "";
        at = parent;
    }
    *text = kept.join("\n");
    true
}

/// Parses and validates a fault profile (`mocks/faults/*.yaml`, or a file given to `azrw mock --faults`): the
/// `faults:` block of a scenario on its own, with the same precise errors (file, line, column, field).
pub fn parse_fault_profile(path: &Path, text: &str) -> Result<crate::scenario::FaultSpec, ScenarioError> {
    let spec: crate::scenario::FaultSpec = parse_fragment(path, text)?;
    let at = |field: &str, message| fragment_error(path, text, field.trim_start_matches('.'), message);
    if spec.profile.is_some() {
        return Err(at("profile", "a profile cannot name another".into()));
    }
    let errors = validate_faults(&spec, "", &at);
    if !errors.is_empty() {
        return Err(ScenarioError::all(errors));
    }
    Ok(spec)
}

/// Parses another YAML file of the scenario family with the same precise errors.
fn parse_fragment<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ScenarioError> {
    serde_saphyr::from_str::<T>(text).map_err(|err| parse_error(path, text, &err))
}

/// An error about `field` of such a file, pointing at it.
fn fragment_error(path: &Path, text: &str, field: &str, message: String) -> ScenarioError {
    ScenarioError::Invalid {
        file: path.to_owned(),
        position: SourceMap::new(text).nearest(field).or(Some(Position { line: 1, column: 1 })),
        field: field.to_owned(),
        message,
    }
}

/// Turns a serde-saphyr error into `file:line:column: field: message`, keeping its message whole.
fn parse_error(path: &Path, source: &str, err: &serde_saphyr::Error) -> ScenarioError {
    // The plain form: the snippet form repeats the message around a source excerpt meant for a terminal.
    let err = err.without_snippet();
    let position = err.location().map(|l| Position { line: l.line(), column: l.column() }).filter(|p| p.line > 0);
    let mut message = err.to_string();
    if let Some(p) = position {
        // serde-saphyr appends the location in words; it is in front of the message already.
        let suffix = format!(" at line {}, column {}", p.line, p.column);
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    let field = position.map(|p| SourceMap::new(source).path_at(p, &message)).unwrap_or_default();
    ScenarioError::Invalid { file: path.to_owned(), position, field, message }
}

const AUTH_METHODS: &str = "managed_identity, oauth, certificate, workload_identity, sdk";

/// The rules the types cannot carry: every broken one, each once.
fn validate(loaded: &LoadedScenario) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let s = &loaded.scenario;
    let map = SourceMap::new(&loaded.source);
    // Where the source map cannot place the exact node (an item of a flow list spread over lines), the nearest
    // written entry: every error points into the file (found by the fuzz suite).
    let err = |field: &str, pos: Option<Position>, message: String| ScenarioError::Invalid {
        file: loaded.path.clone(),
        position: pos.or_else(|| map.nearest(field)).or(Some(Position { line: 1, column: 1 })),
        field: field.to_owned(),
        message,
    };

    if s.name.trim().is_empty() {
        errors.push(err("name", map.value("name").or(map.key("name")), "must not be empty".into()));
    }

    if s.agents.is_empty() {
        errors.push(err("agents", map.key("agents"), "list at least one agent, e.g. [prometheus@3.5]".into()));
    }
    for (i, agent) in s.agents.iter().enumerate() {
        let field = format!("agents[{i}]");
        if let Err(e) = agent.written.parse::<AgentSource>() {
            errors.push(err(&field, map.value(&field), e.to_string()));
        }
        if let Some(assumed) = &agent.assume_version {
            let field = format!("{field}.assume_version");
            if let Err(e) = assumed.parse::<Version>() {
                errors.push(err(&field, map.value(&field), e.to_string()));
            }
        }
    }

    let a = &s.auth;
    let set: Vec<&str> = [
        ("managed_identity", a.managed_identity.is_some()),
        ("oauth", a.oauth.is_some()),
        ("certificate", a.certificate.is_some()),
        ("workload_identity", a.workload_identity.is_some()),
        ("sdk", a.sdk.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    match set.as_slice() {
        [] => {
            errors.push(err("auth", map.key("auth"), format!("no auth method: set exactly one of {AUTH_METHODS}")));
        }
        [_] => {}
        [first, second, ..] => {
            // Point at the second one: that is where the block stops making sense.
            errors.push(err(
                "auth",
                map.key(&format!("auth.{second}")),
                format!("both `{first}` and `{second}` are set: set exactly one of {AUTH_METHODS}"),
            ));
        }
    }

    if let Some(OutcomeSpec::PerAgent(outcomes)) = &s.expect.outcome {
        for key in outcomes.keys() {
            if key != "default" && !s.agents.iter().any(|a| &a.written == key) {
                let agents: Vec<&str> = s.agents.iter().map(|a| a.written.as_str()).collect();
                errors.push(err(
                    "expect.outcome",
                    map.key(&format!("expect.outcome.{key}")),
                    format!("`{key}` is neither `default` nor one of this scenario's agents ({})", agents.join(", ")),
                ));
            }
        }
    }

    if let Some(config) = loaded.config_path()
        && !config.is_file()
    {
        let written = s.prometheus.config.as_deref().unwrap_or(Path::new("")).display();
        errors.push(err(
            "prometheus.config",
            map.value("prometheus.config"),
            format!(
                "`{written}` does not exist (looked for {}; paths are relative to the scenario file)",
                config.display()
            ),
        ));
    }

    if s.target == super::model::TargetKind::Azure {
        if s.azure.is_none() {
            errors.push(err(
                "target",
                map.value("target"),
                "`target: azure` needs an `azure:` block with ingestion_url and query_url".into(),
            ));
        }
        if s.azure.as_ref().is_some_and(|a| a.reader.is_none()) && s.auth.oauth.is_none() {
            errors.push(err(
                "azure",
                map.key("azure"),
                "set `azure.reader` (an app that may read the workspace): the auth block is not `oauth`".into(),
            ));
        }
    }
    if s.target == super::model::TargetKind::Azure || s.azure.is_some() {
        for (i, series) in s.expect.series.iter().enumerate() {
            if !series.contains_key("__name__") {
                let field = format!("expect.series[{i}]");
                errors.push(err(
                    &field,
                    map.value(&field).or(map.key(&field)),
                    "a series read back from the workspace needs `__name__` (every query has exactly one)".into(),
                ));
            }
        }
    }

    if let Some(m) = &s.prometheus.protobuf_message
        && !matches!(m.as_str(), "prometheus.WriteRequest" | "io.prometheus.write.v2.Request")
    {
        errors.push(err(
            "prometheus.protobuf_message",
            map.value("prometheus.protobuf_message"),
            format!("`{m}` is not a remote-write message: prometheus.WriteRequest or io.prometheus.write.v2.Request"),
        ));
    }

    for (i, host) in s.prometheus.plain_remote_writes.iter().enumerate() {
        let field = format!("prometheus.plain_remote_writes[{i}]");
        if let Err(why) = other_host(host) {
            errors.push(err(&field, map.value(&field), why));
        }
        if s.prometheus.plain_remote_writes[..i].contains(host) {
            errors.push(err(&field, map.value(&field), format!("`{host}` is listed twice")));
        }
    }
    if !s.prometheus.plain_remote_writes.is_empty() && s.remote_write_sidecar().is_some() {
        errors.push(err(
            "prometheus.plain_remote_writes",
            map.key("prometheus.plain_remote_writes"),
            "a remote-write sidecar takes every remote_write entry; plain ones beside it are not supported".into(),
        ));
    }

    if let Some(t) = &s.scrape {
        if t.families().is_empty() {
            errors.push(err("scrape", map.key("scrape"), "serves nothing: set `preset` or list `families`".into()));
        }
        if t.scrapes == Some(0) {
            errors.push(err("scrape.scrapes", map.value("scrape.scrapes"), "must be at least 1".into()));
        }
        if let Some(why) = t.unsupported() {
            let field = if t.exposition.is_some() { "scrape.exposition" } else { "scrape.families" };
            errors.push(err(field, map.value(field).or(map.key(field)), why));
        }
    }

    errors.extend(validate_sidecars(s, &|field, message| err(field, map.nearest(field), message)));

    errors.extend(validate_faults(&s.faults, "faults", &|field, message| err(field, map.key_or_value(field), message)));

    if s.deadline.is_zero() {
        errors.push(err("deadline", map.value("deadline"), "must be greater than zero".into()));
    }
    if let Some(load) = &s.load {
        if load.duration >= s.deadline {
            errors.push(err(
                "load.duration",
                map.value("load.duration"),
                format!(
                    "must be shorter than the deadline ({}s): start-up and the last in-flight writes need time too",
                    s.deadline.as_secs()
                ),
            ));
        }
        if s.record != super::model::RecordMode::Accounting {
            errors.push(err(
                "record",
                map.value("record").or(map.key("load")),
                "a load scenario needs `record: accounting` (keeping every decoded write would grow without bound)"
                    .into(),
            ));
        }
    }
    errors
}

/// Sidecars: unique names and ports (they share the agent's network namespace), one remote-write sidecar at most,
/// and images other than the reference one only where they can run (the docker runtime).
fn validate_sidecars(s: &super::Scenario, at: &dyn Fn(&str, String) -> ScenarioError) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let mut writers = 0;
    for (i, sidecar) in s.sidecars.iter().enumerate() {
        let field = |name: &str| format!("sidecars[{i}].{name}");
        if sidecar.name.trim().is_empty() || !sidecar.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            errors.push(at(&field("name"), "must be a non-empty name of letters, digits and `-`".into()));
        }
        if s.sidecars[..i].iter().any(|o| o.name == sidecar.name) {
            errors.push(at(&field("name"), format!("`{}` names two sidecars", sidecar.name)));
        }
        if sidecar.port == 0 || sidecar.port == super::model::AGENT_PORT {
            errors.push(at(
                &field("port"),
                format!("{} is not free: the agent listens on {}", sidecar.port, super::model::AGENT_PORT),
            ));
        }
        if let Some(o) = s.sidecars[..i].iter().find(|o| o.port == sidecar.port) {
            errors.push(at(&field("port"), format!("{} is also the port of sidecar `{}`", sidecar.port, o.name)));
        }
        if sidecar.remote_write {
            writers += 1;
            if writers > 1 {
                errors.push(at(&field("remote_write"), "only one sidecar can take the agent's remote-write".into()));
            }
        }
        if !sidecar.is_reference() && s.runtimes != [super::RuntimeKind::Docker] {
            errors.push(at(
                &field("image"),
                format!(
                    "image `{}` runs only in the docker runtime: set `runtimes: [docker]` (only `{}` also runs as a \
                     process)",
                    sidecar.image,
                    super::model::REFERENCE_SIDECAR
                ),
            ));
        }
    }
    if writers > 0 && s.target == super::model::TargetKind::Azure {
        errors.push(at("sidecars", "a remote-write sidecar against real Azure is not supported yet".into()));
    }
    errors
}

/// A host the mock cloud may serve beside Azure's (a plain receiver, a redirect's target): a DNS name that none of
/// the mock's Azure services answers, so its traffic is recorded apart from theirs.
fn other_host(host: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.contains('.') || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a host name (lower-case DNS labels with a dot, no scheme, port or path)"));
    }
    if let Some(service) = crate::azure::Service::of_host(host) {
        return Err(format!("`{host}` is a host the mock cloud answers as {}; name another host", service.label()));
    }
    Ok(())
}

/// The fault rules serde cannot check: each rule has one effect, consistent bounds and a real status. `at` builds
/// the error for a field path (scenario and profile files point into their own text). Shared with profiles.
fn validate_faults(
    faults: &crate::scenario::FaultSpec,
    prefix: &str,
    at: &dyn Fn(&str, String) -> ScenarioError,
) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    for (i, r) in faults.rules.iter().enumerate() {
        let field = |name: &str| format!("{prefix}.rules[{i}].{name}");
        if let Some(status) = r.status
            && !(100..=599).contains(&status)
        {
            errors.push(at(&field("status"), format!("{status} is not an HTTP status (100–599)")));
        }
        if r.status.is_none()
            && r.error.is_none()
            && r.delay.is_none()
            && !r.reset
            && !r.on_handshake()
            && r.redirect.is_none()
        {
            errors.push(at(
                &format!("{prefix}.rules[{i}]"),
                "the rule does nothing: give it a status, an error, a delay, a redirect, reset: true, \
                 tls_failure: true or a tls_certificate"
                    .into(),
            ));
        }
        if let Some(redirect) = &r.redirect {
            if r.service != crate::scenario::FaultService::Dcr {
                errors.push(at(&field("redirect"), "only the DCR answers with a redirect (service: dcr)".into()));
            }
            if !matches!(redirect.status, 307 | 308) {
                errors.push(at(
                    &field("redirect.status"),
                    format!("{} is not a redirect that keeps method and body: 307 or 308", redirect.status),
                ));
            }
            if let Err(why) = other_host(&redirect.to) {
                errors.push(at(&field("redirect.to"), why));
            }
            let answers = [("status", r.status.is_some()), ("error", r.error.is_some()), ("reset", r.reset)];
            if let Some((name, _)) = answers.iter().find(|(_, set)| *set) {
                errors.push(at(&field("redirect"), format!("a redirect is the answer: it cannot also set `{name}`")));
            }
        }
        if r.tls_failure && r.tls_certificate.is_some() {
            errors.push(at(
                &field("tls_certificate"),
                "set tls_failure (no certificate at all) or tls_certificate, not both".into(),
            ));
        }
        if r.on_handshake() {
            let name = if r.tls_failure { "tls_failure" } else { "tls_certificate" };
            if r.service == crate::scenario::FaultService::Imds {
                errors.push(at(&field(name), "IMDS is plain HTTP: there is no TLS handshake to fault".into()));
            }
            let answers = [
                ("redirect", r.redirect.is_some()),
                ("status", r.status.is_some()),
                ("error", r.error.is_some()),
                ("retry_after", r.retry_after.is_some() || r.retry_after_date.is_some()),
                ("delay", r.delay.is_some()),
                ("reset", r.reset),
            ];
            if let Some((name, _)) = answers.iter().find(|(_, set)| *set) {
                errors.push(at(
                    &field(if r.tls_failure { "tls_failure" } else { "tls_certificate" }),
                    format!("a handshake fault comes before any request: it cannot also set `{name}`"),
                ));
            }
        }
        if r.reset && (r.status.is_some() || r.error.is_some()) {
            errors.push(at(&field("reset"), "a reset connection cannot also answer a status or error".into()));
        }
        if r.retry_after.is_some() && r.retry_after_date.is_some() {
            errors.push(at(&field("retry_after_date"), "set retry_after or retry_after_date, not both".into()));
        }
        if (r.retry_after.is_some() || r.retry_after_date.is_some()) && r.status.is_none() && r.error.is_none() {
            errors.push(at(&field("retry_after"), "Retry-After needs an answer: set status or error".into()));
        }
        if r.times == Some(0) {
            errors.push(at(&field("times"), "must be at least 1 (leave it out for every request)".into()));
        }
        if r.every == Some(0) {
            errors.push(at(&field("every"), "must be at least 1 (1 answers every matching request)".into()));
        }
        if let (Some(from), Some(until)) = (r.from, r.until)
            && until <= from
        {
            errors.push(at(&field("until"), format!("must be after `from` ({from:?})")));
        }
    }
    if faults.tokens.revoke_at.is_some_and(|t| t.is_zero()) {
        errors.push(at(&format!("{prefix}.tokens.revoke_at"), "must be greater than zero".into()));
    }
    errors
}

/// The scenario files named by `paths`: files as given, directories walked recursively for `*.yaml` (skipping
/// `configs` directories, where the Prometheus configs scenarios reference live, hidden directories, and
/// directories marked with [`EXPLICIT_MARKER`] unless named themselves), each directory's files sorted so runs are
/// stable. A file named twice is listed once.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ScenarioError::NotFound { path: path.clone() });
            }
            Err(error) => return Err(ScenarioError::Read { path: path.clone(), error }),
        };
        let mut found = Vec::new();
        if meta.is_dir() {
            walk(path, &mut found)?;
            found.sort();
        } else {
            found.push(path.clone());
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// A file that keeps its directory out of recursive discovery: long-running scenarios (load) must be asked for.
pub const EXPLICIT_MARKER: &str = ".explicit";

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ScenarioError> {
    let read_err = |error| ScenarioError::Read { path: dir.to_owned(), error };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Symlinked directories are not followed (no loops); symlinked files are taken.
        let ty = entry.file_type().map_err(read_err)?;
        if ty.is_dir() {
            // A directory holding an `.explicit` file (e.g. scenarios/load) runs only when named itself.
            if name != "configs" && !name.starts_with('.') && !path.join(EXPLICIT_MARKER).exists() {
                walk(&path, out)?;
            }
        } else if name.ends_with(".yaml") && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: auth/x\nagents: [prometheus@2.53, prometheus@3.5]\nauth:\n  managed_identity: {client_id: \"\"}\n\
                        expect:\n  outcome:\n    prometheus@2.53: config-rejected\n    default: delivered\n";

    fn p(line: u64, column: u64) -> Option<Position> {
        Some(Position { line, column })
    }

    fn parse_str(src: &str) -> Result<LoadedScenario, ScenarioError> {
        parse(Path::new("s.yaml"), src.to_owned())
    }

    #[test]
    fn good_scenario_loads() {
        let l = parse_str(GOOD).unwrap();
        assert_eq!(l.scenario.name, "auth/x");
        assert_eq!(l.position_of("agents[1]"), p(2, 27));
    }

    #[test]
    fn unknown_field_names_the_enclosing_map() {
        let e =
            parse_str("name: x\nagents: [prometheus@3.5]\nauth:\n  oauth:\n    client_id: a\n    client_secrt: b\n")
                .unwrap_err();
        assert_eq!(e.position(), p(6, 5));
        assert_eq!(e.field(), Some("auth.oauth"));
        let s = e.to_string();
        assert!(s.starts_with("s.yaml:6:5: auth.oauth: unknown field `client_secrt`, expected one of"), "{s}");
        assert!(s.contains("client_secret"), "{s}");
    }

    #[test]
    fn missing_top_level_field_has_no_path_but_a_position() {
        let e = parse_str("agents: [prometheus@3.5]\nauth: {oauth: {client_id: a, client_secret: b, tenant_id: c}}\n")
            .unwrap_err();
        assert!(e.to_string().contains("missing field `name`"), "{e}");
        assert!(e.position().is_some());
    }

    #[test]
    fn no_auth_method() {
        let e = parse_str("name: x\nagents: [prometheus@3.5]\nauth: {cloud: AzureChina}\n").unwrap_err();
        assert_eq!(e.position(), p(3, 1));
        assert!(e.to_string().contains("no auth method"), "{e}");
    }

    #[test]
    fn zero_deadline_and_empty_name() {
        let e = parse_str("name: x\nagents: [prometheus@3.5]\nauth: {sdk: {tenant_id: t, via: {managed_identity: {}}}}\ndeadline: 0s\n")
            .unwrap_err();
        assert_eq!((e.position(), e.field()), (p(4, 11), Some("deadline")));
        let e = parse_str("name: ''\nagents: [prometheus@3.5]\nauth: {managed_identity: {}}\n").unwrap_err();
        assert_eq!((e.position(), e.field()), (p(1, 7), Some("name")));
    }

    #[test]
    fn a_family_its_exposition_cannot_carry_is_named() {
        let base = "name: x\nagents: [prometheus@3.5]\nauth: {managed_identity: {}}\nscrape:\n";
        let e = parse_str(&format!("{base}  families: [native-histogram]\n  exposition: openmetrics\n")).unwrap_err();
        assert_eq!((e.position(), e.field()), (p(6, 15), Some("scrape.exposition")));
        assert!(e.to_string().contains("NativeHistogram needs exposition Protobuf"), "{e}");
        let e = parse_str(&format!("{base}  families: [native-histogram, unit]\n")).unwrap_err();
        assert_eq!(e.field(), Some("scrape.families"));
        assert!(e.to_string().contains("Unit needs exposition OpenMetrics"), "{e}");
        let e = parse_str(&format!("{base}  families: [native-histogram]\n  exposition: protbuf\n")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `protbuf`"), "{e}");
    }

    #[test]
    fn fault_rules_are_validated_with_positions() {
        let base = "name: x\nagents: [prometheus@3.5]\nauth: {managed_identity: {}}\nfaults:\n  rules:\n";
        let e = parse_str(&format!("{base}    - {{service: dcr, times: 2, status: 1503}}\n")).unwrap_err();
        assert_eq!(e.field(), Some("faults.rules[0].status"));
        assert!(e.to_string().starts_with("s.yaml:6:"), "{e}");
        assert!(e.to_string().contains("1503 is not an HTTP status"), "{e}");
        let e = parse_str(&format!("{base}    - {{service: dcr}}\n")).unwrap_err();
        assert!(e.to_string().contains("the rule does nothing"), "{e}");
        let e = parse_str(&format!("{base}    - {{service: dcr, status: 503, retry_afer: 2s}}\n")).unwrap_err();
        assert!(e.to_string().contains("unknown field `retry_afer`"), "{e}");
        let e = parse_str(&format!("{base}    - {{service: dcr, from: 5s, until: 2s, status: 503}}\n")).unwrap_err();
        assert_eq!(e.field(), Some("faults.rules[0].until"));
    }

    #[test]
    fn security_rules_and_plain_writes_are_validated_with_positions() {
        let base = "name: x\nagents: [prometheus@3.5]\nauth: {managed_identity: {}}\nfaults:\n  rules:\n";
        let rule = |r: &str| parse_str(&format!("{base}    - {r}\n")).unwrap_err();
        let e = rule("{service: dcr, redirect: {status: 302, to: moved.example.net}}");
        assert_eq!(e.field(), Some("faults.rules[0].redirect.status"));
        assert!(e.to_string().starts_with("s.yaml:6:") && e.to_string().contains("307 or 308"), "{e}");
        let e = rule("{service: dcr, redirect: {status: 307, to: login.microsoftonline.com}}");
        assert!(e.to_string().contains("answers as Entra ID; name another host"), "{e}");
        let e = rule("{service: dcr, redirect: {status: 307, to: \"https://x.example.net/\"}}");
        assert!(e.to_string().contains("is not a host name"), "{e}");
        let e = rule("{service: entra, redirect: {status: 307, to: moved.example.net}}");
        assert!(e.to_string().contains("only the DCR answers with a redirect"), "{e}");
        let e = rule("{service: dcr, status: 503, redirect: {status: 307, to: moved.example.net}}");
        assert!(e.to_string().contains("cannot also set `status`"), "{e}");
        let e = rule("{service: imds, tls_certificate: expired}");
        assert_eq!(e.field(), Some("faults.rules[0].tls_certificate"));
        let e = rule("{service: dcr, tls_certificate: self-signed}");
        assert!(e.to_string().contains("self-signed"), "{e}");
        let e = rule("{service: dcr, tls_certificate: expired, tls_failure: true}");
        assert!(e.to_string().contains("not both"), "{e}");
        let e = rule("{service: dcr, tls_certificate: expired, delay: 1s}");
        assert!(e.to_string().contains("cannot also set `delay`"), "{e}");
        assert!(parse_str(&format!("{base}    - {{service: entra, times: 1, tls_certificate: wrong-host}}\n")).is_ok());

        let plain = |hosts: &str| {
            parse_str(&format!(
                "name: x\nagents: [prometheus@3.5]\nprometheus:\n  plain_remote_writes: {hosts}\nauth: {{managed_identity: {{}}}}\n"
            ))
        };
        assert!(plain("[sink.example.net]").is_ok());
        let e = plain("[sink.example.net, x.eastus-1.metrics.ingest.monitor.azure.com]").unwrap_err();
        assert_eq!(e.field(), Some("prometheus.plain_remote_writes[1]"));
        assert!(e.to_string().starts_with("s.yaml:4:") && e.to_string().contains("answers as the DCR"), "{e}");
        let e = plain("[sink.example.net, sink.example.net]").unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = plain("[\"sink.example.net:8443\"]").unwrap_err();
        assert!(e.to_string().contains("not a host name"), "{e}");
    }

    #[test]
    fn empty_agents() {
        let e = parse_str("name: x\nagents: []\nauth: {managed_identity: {}}\n").unwrap_err();
        assert_eq!((e.position(), e.field()), (p(2, 1), Some("agents")));
    }

    #[test]
    fn config_path_is_relative_to_the_scenario() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("configs")).unwrap();
        std::fs::write(dir.path().join("configs/p.yml"), "global: {}\n").unwrap();
        let src =
            "name: x\nagents: [prometheus@3.5]\nauth: {managed_identity: {}}\nprometheus:\n  config: configs/p.yml\n";
        let l = parse(&dir.path().join("s.yaml"), src.to_owned()).unwrap();
        assert_eq!(l.config_path().unwrap(), dir.path().join("configs/p.yml"));
    }

    #[test]
    fn discover_walks_sorted_and_skips_configs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["b.yaml", "a/z.yaml", "a/c.yaml", "configs/p.yaml", "a/configs/q.yaml", "notes.yml", ".hidden/h.yaml"]
        {
            let path = d.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let found = discover(&[d.to_owned(), d.join("b.yaml")]).unwrap();
        assert_eq!(found, vec![d.join("a/c.yaml"), d.join("a/z.yaml"), d.join("b.yaml")]);
        let single = discover(&[d.join("configs/p.yaml")]).unwrap();
        assert_eq!(single, vec![d.join("configs/p.yaml")]);
    }

    #[test]
    fn discover_skips_explicit_directories_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["auth/a.yaml", "load/l.yaml", "load/.explicit"] {
            let path = d.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        assert_eq!(discover(&[d.to_owned()]).unwrap(), vec![d.join("auth/a.yaml")]);
        assert_eq!(discover(&[d.join("load")]).unwrap(), vec![d.join("load/l.yaml")]);
    }

    #[test]
    fn discover_names_a_missing_path() {
        let e = discover(&[PathBuf::from("/no/such/scenarios")]).unwrap_err();
        assert_eq!(e.to_string(), "/no/such/scenarios: no such file or directory");
    }
}
