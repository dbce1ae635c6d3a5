//! `storefront:cart/kv`: small shared records, in the store [`crate::store`] selects.
//!
//! Keys are used as given (callers own their prefixes); the limits are Spin's documented
//! key-value limits, applied to every backend so that switching backends changes no answer.

use crate::exports::storefront::cart::kv::{Guest, StoreError};
use crate::kv_store;
use crate::store;

impl Guest for crate::Adapter {
    fn get(key: String) -> Result<Option<Vec<u8>>, StoreError> {
        kv_store::check_key(&key)?;
        store::open()?.get(&key)
    }

    fn set(key: String, value: Vec<u8>) -> Result<(), StoreError> {
        kv_store::check_key(&key)?;
        kv_store::check_value(&value)?;
        store::open()?.set(&key, &value)
    }

    fn delete(key: String) -> Result<(), StoreError> {
        kv_store::check_key(&key)?;
        store::open()?.delete(&key)
    }

    fn increment(key: String, delta: i64) -> Result<i64, StoreError> {
        kv_store::check_key(&key)?;
        store::open()?.increment(&key, delta)
    }

    fn increment_many(deltas: Vec<(String, i64)>) -> Result<(), StoreError> {
        // Every key is checked before any counter moves.
        for (key, _) in &deltas {
            kv_store::check_key(key)?;
        }
        if deltas.is_empty() {
            return Ok(());
        }
        store::open()?.increment_many(&deltas)
    }

    fn get_many(keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        for key in &keys {
            kv_store::check_key(key)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        store::open()?.get_many(&keys)
    }

    fn list_keys(prefix: String, limit: u32) -> Result<Vec<String>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        store::open()?.list_keys(&prefix, limit)
    }
}
