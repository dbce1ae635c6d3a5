//! The key-value store every stateful interface uses, with Spin's documented limits.
//!
//! Only the store labelled `default` exists unless a runtime config defines more, so the
//! adapter always uses `default` and separates its data by key prefixes; operators map
//! `default` to Redis, DynamoDB or Cosmos DB with a runtime config file.

use std::cell::RefCell;
use std::rc::Rc;

use spin_sdk::wit::wasi::keyvalue::store::{self, Bucket};

use crate::exports::storefront::cart::documents::StoreError;

/// The store label (see the module comment).
pub const STORE_LABEL: &str = "default";
/// Longest key Spin documents for its key-value stores.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value Spin documents for its key-value stores.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

thread_local! {
    /// The store, opened once per instance (one request). On Spin every open is a host call
    /// that hands the worker thread's core to another thread (`block_in_place`), and a line
    /// change used to open the store for each of its dozen store calls.
    static BUCKET: RefCell<Option<Rc<Bucket>>> = const { RefCell::new(None) };
}

/// The `default` store, opened on first use in this instance.
pub fn open() -> Result<Rc<Bucket>, StoreError> {
    if let Some(bucket) = BUCKET.with(|b| b.borrow().clone()) {
        return Ok(bucket);
    }
    let bucket =
        Rc::new(store::open(STORE_LABEL).map_err(|e| unavailable("open", STORE_LABEL, &e))?);
    BUCKET.with(|b| *b.borrow_mut() = Some(bucket.clone()));
    Ok(bucket)
}

/// Refuses keys the store would refuse, before anything is written.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid("empty key".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "key of {} bytes is longer than {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// Refuses values the store would refuse.
pub fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "value of {} bytes is larger than {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// Describes a store failure of operation `op` on `key` for the caller.
pub fn unavailable(op: &str, key: &str, error: &store::Error) -> StoreError {
    let reason = match error {
        store::Error::NoSuchStore => {
            format!("key-value store '{STORE_LABEL}' is not granted to this component")
        }
        store::Error::AccessDenied => "access denied".to_owned(),
        store::Error::Other(text) => text.clone(),
    };
    StoreError::Unavailable(format!("key-value {op} {key}: {reason}"))
}

/// Plain read.
pub fn get(bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    bucket.get(key).map_err(|e| unavailable("get", key, &e))
}

/// Plain write.
pub fn set(bucket: &Bucket, key: &str, value: &[u8]) -> Result<(), StoreError> {
    bucket
        .set(key, value)
        .map_err(|e| unavailable("set", key, &e))
}

/// Plain delete; deleting a missing key succeeds.
pub fn delete(bucket: &Bucket, key: &str) -> Result<(), StoreError> {
    bucket
        .delete(key)
        .map_err(|e| unavailable("delete", key, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_non_empty_and_within_the_documented_limit() {
        assert!(matches!(check_key(""), Err(StoreError::Invalid(_))));
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(matches!(
            check_key(&"k".repeat(MAX_KEY_BYTES + 1)),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn values_must_fit_the_documented_limit() {
        assert!(check_value(&[]).is_ok());
        assert!(check_value(&vec![0; MAX_VALUE_BYTES]).is_ok());
        assert!(matches!(
            check_value(&vec![0; MAX_VALUE_BYTES + 1]),
            Err(StoreError::Invalid(_))
        ));
    }
}
