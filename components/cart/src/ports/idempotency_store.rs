//! The `Idempotency-Key` protocol's records: the in-flight lease on a scoped key and the
//! stored responses (see `edge::idempotency` for the protocol itself).

use crate::ports::bindings::{kv, locks};
use cart_domain::idempotency::StoredResponse;

/// The in-flight lease of one key.
pub use crate::ports::bindings::locks::Lease;

/// Takes the in-flight lease without waiting: `Ok(None)` while another request holds it; the
/// lock service's error as the contract prints it.
pub fn try_lease(key: &str, ttl_ms: u32) -> Result<Option<Lease>, String> {
    locks::try_acquire(key, ttl_ms).map_err(|e| format!("{e:?}"))
}

/// Gives the lease back and lets the lock backend forget its key (a key is rarely used
/// again). Best effort: it expires by its TTL otherwise.
pub fn retire(lease: &Lease) {
    let _ = locks::retire(lease);
}

/// The stored response in the record `record_key`, if there is a readable one.
pub fn read(record_key: &str) -> Option<StoredResponse> {
    kv::get(record_key)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<StoredResponse>(&bytes).ok())
}

/// Stores `record` under `record_key`; the store's error as the contract prints it.
pub fn store(record_key: &str, record: &StoredResponse) -> Result<(), String> {
    let Ok(bytes) = serde_json::to_vec(record) else {
        return Ok(());
    };
    kv::set(record_key, &bytes).map_err(|e| format!("{e:?}"))
}
