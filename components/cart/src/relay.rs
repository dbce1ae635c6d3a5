//! The outbox relay: publishes a cart's pending events and removes the acknowledged ones with
//! another compare-and-swap. It runs after the response has been sent, and from the admin sweep.
//!
//! * Writers call `mark_pending` before their commit, so every cart that may hold pending events
//!   is listed under `outbox:pending:{cart key}` for the sweep, even if the process dies right
//!   after the commit.
//! * One relay per cart at a time (a lease), publishing the pending events oldest first, so the
//!   events of one cart arrive in sequence order; a crash after publishing and before the removal
//!   only causes redelivery, which consumers drop by event id (at least once, never lost).
//! * Failures leave the events pending and back the whole relay off (`outbox:backoff`,
//!   exponential up to a minute) so a down event pipeline is not hammered on every write.

use crate::bindings::{events, kv, locks};
use crate::cart_repo::{self, SaveError};
use crate::clock::{now_ms, random_unit, sleep_ms};
use cart_domain::backoff::backoff_delay_ms;
use cart_domain::Problem;
use serde::{Deserialize, Serialize};

pub const MARKER_PREFIX: &str = "outbox:pending:";
const BACKOFF_KEY: &str = "outbox:backoff";
const RELAY_LEASE_TTL_MS: u32 = 15_000;
const MAX_ROUNDS: usize = 4;

pub mod metric_keys {
    pub const COMMITTED: &str = "cart_outbox_events_committed_total";
    pub const ACKED: &str = "cart_outbox_events_acked_total";
    /// Sum of commit-to-acknowledgement times; with ACKED gives the mean outbox lag.
    pub const LAG_MS_SUM: &str = "cart_outbox_lag_ms_total";
    pub const FAILURES: &str = "cart_outbox_publish_failures_total";
}

fn marker_key(cart_key: &str) -> String {
    format!("{MARKER_PREFIX}{cart_key}")
}

fn topic() -> String {
    crate::settings::var("events_topic")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "cart-events".to_owned())
}

/// Outbox counters are read back exactly (the pending gauge subtracts them), so never sampled.
fn bump(series: &str, delta: i64) {
    crate::metrics::add_exact(series, delta);
}

/// Lists the cart as possibly holding pending events. Called before the commit.
pub fn mark_pending(cart_key: &str) -> Result<(), Problem> {
    kv::set(&marker_key(cart_key), b"1").map_err(|e| {
        Problem::new(
            cart_domain::ProblemKind::StoreUnavailable,
            format!("could not index the outbox: {e:?}"),
        )
        .with("retryAfterSeconds", 1)
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Backoff {
    failures: u32,
    next_attempt_at_ms: u64,
}

fn read_backoff() -> Backoff {
    kv::get(BACKOFF_KEY)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn record_outcome(before: &Backoff, success: bool) {
    let next = if success {
        if before.failures == 0 {
            return;
        }
        Backoff::default()
    } else {
        bump(metric_keys::FAILURES, 1);
        let failures = before.failures.saturating_add(1);
        Backoff {
            failures,
            next_attempt_at_ms: now_ms()
                + backoff_delay_ms(failures, 250, 60_000, 0.5 + random_unit() / 2.0),
        }
    };
    if let Ok(bytes) = serde_json::to_vec(&next) {
        let _ = kv::set(BACKOFF_KEY, &bytes);
    }
}

/// What one relay pass did.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub published: usize,
    pub pending: usize,
    pub failed: bool,
    pub busy: bool,
    pub backing_off: bool,
}

thread_local! {
    /// Carts committed by work other than the request's own write (an abandoned cart emptied
    /// on read, the guest cart emptied by a merge), to relay after the response too.
    static SCHEDULED: std::cell::RefCell<Vec<(String, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Asks for `cart_key`'s outbox to be relayed after the response.
pub fn schedule(cart_key: &str, new_events: usize) {
    SCHEDULED.with(|s| s.borrow_mut().push((cart_key.to_owned(), new_events)));
}

/// Relays every scheduled cart not already relayed (`done`).
pub fn run_scheduled(done: Option<&str>) {
    let scheduled = SCHEDULED.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let mut seen: Vec<String> = done.map(str::to_owned).into_iter().collect();
    for (cart_key, events) in scheduled {
        if seen.contains(&cart_key) {
            bump(metric_keys::COMMITTED, events as i64);
            continue;
        }
        after_commit(&cart_key, events);
        seen.push(cart_key);
    }
}

/// After a commit: count the new events, then relay unless the pipeline is backing off.
pub fn after_commit(cart_key: &str, new_events: usize) {
    bump(metric_keys::COMMITTED, new_events as i64);
    let backoff = read_backoff();
    if backoff.next_attempt_at_ms > now_ms() {
        return;
    }
    // Wait briefly for the lease: a relay that holds it may have read the cart before our commit.
    relay_cart(cart_key, &backoff, 1_000, false);
}

/// Publishes `cart_key`'s pending events. `wait_ms` bounds the wait for the cart's relay lease.
/// `unlist` (the sweep) also removes the cart's marker once its outbox is empty; the relay after
/// a write leaves the marker (writers set it before every commit anyway), which saves it a
/// delete and a second read per write.
fn relay_cart(cart_key: &str, backoff: &Backoff, wait_ms: u64, unlist: bool) -> RelayReport {
    let mut report = RelayReport::default();
    let lease_key = crate::lock_keys::relay(cart_key);
    let started = now_ms();
    let mut attempt = 0;
    let lease = loop {
        match locks::try_acquire(&lease_key, RELAY_LEASE_TTL_MS) {
            Ok(Some(lease)) => break lease,
            Ok(None) if now_ms() - started < wait_ms => {
                sleep_ms(backoff_delay_ms(attempt, 5, 100, random_unit()));
                attempt += 1;
            }
            _ => {
                report.busy = true;
                return report;
            }
        }
    };
    let topic = topic();
    // The cart as this relay last saved it, so the next round need not read it again.
    let mut known: Option<cart_repo::Loaded> = None;
    for _ in 0..MAX_ROUNDS {
        let loaded = match known.take() {
            Some(loaded) => loaded,
            None => match cart_repo::load(cart_key) {
                Ok(loaded) => loaded,
                Err(_) => {
                    report.failed = true;
                    break;
                }
            },
        };
        report.pending = loaded.cart.outbox.len();
        if loaded.cart.outbox.is_empty() {
            if !unlist {
                break;
            }
            // Drained: unlist, then look once more in case a writer committed meanwhile.
            let _ = kv::delete(&marker_key(cart_key));
            match cart_repo::load(cart_key) {
                Ok(again) if again.cart.outbox.is_empty() => break,
                _ => {
                    let _ = mark_pending(cart_key);
                    continue;
                }
            }
        }
        let records: Vec<events::EventRecord> = loaded
            .cart
            .outbox
            .iter()
            .filter_map(|e| {
                serde_json::to_string(&e.event)
                    .ok()
                    .map(|value| events::EventRecord {
                        key: cart_key.to_owned(),
                        value,
                    })
            })
            .collect();
        let acked = match events::publish(&topic, &records) {
            Ok(n) => (n as usize).min(loaded.cart.outbox.len()),
            Err(e) => {
                eprintln!(
                    "{{\"level\":\"warn\",\"msg\":\"event publish failed\",\"cart\":\"{cart_key}\",\"error\":{}}}",
                    serde_json::Value::String(format!("{e:?}"))
                );
                0
            }
        };
        if acked == 0 {
            report.failed = true;
            break;
        }
        let through = loaded.cart.outbox[acked - 1].event.sequence;
        let now = now_ms();
        let lag: u64 = loaded.cart.outbox[..acked]
            .iter()
            .map(|e| now.saturating_sub(e.committed_at_ms))
            .sum();
        bump(metric_keys::ACKED, acked as i64);
        bump(metric_keys::LAG_MS_SUM, lag as i64);
        report.published += acked;
        let partial = acked < loaded.cart.outbox.len();
        known = remove_acknowledged(cart_key, through, loaded);
        if partial {
            report.failed = true;
            break;
        }
    }
    record_outcome(backoff, !report.failed);
    let _ = locks::release(&lease);
    report
}

/// Removes events up to `through` with a compare-and-swap that leaves the revision (ETag) alone,
/// starting from the cart as published (usually still current). Returns the saved cart.
fn remove_acknowledged(
    cart_key: &str,
    through: u64,
    published: cart_repo::Loaded,
) -> Option<cart_repo::Loaded> {
    let mut loaded = published;
    for _ in 0..8 {
        let mut next = loaded.cart.clone();
        if next.acknowledge_through(through).is_empty() {
            return Some(loaded);
        }
        next.previous_version = loaded.version;
        match cart_repo::save(cart_key, loaded.version, &next) {
            Ok(version) => {
                cart_repo::prune(cart_key, loaded.cart.previous_version);
                return Some(cart_repo::Loaded {
                    version,
                    cart: next,
                });
            }
            Err(SaveError::Conflict) => match cart_repo::load(cart_key) {
                Ok(again) => loaded = again,
                Err(_) => return None,
            },
            Err(SaveError::Failed(_)) => return None,
        }
    }
    None
}

/// What the admin sweep did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub carts: usize,
    pub published: usize,
    pub still_pending: usize,
    pub failed_carts: usize,
    pub skipped_backoff: bool,
}

/// Relays every listed cart (up to `limit`). Honours the backoff unless `force`.
pub fn sweep(limit: u32, force: bool) -> Result<SweepReport, Problem> {
    let mut report = SweepReport::default();
    let backoff = read_backoff();
    if !force && backoff.next_attempt_at_ms > now_ms() {
        report.skipped_backoff = true;
        return Ok(report);
    }
    let markers = kv::list_keys(MARKER_PREFIX, limit).map_err(|e| {
        Problem::new(
            cart_domain::ProblemKind::StoreUnavailable,
            format!("could not list pending outboxes: {e:?}"),
        )
    })?;
    let mut backoff = backoff;
    for marker in markers {
        let Some(cart_key) = marker.strip_prefix(MARKER_PREFIX) else {
            continue;
        };
        report.carts += 1;
        let r = relay_cart(cart_key, &backoff, 2_000, true);
        report.published += r.published;
        if r.failed || r.busy {
            report.failed_carts += 1;
            report.still_pending += r.pending;
        }
        // The outcome of this cart decides the backoff the next one starts from.
        backoff = read_backoff();
    }
    Ok(report)
}
