//! The small records one change consults (its product's cache entry, the breaker state, the
//! cart's outbox marker), read together in one `kv.get-many` instead of three `kv.get`s: with
//! the store a network hop away, each crossing is a round trip on the shopper's path.
//!
//! `prefetch` reads them; each later `get` of a prefetched key takes its value (once: a second
//! read of the same key, e.g. in a retry after a lost compare-and-swap, goes to the store, so
//! a retry never decides from a value older than its own attempt). A failed prefetch leaves
//! nothing behind and every `get` reads the store as before.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::ports::bindings::kv::{self, StoreError};

thread_local! {
    static PREFETCHED: RefCell<HashMap<String, Option<Vec<u8>>>> = RefCell::new(HashMap::new());
}

/// Reads `keys` in one call and keeps the values for the next `get` of each.
pub fn prefetch(keys: &[String]) {
    let Ok(values) = kv::get_many(keys) else {
        return;
    };
    PREFETCHED.with(|p| {
        let mut p = p.borrow_mut();
        for (key, value) in keys.iter().zip(values) {
            p.insert(key.clone(), value);
        }
    });
}

/// The prefetched value of `key` if there is one (taking it), else a read of the store.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    match PREFETCHED.with(|p| p.borrow_mut().remove(key)) {
        Some(value) => Ok(value),
        None => kv::get(key),
    }
}
