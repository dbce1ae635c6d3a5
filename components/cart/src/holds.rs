//! Keeping a cart's holds alive, with bounded work per request.
//!
//! Cart activity refreshes holds that would lapse within half a TTL, and re-confirms lines that
//! are `unconfirmed` (inventory was down) or `expired`. Each such line is re-reserved under its
//! own line lease (taken without waiting; a busy line is left for later), so it can never race
//! a change of that line; the leases are kept until the caller has saved the new states.

use crate::bindings::locks::Lease;
use crate::breaker;
use crate::inventory_port;
use crate::line_change::snapshot_from_line;
use crate::line_lock;
use crate::timing::{measure, Phase};
use cart_domain::breaker::Phase as BreakerPhase;
use cart_domain::reservation::ReservationState;
use cart_domain::{Cart, Line, ReservationStatus, StoreId, UserId};

/// Most lines one request re-reserves besides its own.
pub const MAX_LINES_PER_REQUEST: usize = 3;

/// New hold states to save, and the line leases that protect them until saved.
#[derive(Default)]
pub struct Maintained {
    updates: Vec<(String, ReservationState)>,
    leases: Vec<Lease>,
}

impl Maintained {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// Puts the new states into `cart` (only where the line still has the same hold).
    pub fn apply(&self, cart: &mut Cart) {
        for (product, state) in &self.updates {
            if let Some(line) = cart
                .lines
                .iter_mut()
                .find(|l| &l.product_id == product && l.reservation.id == state.id)
            {
                line.reservation = state.clone();
            }
        }
    }

    pub fn release(self) {
        for lease in &self.leases {
            line_lock::release(lease);
        }
    }
}

fn needs_attention(line: &Line, now_ms: u64, ttl_ms: u64) -> bool {
    match line.reservation.status {
        ReservationStatus::NotRequired => false,
        ReservationStatus::Unconfirmed => true,
        ReservationStatus::Confirmed | ReservationStatus::Expired => line
            .reservation
            .expires_at_ms
            .is_none_or(|e| e < now_ms + ttl_ms / 2),
    }
}

/// Whether any line (other than `skip`) would be refreshed or re-confirmed.
pub fn any_need_attention(cart: &Cart, skip: Option<&str>, ttl_ms: u64) -> bool {
    let now = crate::clock::now_ms();
    cart.lines
        .iter()
        .any(|l| Some(l.product_id.as_str()) != skip && needs_attention(l, now, ttl_ms))
}

/// Re-reserves up to `MAX_LINES_PER_REQUEST` lines that need it. Does nothing while the
/// inventory breaker is open: there is no point asking.
pub fn maintain(
    store: &StoreId,
    user: &UserId,
    cart: &Cart,
    skip: Option<&str>,
    ttl_ms: u64,
    lock_ttl_ms: u32,
) -> Maintained {
    let mut out = Maintained::default();
    if breaker::current_phase() == BreakerPhase::Open {
        return out;
    }
    let now = crate::clock::now_ms();
    let candidates = cart
        .lines
        .iter()
        .filter(|l| Some(l.product_id.as_str()) != skip && needs_attention(l, now, ttl_ms))
        .take(MAX_LINES_PER_REQUEST);
    for line in candidates {
        let key = line_lock::line_key(store, user, &line.product_id);
        let Ok(Some(lease)) = crate::bindings::locks::try_acquire(&key, lock_ttl_ms) else {
            continue;
        };
        let state = measure(Phase::Inventory, || {
            inventory_port::reserve_line(
                store.as_str(),
                &snapshot_from_line(line),
                &line.reservation.id,
                line.quantity,
                ttl_ms,
            )
        });
        match state {
            Ok(state) if state.status == ReservationStatus::Confirmed => {
                out.updates.push((line.product_id.clone(), state));
                out.leases.push(lease);
            }
            _ => line_lock::release(&lease),
        }
    }
    out
}
