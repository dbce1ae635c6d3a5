//! Guest bindings for the project's capability contract (`wit/cart.wit`, world `capabilities`).
//! Generated with spin-sdk's wit-bindgen so they share its runtime.
//!
//! `documents` and `kv` are the generated interfaces with their writes counted for
//! `cart_store_writes_total` (a thread-local add, no host call): every caller goes through
//! these, so no write can be left out of the count. The metrics flush writes through
//! `uncounted_documents`: it is the metrics' own cost, sampled and documented apart.

spin_sdk::wit_bindgen::generate!({
    world: "capabilities",
    path: "../../wit",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
});

pub use storefront::cart::documents as uncounted_documents;
pub use storefront::cart::{config, events, identity_keys, inventory, locks, trace};

/// `storefront:cart/documents`, compare-and-swap counted as a store write.
pub mod documents {
    pub use super::storefront::cart::documents::*;

    pub fn compare_and_swap(key: &str, expected: u64, body: &[u8]) -> Result<u64, SwapError> {
        crate::runtime::store_writes::count();
        super::storefront::cart::documents::compare_and_swap(key, expected, body)
    }
}

/// `storefront:cart/kv`, set, delete and increment counted as store writes.
pub mod kv {
    pub use super::storefront::cart::kv::*;

    pub fn set(key: &str, value: &[u8]) -> Result<(), StoreError> {
        crate::runtime::store_writes::count();
        super::storefront::cart::kv::set(key, value)
    }

    pub fn delete(key: &str) -> Result<(), StoreError> {
        crate::runtime::store_writes::count();
        super::storefront::cart::kv::delete(key)
    }

    pub fn increment(key: &str, delta: i64) -> Result<i64, StoreError> {
        crate::runtime::store_writes::count();
        super::storefront::cart::kv::increment(key, delta)
    }

    #[allow(dead_code)] // part of the contract; the cart flushes metrics as one document now
    pub fn increment_many(deltas: &[(String, i64)]) -> Result<(), StoreError> {
        crate::runtime::store_writes::count();
        super::storefront::cart::kv::increment_many(deltas)
    }
}
