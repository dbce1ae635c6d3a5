//! `storefront:cart/config`, and typed access to the adapter's own settings.
//!
//! Everything is a Spin variable. The adapter runs as a dependency of the cart component with
//! `dependencies_inherit_configuration = true`, so it sees the cart component's variables.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use spin_sdk::variables;

use crate::exports::storefront::cart::config::Guest;

impl Guest for crate::Adapter {
    fn get(name: String) -> Option<String> {
        // The contract has no error case: undefined, invalid names and provider failures all
        // read as "not set".
        read(&name).ok().flatten()
    }

    fn get_many(names: Vec<String>) -> Vec<Option<String>> {
        names.iter().map(|name| read(name).ok().flatten()).collect()
    }
}

thread_local! {
    /// Variables already read by this instance: `None` for one the host does not define. An
    /// instance serves one request, so a value lives exactly as long as the request, and a
    /// setting the adapter consults on every call of a request (`lock_url` on each lease
    /// call, `store_url` on each store call) costs one host call instead of one per call: on
    /// Spin each variable lookup runs in `block_in_place` and is far from free. Provider
    /// failures are not kept, so the next read asks again.
    static READ: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::new());
}

/// A variable's value, `None` when the host does not define it (undefined, or a name it
/// calls invalid: our names are valid, so a host calling one invalid does not know it).
fn read(name: &str) -> Result<Option<String>, variables::Error> {
    if let Some(value) = READ.with(|read| read.borrow().get(name).cloned()) {
        return Ok(value);
    }
    let value = match variables::get(name) {
        Ok(value) => Some(value),
        Err(variables::Error::Undefined(_) | variables::Error::InvalidName(_)) => None,
        Err(error) => return Err(error),
    };
    READ.with(|read| read.borrow_mut().insert(name.to_owned(), value.clone()));
    Ok(value)
}

/// A setting that cannot be read or makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The variables provider failed. Falling back to a default here could silently switch
    /// backends (say, locks from Redis to key-value), so this is an error, not a default.
    Unreadable { name: String, reason: String },
    /// The value is set but not one this adapter understands.
    Invalid { name: String, reason: String },
}

impl ConfigError {
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { name, reason } => {
                write!(f, "bad configuration: variable {name} unreadable: {reason}")
            }
            ConfigError::Invalid { name, reason } => {
                write!(f, "bad configuration: variable {name}: {reason}")
            }
        }
    }
}

/// Reads a setting: none when undefined or blank (so the documented default applies).
pub fn setting(name: &str) -> Result<Option<String>, ConfigError> {
    match read(name) {
        Ok(value) => Ok(value.and_then(non_blank)),
        Err(error) => Err(ConfigError::Unreadable {
            name: name.to_owned(),
            reason: format!("{error:?}"),
        }),
    }
}

/// Reads a setting, falling back to `default` when it is undefined or blank.
pub fn setting_or(name: &str, default: &str) -> Result<String, ConfigError> {
    Ok(setting(name)?.unwrap_or_else(|| default.to_owned()))
}

/// Reads a timeout in milliseconds; see [`parse_timeout_ms`].
pub fn timeout_ms(name: &str, default: u64) -> Result<u64, ConfigError> {
    Ok(parse_timeout_ms(setting(name)?.as_deref(), default))
}

/// Longest timeout accepted: one minute. Spin's own default of 600 s is what we avoid.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// A timeout setting: malformed or zero values fall back to `default` (harmless: the default
/// is a sane deadline), larger values are capped at [`MAX_TIMEOUT_MS`].
pub fn parse_timeout_ms(raw: Option<&str>, default: u64) -> u64 {
    match raw.map(str::trim).map(str::parse::<u64>) {
        Some(Ok(0)) | Some(Err(_)) | None => default,
        Some(Ok(ms)) => ms.min(MAX_TIMEOUT_MS),
    }
}

fn non_blank(value: String) -> Option<String> {
    if value.trim().is_empty() {
        None
    } else {
        Some(value.trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fall_back_to_the_default_when_malformed_or_zero() {
        assert_eq!(parse_timeout_ms(None, 1500), 1500);
        assert_eq!(parse_timeout_ms(Some("abc"), 1500), 1500);
        assert_eq!(parse_timeout_ms(Some("-5"), 1500), 1500);
        assert_eq!(parse_timeout_ms(Some("0"), 1500), 1500);
        assert_eq!(parse_timeout_ms(Some(" 250 "), 1500), 250);
    }

    #[test]
    fn timeouts_are_capped() {
        assert_eq!(parse_timeout_ms(Some("600000"), 1500), MAX_TIMEOUT_MS);
    }

    #[test]
    fn blank_values_count_as_unset() {
        assert_eq!(non_blank("  ".into()), None);
        assert_eq!(non_blank(" kv ".into()), Some("kv".into()));
    }

    #[test]
    fn errors_say_bad_configuration_and_name_the_variable() {
        let text = ConfigError::invalid("events_api", "expected v2 or v3").to_string();
        assert_eq!(
            text,
            "bad configuration: variable events_api: expected v2 or v3"
        );
    }
}
