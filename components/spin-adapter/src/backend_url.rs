//! What a backend URL variable (`store_url`, `lock_url`) names. One classification for both,
//! so the store and the locks can never disagree about what a URL means.

use crate::config::ConfigError;

#[derive(Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// `kv`: Spin key-value.
    KeyValue,
    /// `redis://` or `rediss://`: Spin's outbound Redis.
    Redis,
    /// `http(s)://`: an Upstash-compatible Redis REST endpoint.
    Rest,
}

/// Classifies a non-empty `variable` value. Anything else is an error (`expected` says what is
/// accepted), never a silent fallback to a local backend: instances disagreeing about the
/// backend would each keep their own state and not exclude each other.
pub fn classify(variable: &str, url: &str, expected: &str) -> Result<BackendKind, ConfigError> {
    let lower = url.to_ascii_lowercase();
    if lower == "kv" {
        Ok(BackendKind::KeyValue)
    } else if lower.starts_with("redis://") || lower.starts_with("rediss://") {
        Ok(BackendKind::Redis)
    } else if lower.starts_with("https://") || lower.starts_with("http://") {
        crate::urls::split(url).map_err(|e| ConfigError::invalid(variable, e.to_string()))?;
        Ok(BackendKind::Rest)
    } else {
        Err(ConfigError::invalid(variable, expected))
    }
}
