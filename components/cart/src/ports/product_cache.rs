//! Product records cached in key-value (`product:{store}:{product}`) with a TTL and jitter.
//!
//! * Fresh: served from the cache (a hit).
//! * Stale: one request takes the refresh lease and asks the inventory; every other request
//!   keeps serving the stale record meanwhile, so a stampede makes exactly one inventory fetch.
//!   If the inventory is unavailable the stale record keeps serving (degraded, not failed).
//! * Absent: fetched and stored (a miss).
//!
//! The inventory side invalidates a record with `POST /admin/cache/invalidate`.

use crate::ports::bindings::{kv, locks};
use crate::ports::inventory_port::{self, LookupError};
use crate::ports::metrics;
use crate::runtime::clock::{now_ms, random_unit};
use crate::runtime::metric_registry as registry;
use cart_domain::ProductSnapshot;
use serde::{Deserialize, Serialize};
use std::time::Instant;

const REFRESH_LEASE_TTL_MS: u32 = 5_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cached {
    product: ProductSnapshot,
    fresh_until_ms: u64,
}

pub fn cache_key(store: &str, product: &str) -> String {
    format!("product:{store}:{product}")
}

fn ttl_ms() -> u64 {
    crate::ports::settings::var("product_cache_ttl_ms")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(60_000)
}

fn store(key: &str, product: &ProductSnapshot) {
    // ±10% jitter so records cached together do not all go stale together.
    let ttl = ttl_ms();
    let jitter = (ttl as f64 * 0.2 * random_unit()) as u64;
    let cached = Cached {
        product: product.clone(),
        fresh_until_ms: now_ms() + ttl - ttl / 10 + jitter,
    };
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        let _ = timed_write(|| kv::set(key, &bytes));
    }
}

/// A cache write (a record stored or deleted): counted and timed (two clock reads).
fn timed_write<T>(write: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = write();
    metrics::inc("cart_cache_writes_total");
    metrics::observe(
        &registry::CACHE_WRITE_DURATION,
        "",
        started.elapsed().as_micros() as u64,
    );
    out
}

/// A cache read, timed (two clock reads).
fn read(key: &str) -> Option<Cached> {
    // A record prefetched with the change's other records (`record_reads`) costs no crossing
    // here; its share of that batch read is not attributed to the cache.
    let started = Instant::now();
    let raw = crate::ports::record_reads::get(key);
    metrics::observe(
        &registry::CACHE_READ_DURATION,
        "",
        started.elapsed().as_micros() as u64,
    );
    raw.ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn fetch_and_store(
    key: &str,
    store_id: &str,
    product: &str,
) -> Result<ProductSnapshot, LookupError> {
    metrics::inc("cart_product_fetches_total");
    match inventory_port::lookup(store_id, product) {
        Ok(p) => {
            store(key, &p);
            Ok(p)
        }
        Err(LookupError::NotFound) => {
            let _ = timed_write(|| kv::delete(key));
            Err(LookupError::NotFound)
        }
        Err(e) => Err(e),
    }
}

/// The product's catalogue facts, from the cache when possible.
pub fn lookup(store_id: &str, product: &str) -> Result<ProductSnapshot, LookupError> {
    let key = cache_key(store_id, product);
    let Some(cached) = read(&key) else {
        metrics::inc("cart_cache_misses_total");
        return fetch_and_store(&key, store_id, product);
    };
    if cached.fresh_until_ms > now_ms() {
        metrics::inc("cart_cache_hits_total");
        return Ok(cached.product);
    }
    let lease_key = crate::ports::lock_keys::product_refresh(store_id, product);
    match locks::try_acquire(&lease_key, REFRESH_LEASE_TTL_MS) {
        Ok(Some(lease)) => {
            // Someone may have refreshed between our read and our lease: look again first, so
            // a stampede makes exactly one fetch.
            if let Some(fresh) = read(&key).filter(|c| c.fresh_until_ms > now_ms()) {
                let _ = locks::release(&lease);
                metrics::inc("cart_cache_hits_total");
                return Ok(fresh.product);
            }
            metrics::inc("cart_cache_refreshes_total");
            let result = fetch_and_store(&key, store_id, product);
            let _ = locks::release(&lease);
            match result {
                Err(LookupError::Unavailable(_)) => {
                    metrics::inc("cart_cache_stale_served_total");
                    Ok(cached.product)
                }
                other => other,
            }
        }
        _ => {
            // Someone else is refreshing: the stale record is good enough for now.
            metrics::inc("cart_cache_hits_total");
            metrics::inc("cart_cache_stale_served_total");
            Ok(cached.product)
        }
    }
}

/// Drops a cached record (the inventory changed it).
pub fn invalidate(store_id: &str, product: &str) -> Result<(), String> {
    timed_write(|| kv::delete(&cache_key(store_id, product))).map_err(|e| format!("{e:?}"))
}
