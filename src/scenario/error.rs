//! Scenario errors: each names the file, the line and column, and the field path, and keeps the parser's message.

use std::path::PathBuf;

use super::source_map::Position;

/// Why scenarios could not be found or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// A scenario file or directory could not be read.
    #[error("{}: {error}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A path given to [`discover`](super::discover) does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The file does not parse, or parses but breaks a rule. Displayed as `file:line:column: field: message`.
    #[error("{}", located(file, position, field, message))]
    Invalid {
        /// The scenario file.
        file: PathBuf,
        /// Where in it; `None` only when the parser could not say.
        position: Option<Position>,
        /// Field path, `auth.oauth` or `agents[1]`; empty for the document as a whole.
        field: String,
        /// What is wrong, verbatim from the parser where it came from there.
        message: String,
    },
    /// Several errors of one file, ordered by line (each displayed on its own line).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ScenarioError>),
}

fn located(file: &std::path::Path, position: &Option<Position>, field: &str, message: &str) -> String {
    let mut out = file.display().to_string();
    if let Some(p) = position {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(": ");
    if !field.is_empty() {
        out.push_str(field);
        out.push_str(": ");
    }
    out.push_str(message);
    out
}

impl ScenarioError {
    /// One error for `errors` (at least one): itself when alone, else [`ScenarioError::Many`] ordered by line and
    /// column (errors without a position last).
    pub fn all(mut errors: Vec<ScenarioError>) -> ScenarioError {
        errors.sort_by_key(|e| e.position().map_or((u64::MAX, u64::MAX), |p| (p.line, p.column)));
        if errors.len() == 1 { errors.remove(0) } else { ScenarioError::Many(errors) }
    }

    /// Every error this one holds: itself, or those of [`ScenarioError::Many`].
    pub fn errors(&self) -> Vec<&ScenarioError> {
        match self {
            ScenarioError::Many(all) => all.iter().collect(),
            one => vec![one],
        }
    }

    /// The line and column the error points at, when it points into a scenario file.
    pub fn position(&self) -> Option<Position> {
        match self {
            ScenarioError::Invalid { position, .. } => *position,
            _ => None,
        }
    }

    /// The field path the error is about, when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_displays_file_line_column_field_message() {
        let e = ScenarioError::Invalid {
            file: "scenarios/auth/x.yaml".into(),
            position: Some(Position { line: 12, column: 5 }),
            field: "auth.oauth".into(),
            message: "unknown field `client_secrt`".into(),
        };
        assert_eq!(e.to_string(), "scenarios/auth/x.yaml:12:5: auth.oauth: unknown field `client_secrt`");
        let e = ScenarioError::Invalid {
            file: "x.yaml".into(),
            position: None,
            field: String::new(),
            message: "empty".into(),
        };
        assert_eq!(e.to_string(), "x.yaml: empty");
    }
}
