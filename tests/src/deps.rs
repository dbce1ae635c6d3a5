//! Spin component dependencies: which imports a `[component.x.dependencies]` entry satisfies,
//! and forwarding of those imports to the dependency's exports.
//!
//! Spin composes the dependent and its dependencies into one component. Here they are separate
//! instances in the same `Store`: every function of a satisfied import is defined in the
//! dependent's linker as a host function that calls the dependency's matching export (dynamic
//! `Val`s, so any function signature without resources forwards unchanged).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::host_state::HostState;
use crate::manifest::ComponentDef;
use crate::stats::Stats;

/// How many instances of a dependency a request gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DependencyInstancing {
    /// One instance per dependency file per request, however many entries name it. The two
    /// modes differ only when entries of different packages (or plain names) name one file;
    /// the project's single `storefront:cart@0.1.0` entry gets one adapter instance, which
    /// serves all six interfaces, either way.
    #[default]
    PerFile,
    /// One instance per `[component.x.dependencies]` entry, as Spin's composer builds it
    /// (`spin_compose` instantiates every dependency entry separately).
    PerEntry,
}

/// The dependency instances a request creates before the dependent, in index order.
pub struct DependencyInstance {
    /// The dependency file or entry name (for statistics).
    pub label: String,
    pub pre: InstancePre<HostState>,
}

/// A parsed dependency or import name.
#[derive(Debug, PartialEq, Eq)]
enum Name<'a> {
    Plain(&'a str),
    Package {
        package: &'a str,
        interface: Option<&'a str>,
        version: Option<&'a str>,
    },
}

fn parse_name(name: &str) -> Name<'_> {
    if !name.contains([':', '/']) {
        return Name::Plain(name);
    }
    match name.split_once('/') {
        Some((package, rest)) => {
            let (interface, version) = match rest.split_once('@') {
                Some((i, v)) => (i, Some(v)),
                None => (rest, None),
            };
            Name::Package {
                package,
                interface: Some(interface),
                version,
            }
        }
        None => {
            let (package, version) = match name.split_once('@') {
                Some((p, v)) => (p, Some(v)),
                None => (name, None),
            };
            Name::Package {
                package,
                interface: None,
                version,
            }
        }
    }
}

/// Spin's `matches_import`: a dependency name matches an import of the same package, and of
/// the same interface and version when the dependency name gives them.
pub fn matches_import(dependency: &str, import: &str) -> bool {
    match (parse_name(dependency), parse_name(import)) {
        (Name::Plain(d), Name::Plain(i)) => d == i,
        (
            Name::Package {
                package: dp,
                interface: di,
                version: dv,
            },
            Name::Package {
                package: ip,
                interface: ii,
                version: iv,
            },
        ) => dp == ip && di.is_none_or(|d| Some(d) == ii) && dv.is_none_or(|d| Some(d) == iv),
        _ => false,
    }
}

/// The name Spin's composer registers a dependency entry under in its composition graph: the
/// package without interface or version (`storefront:cart` for `storefront:cart/kv@0.1.0`), or
/// the plain name. The dependent itself is registered first, under its component id.
///
/// A name registered twice fails the app (``package `storefront:cart` has already been
/// registered in the graph``): so Spin takes one entry per package. Two interface keys of one
/// package (`"storefront:cart/documents@0.1.0"` and `"storefront:cart/kv@0.1.0"`), or an
/// interface key beside its package key, are refused even when they name the same file; one
/// key per package, interface or package, is fine.
fn graph_package_name(dependency: &str) -> &str {
    match parse_name(dependency) {
        Name::Plain(name) => name,
        Name::Package { package, .. } => package,
    }
}

/// The error Spin reports when a second entry registers a package name already in the graph.
fn already_registered(component_id: &str, package: &str) -> anyhow::Error {
    anyhow::anyhow!("package `{package}` has already been registered in the graph")
        .context("an error occurred when preparing dependencies")
        .context(format!(
            "failed to resolve dependencies for component {component_id:?}"
        ))
}

/// Satisfies `component`'s imports named by `def.dependencies` with forwarding functions in
/// `linker`, and returns the dependency instances each request must create first.
pub fn link_dependencies(
    linker: &mut Linker<HostState>,
    component: &Component,
    def: &ComponentDef,
    dep_linker: &Linker<HostState>,
    instancing: DependencyInstancing,
    stats: &Arc<Stats>,
) -> Result<Vec<DependencyInstance>> {
    let engine = crate::engine::engine();
    let component_type = component.component_type();
    let imports: Vec<(String, ComponentItem)> = component_type
        .imports(engine)
        .map(|(name, ext)| (name.to_string(), ext.ty))
        .collect();

    // Import name -> index of the dependency entry that satisfies it. Like Spin's composer,
    // each entry must match an import before it is registered under `graph_package_name`,
    // which must not be registered yet.
    let mut satisfied: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut registered = HashSet::from([def.id.as_str()]);
    for (entry, dep) in def.dependencies.iter().enumerate() {
        let mut matched = false;
        for (import, _) in &imports {
            if matches_import(&dep.name, import) {
                satisfied.entry(import.clone()).or_default().push(entry);
                matched = true;
            }
        }
        if !matched {
            bail!(
                "dependency {:?} doesn't match any imports of component {:?}",
                dep.name,
                def.id
            );
        }
        let package = graph_package_name(&dep.name);
        if !registered.insert(package) {
            return Err(already_registered(&def.id, package));
        }
    }
    if let Some((import, entries)) = satisfied.iter().find(|(_, e)| e.len() > 1) {
        let names: Vec<&str> = entries
            .iter()
            .map(|&e| def.dependencies[e].name.as_str())
            .collect();
        bail!(
            "component {:?} has dependency conflicts: import {import:?} satisfied by dependencies {names:?}",
            def.id
        );
    }

    let mut instances: Vec<DependencyInstance> = Vec::new();
    let mut components: Vec<Component> = Vec::new();
    let mut index_by_key: HashMap<String, usize> = HashMap::new();
    let mut forward = Vec::new();
    for (import, entries) in &satisfied {
        let dep = &def.dependencies[entries[0]];
        let key = match instancing {
            DependencyInstancing::PerFile => dep.path.display().to_string(),
            DependencyInstancing::PerEntry => dep.name.clone(),
        };
        let index = match index_by_key.get(&key) {
            Some(&i) => i,
            None => {
                let dep_component =
                    crate::engine::load_component(&dep.path).with_context(|| {
                        format!("dependency {:?} of component {:?}", dep.name, def.id)
                    })?;
                let pre = dep_linker
                    .instantiate_pre(&dep_component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "dependency {:?} of component {:?} imports something the host does not provide",
                            dep.name, def.id
                        )
                    })?;
                instances.push(DependencyInstance {
                    label: key.clone(),
                    pre,
                });
                components.push(dep_component);
                index_by_key.insert(key, instances.len() - 1);
                instances.len() - 1
            }
        };
        forward.push((import.clone(), dep.export.clone(), index));
    }

    for (import, export, index) in forward {
        let export_name = export.unwrap_or_else(|| import.clone());
        let dep_component = &components[index];
        let Some(instance_export) = dep_component.get_export_index(None, export_name.as_str())
        else {
            bail!(
                "dependency of component {:?} doesn't export {export_name:?} to satisfy import {import:?}",
                def.id
            );
        };
        let Some((_, ComponentItem::ComponentInstance(import_type))) =
            imports.iter().find(|(name, _)| *name == import)
        else {
            bail!(
                "import {import:?} of component {:?} is not an interface",
                def.id
            );
        };
        let mut functions = Vec::new();
        for (name, ext) in import_type.exports(engine) {
            match ext.ty {
                ComponentItem::ComponentFunc(_) => {
                    let Some(func) = dep_component.get_export_index(Some(&instance_export), name) else {
                        bail!("dependency export {export_name:?} has no function {name:?} that import {import:?} needs");
                    };
                    functions.push((name.to_string(), func));
                }
                ComponentItem::Resource(_) => bail!(
                    "import {import:?} uses resources, which the test host cannot forward between components"
                ),
                // Types need no definition.
                _ => {}
            }
        }
        let mut instance = linker.instance(&import).map_err(anyhow::Error::from)?;
        for (name, func) in functions {
            let label: Arc<str> = format!("{import}#{name}").into();
            let stats = stats.clone();
            instance
                .func_new_async(&name, move |mut store, _ty, params, results| {
                    let label = label.clone();
                    let stats = stats.clone();
                    Box::new(async move {
                        stats.record_dependency_call(&label);
                        let target = *store.data().dep_instances.get(index).ok_or_else(|| {
                            wasmtime::format_err!("dependency instance {index} was not created")
                        })?;
                        let callee = target.get_func(&mut store, func).ok_or_else(|| {
                            wasmtime::format_err!("dependency function {label} not found")
                        })?;
                        callee.call_async(&mut store, params, results).await
                    })
                })
                .map_err(anyhow::Error::from)?;
        }
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::{graph_package_name, matches_import};

    #[test]
    fn entries_register_under_their_package_or_plain_name() {
        for (dep, registered) in [
            ("storefront:cart/kv@0.1.0", "storefront:cart"),
            ("storefront:cart/documents", "storefront:cart"),
            ("storefront:cart@0.1.0", "storefront:cart"),
            ("storefront:cart", "storefront:cart"),
            ("foo-bar", "foo-bar"),
        ] {
            assert_eq!(graph_package_name(dep), registered, "{dep}");
        }
    }

    #[test]
    fn matches_like_spin() {
        for (dep, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo:bar/baz", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo-bar", vec!["foo-bar"]),
        ] {
            for import in imports {
                assert!(matches_import(dep, import), "{dep} vs {import}");
            }
        }
        for (dep, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/bub", "foo:bar/bub@0.1.0"]),
            ("foo:bar", vec!["foo:bub/bib"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/baz-bub", "foo-bar"]),
        ] {
            for import in imports {
                assert!(!matches_import(dep, import), "{dep} vs {import}");
            }
        }
    }
}
