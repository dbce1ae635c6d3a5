//! The lease that serializes changes to one cart line (`line:{store}:{user}:{product}`), so a line's
//! reservation is adjusted by one request at a time. Waiting is bounded with jittered backoff.

use crate::ports::bindings::locks::{self, LockError};
use crate::ports::metrics;
use crate::runtime::clock::{random_unit, sleep_ms};
use crate::runtime::metric_registry as registry;
use cart_domain::backoff::backoff_delay_ms;
use cart_domain::{StoreId, UserId};
use std::cell::RefCell;
use std::time::Instant;

/// A lease the lock service granted (the contract's resource).
pub use crate::ports::bindings::locks::Lease;

/// Why a line lease was not granted.
#[derive(Debug, Clone)]
pub enum LeaseError {
    /// The lock service failed; its detail.
    Unavailable(String),
    /// Another request held the line for the whole bounded wait.
    Busy { waited_ms: u64 },
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::Unavailable(detail) => write!(f, "the lock service failed: {detail}"),
            LeaseError::Busy { waited_ms } => write!(
                f,
                "another request kept this cart line busy for {waited_ms} ms; retry shortly"
            ),
        }
    }
}

impl std::error::Error for LeaseError {}

/// What acquiring cost, for metrics and Server-Timing.
#[derive(Debug, Default, Clone, Copy)]
pub struct LockStats {
    pub attempts: u32,
    pub waited_ms: u64,
}

/// The lease key of one cart line (see `lock_keys`).
pub fn line_key(store: &StoreId, user: &UserId, product: &str) -> String {
    crate::ports::lock_keys::line(store, user, product)
}

thread_local! {
    /// When each line lease this instance holds was taken (by key), for the hold histogram.
    static TAKEN_AT: RefCell<Vec<(String, Instant)>> = const { RefCell::new(Vec::new()) };
}

pub fn acquire(key: &str, ttl_ms: u32, max_wait_ms: u64) -> Result<(Lease, LockStats), LeaseError> {
    let started = Instant::now();
    let mut stats = LockStats::default();
    let took = |now: Instant| {
        let us = now.duration_since(started).as_micros() as u64;
        metrics::observe(&registry::LOCK_ACQUIRE_DURATION, "", us);
        us
    };
    loop {
        stats.attempts += 1;
        match locks::try_acquire(key, ttl_ms) {
            Ok(Some(lease)) => {
                // One clock read serves the wait, the acquisition histogram and the hold's start.
                let now = Instant::now();
                stats.waited_ms = took(now) / 1000;
                TAKEN_AT.with(|t| t.borrow_mut().push((key.to_owned(), now)));
                metrics::inc("cart_lock_acquisitions_total");
                if stats.attempts > 1 {
                    metrics::inc("cart_lock_contended_total");
                }
                metrics::add("cart_lock_wait_ms_total", stats.waited_ms as i64);
                metrics::add("cart_lock_attempts_total", i64::from(stats.attempts));
                return Ok((lease, stats));
            }
            Ok(None) => {}
            Err(LockError::Unavailable(d)) | Err(LockError::Invalid(d)) => {
                took(Instant::now());
                metrics::inc("cart_lock_errors_total");
                return Err(LeaseError::Unavailable(d));
            }
        }
        let now = Instant::now();
        let elapsed = now.duration_since(started).as_millis() as u64;
        if elapsed >= max_wait_ms {
            took(now);
            metrics::inc("cart_lock_timeouts_total");
            metrics::add("cart_lock_wait_ms_total", elapsed as i64);
            return Err(LeaseError::Busy { waited_ms: elapsed });
        }
        let delay = backoff_delay_ms(stats.attempts - 1, 4, 100, random_unit());
        sleep_ms(delay.min(max_wait_ms - elapsed));
    }
}

/// Takes the leases of several lines of one cart, in sorted order so that two requests taking
/// overlapping sets cannot deadlock. On failure, releases what it took.
pub fn acquire_lines(
    store: &StoreId,
    user: &UserId,
    lines: &[cart_domain::Line],
    ttl_ms: u32,
    max_wait_ms: u64,
) -> Result<Vec<Lease>, LeaseError> {
    let mut products: Vec<&str> = lines.iter().map(|l| l.product_id.as_str()).collect();
    products.sort_unstable();
    products.dedup();
    let mut leases = Vec::with_capacity(products.len());
    for product in products {
        match acquire(&line_key(store, user, product), ttl_ms, max_wait_ms) {
            Ok((lease, _)) => leases.push(lease),
            Err(p) => {
                release_all(&leases);
                return Err(p);
            }
        }
    }
    Ok(leases)
}

/// Takes a lease without waiting: `None` when someone holds it or the lock service failed (a
/// caller that can skip the line for now, like hold refreshes and the orphan sweep).
pub fn try_acquire(key: &str, ttl_ms: u32) -> Option<Lease> {
    locks::try_acquire(key, ttl_ms).ok().flatten()
}

pub fn release_all(leases: &[Lease]) {
    leases.iter().for_each(release);
}

/// Releases the lease. A failure only delays the next holder until the TTL, so it is logged.
pub fn release(lease: &Lease) {
    observe_hold(&lease.key);
    log_outcome(lease, locks::release(lease));
}

/// Releases the lease of a line that has left the cart, letting the lock backend forget its
/// key (`locks.retire`): line leases then exist for lines in carts, not for every line a cart
/// ever had.
pub fn retire(lease: &Lease) {
    observe_hold(&lease.key);
    log_outcome(lease, locks::retire(lease));
}

pub fn retire_all(leases: &[Lease]) {
    leases.iter().for_each(retire);
}

fn log_outcome(lease: &Lease, outcome: Result<bool, LockError>) {
    let line = match outcome {
        Ok(true) => return,
        Ok(false) => format!(
            "{{\"level\":\"warn\",\"msg\":\"lease had expired before release\",\"key\":\"{}\"}}",
            lease.key
        ),
        Err(e) => format!(
            "{{\"level\":\"warn\",\"msg\":\"lease release failed\",\"key\":\"{}\",\"error\":\"{e:?}\"}}",
            lease.key
        ),
    };
    // One write to stderr: each piece of a formatted eprintln! is a host call of its own.
    eprintln!("{line}");
}

/// Counts how long the lease of `key` was held, when this instance took it (a lease taken by
/// another path, like the orphan sweep's, is not timed). One clock read.
fn observe_hold(key: &str) {
    let taken = TAKEN_AT.with(|t| {
        let mut t = t.borrow_mut();
        let i = t.iter().position(|(k, _)| k == key)?;
        Some(t.swap_remove(i).1)
    });
    if let Some(taken) = taken {
        metrics::observe(
            &registry::LOCK_HOLD_DURATION,
            "",
            taken.elapsed().as_micros() as u64,
        );
    }
}
