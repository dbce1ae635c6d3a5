//! Names shared by the commit that fills a cart's outbox and the relay that drains it: the
//! sweep's index keys, the relay claim's lifetime and the outbox metric series.

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
