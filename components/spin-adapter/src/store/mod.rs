//! The store behind `storefront:cart/documents` and `storefront:cart/kv`, on the backend
//! `store_url` names.
//!
//! | `store_url`                 | backend                                              | module        |
//! |-----------------------------|------------------------------------------------------|---------------|
//! | empty (default) or `kv`     | Spin key-value store `default` (`wasi:keyvalue` CAS) | [`key_value`] |
//! | `redis://…`, `rediss://…`   | Redis through Spin's outbound Redis, Lua scripts     | [`redis`] (native transport) |
//! | `https://…`, `http://…`     | Upstash-compatible Redis REST (`store_token`)        | [`redis`] (REST transport)   |
//!
//! Spin's own Redis key-value store cannot compare-and-swap (its `swap` always reports
//! `cas-failed`; see SPIN-FACTS.md), so a store shared by many instances is reached here, by
//! outbound Redis, where a compare-and-swap is one atomic script.
//!
//! Both backends sit behind [`Store`]; the exported interfaces (`documents.rs`, `kv.rs`) check
//! their arguments once, the same way for every backend, and then call it.

mod key_value;
mod redis;

use std::cell::RefCell;

use crate::config::{self, ConfigError};
use crate::exports::storefront::cart::documents::{Document, StoreError, SwapError};
use crate::upstash_rest::UpstashConfig;

/// What a store backend implements: the operations of `documents` and `kv`, with arguments
/// already checked by the exported interface.
pub trait Store {
    fn read_head(&self, key: &str) -> Result<Option<Document>, StoreError>;
    fn compare_and_swap(&self, key: &str, expected: u64, body: &[u8]) -> Result<u64, SwapError>;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    fn increment_many(&self, deltas: &[(String, i64)]) -> Result<(), StoreError>;
    /// The values of `keys` in order, in as few round trips as the backend allows.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Up to `limit` (> 0) keys starting with `prefix`.
    fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;
}

/// Where documents and records live, as `store_url` says. The lock backend follows it too
/// when `lock_url` is not set (see `locks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    KeyValue,
    Redis(String),
    Upstash(UpstashConfig),
}

/// Default `store_timeout_ms` for the Upstash REST store.
const DEFAULT_STORE_TIMEOUT_MS: u64 = 1000;

thread_local! {
    /// The target, read once per instance (one request): a store call should not cost a
    /// variable read, and settings cannot change during a request.
    static TARGET: RefCell<Option<StoreTarget>> = const { RefCell::new(None) };
}

/// The configured target.
pub fn target() -> Result<StoreTarget, ConfigError> {
    if let Some(known) = TARGET.with(|t| t.borrow().clone()) {
        return Ok(known);
    }
    let target = match config::setting("store_url")? {
        None => StoreTarget::KeyValue,
        Some(url) => match parse_url(&url)? {
            UrlKind::KeyValue => StoreTarget::KeyValue,
            UrlKind::Redis => StoreTarget::Redis(url),
            UrlKind::Rest => StoreTarget::Upstash(UpstashConfig {
                url,
                token: config::setting("store_token")?,
                timeout_ms: config::timeout_ms("store_timeout_ms", DEFAULT_STORE_TIMEOUT_MS)?,
            }),
        },
    };
    TARGET.with(|t| *t.borrow_mut() = Some(target.clone()));
    Ok(target)
}

/// The backend for this call.
pub fn open() -> Result<Box<dyn Store>, StoreError> {
    let target = target().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(match target {
        StoreTarget::KeyValue => Box::new(key_value::KeyValueStore::open()?),
        StoreTarget::Redis(url) => Box::new(redis::RedisStore::new(redis::Native::new(url))),
        StoreTarget::Upstash(config) => Box::new(redis::RedisStore::new(redis::Rest::new(config))),
    })
}

use crate::backend_url::BackendKind as UrlKind;

/// Which kind of store a non-empty `store_url` names.
fn parse_url(url: &str) -> Result<UrlKind, ConfigError> {
    crate::backend_url::classify(
        "store_url",
        url,
        "expected empty or kv (Spin key-value), a redis:// URL or an https:// Upstash REST URL",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_told_apart_by_scheme() {
        assert_eq!(parse_url("kv"), Ok(UrlKind::KeyValue));
        assert_eq!(parse_url("redis://127.0.0.1:6379"), Ok(UrlKind::Redis));
        assert_eq!(parse_url("REDISS://cache:6380"), Ok(UrlKind::Redis));
        assert_eq!(parse_url("https://eu1-x.upstash.io"), Ok(UrlKind::Rest));
        assert_eq!(parse_url("http://127.0.0.1:8079"), Ok(UrlKind::Rest));
    }

    #[test]
    fn unknown_store_urls_are_configuration_errors() {
        for url in ["sqlite", "memcached://h", "https://", "https://u:p@h/"] {
            let error = parse_url(url).expect_err(url);
            assert!(error.to_string().starts_with("bad configuration"), "{url}");
            assert!(error.to_string().contains("store_url"), "{url}");
        }
    }
}
