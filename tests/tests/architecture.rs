//! The cart component's layers, read from its source text (`components/cart/src`):
//!
//! * every module sits in one of four layer folders, `edge/` → `ops/` → `ports/` → `runtime/`,
//!   and names modules of its own layer or of layers below it, never above;
//! * no module imports one that (directly or through others) imports it back;
//! * a module names another through its layer folder (`crate::ops::relay`), never through the
//!   crate root's imports, so the reader above cannot be bypassed;
//! * only the edge builds `Problem` (the HTTP error): `ops` and `ports` return typed errors
//!   that `edge/problem.rs` turns into problems, and no module below the edge names `Problem`;
//! * `crates/cart-domain`'s rules return typed errors too: the crate has no `Problem` type
//!   and builds none, and `edge/problem.rs` maps each of its rule errors;
//! * only `ports/` touches the generated `storefront:cart` bindings, and only `lib.rs`,
//!   `edge/http_io.rs` and `ports/bindings.rs` touch `spin_sdk`;
//! * one write path: only `ops/commit.rs` writes a cart document and counts a lost race.
//!
//! Dependencies point one way, so a rule can be changed in one place and the next engineer
//! can read the code bottom-up. The layer map is in docs/architecture.md ("Code map").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cart_tests::workspace_root;

/// The layer folders, lowest first: a module may name modules of its own layer and below.
const LAYERS: [&str; 4] = ["runtime", "ports", "ops", "edge"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

/// One source file of the cart: `layer::module` (the crate root is `lib`), and its text.
struct Source {
    id: String,
    layer: Option<String>,
    text: String,
}

/// Every `.rs` file under `components/cart/src`, one folder deep.
fn sources() -> Vec<Source> {
    let root = workspace_root().join("components/cart/src");
    let mut out = Vec::new();
    collect(&root, &root, &mut out);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<Source>) {
    for entry in std::fs::read_dir(dir).expect("a readable source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(root, &path, out);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("under the source root")
            .with_extension("");
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_str().expect("a UTF-8 path").to_owned())
            .collect();
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        out.push(Source {
            id: parts.join("::"),
            layer: (parts.len() > 1).then(|| parts[0].clone()),
            text,
        });
    }
}

/// The source without its unit tests (`#[cfg(test)] mod tests { … }` closes every file that
/// has one): what the component ships.
fn shipped(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first identifier of each top-level item of the `{…}` group `text` starts with.
fn group_heads(text: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    item_start = true;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => item_start = true,
            c if depth == 1 && item_start && (c.is_ascii_alphabetic() || c == '_') => {
                heads.push(ident(&text[i..]).to_owned());
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every `crate::` path in `text` as (first segment, modules named under it): `crate::ops::x`
/// gives `("ops", ["x"])`, `crate::ports::{a, b::c}` gives `("ports", ["a", "b"])`.
fn crate_paths(text: &str) -> Vec<(String, Vec<String>)> {
    text.match_indices("crate::")
        .filter(|(at, _)| {
            // `$crate::` and identifiers ending in `crate` are not paths of this crate.
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
        .map(|(at, _)| {
            let rest = &text[at + "crate::".len()..];
            let first = ident(rest).to_owned();
            let after = &rest[first.len()..];
            let modules = match after.strip_prefix("::") {
                Some(group) if group.starts_with('{') => group_heads(group),
                Some(path) => vec![ident(path).to_owned()],
                None => Vec::new(),
            };
            (
                first,
                modules.into_iter().filter(|m| !m.is_empty()).collect(),
            )
        })
        .collect()
}

/// Module (`layer::module`) -> the modules it names, from the source text. A `super::x` in a
/// layer's file names its sibling `x` when `x` is a module of that layer.
fn module_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<&str> = sources.iter().map(|s| s.id.as_str()).collect();
    let mut graph = BTreeMap::new();
    for source in sources {
        let Some(layer) = &source.layer else { continue };
        let mut deps: BTreeSet<String> = crate_paths(&source.text)
            .into_iter()
            .flat_map(|(first, modules)| modules.into_iter().map(move |m| format!("{first}::{m}")))
            .filter(|dep| known.contains(dep.as_str()))
            .collect();
        for (at, _) in source.text.match_indices("super::") {
            let sibling = format!("{layer}::{}", ident(&source.text[at + "super::".len()..]));
            if known.contains(sibling.as_str()) {
                deps.insert(sibling);
            }
        }
        deps.remove(&source.id);
        graph.insert(source.id.clone(), deps);
    }
    graph
}

/// A cycle through `start`, if any, as the path of modules.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for dep in graph.get(&at).into_iter().flatten() {
            if dep == start {
                let mut cycle = path.clone();
                cycle.push(dep.clone());
                return Some(cycle);
            }
            if seen.insert(dep.clone()) {
                let mut next = path.clone();
                next.push(dep.clone());
                stack.push((dep.clone(), next));
            }
        }
    }
    None
}

/// Every dependency that points up (`from` names a module of a higher layer), as text.
fn upward(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let layer_rank = |id: &str| id.split("::").next().and_then(rank);
    graph
        .iter()
        .flat_map(|(from, deps)| deps.iter().map(move |to| (from, to)))
        .filter(|(from, to)| layer_rank(from) < layer_rank(to))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect()
}

#[test]
fn every_cart_module_sits_in_a_layer_folder() {
    let sources = sources();
    assert!(sources.len() > 30, "found the cart's modules");
    let misplaced: Vec<&str> = sources
        .iter()
        .filter(|s| match &s.layer {
            None => s.id != "lib",
            Some(layer) => rank(layer).is_none() || s.id.matches("::").count() != 1,
        })
        .map(|s| s.id.as_str())
        .collect();
    assert!(
        misplaced.is_empty(),
        "modules outside the layer folders {LAYERS:?} (the root holds only lib.rs): {misplaced:?}"
    );
}

#[test]
fn layers_point_one_way() {
    let graph = module_graph(&sources());
    assert!(
        graph["edge::api"].contains("ops::line_change"),
        "the graph sees `crate::` paths: {:?}",
        graph["edge::api"]
    );
    let up = upward(&graph);
    assert!(
        up.is_empty(),
        "modules that name a layer above their own ({LAYERS:?}, lowest first):\n{}",
        up.join("\n")
    );
}

#[test]
fn no_cart_module_imports_one_that_imports_it_back() {
    let graph = module_graph(&sources());
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn modules_are_named_through_their_layer_folder() {
    // `lib.rs` imports a few modules into the crate root for its handler; a `crate::relay`
    // elsewhere would compile through that import and hide a dependency from this test.
    let through_root: Vec<String> = sources()
        .iter()
        .flat_map(|s| {
            crate_paths(&s.text)
                .into_iter()
                .filter(|(first, _)| rank(first).is_none())
                .map(move |(first, _)| format!("{}: crate::{first}", s.id))
        })
        .collect();
    assert!(
        through_root.is_empty(),
        "paths that skip the layer folder:\n{}",
        through_root.join("\n")
    );
}

/// `(module, token)` for every shipped module outside `allowed` whose code (unit tests aside)
/// contains one of `tokens`.
fn mentions(sources: &[Source], tokens: &[&str], allowed: impl Fn(&Source) -> bool) -> Vec<String> {
    sources
        .iter()
        .filter(|s| !allowed(s))
        .flat_map(|s| {
            let code = shipped(&s.text);
            tokens
                .iter()
                .filter(move |t| code.contains(*t))
                .map(move |t| format!("{}: {t}", s.id))
        })
        .collect()
}

#[test]
fn only_the_edge_builds_problems() {
    let sources = sources();
    let in_edge = |s: &Source| s.layer.as_deref() == Some("edge");
    let builders = mentions(&sources, &["Problem::new", "ProblemKind"], in_edge);
    assert!(
        builders.is_empty(),
        "problems built below the edge (return an error of the layer instead):\n{}",
        builders.join("\n")
    );
    // Not even carried: cart-domain's rules answer with typed errors (`OpError::Rule`).
    let named = mentions(&sources, &["Problem"], in_edge);
    assert!(
        named.is_empty(),
        "modules below the edge that name Problem:\n{}",
        named.join("\n")
    );
    let mapping = sources
        .iter()
        .find(|s| s.id == "edge::problem")
        .expect("edge/problem.rs maps errors to problems");
    assert!(mapping.text.contains("impl From<OpError> for Problem"));
}

/// Every `.rs` file of `crates/cart-domain/src`, by file stem.
fn domain_sources() -> Vec<Source> {
    let root = workspace_root().join("crates/cart-domain/src");
    let mut out = Vec::new();
    collect(&root, &root, &mut out);
    out
}

#[test]
fn cart_domain_rules_return_typed_errors() {
    let domain = domain_sources();
    assert!(
        domain.iter().any(|s| s.id == "cart"),
        "cart-domain's sources were found"
    );
    // The HTTP problem is the edge's: the pure rules neither define nor build one.
    let builders = mentions(
        &domain,
        &["Problem::new", "ProblemKind", "struct Problem"],
        |_| false,
    );
    assert!(
        builders.is_empty(),
        "cart-domain modules that build a Problem (return a typed error, map it in \
         the cart's edge/problem.rs):\n{}",
        builders.join("\n")
    );
    let cart = sources();
    let mapping = cart
        .iter()
        .find(|s| s.id == "edge::problem")
        .expect("edge/problem.rs maps errors to problems");
    for error in ["RuleError", "RequestError", "EntityTagError", "KeyError"] {
        assert!(
            mapping
                .text
                .contains(&format!("impl From<{error}> for Problem")),
            "edge/problem.rs maps cart-domain's {error}"
        );
    }
}

#[test]
fn only_ports_touch_the_generated_bindings() {
    let sources = sources();
    let touching = mentions(&sources, &["bindings::", "wit_bindgen"], |s| {
        s.layer.as_deref() == Some("ports")
    });
    assert!(
        touching.is_empty(),
        "modules outside ports/ that touch the generated bindings:\n{}",
        touching.join("\n")
    );
    let spin = mentions(&sources, &["spin_sdk"], |s| {
        matches!(s.id.as_str(), "lib" | "edge::http_io" | "ports::bindings")
    });
    assert!(
        spin.is_empty(),
        "modules that touch spin_sdk besides the handler, http_io and the bindings:\n{}",
        spin.join("\n")
    );
}

#[test]
fn cart_documents_have_one_write_path() {
    let sources = sources();
    // `commit::run` is the retry loop and its `write` the only caller of the repository's
    // compare-and-swap; an operation with a loop of its own would count conflicts itself.
    let writers = mentions(
        &sources,
        &["cart_repo::save", "cart_version_conflicts_total"],
        |s| matches!(s.id.as_str(), "ops::commit" | "runtime::metric_registry"),
    );
    assert!(
        writers.is_empty(),
        "cart writes or conflict counts outside ops/commit.rs:\n{}",
        writers.join("\n")
    );
}

#[test]
fn the_path_reader_sees_layers_groups_and_siblings() {
    let text = "use crate::ports::{bindings::{kv, locks}, metrics};\n\
                let x = crate::runtime::clock::now_ms();\n\
                macro_rules! m { () => { $crate::edge::api } }\n\
                use super::commit;\n\
                #[cfg(test)]\nmod tests { use crate::edge::api; }";
    assert_eq!(
        crate_paths(text),
        vec![
            (
                "ports".to_owned(),
                vec!["bindings".to_owned(), "metrics".to_owned()]
            ),
            ("runtime".to_owned(), vec!["clock".to_owned()]),
            ("edge".to_owned(), vec!["api".to_owned()]),
        ]
    );
    assert!(!shipped(text).contains("mod tests"));
    let source = |id: &str, text: &str| Source {
        id: id.to_owned(),
        layer: id.split_once("::").map(|(l, _)| l.to_owned()),
        text: text.to_owned(),
    };
    let graph = module_graph(&[
        source("ops::clear", text),
        source("ops::commit", ""),
        source("ports::bindings", ""),
        source("ports::metrics", ""),
        source("runtime::clock", ""),
        source("edge::api", ""),
    ]);
    let expected: BTreeSet<String> = [
        "ports::bindings",
        "ports::metrics",
        "runtime::clock",
        "ops::commit",
        "edge::api",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(graph["ops::clear"], expected);
    assert_eq!(upward(&graph), vec!["ops::clear -> edge::api".to_owned()]);
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_owned(), deps.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycle_from(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle_from(&graph, "d"), None);
}
