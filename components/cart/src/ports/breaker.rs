//! The inventory circuit breaker, shared by all instances through key-value.
//!
//! * `breaker:inventory:state` holds `{"openedAtMs": …}` while open; absent means closed.
//! * `breaker:inventory:{bucket}:ok|err` count outcomes per time bucket (atomic increments);
//!   `breaker:inventory:slot{i}` (a fixed ring of slots) says which bucket slot i serves, so
//!   the counters of a bucket are deleted when its slot comes round again.
//! * Closed: calls go through; after a failure the window's counters are read and the breaker
//!   opens when the error rate and volume say so.
//! * Open: calls fail fast (the cart degrades lines to `unconfirmed`) until the open period ends.
//! * Half-open: one request at a time holds the probe lease and calls; success closes the
//!   breaker, failure re-opens it for another period.

use crate::ports::bindings::inventory::InventoryError;
use crate::ports::bindings::{kv, locks};
use crate::runtime::clock::now_ms;
use cart_domain::breaker::{
    bucket_of, phase, should_open, slot_of, window_buckets, BreakerConfig, OpenState, Phase,
};
use std::cell::RefCell;

pub const STATE_KEY: &str = "breaker:inventory:state";

pub mod metric_keys {
    pub const SHORT_CIRCUITS: &str = "cart_inventory_short_circuits_total";
    pub const OPENED: &str = "cart_inventory_breaker_opened_total";
}

thread_local! {
    /// The state as read once per request (instances serve one request).
    static STATE: RefCell<Option<Option<OpenState>>> = const { RefCell::new(None) };
    static CONFIG: RefCell<Option<BreakerConfig>> = const { RefCell::new(None) };
}

fn setting(name: &str, default: u64) -> u64 {
    crate::ports::settings::var(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn breaker_config() -> BreakerConfig {
    CONFIG.with(|c| {
        *c.borrow_mut().get_or_insert_with(|| {
            let d = BreakerConfig::default();
            BreakerConfig {
                window_ms: setting("breaker_window_ms", d.window_ms),
                bucket_ms: d.bucket_ms,
                min_volume: setting("breaker_min_volume", d.min_volume),
                error_percent: setting("breaker_error_percent", d.error_percent),
                open_ms: setting("breaker_open_ms", d.open_ms),
            }
        })
    })
}

fn read_state() -> Option<OpenState> {
    STATE.with(|s| {
        *s.borrow_mut().get_or_insert_with(|| {
            crate::ports::record_reads::get(STATE_KEY)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok())
        })
    })
}

fn write_state(state: Option<OpenState>) {
    STATE.with(|s| *s.borrow_mut() = Some(state));
    let _ = match state {
        Some(open) => serde_json::to_vec(&open)
            .map_err(|_| ())
            .and_then(|b| kv::set(STATE_KEY, &b).map_err(|_| ())),
        None => kv::delete(STATE_KEY).map_err(|_| ()),
    };
}

/// The breaker's phase now (for metrics and tests).
pub fn current_phase() -> Phase {
    phase(read_state(), now_ms(), &breaker_config())
}

fn is_failure<T>(result: &Result<T, InventoryError>) -> bool {
    matches!(result, Err(InventoryError::Unavailable(_)))
}

/// The counter of one bucket's successes or failures.
fn bucket_key(bucket: u64, failed: bool) -> String {
    let outcome = if failed { "err" } else { "ok" };
    format!("breaker:inventory:{bucket}:{outcome}")
}

/// The record of which bucket a ring slot serves now.
fn slot_key(slot: u64) -> String {
    format!("breaker:inventory:slot{slot}")
}

/// The bucket a slot serves now, if it was ever claimed.
fn slot_bucket(key: &str) -> Option<u64> {
    kv::get(key)
        .ok()
        .flatten()
        .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok())
}

/// A counter's value (`get` of an incremented key is 8 little-endian bytes; a read, not the
/// `increment(0)` it used to be, which is a write on Spin's store).
fn counter(key: &str) -> u64 {
    kv::get(key)
        .ok()
        .flatten()
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, |b| i64::from_le_bytes(b).max(0) as u64)
}

/// Counts one outcome in the bucket's own counters. Each bucket maps to one of a fixed ring of
/// slots; the first count of a bucket in its slot deletes the counters of the bucket that
/// slot served before (long out of the window) and records the new one. Racing requests
/// repeat the same idempotent deletes and record the same bucket, and a bucket's counts live
/// in keys of its own, so no count of a bucket in the window is lost; the breaker's keys stay
/// bounded (the window's buckets and one record per slot) instead of two new keys every 5 s.
fn count_outcome(bucket: u64, config: &BreakerConfig, failed: bool) {
    let slot = slot_key(slot_of(bucket, config));
    let served = slot_bucket(&slot);
    if served != Some(bucket) {
        if let Some(old) = served {
            let _ = kv::delete(&bucket_key(old, false));
            let _ = kv::delete(&bucket_key(old, true));
        }
        let _ = kv::set(&slot, bucket.to_string().as_bytes());
    }
    let _ = kv::increment(&bucket_key(bucket, failed), 1);
}

fn record(config: &BreakerConfig, failed: bool) {
    let now = now_ms();
    let bucket = bucket_of(now, config);
    if !failed {
        // A success can only lower the error rate: count it after the response.
        let config = *config;
        crate::runtime::deferred::defer(move || count_outcome(bucket, &config, false));
        return;
    }
    count_outcome(bucket, config, true);
    let (mut ok, mut err) = (0u64, 0u64);
    for bucket in window_buckets(now, config) {
        ok += counter(&bucket_key(bucket, false));
        err += counter(&bucket_key(bucket, true));
    }
    if should_open(ok, err, config) {
        write_state(Some(OpenState { opened_at_ms: now }));
        crate::ports::metrics::inc(metric_keys::OPENED);
    }
}

/// Runs an inventory call through the breaker.
pub fn call<T>(f: impl FnOnce() -> Result<T, InventoryError>) -> Result<T, InventoryError> {
    let config = breaker_config();
    match phase(read_state(), now_ms(), &config) {
        Phase::Closed => {
            let result = counted_timeout(f());
            record(&config, is_failure(&result));
            result
        }
        Phase::Open => short_circuit(),
        Phase::HalfOpen => {
            let lease = match locks::try_acquire(&crate::ports::lock_keys::breaker_probe(), 10_000)
            {
                Ok(Some(lease)) => lease,
                _ => return short_circuit(),
            };
            let result = counted_timeout(f());
            if is_failure(&result) {
                write_state(Some(OpenState {
                    opened_at_ms: now_ms(),
                }));
            } else {
                write_state(None);
            }
            let _ = locks::release(&lease);
            result
        }
    }
}

/// Counts an inventory call that timed out. The contract has no timeout variant: the Spin
/// adapter reports a timeout as `unavailable` with a detail saying "timed out"
/// (`http_util::HttpError::Timeout`), which is what this looks for.
fn counted_timeout<T>(result: Result<T, InventoryError>) -> Result<T, InventoryError> {
    if let Err(InventoryError::Unavailable(detail)) = &result {
        if detail.contains("timed out") {
            crate::ports::metrics::inc("cart_inventory_timeouts_total");
        }
    }
    result
}

fn short_circuit<T>() -> Result<T, InventoryError> {
    crate::ports::metrics::inc(metric_keys::SHORT_CIRCUITS);
    Err(InventoryError::Unavailable(
        "circuit breaker open: inventory calls are paused".into(),
    ))
}
