//! Spin variables: name rules, `{{ name }}` templates, provider order, and the host side of
//! `fermyon:spin/variables@2.0.0`.
//!
//! Values come, in Spin's order, from `--variable` (here [`crate::AppOptions::variables`]), then
//! the environment (`SPIN_VARIABLE_<NAME>`), then the manifest default. A required variable
//! with no value stops the app from loading, as `spin up` does. Everything is resolved once at
//! load: providers are static for the life of the app.

use std::collections::{BTreeMap, HashMap};

use crate::manifest::VariableDef;
use crate::spin_bindings::fermyon::spin::variables::{self, Error};

/// Spin's variable-name rule: lowercase ASCII letters, digits and single underscores, starting
/// with a letter and ending with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty".to_string()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!("invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores.")
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        "must start with a lowercase ASCII letter".to_string()
    } else if !name.as_bytes()[name.len() - 1].is_ascii_alphanumeric() {
        "must end with a lowercase ASCII letter or digit".to_string()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_string()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

/// A string with `{{ name }}` expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let (expr, tail) = after
                    .split_once("}}")
                    .ok_or_else(|| "unmatched '{{' in template".to_string())?;
                parts.push(Part::Var(expr.trim().to_string()));
                rest = tail;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Lit(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Template { parts })
    }

    /// The variables the template refers to.
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Substitutes resolved application variables.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Var(v) => out.push_str(
                    values
                        .get(v)
                        .ok_or_else(|| format!("unknown variable {v:?}"))?,
                ),
            }
        }
        Ok(out)
    }
}

/// A required variable had no value from any provider.
#[derive(Debug, thiserror::Error)]
#[error("no provider resolved required variable {0:?} (pass it with --variable {0}=... or SPIN_VARIABLE_{upper})", upper = .0.to_ascii_uppercase())]
pub struct MissingVariable(pub String);

/// Resolves every application variable through the providers, in Spin's order.
pub fn resolve_app_variables(
    defs: &BTreeMap<String, VariableDef>,
    cli: &HashMap<String, String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, MissingVariable> {
    let mut values = BTreeMap::new();
    for (name, def) in defs {
        let value = cli
            .get(name)
            .cloned()
            .or_else(|| env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())))
            .or_else(|| def.default.clone())
            .ok_or_else(|| MissingVariable(name.clone()))?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// What one component may read through `fermyon:spin/variables`.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    /// The component whose `[component.x.variables]` these are (for Spin's error messages).
    pub component_id: String,
    /// Component variable name -> rendered value.
    pub values: BTreeMap<String, String>,
    /// A dependency without `dependencies_inherit_configuration` gets Spin's deny-all adapter,
    /// whose `get` answers `undefined` for every name.
    pub denied: bool,
}

impl ComponentVariables {
    pub fn get(&self, name: &str) -> Result<String, Error> {
        if self.denied {
            return Err(Error::Undefined(name.to_string()));
        }
        validate_name(name).map_err(Error::InvalidName)?;
        self.values.get(name).cloned().ok_or_else(|| {
            Error::Undefined(format!("no variable for {:?}.{name:?}", self.component_id))
        })
    }
}

/// The host view for `fermyon:spin/variables`, borrowed from the store data.
pub struct VariablesView<'a> {
    pub vars: &'a ComponentVariables,
}

impl variables::Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> Result<String, Error> {
        self.vars.get(&name)
    }
}

/// `HasData` marker for binding the variables interface to [`VariablesView`].
pub struct VariablesHost;

impl wasmtime::component::HasData for VariablesHost {
    type Data<'a> = VariablesView<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spin_rules() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            validate_name(bad).unwrap_err();
        }
    }

    #[test]
    fn templates_render_and_reject_unmatched_braces() {
        let t = Template::parse("a-{{ x }}-{{y}}").unwrap();
        assert_eq!(t.variable_names().collect::<Vec<_>>(), ["x", "y"]);
        let values = BTreeMap::from([("x".into(), "1".into()), ("y".into(), "2".into())]);
        assert_eq!(t.render(&values).unwrap(), "a-1-2");
        Template::parse("{{ open").unwrap_err();
    }

    #[test]
    fn providers_apply_in_spin_order() {
        let defs = BTreeMap::from([
            (
                "a".to_string(),
                VariableDef {
                    default: Some("da".into()),
                    required: false,
                    secret: false,
                },
            ),
            (
                "b".to_string(),
                VariableDef {
                    default: Some("db".into()),
                    required: false,
                    secret: false,
                },
            ),
            (
                "c".to_string(),
                VariableDef {
                    default: Some("dc".into()),
                    required: false,
                    secret: false,
                },
            ),
            (
                "r".to_string(),
                VariableDef {
                    default: None,
                    required: true,
                    secret: false,
                },
            ),
        ]);
        let cli = HashMap::from([
            ("a".to_string(), "cli".to_string()),
            ("r".to_string(), "x".to_string()),
        ]);
        let env = |k: &str| match k {
            "SPIN_VARIABLE_A" | "SPIN_VARIABLE_B" => Some("env".to_string()),
            _ => None,
        };
        let values = resolve_app_variables(&defs, &cli, env).unwrap();
        assert_eq!(values["a"], "cli");
        assert_eq!(values["b"], "env");
        assert_eq!(values["c"], "dc");
        let err = resolve_app_variables(&defs, &HashMap::new(), |_| None).unwrap_err();
        assert_eq!(err.0, "r");
    }
}
