//! The layers, checked: the domain crate depends on no adapter (no AWS SDK, SQLite, HTTP
//! server or Lambda runtime, not even transitively), no domain module names one, and the
//! domain's modules import each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates the domain must never reach: the adapters' and the edge's.
const FORBIDDEN_CRATES: &[&str] = &[
    "aws-config",
    "aws-sdk-dynamodb",
    "aws-sdk-eventbridge",
    "aws-sdk-apigatewaymanagement",
    "aws-smithy-runtime",
    "aws_lambda_events",
    "lambda_runtime",
    "lambda_http",
    "rusqlite",
    "hyper",
    "hyper-util",
    "realtime-aws",
    "realtime-embedded",
    "realtime-edge",
];

/// Path roots a domain module must never name (the same crates, as Rust spells them).
const FORBIDDEN_PATHS: &[&str] = &[
    "aws_config",
    "aws_sdk_",
    "aws_smithy",
    "aws_lambda_events",
    "lambda_runtime",
    "lambda_http",
    "rusqlite",
    "hyper",
    "realtime_aws",
    "realtime_embedded",
    "realtime_edge",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module of the crate: its path (`chat::messages`; `` for the root) → its file.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            (parts.join("::"), f)
        })
        .collect()
}

/// A module's production code: the part before its tests, without comments.
fn production_code(file: &Path) -> String {
    let src = std::fs::read_to_string(file).unwrap();
    let src = src.split("#[cfg(test)]").next().unwrap_or_default();
    src.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths after each `prefix` (`crate::`, `super::`) in `code`, with brace groups
/// expanded one level: `crate::{a::b, c}` gives `a::b` and `c`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(is_ident) {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            out.extend(group[..end].split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
        } else {
            let end = rest.find(|c: char| !(is_ident(c) || c == ':')).unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The longest module that `path` starts with.
fn resolve(mods: &BTreeMap<String, PathBuf>, path: &str) -> Option<String> {
    let segs: Vec<&str> = path
        .split("::")
        .map(str::trim)
        .take_while(|s| !s.is_empty() && s.chars().all(is_ident))
        .collect();
    (1..=segs.len()).rev().map(|k| segs[..k].join("::")).find(|m| mods.contains_key(m))
}

/// Which modules each module imports. A module with children may re-export them
/// (`pub use child::…`, its table of contents); any other use of a child counts.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let mut g = BTreeMap::new();
    for (name, file) in &mods {
        let code = production_code(file);
        let is_dir_module = file.file_name().is_some_and(|f| f == "mod.rs" || f == "lib.rs");
        // `super` of `a::b` (a file) is `a`; of `a` (a/mod.rs) it is the root.
        let parent_of = |m: &str| m.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default();
        let sup = parent_of(name);
        let here = if is_dir_module { name.clone() } else { parent_of(name) };
        let join = |base: &str, p: &str| if base.is_empty() { p.to_string() } else { format!("{base}::{p}") };
        let mut deps = BTreeSet::new();
        for p in paths_after(&code, "crate::") {
            deps.extend(resolve(&mods, &p));
        }
        for p in paths_after(&code, "super::") {
            deps.extend(resolve(&mods, &join(&sup, &p)));
        }
        if is_dir_module {
            let body: String = code
                .lines()
                .filter(|l| {
                    let t = l.trim_start();
                    !(t.starts_with("pub use ") || t.starts_with("pub mod ") || t.starts_with("mod "))
                })
                .collect::<Vec<_>>()
                .join("\n");
            for child in mods.keys().filter(|m| parent_of(m) == here && **m != here) {
                let short = child.rsplit("::").next().unwrap_or_default();
                if !paths_after(&body, &format!("{short}::")).is_empty() {
                    deps.insert(child.clone());
                }
            }
        }
        deps.remove(name);
        g.insert(name.clone(), deps);
    }
    g
}

/// A cycle of the graph, if it has one (depth-first search).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_domain_depends_on_no_adapter_even_transitively() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "realtime-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.contains("serde"), "cargo tree listed the dependencies: {names:?}");
    let bad: Vec<&&str> = names
        .iter()
        .filter(|n| FORBIDDEN_CRATES.contains(n) || n.starts_with("aws-") || n.starts_with("hyper"))
        .collect();
    assert!(bad.is_empty(), "the domain depends on {bad:?}");
}

#[test]
fn no_domain_module_names_an_adapter() {
    let mut found = Vec::new();
    for (name, file) in modules() {
        let code = production_code(&file);
        for root in FORBIDDEN_PATHS {
            let hit = code
                .match_indices(root)
                .any(|(i, _)| !code[..i].chars().next_back().is_some_and(is_ident));
            if hit {
                found.push(format!("{name} names {root}"));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_domain_modules_import_each_other_without_a_cycle() {
    let g = graph();
    // The graph is real: the modules that obviously depend on others are seen doing so.
    assert!(g["outbox"].contains("log") && g["chat::messages"].contains("outbox"), "{g:#?}");
    if let Some(cycle) = find_cycle(&g) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: BTreeMap<String, BTreeSet<String>> =
        [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
            .into_iter()
            .fold(BTreeMap::new(), |mut g, (x, y)| {
                g.entry(x.to_string()).or_insert_with(BTreeSet::new).insert(y.to_string());
                g
            });
    assert_eq!(find_cycle(&g).map(|c| c.len()), Some(4));
    let acyclic: BTreeMap<String, BTreeSet<String>> = [("a".to_string(), BTreeSet::from(["b".to_string()]))].into();
    assert_eq!(find_cycle(&acyclic), None);
    assert_eq!(paths_after("use crate::{a::b, c};", "crate::"), vec!["a::b", "c"]);
    assert_eq!(paths_after("x = foocrate::y; crate::z::W", "crate::"), vec!["z::W"]);
}
