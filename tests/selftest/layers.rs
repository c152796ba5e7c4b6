//! The module graph points one way: no top-level module of `src/` reaches itself through `crate::` imports.
//! A cycle is reported with the file and line of each edge, so the fix is obvious.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level module → (imported module → first place it is imported).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut graph = Graph::new();
    for file in files {
        let from = module_of(src, &file);
        if from == "lib" || from == "main" {
            continue; // the crate root declares every module; main is the binary over cli
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere (a test builds what it needs); the edge list is about the library.
        let library = text.split("\n#[cfg(test)]").next().unwrap_or(&text);
        for (n, line) in library.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let to: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if to.is_empty() || to == from {
                    continue;
                }
                let place = format!("{}:{}", file.display(), n + 1);
                graph.entry(from.clone()).or_default().entry(to).or_insert(place);
            }
        }
    }
    graph
}

/// A cycle through `start`, as the list of edges, if there is one.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<(String, String, String)>> {
    fn visit(
        graph: &Graph,
        start: &str,
        at: &str,
        path: &mut Vec<(String, String, String)>,
        seen: &mut Vec<String>,
    ) -> bool {
        for (to, place) in graph.get(at).into_iter().flatten() {
            path.push((at.to_owned(), to.clone(), place.clone()));
            if to == start {
                return true;
            }
            if !seen.contains(to) {
                seen.push(to.clone());
                if visit(graph, start, to, path, seen) {
                    return true;
                }
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    visit(graph, start, start, &mut path, &mut Vec::new()).then_some(path)
}

fn cycles(graph: &Graph) -> Vec<String> {
    graph
        .keys()
        .filter_map(|m| cycle_from(graph, m))
        .map(|edges| edges.iter().map(|(a, b, place)| format!("{a} -> {b} ({place})")).collect::<Vec<_>>().join(", "))
        .collect()
}

#[test]
fn src_modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = cycles(&graph(&src));
    assert!(found.is_empty(), "import cycles between modules:\n{}", found.join("\n"));
}

#[test]
fn a_cycle_is_reported_with_its_edges() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("low")).unwrap();
    std::fs::write(dir.path().join("low/mod.rs"), "use crate::high::Thing;\n").unwrap();
    std::fs::write(dir.path().join("high.rs"), "// crate::nothing in a comment\nuse crate::low::Other;\n").unwrap();
    std::fs::write(dir.path().join("leaf.rs"), "fn f() {}\n#[cfg(test)]\nmod t { use crate::high::X; }\n").unwrap();
    let found = cycles(&graph(dir.path()));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("high -> low ("), "{found:?}");
    assert!(found[0].contains("high.rs:2"), "{found:?}");
    assert!(found[0].contains("low -> high ("), "{found:?}");
}
