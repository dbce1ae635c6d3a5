//! The embedded default: documents and records in Spin's key-value store `default`
//! (`wasi:keyvalue` store and atomics). Right for one `spin up`, or for several instances
//! only if their `default` store is shared *and* can compare-and-swap (Spin's Redis key-value
//! store cannot).

mod documents;
mod kv;

use std::rc::Rc;

use spin_sdk::wit::wasi::keyvalue::store::Bucket;

use super::Store;
use crate::exports::storefront::cart::documents::{Document, StoreError, SwapError};
use crate::kv_store;

pub struct KeyValueStore {
    bucket: Rc<Bucket>,
}

impl KeyValueStore {
    pub fn open() -> Result<Self, StoreError> {
        Ok(KeyValueStore {
            bucket: kv_store::open()?,
        })
    }
}

impl Store for KeyValueStore {
    fn read_head(&self, key: &str) -> Result<Option<Document>, StoreError> {
        documents::read_head(&self.bucket, key)
    }

    fn compare_and_swap(&self, key: &str, expected: u64, body: &[u8]) -> Result<u64, SwapError> {
        documents::compare_and_swap(&self.bucket, key, expected, body)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        kv_store::get(&self.bucket, key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        kv_store::set(&self.bucket, key, value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        kv_store::delete(&self.bucket, key)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        kv::increment(&self.bucket, key, delta)
    }

    fn increment_many(&self, deltas: &[(String, i64)]) -> Result<(), StoreError> {
        kv::increment_many(&self.bucket, deltas)
    }

    /// Local reads: the saving is the crossing from the cart, not a round trip.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter()
            .map(|key| kv_store::get(&self.bucket, key))
            .collect()
    }

    fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        kv::list_keys(&self.bucket, prefix, limit)
    }
}
