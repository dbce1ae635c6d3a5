//! Leases in an Upstash-compatible Redis REST endpoint over outbound HTTP
//! ([`crate::upstash_rest`], shared with the Redis store backend).
//!
//! Same commands as the native Redis backend: `SET … NX PX` to acquire, the compare-and-delete
//! script to release.

use serde_json::Value;

use super::redis::RELEASE_SCRIPT;
use super::redis_key;
use crate::exports::storefront::cart::locks::LockError;
pub use crate::upstash_rest::UpstashConfig;

pub fn try_acquire(
    config: &UpstashConfig,
    key: &str,
    ttl_ms: u32,
    token: &str,
) -> Result<bool, LockError> {
    let command = serde_json::json!(["SET", redis_key(key), token, "NX", "PX", ttl_ms.to_string()]);
    set_outcome(&call(config, &command)?).map_err(LockError::Unavailable)
}

pub fn release(config: &UpstashConfig, key: &str, token: &str) -> Result<bool, LockError> {
    let command = serde_json::json!(["EVAL", RELEASE_SCRIPT, "1", redis_key(key), token]);
    release_outcome(&call(config, &command)?).map_err(LockError::Unavailable)
}

/// Runs one command; the `result` on success.
fn call(config: &UpstashConfig, command: &Value) -> Result<Value, LockError> {
    crate::upstash_rest::call(config, command)
        .map_err(|e| LockError::Unavailable(format!("upstash lock: {e}")))
}

/// `SET … NX`: `"OK"` when taken, null when held.
fn set_outcome(result: &Value) -> Result<bool, String> {
    match result {
        Value::String(status) if status.eq_ignore_ascii_case("OK") => Ok(true),
        Value::Null => Ok(false),
        other => Err(format!("upstash lock: unexpected SET result {other}")),
    }
}

/// The release script: 1 when the caller's key was deleted, 0 otherwise.
fn release_outcome(result: &Value) -> Result<bool, String> {
    match result.as_i64() {
        Some(1) => Ok(true),
        Some(0) => Ok(false),
        _ => Err(format!("upstash lock: unexpected EVAL result {result}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_results() {
        assert_eq!(set_outcome(&json!("OK")), Ok(true));
        assert_eq!(set_outcome(&Value::Null), Ok(false));
        assert!(set_outcome(&json!(1)).is_err());
    }

    #[test]
    fn release_results() {
        assert_eq!(release_outcome(&json!(1)), Ok(true));
        assert_eq!(release_outcome(&json!(0)), Ok(false));
        assert!(release_outcome(&json!("1")).is_err());
        assert!(release_outcome(&Value::Null).is_err());
    }

    #[test]
    fn commands_are_json_arrays_of_strings() {
        let command = json!([
            "SET",
            redis_key("s:u:p"),
            "tok",
            "NX",
            "PX",
            30000u32.to_string()
        ]);
        assert_eq!(
            command.to_string(),
            r#"["SET","cart-lock:s:u:p","tok","NX","PX","30000"]"#
        );
    }
}
