//! How commands reach Redis: Spin's outbound Redis (`redis://`, `rediss://`) or an
//! Upstash-compatible REST endpoint over outbound HTTP (`https://`). The store logic is written
//! once over [`Transport`].

use serde_json::Value;
use spin_sdk::redis::{Error, RedisParameter, RedisResult};

use super::wire::{Arg, Command, CommandError, Reply};
use crate::redis_conn;
use crate::upstash_rest::{self, UpstashConfig};

/// Runs one command and returns its flattened reply.
pub trait Transport {
    fn execute(&self, command: Command) -> Result<Vec<Reply>, CommandError>;
}

/// Spin's outbound Redis, on the instance's shared connection.
pub struct Native {
    url: String,
}

impl Native {
    pub fn new(url: String) -> Self {
        Native { url }
    }
}

impl Transport for Native {
    fn execute(&self, command: Command) -> Result<Vec<Reply>, CommandError> {
        let params: Vec<RedisParameter> = command
            .args
            .into_iter()
            .map(|arg| match arg {
                Arg::Bytes(bytes) => RedisParameter::Binary(bytes),
                Arg::Int(n) => RedisParameter::Int64(n),
            })
            .collect();
        let reply = redis_conn::execute(&self.url, command.name, &params).map_err(|e| match e {
            Error::InvalidAddress => CommandError::Failed(
                "bad configuration: store_url is not a valid Redis address or its origin is not \
                 in allowed_outbound_hosts (set store_origin)"
                    .to_owned(),
            ),
            other => CommandError::Failed(redis_conn::describe(&other)),
        })?;
        Ok(reply.into_iter().map(from_spin).collect())
    }
}

fn from_spin(result: RedisResult) -> Reply {
    match result {
        RedisResult::Nil => Reply::Nil,
        RedisResult::Status(text) => Reply::Status(text),
        RedisResult::Int64(n) => Reply::Int(n),
        RedisResult::Binary(bytes) => Reply::Bulk(bytes),
    }
}

/// An Upstash-compatible REST endpoint.
pub struct Rest {
    config: UpstashConfig,
}

impl Rest {
    pub fn new(config: UpstashConfig) -> Self {
        Rest { config }
    }
}

impl Transport for Rest {
    fn execute(&self, command: Command) -> Result<Vec<Reply>, CommandError> {
        let body = rest_body(&command)?;
        let result = upstash_rest::call(&self.config, &body)
            .map_err(|e| CommandError::Failed(e.to_string()))?;
        let mut reply = Vec::new();
        flatten(result, &mut reply);
        Ok(reply)
    }
}

/// The JSON command array; arguments are JSON strings, so bytes must be UTF-8.
fn rest_body(command: &Command) -> Result<Value, CommandError> {
    let mut parts = Vec::with_capacity(command.args.len() + 1);
    parts.push(Value::String(command.name.to_owned()));
    for arg in &command.args {
        parts.push(Value::String(match arg {
            Arg::Bytes(bytes) => String::from_utf8(bytes.clone()).map_err(|_| {
                CommandError::Invalid(
                    "the Upstash REST store carries UTF-8 text only; this value is binary"
                        .to_owned(),
                )
            })?,
            Arg::Int(n) => n.to_string(),
        }));
    }
    Ok(Value::Array(parts))
}

/// A JSON result as Spin's outbound Redis would hand the same reply out.
fn flatten(value: Value, out: &mut Vec<Reply>) {
    match value {
        Value::Null => out.push(Reply::Nil),
        Value::Bool(b) => out.push(Reply::Int(i64::from(b))),
        Value::Number(n) => out.push(match n.as_i64() {
            Some(n) => Reply::Int(n),
            None => Reply::Bulk(n.to_string().into_bytes()),
        }),
        Value::String(text) => out.push(Reply::Bulk(text.into_bytes())),
        Value::Array(items) => items.into_iter().for_each(|item| flatten(item, out)),
        Value::Object(_) => out.push(Reply::Bulk(value.to_string().into_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rest_bodies_are_json_string_arrays() {
        let command = Command::new("INCRBY", vec![Arg::from("ec:kv:{n}"), Arg::Int(-2)]);
        assert_eq!(
            rest_body(&command),
            Ok(json!(["INCRBY", "ec:kv:{n}", "-2"]))
        );
    }

    #[test]
    fn binary_values_cannot_travel_over_rest() {
        let command = Command::new("SET", vec![Arg::from("k"), Arg::Bytes(vec![0xff])]);
        assert!(matches!(rest_body(&command), Err(CommandError::Invalid(_))));
    }

    #[test]
    fn rest_results_flatten_like_spin_replies() {
        let mut out = Vec::new();
        flatten(json!(["0", ["ec:kv:{a}", null], 3]), &mut out);
        assert_eq!(
            out,
            [
                Reply::Bulk(b"0".to_vec()),
                Reply::Bulk(b"ec:kv:{a}".to_vec()),
                Reply::Nil,
                Reply::Int(3)
            ]
        );
        let mut out = Vec::new();
        flatten(Value::Null, &mut out);
        assert_eq!(out, [Reply::Nil]);
    }

    #[test]
    fn spin_results_map_one_to_one() {
        assert_eq!(from_spin(RedisResult::Nil), Reply::Nil);
        assert_eq!(from_spin(RedisResult::Int64(4)), Reply::Int(4));
        assert_eq!(
            from_spin(RedisResult::Status("OK".into())),
            Reply::Status("OK".into())
        );
        assert_eq!(
            from_spin(RedisResult::Binary(b"x".to_vec())),
            Reply::Bulk(b"x".to_vec())
        );
    }
}
