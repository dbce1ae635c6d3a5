//! The Upstash-compatible Redis REST client shared by the lock backend and the store backend.
//!
//! Each command is `POST {url}` with `Authorization: Bearer {token}` and a JSON command array
//! as body (`["SET","k","v","NX","PX","30000"]`); the answer is `{"result": …}` or
//! `{"error": "…"}`. Arguments travel as JSON strings, so only UTF-8 text can be sent.

use std::fmt;

use serde_json::Value;

use crate::http_util::{self, Method, OutboundRequest};

/// Where and how to reach the REST endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstashConfig {
    pub url: String,
    /// Bearer token; none sends no `Authorization` (for local Upstash-compatible proxies).
    pub token: Option<String>,
    pub timeout_ms: u64,
}

/// Why a command has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestError {
    /// No HTTP answer (timeout, refused, denied by `allowed_outbound_hosts`).
    Transport(String),
    /// Redis (or the endpoint) answered with an error: `{"error": "…"}`, or a non-2xx status.
    Refused(String),
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestError::Transport(text) | RestError::Refused(text) => f.write_str(text),
        }
    }
}

/// Runs one command; the `result` on success.
pub fn call(config: &UpstashConfig, command: &Value) -> Result<Value, RestError> {
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
    .map_err(|e| RestError::Transport(e.to_string()))?;
    let reply = parse_reply(&response.body);
    if !(200..300).contains(&response.status) {
        let detail = reply.err().unwrap_or_else(|| "no error message".to_owned());
        return Err(RestError::Refused(format!(
            "HTTP {}: {detail}",
            response.status
        )));
    }
    reply.map_err(RestError::Refused)
}

/// `{"result": x}` → x; `{"error": "…"}` or anything else → the error text.
pub fn parse_reply(body: &[u8]) -> Result<Value, String> {
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
}
