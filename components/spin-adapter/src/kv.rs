//! `storefront:cart/kv`: small shared records in the `default` key-value store.
//!
//! Keys are used as given (callers own their prefixes); the limits are Spin's documented ones.

use spin_sdk::wit::wasi::keyvalue::atomics;

use crate::exports::storefront::cart::kv::{Guest, StoreError};
use crate::kv_store;

impl Guest for crate::Adapter {
    fn get(key: String) -> Result<Option<Vec<u8>>, StoreError> {
        kv_store::check_key(&key)?;
        kv_store::get(&kv_store::open()?, &key)
    }

    fn set(key: String, value: Vec<u8>) -> Result<(), StoreError> {
        kv_store::check_key(&key)?;
        kv_store::check_value(&value)?;
        kv_store::set(&kv_store::open()?, &key, &value)
    }

    fn delete(key: String) -> Result<(), StoreError> {
        kv_store::check_key(&key)?;
        kv_store::delete(&kv_store::open()?, &key)
    }

    fn increment(key: String, delta: i64) -> Result<i64, StoreError> {
        kv_store::check_key(&key)?;
        let bucket = kv_store::open()?;
        atomics::increment(&bucket, &key, delta)
            .map_err(|e| kv_store::unavailable("increment", &key, &e))
    }

    fn increment_many(deltas: Vec<(String, i64)>) -> Result<(), StoreError> {
        let bucket = kv_store::open()?;
        for (key, delta) in &deltas {
            kv_store::check_key(key)?;
            atomics::increment(&bucket, key, *delta)
                .map_err(|e| kv_store::unavailable("increment", key, &e))?;
        }
        Ok(())
    }

    fn list_keys(prefix: String, limit: u32) -> Result<Vec<String>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let bucket = kv_store::open()?;
        // `wasi:keyvalue` has no prefix query: page through every key and filter. Hence the
        // contract's "not for hot paths".
        let mut cursor: Option<String> = None;
        loop {
            let page = bucket
                .list_keys(cursor.as_deref())
                .map_err(|e| kv_store::unavailable("list-keys", &prefix, &e))?;
            if collect_matching(page.keys, &prefix, limit, &mut found) {
                return Ok(found);
            }
            // A host that hands back the cursor it was given would loop forever.
            match page.cursor {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(found),
            }
        }
    }
}

/// Appends the keys starting with `prefix` to `found`, up to `limit` in all; true once full.
fn collect_matching(
    keys: Vec<String>,
    prefix: &str,
    limit: usize,
    found: &mut Vec<String>,
) -> bool {
    for key in keys {
        if found.len() >= limit {
            break;
        }
        if key.starts_with(prefix) {
            found.push(key);
        }
    }
    found.len() >= limit
}

#[cfg(test)]
mod tests {
    use super::collect_matching;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn collects_only_prefixed_keys_up_to_the_limit() {
        let mut found = Vec::new();
        let full = collect_matching(keys(&["m:a", "x:b", "m:c"]), "m:", 5, &mut found);
        assert!(!full);
        assert_eq!(found, keys(&["m:a", "m:c"]));
        let full = collect_matching(keys(&["m:d", "m:e", "m:f", "m:g"]), "m:", 4, &mut found);
        assert!(full);
        assert_eq!(found, keys(&["m:a", "m:c", "m:d", "m:e"]));
    }

    #[test]
    fn an_empty_prefix_matches_everything() {
        let mut found = Vec::new();
        assert!(collect_matching(keys(&["a", "b"]), "", 2, &mut found));
        assert_eq!(found.len(), 2);
    }
}
