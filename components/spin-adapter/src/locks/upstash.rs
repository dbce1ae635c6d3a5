//! Leases in an Upstash-compatible Redis REST endpoint over outbound HTTP.
//!
//! Each call is `POST {lock_url}` with `Authorization: Bearer {lock_token}` and a JSON command
//! array as body; the answer is `{"result": …}` or `{"error": "…"}`. Same commands as the
//! native Redis backend: `SET … NX PX` to acquire, the compare-and-delete script to release.

use serde_json::Value;

use super::redis::RELEASE_SCRIPT;
use super::redis_key;
use crate::exports::storefront::cart::locks::LockError;
use crate::http_util::{self, Method, OutboundRequest};

/// Where and how to reach the REST endpoint.
pub struct UpstashConfig {
    pub url: String,
    /// Bearer token; none sends no `Authorization` (for local Upstash-compatible proxies).
    pub token: Option<String>,
    pub timeout_ms: u64,
}

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
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(token) = &config.token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    let response = http_util::send(&OutboundRequest {
        method: Method::Post,
        url: &config.url,
        headers,
        body: command.to_string().into_bytes(),
        timeout_ms: config.timeout_ms,
    })
    .map_err(|e| LockError::Unavailable(format!("upstash lock: {e}")))?;
    let reply = parse_reply(&response.body);
    if !(200..300).contains(&response.status) {
        let detail = reply.err().unwrap_or_else(|| "no error message".to_owned());
        return Err(LockError::Unavailable(format!(
            "upstash lock: HTTP {}: {detail}",
            response.status
        )));
    }
    reply.map_err(|e| LockError::Unavailable(format!("upstash lock: {e}")))
}

/// `{"result": x}` → x; `{"error": "…"}` or anything else → the error text.
fn parse_reply(body: &[u8]) -> Result<Value, String> {
    let Ok(Value::Object(mut reply)) = serde_json::from_slice::<Value>(body) else {
        return Err("unreadable reply".to_owned());
    };
    if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
        return Err(match error {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        });
    }
    reply
        .remove("result")
        .ok_or_else(|| "reply has neither result nor error".to_owned())
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
    fn replies_carry_a_result_or_an_error() {
        assert_eq!(parse_reply(br#"{"result":"OK"}"#), Ok(json!("OK")));
        assert_eq!(parse_reply(br#"{"result":null}"#), Ok(Value::Null));
        assert_eq!(parse_reply(br#"{"result":1}"#), Ok(json!(1)));
        assert_eq!(
            parse_reply(br#"{"error":"WRONGPASS invalid password"}"#),
            Err("WRONGPASS invalid password".to_owned())
        );
        assert!(parse_reply(b"Unauthorized").is_err());
        assert!(parse_reply(br#"{"foo":1}"#).is_err());
        assert!(parse_reply(br#"["OK"]"#).is_err());
    }

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
