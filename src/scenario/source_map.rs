//! Where each key and value of a YAML document starts, by field path (`auth.oauth`, `agents[1]`).
//!
//! serde-saphyr reports a line and column but no path; this index, built from the parser's events (so flow style,
//! quoting and comments are handled by the YAML parser, not by guessing from indentation), turns one into the other
//! and lets validation point at the key it complains about.

use serde_saphyr::granit_parser::{Event, Parser};

/// A 1-based line and column in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A mapping key; its path is the entry's path (`auth.oauth` for the key `oauth`).
    Key,
    /// A value (scalar or collection start).
    Value,
}

#[derive(Debug, Clone)]
struct Node {
    pos: Position,
    path: String,
    /// For keys, the key text (to tell `unknown field `x`` at key `x` from other errors at a key).
    key: Option<String>,
    role: Role,
}

enum Frame {
    Map { path: String, current_key: Option<String> },
    Seq { path: String, next_index: usize },
}

/// Positions of every key and value of the first document, in document order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceMap {
    nodes: Vec<Node>,
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

fn parent_of(path: &str) -> &str {
    // Paths are built by `join_key` and `[i]` suffixes; the last separator is the parent boundary.
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

impl SourceMap {
    /// Indexes `source`. A syntax error stops indexing where it occurs; what came before stays usable.
    pub(crate) fn new(source: &str) -> SourceMap {
        let mut nodes = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut started = false;
        for event in Parser::new_from_str(source) {
            let Ok((event, span)) = event else { break };
            // granit lines are 1-based, columns 0-based; serde-saphyr reports both 1-based.
            let pos = Position { line: span.start.line() as u64, column: span.start.col() as u64 + 1 };
            let is_node = matches!(
                event,
                Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(..)
            );
            match event {
                Event::DocumentStart(..) if started => break, // only the first document is a scenario
                Event::DocumentStart(..) => started = true,
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
            if !is_node {
                continue;
            }
            // Where does this node sit: a key of the enclosing map, or a value somewhere?
            let (path, role, key) = match stack.last_mut() {
                Some(Frame::Map { path, current_key }) => match current_key.take() {
                    None => {
                        let text = match &event {
                            Event::Scalar(text, ..) => text.to_string(),
                            _ => "?".to_owned(), // a complex key; rare enough to name generically
                        };
                        *current_key = Some(text.clone());
                        (join_key(path, &text), Role::Key, Some(text))
                    }
                    Some(k) => (join_key(path, &k), Role::Value, None),
                },
                Some(Frame::Seq { path, next_index }) => {
                    let p = format!("{path}[{next_index}]");
                    *next_index += 1;
                    (p, Role::Value, None)
                }
                None => (String::new(), Role::Value, None),
            };
            nodes.push(Node { pos, path: path.clone(), key, role });
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map { path, current_key: None }),
                Event::SequenceStart(..) => stack.push(Frame::Seq { path, next_index: 0 }),
                _ => {}
            }
            // A complex key's own collection leaves the parent waiting for the key's value: nothing else to do,
            // since `current_key` is already set.
        }
        SourceMap { nodes }
    }

    /// Where the key of the entry at `path` starts (`auth.oauth` → the `oauth` key).
    pub(crate) fn key(&self, path: &str) -> Option<Position> {
        self.nodes.iter().find(|n| n.role == Role::Key && n.path == path).map(|n| n.pos)
    }

    /// Where the value at `path` starts (`agents[1]`, `deadline`).
    pub(crate) fn value(&self, path: &str) -> Option<Position> {
        self.nodes.iter().find(|n| n.role == Role::Value && n.path == path).map(|n| n.pos)
    }

    /// The key if the entry has one, else the value (sequence items have no key).
    pub(crate) fn key_or_value(&self, path: &str) -> Option<Position> {
        self.key(path).or_else(|| self.value(path))
    }

    /// Like [`SourceMap::key_or_value`], falling back to the nearest enclosing entry that is written: a field left
    /// to its default (`sidecars[1].port`) is reported where its item starts.
    pub(crate) fn nearest(&self, path: &str) -> Option<Position> {
        let mut at = path;
        loop {
            if let Some(pos) = self.key_or_value(at) {
                return Some(pos);
            }
            if at.is_empty() {
                return None;
            }
            at = parent_of(at);
        }
    }

    /// The field path a parser error at `pos` is about. `message` decides between the key and its map: "unknown
    /// field `x`" or "missing field" at a key is about the enclosing map, anything else about the entry itself.
    pub(crate) fn path_at(&self, pos: Position, message: &str) -> String {
        // Several nodes can start at one place (a block map starts where its first key does); prefer keys, then
        // the innermost, which is the last in document order.
        let exact: Vec<&Node> = self.nodes.iter().filter(|n| n.pos == pos).collect();
        let node = exact
            .iter()
            .rev()
            .find(|n| n.role == Role::Key)
            .or_else(|| exact.last())
            .copied()
            // Not at a node (e.g. a syntax error inside a scalar): the last node that starts before it.
            .or_else(|| self.nodes.iter().rev().find(|n| n.pos <= pos));
        let Some(node) = node else { return String::new() };
        if let (Role::Key, Some(key)) = (node.role, &node.key) {
            let names_this_key = message.starts_with(&format!("unknown field `{key}`"))
                || message.starts_with(&format!("unknown variant `{key}`"));
            if names_this_key || message.starts_with("missing field") {
                return parent_of(&node.path).to_owned();
            }
        }
        node.path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name: x\nagents: [a, b]\nauth:\n  oauth:\n    client_id: a\n  x: {a: 1, b: [1, {c: 2}]}\n\
                       roles:\n  - a: 1\n    b: 2\n  - c\n";

    fn p(line: u64, column: u64) -> Position {
        Position { line, column }
    }

    #[test]
    fn keys_and_values_by_path() {
        let m = SourceMap::new(SRC);
        assert_eq!(m.key("name"), Some(p(1, 1)));
        assert_eq!(m.value("name"), Some(p(1, 7)));
        assert_eq!(m.value("agents[1]"), Some(p(2, 13)));
        assert_eq!(m.key("auth.oauth.client_id"), Some(p(5, 5)));
        assert_eq!(m.key("auth.x.b"), Some(p(6, 13)));
        assert_eq!(m.key("auth.x.b[1].c"), Some(p(6, 21)));
        assert_eq!(m.key("roles[0].b"), Some(p(9, 5)));
        assert_eq!(m.value("roles[1]"), Some(p(10, 5)));
    }

    #[test]
    fn path_at_prefers_the_map_for_unknown_and_missing_fields() {
        let m = SourceMap::new(SRC);
        assert_eq!(m.path_at(p(5, 5), "unknown field `client_id`, expected …"), "auth.oauth");
        assert_eq!(m.path_at(p(5, 5), "missing field `tenant_id`"), "auth.oauth");
        assert_eq!(m.path_at(p(5, 5), "invalid value"), "auth.oauth.client_id");
        assert_eq!(m.path_at(p(5, 16), "invalid type"), "auth.oauth.client_id");
        assert_eq!(m.path_at(p(6, 22), "somewhere inside"), "auth.x.b[1].c");
    }

    #[test]
    fn broken_yaml_keeps_what_came_before() {
        let m = SourceMap::new("name: x\nauth: {\n");
        assert_eq!(m.key("name"), Some(p(1, 1)));
    }
}
