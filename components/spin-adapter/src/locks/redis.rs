//! Leases in Redis through Spin's outbound Redis (`fermyon:spin/redis`).
//!
//! Acquire is `SET cart-lock:{key} {token} NX PX {ttl}`; Redis expires the key itself. Release
//! is a compare-and-delete script, never a blind `DEL`, so a holder whose lease expired cannot
//! delete its successor's. Commands go over the instance's shared connection
//! ([`crate::redis_conn`]), the same one the Redis store backend uses when they share a URL.

use spin_sdk::redis::{Error, RedisParameter, RedisResult};

use super::redis_key;
use crate::exports::storefront::cart::locks::LockError;
use crate::redis_conn;

/// Deletes the key only while it still holds the caller's token.
pub const RELEASE_SCRIPT: &str =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

pub fn try_acquire(url: &str, key: &str, ttl_ms: u32, token: &str) -> Result<bool, LockError> {
    let reply = redis_conn::execute(
        url,
        "SET",
        &[
            binary(&redis_key(key)),
            binary(token),
            binary("NX"),
            binary("PX"),
            RedisParameter::Int64(i64::from(ttl_ms)),
        ],
    )
    .map_err(|e| failure("SET", &e))?;
    set_outcome(&reply).map_err(LockError::Unavailable)
}

pub fn release(url: &str, key: &str, token: &str) -> Result<bool, LockError> {
    let reply = redis_conn::execute(
        url,
        "EVAL",
        &[
            binary(RELEASE_SCRIPT),
            RedisParameter::Int64(1),
            binary(&redis_key(key)),
            binary(token),
        ],
    )
    .map_err(|e| failure("EVAL", &e))?;
    release_outcome(&reply).map_err(LockError::Unavailable)
}

fn binary(text: &str) -> RedisParameter {
    RedisParameter::Binary(text.as_bytes().to_vec())
}

/// `SET … NX`: `OK` when taken, nil when someone holds the key.
fn set_outcome(reply: &[RedisResult]) -> Result<bool, String> {
    match reply {
        [RedisResult::Status(status)] if status.eq_ignore_ascii_case("OK") => Ok(true),
        [RedisResult::Binary(bytes)] if bytes.eq_ignore_ascii_case(b"OK") => Ok(true),
        [RedisResult::Nil] | [] => Ok(false),
        other => Err(format!("redis lock: unexpected reply to SET: {other:?}")),
    }
}

/// The release script: 1 when the caller's key was deleted, 0 otherwise.
fn release_outcome(reply: &[RedisResult]) -> Result<bool, String> {
    match reply {
        [RedisResult::Int64(1)] => Ok(true),
        [RedisResult::Int64(0)] | [RedisResult::Nil] => Ok(false),
        other => Err(format!("redis lock: unexpected reply to EVAL: {other:?}")),
    }
}

/// Describes a Redis failure without echoing the URL (it may carry a password).
fn failure(op: &str, error: &Error) -> LockError {
    LockError::Unavailable(match error {
        Error::InvalidAddress => {
            "bad configuration: the lock Redis URL is not a valid Redis address or not in allowed_outbound_hosts".to_owned()
        }
        other => format!("redis lock {op}: {}", redis_conn::describe(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replies() {
        assert_eq!(set_outcome(&[RedisResult::Status("OK".into())]), Ok(true));
        assert_eq!(
            set_outcome(&[RedisResult::Binary(b"OK".to_vec())]),
            Ok(true)
        );
        assert_eq!(set_outcome(&[RedisResult::Nil]), Ok(false));
        assert!(set_outcome(&[RedisResult::Int64(1)]).is_err());
        assert!(set_outcome(&[RedisResult::Status("QUEUED".into())]).is_err());
    }

    #[test]
    fn release_replies() {
        assert_eq!(release_outcome(&[RedisResult::Int64(1)]), Ok(true));
        assert_eq!(release_outcome(&[RedisResult::Int64(0)]), Ok(false));
        assert!(release_outcome(&[RedisResult::Status("OK".into())]).is_err());
        assert!(release_outcome(&[RedisResult::Int64(1), RedisResult::Int64(1)]).is_err());
    }

    #[test]
    fn failures_never_echo_the_url() {
        let error = failure("connect", &Error::InvalidAddress);
        assert!(
            matches!(error, LockError::Unavailable(text) if text.starts_with("bad configuration"))
        );
    }
}
