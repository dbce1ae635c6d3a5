//! Small records in the Spin key-value store `default`. Keys are used as given (callers own
//! their prefixes).

use spin_sdk::wit::wasi::keyvalue::atomics;
use spin_sdk::wit::wasi::keyvalue::store::Bucket;

use crate::exports::storefront::cart::documents::StoreError;
use crate::kv_store;

pub fn increment(bucket: &Bucket, key: &str, delta: i64) -> Result<i64, StoreError> {
    atomics::increment(bucket, key, delta).map_err(|e| kv_store::unavailable("increment", key, &e))
}

pub fn increment_many(bucket: &Bucket, deltas: &[(String, i64)]) -> Result<(), StoreError> {
    for (key, delta) in deltas {
        increment(bucket, key, *delta)?;
    }
    Ok(())
}

pub fn list_keys(bucket: &Bucket, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    // `wasi:keyvalue` has no prefix query: page through every key and filter. Hence the
    // contract's "not for hot paths".
    let mut cursor: Option<String> = None;
    loop {
        let page = bucket
            .list_keys(cursor.as_deref())
            .map_err(|e| kv_store::unavailable("list-keys", prefix, &e))?;
        if collect_matching(page.keys, prefix, limit, &mut found) {
            return Ok(found);
        }
        // A host that hands back the cursor it was given would loop forever.
        match page.cursor {
            Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
            _ => return Ok(found),
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
