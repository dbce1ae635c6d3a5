//! `storefront:cart/locks`: leases with a time to live, on the backend `lock_url` names.
//!
//! | `lock_url`                      | backend                                   | module      |
//! |---------------------------------|-------------------------------------------|-------------|
//! | empty (default)                 | wherever the store is (`store_url`): the rows below, with `store_token` | |
//! | `none`                          | the cart takes no line leases (optimistic mode); the few other leases (idempotency, breaker probe, cache refresh) live where the store is | |
//! | `kv`                            | lease record in the `default` store, CAS  | [`kv_lease`] |
//! | `redis://…`, `rediss://…`       | Redis `SET NX PX`, compare-and-delete Lua | [`redis`]   |
//! | `https://…`, `http://…`         | Upstash-compatible Redis REST             | [`upstash`] |
//!
//! So instances that share a Redis store share their locks too unless `lock_url` says
//! otherwise: a lock that only one instance sees excludes nobody.
//!
//! Every acquire mints a fresh random 128-bit token; only that token releases the lease, so a
//! holder whose lease expired can never release its successor's.

mod kv_lease;
mod redis;
mod upstash;

use crate::config::{self, ConfigError};
use crate::exports::storefront::cart::locks::{Guest, Lease, LockError};
use crate::store::{self, StoreTarget};
use crate::token;
use crate::upstash_rest::UpstashConfig;

/// Longest lock key accepted: leaves room for backend prefixes and suffixes within the
/// key-value store's 256-byte key limit.
const MAX_LOCK_KEY_BYTES: usize = 200;

/// Default `lock_timeout_ms` for the Upstash REST backend.
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 1000;

impl Guest for crate::Adapter {
    fn try_acquire(key: String, ttl_ms: u32) -> Result<Option<Lease>, LockError> {
        check_key(&key)?;
        if ttl_ms == 0 {
            return Err(LockError::Invalid("ttl-ms must be positive".into()));
        }
        let token = token::random_token();
        let acquired = match backend()? {
            Backend::KeyValue => kv_lease::try_acquire(&key, ttl_ms, &token)?,
            Backend::Redis(url) => redis::try_acquire(&url, &key, ttl_ms, &token)?,
            Backend::Upstash(config) => upstash::try_acquire(&config, &key, ttl_ms, &token)?,
        };
        Ok(acquired.then_some(Lease { key, token, ttl_ms }))
    }

    fn release(lease: Lease) -> Result<bool, LockError> {
        give_back(lease, Ending::Release)
    }

    fn retire(lease: Lease) -> Result<bool, LockError> {
        give_back(lease, Ending::Retire)
    }
}

/// How a lease is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Mark it free; the key's record (if the backend keeps one) stays for the next taker.
    Release,
    /// Mark it free and remove the key's record where the backend keeps one.
    Retire,
}

fn give_back(lease: Lease, ending: Ending) -> Result<bool, LockError> {
    check_key(&lease.key)?;
    if lease.token.is_empty() {
        // No acquire ever hands out an empty token; it must not match a released record.
        return Ok(false);
    }
    match backend()? {
        Backend::KeyValue if ending == Ending::Retire => kv_lease::retire(&lease.key, &lease.token),
        Backend::KeyValue => kv_lease::release(&lease.key, &lease.token),
        // A Redis lease is one key that the release deletes: retiring is releasing.
        Backend::Redis(url) => redis::release(&url, &lease.key, &lease.token),
        Backend::Upstash(config) => upstash::release(&config, &lease.key, &lease.token),
    }
}

/// Where leases live.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    KeyValue,
    Redis(String),
    Upstash(UpstashConfig),
}

fn backend() -> Result<Backend, LockError> {
    let configured = || -> Result<Backend, ConfigError> {
        match config::setting("lock_url")?.filter(|url| !url.trim().eq_ignore_ascii_case("none")) {
            Some(url) => match parse_backend(&url)? {
                Kind::KeyValue => Ok(Backend::KeyValue),
                Kind::Redis => Ok(Backend::Redis(url)),
                Kind::Rest => Ok(Backend::Upstash(UpstashConfig {
                    url,
                    token: config::setting("lock_token")?,
                    timeout_ms: config::timeout_ms("lock_timeout_ms", DEFAULT_LOCK_TIMEOUT_MS)?,
                })),
            },
            None => Ok(follow_store(store::target()?)),
        }
    };
    configured().map_err(config_error)
}

/// Without a `lock_url`, leases live where the store is.
fn follow_store(target: StoreTarget) -> Backend {
    match target {
        StoreTarget::KeyValue => Backend::KeyValue,
        StoreTarget::Redis(url) => Backend::Redis(url),
        StoreTarget::Upstash(config) => Backend::Upstash(config),
    }
}

use crate::backend_url::BackendKind as Kind;

/// Picks the backend from a non-empty `lock_url` value.
fn parse_backend(url: &str) -> Result<Kind, ConfigError> {
    crate::backend_url::classify(
        "lock_url",
        url,
        "expected empty (follow store_url), none (no line leases), kv, a redis:// URL or an https:// Upstash REST URL",
    )
}

fn check_key(key: &str) -> Result<(), LockError> {
    if key.is_empty() {
        return Err(LockError::Invalid("empty lock key".into()));
    }
    if key.len() > MAX_LOCK_KEY_BYTES {
        return Err(LockError::Invalid(format!(
            "lock key of {} bytes is longer than {MAX_LOCK_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

fn config_error(error: ConfigError) -> LockError {
    LockError::Unavailable(error.to_string())
}

/// Key of a lease in Redis (both the native and the REST backend share this layout).
fn redis_key(key: &str) -> String {
    format!("cart-lock:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_picked_by_scheme() {
        assert_eq!(parse_backend("kv"), Ok(Kind::KeyValue));
        assert_eq!(parse_backend("KV"), Ok(Kind::KeyValue));
        assert_eq!(parse_backend("redis://127.0.0.1:6379"), Ok(Kind::Redis));
        assert_eq!(parse_backend("rediss://cache:6380"), Ok(Kind::Redis));
        assert_eq!(parse_backend("https://eu1-x.upstash.io"), Ok(Kind::Rest));
        assert_eq!(parse_backend("http://127.0.0.1:8079"), Ok(Kind::Rest));
    }

    #[test]
    fn without_a_lock_url_leases_live_where_the_store_is() {
        assert_eq!(follow_store(StoreTarget::KeyValue), Backend::KeyValue);
        assert_eq!(
            follow_store(StoreTarget::Redis("redis://r:6379".into())),
            Backend::Redis("redis://r:6379".into())
        );
        let rest = UpstashConfig {
            url: "https://eu1-x.upstash.io".into(),
            token: Some("t".into()),
            timeout_ms: 900,
        };
        assert_eq!(
            follow_store(StoreTarget::Upstash(rest.clone())),
            Backend::Upstash(rest)
        );
    }

    #[test]
    fn unknown_backends_are_configuration_errors() {
        for url in ["memcached://h", "redis", "https://", "https://u:p@h/"] {
            let error = parse_backend(url).expect_err(url);
            assert!(error.to_string().starts_with("bad configuration"), "{url}");
        }
    }

    #[test]
    fn lock_keys_are_bounded() {
        assert!(matches!(check_key(""), Err(LockError::Invalid(_))));
        assert!(check_key(&"k".repeat(MAX_LOCK_KEY_BYTES)).is_ok());
        assert!(matches!(
            check_key(&"k".repeat(MAX_LOCK_KEY_BYTES + 1)),
            Err(LockError::Invalid(_))
        ));
    }

    #[test]
    fn redis_keys_are_prefixed() {
        assert_eq!(redis_key("s1:u1:p1"), "cart-lock:s1:u1:p1");
    }
}
