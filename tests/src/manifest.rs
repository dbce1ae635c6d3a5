//! Parsing of `spin.toml` (`spin_manifest_version = 2`): the parts a Spin HTTP app uses.
//!
//! Paths (component sources, dependency paths) are resolved against the manifest's folder, as
//! Spin does. Validation follows Spin's where a mistake would otherwise only show up at request
//! time: variable names, `{{ name }}` templates that name declared variables, trigger
//! components that exist, dependencies given by local path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::variables::{validate_name, Template};

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("unsupported spin_manifest_version {0}: only version 2 is supported")]
    Version(i64),
    #[error("variable {name:?}: {reason}")]
    Variable { name: String, reason: String },
    #[error("component {component:?}: {reason}")]
    Component { component: String, reason: String },
    #[error("HTTP trigger {index}: {reason}")]
    Trigger { index: usize, reason: String },
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Its folder: relative paths in the manifest are relative to it.
    pub dir: PathBuf,
    pub application_name: String,
    /// Application variables by name.
    pub variables: BTreeMap<String, VariableDef>,
    /// HTTP triggers in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentDef>,
}

/// `[variables] name = { default = "..." }` or `{ required = true }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDef {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    pub route: Route,
    pub component: String,
}

/// A trigger route: a path pattern, or `{ private = true }` (reachable only by service chaining).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Path(String),
    Private,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone)]
pub struct ComponentDef {
    pub id: String,
    /// The `.wasm` file, resolved against the manifest folder.
    pub source: PathBuf,
    pub key_value_stores: Vec<String>,
    pub allowed_outbound_hosts: Vec<String>,
    /// `[component.<id>.variables]`: component variable name -> template.
    pub variables: BTreeMap<String, String>,
    /// `[component.<id>.dependencies]` in manifest order.
    pub dependencies: Vec<DependencyDef>,
    pub dependencies_inherit_configuration: bool,
}

/// One component dependency given by local path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyDef {
    /// The dependency name as written: `pkg:ns/iface@ver`, `pkg:ns/iface`, `pkg:ns` or a plain name.
    pub name: String,
    /// The `.wasm` file, resolved against the manifest folder.
    pub path: PathBuf,
    /// `export = "..."`: the export to use instead of the import's own name.
    pub export: Option<String>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, path, &dir)
    }

    /// Parses manifest text as if it were the file `path` in folder `dir`.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|source| ManifestError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::Version(raw.spin_manifest_version));
        }

        let mut variables = BTreeMap::new();
        for (name, var) in raw.variables {
            validate_name(&name).map_err(|reason| ManifestError::Variable {
                name: name.clone(),
                reason,
            })?;
            // Spin requires exactly one of the two, so a variable always has a value or a
            // reason to refuse to start.
            if var.default.is_some() == var.required {
                return Err(ManifestError::Variable {
                    name,
                    reason: "needs exactly one of `default = \"...\"` or `required = true`".into(),
                });
            }
            variables.insert(
                name,
                VariableDef {
                    default: var.default,
                    required: var.required,
                    secret: var.secret,
                },
            );
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let component_err = |reason: String| ManifestError::Component {
                component: id.clone(),
                reason,
            };
            let source = match c.source {
                RawSource::Path(p) => dir.join(p),
                RawSource::Other(other) => {
                    return Err(component_err(format!(
                        "source {other} is not supported: the test host loads local paths only"
                    )))
                }
            };
            for (name, template) in &c.variables {
                validate_name(name)
                    .map_err(|reason| component_err(format!("variable {name:?}: {reason}")))?;
                let parsed = Template::parse(template)
                    .map_err(|reason| component_err(format!("variable {name:?}: {reason}")))?;
                for var in parsed.variable_names() {
                    if !variables.contains_key(var) {
                        return Err(component_err(format!(
                            "variable {name:?} refers to undeclared application variable {var:?}"
                        )));
                    }
                }
            }
            for host in &c.allowed_outbound_hosts {
                let parsed = Template::parse(host)
                    .map_err(|reason| component_err(format!("allowed host {host:?}: {reason}")))?;
                for var in parsed.variable_names() {
                    if !variables.contains_key(var) {
                        return Err(component_err(format!(
                            "allowed host {host:?} refers to undeclared variable {var:?}"
                        )));
                    }
                }
            }
            let mut dependencies = Vec::new();
            for (name, dep) in c.dependencies {
                match RawDependency::from(dep) {
                    RawDependency::Local { path, export } => dependencies.push(DependencyDef {
                        name,
                        path: dir.join(path),
                        export,
                    }),
                    RawDependency::Other(other) => {
                        return Err(component_err(format!(
                            "dependency {name:?} = {other} is not supported: the test host loads `{{ path = \"...\" }}` dependencies only"
                        )))
                    }
                }
            }
            components.insert(
                id.clone(),
                ComponentDef {
                    id,
                    source,
                    key_value_stores: c.key_value_stores,
                    allowed_outbound_hosts: c.allowed_outbound_hosts,
                    variables: c.variables,
                    dependencies,
                    dependencies_inherit_configuration: c.dependencies_inherit_configuration,
                },
            );
        }

        let mut http_triggers = Vec::new();
        for (index, t) in raw.trigger.http.into_iter().enumerate() {
            let component = match t.component {
                RawComponentRef::Id(id) => id,
                RawComponentRef::Other(other) => {
                    return Err(ManifestError::Trigger {
                        index,
                        reason: format!("inline component {other} is not supported by the test host; use `component = \"id\"`"),
                    })
                }
            };
            if !components.contains_key(&component) {
                return Err(ManifestError::Trigger {
                    index,
                    reason: format!("component {component:?} is not defined"),
                });
            }
            let route = match t.route {
                RawRoute::Path(p) => Route::Path(p),
                RawRoute::Private { private: true } => Route::Private,
                RawRoute::Private { private: false } => {
                    return Err(ManifestError::Trigger {
                        index,
                        reason: "route must be a string pattern or `{ private = true }`".into(),
                    })
                }
            };
            http_triggers.push(HttpTrigger { route, component });
        }

        Ok(Manifest {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            application_name: raw.application.name,
            variables,
            http_triggers,
            components,
        })
    }
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    /// Other trigger types (redis, cron...) are ignored: the test host only runs HTTP.
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: RawComponentRef,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawComponentRef {
    Id(String),
    Other(toml::Value),
}

#[derive(Deserialize)]
struct RawComponent {
    source: RawSource,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    dependencies: toml::map::Map<String, toml::Value>,
    #[serde(default)]
    dependencies_inherit_configuration: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Path(String),
    Other(toml::Value),
}

enum RawDependency {
    Local {
        path: String,
        export: Option<String>,
    },
    Other(toml::Value),
}

impl From<toml::Value> for RawDependency {
    fn from(value: toml::Value) -> Self {
        if let Some(table) = value.as_table() {
            if let Some(path) = table.get("path").and_then(toml::Value::as_str) {
                return RawDependency::Local {
                    path: path.to_string(),
                    export: table
                        .get("export")
                        .and_then(toml::Value::as_str)
                        .map(str::to_string),
                };
            }
        }
        RawDependency::Other(value)
    }
}
