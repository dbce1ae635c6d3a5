//! The cart component's module graph has no cycle: no file in `components/cart/src` imports
//! one that (directly or through others) imports it back. Dependencies point one way, so a
//! rule can be changed in one place and the next engineer can read the code bottom-up.

use std::collections::{BTreeMap, BTreeSet};

use cart_tests::workspace_root;

/// Module name -> the crate modules it names (`crate::x`), from the source text.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = workspace_root().join("components/cart/src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("components/cart/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name")
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        let deps = text
            .match_indices("crate::")
            .map(|(at, _)| {
                text[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|dep| !dep.is_empty() && *dep != name)
            .collect();
        graph.insert(name, deps);
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

#[test]
fn no_cart_module_imports_one_that_imports_it_back() {
    let graph = module_graph();
    assert!(graph.len() > 20, "found the cart's modules: {graph:?}");
    assert!(
        graph["api"].contains("line_change"),
        "the graph sees `crate::` paths"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
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
