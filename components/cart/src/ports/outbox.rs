//! The outbox's records besides the cart document: the sweep's index of carts that may hold
//! pending events (`outbox:pending:{cart key}`) and the chunk records that spilled events
//! wait in (`cart_domain::outbox::chunk_key`). Also the names shared by the commit that fills
//! a cart's outbox and the relay that drains it: the relay claim's lifetime and the outbox
//! metric series.

use crate::ports::bindings::kv;
use cart_domain::events::OutboxEntry;

/// Carts that may hold pending events are listed as `outbox:pending:{cart key}`.
pub const MARKER_PREFIX: &str = "outbox:pending:";
/// How long a relay claim stands without being renewed (a relay that dies frees it then).
pub const CLAIM_TTL_MS: u64 = 15_000;

pub mod metric_keys {
    pub const COMMITTED: &str = "cart_outbox_events_committed_total";
    pub const ACKED: &str = "cart_outbox_events_acked_total";
    pub const FAILURES: &str = "cart_outbox_publish_failures_total";
}

/// The sweep's index key of a cart.
pub fn marker_key(cart_key: &str) -> String {
    format!("{MARKER_PREFIX}{cart_key}")
}

/// The index could not be read or written; the store's error as the contract prints it.
#[derive(Debug, Clone)]
pub struct IndexError(pub String);

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not index the outbox: {}", self.0)
    }
}

impl std::error::Error for IndexError {}

/// Lists the cart for the sweep, writing only when it is not listed yet: a read is cheap
/// (and usually prefetched, see `record_reads`), a write is a disk transaction. The marker
/// stays while the cart is active; the sweep removes it once the outbox is empty (and
/// re-lists if a change raced it).
pub fn ensure_listed(cart_key: &str) -> Result<(), IndexError> {
    let marker = marker_key(cart_key);
    let failed = |e: kv::StoreError| IndexError(format!("{e:?}"));
    match crate::ports::record_reads::get(&marker) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => kv::set(&marker, b"1").map_err(failed),
        Err(e) => Err(failed(e)),
    }
}

/// Lists the cart for the sweep without looking first. Best effort.
pub fn list(cart_key: &str) {
    let _ = kv::set(&marker_key(cart_key), b"1");
}

/// Takes the cart off the sweep's index. Best effort.
pub fn unlist(cart_key: &str) {
    let _ = kv::delete(&marker_key(cart_key));
}

/// The keys of up to `limit` listed carts; the store's error as the contract prints it.
pub fn listed(limit: u32) -> Result<Vec<String>, String> {
    let markers = kv::list_keys(MARKER_PREFIX, limit).map_err(|e| format!("{e:?}"))?;
    Ok(markers
        .iter()
        .filter_map(|m| m.strip_prefix(MARKER_PREFIX))
        .map(str::to_owned)
        .collect())
}

/// Writes a chunk record; whether it was stored.
pub fn write_chunk(key: &str, events: &[OutboxEntry]) -> bool {
    let Ok(bytes) = serde_json::to_vec(events) else {
        return false;
    };
    kv::set(key, &bytes).is_ok()
}

/// A chunk record's events; `None` when it is missing or unreadable.
pub fn read_chunk(key: &str) -> Option<Vec<OutboxEntry>> {
    kv::get(key)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<Vec<OutboxEntry>>(&bytes).ok())
}

/// Deletes a chunk record the cart no longer names. Best effort.
pub fn delete_chunk(key: &str) {
    let _ = kv::delete(key);
}
