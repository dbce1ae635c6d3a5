//! Keeping a cart's holds alive, with bounded work per request.
//!
//! Cart activity refreshes holds that would lapse within half a TTL, and re-confirms lines that
//! are `unconfirmed` (inventory was down) or `expired`. Each such line is re-reserved under its
//! own line lease (taken without waiting; a busy line is left for later), with the quantity
//! read *after* that lease was taken: a quantity read before could be one a change of that
//! line has since replaced, and re-reserving it would set the hold below (or above) what the
//! cart shows. The leases are kept until the caller has saved the new states.

use crate::ports::breaker;
use crate::ports::cart_repo;
use crate::ports::inventory_port;
use crate::ports::line_lock::{self, Lease};
use crate::runtime::timing::{measure, Phase};
use cart_domain::breaker::Phase as BreakerPhase;
use cart_domain::reservation::ReservationState;
use cart_domain::{Cart, Line, ReservationStatus, StoreId, UserId};

/// Most lines one request re-reserves besides its own.
pub const MAX_LINES_PER_REQUEST: usize = 3;

/// A hold re-reserved for one line: which line, at which quantity, with what result.
struct Refreshed {
    product_id: String,
    quantity: u32,
    state: ReservationState,
}

/// New hold states to save, and the line leases that protect them until saved.
#[derive(Default)]
pub struct Maintained {
    updates: Vec<Refreshed>,
    leases: Vec<Lease>,
}

impl Maintained {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// Puts the new states into `cart`, only where the line still has the hold and quantity
    /// they were made for.
    pub fn apply(&self, cart: &mut Cart) {
        for update in &self.updates {
            if let Some(line) = cart.lines.iter_mut().find(|l| {
                l.product_id == update.product_id
                    && l.reservation.id == update.state.id
                    && l.quantity == update.quantity
            }) {
                line.reservation = update.state.clone();
            }
        }
    }

    /// Releases the leases after the response (the states are saved by then, or given up).
    pub fn release_after_response(self) {
        let leases = self.leases;
        crate::runtime::deferred::defer(move || line_lock::release_all(&leases));
    }
}

/// The rule itself is `ReservationState::needs_attention` (cart-domain, unit-tested there).
fn needs_attention(line: &Line, now_ms: u64, ttl_ms: u64) -> bool {
    line.reservation.needs_attention(now_ms, ttl_ms)
}

/// Whether any line (other than `skip`) would be refreshed or re-confirmed.
pub fn any_need_attention(cart: &Cart, skip: Option<&str>, ttl_ms: u64) -> bool {
    let now = crate::runtime::clock::now_ms();
    cart.lines
        .iter()
        .any(|l| Some(l.product_id.as_str()) != skip && needs_attention(l, now, ttl_ms))
}

/// Re-reserves up to `MAX_LINES_PER_REQUEST` lines that need it. Does nothing while the
/// inventory breaker is open: there is no point asking. `cart` only says which lines to look
/// at; what is reserved comes from a read made under their leases.
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
    let now = crate::runtime::clock::now_ms();
    let mut leased: Vec<(String, Lease)> = Vec::new();
    for line in cart
        .lines
        .iter()
        .filter(|l| Some(l.product_id.as_str()) != skip && needs_attention(l, now, ttl_ms))
        .take(MAX_LINES_PER_REQUEST)
    {
        let key = line_lock::line_key(store, user, &line.product_id);
        if let Some(lease) = line_lock::try_acquire(&key, lock_ttl_ms) {
            leased.push((line.product_id.clone(), lease));
        }
    }
    if leased.is_empty() {
        return out;
    }
    let key = cart_repo::cart_key(store, user);
    let (fresh_version, fresh) = match measure(Phase::Store, || cart_repo::load(&key)) {
        Ok(loaded) => (loaded.version, loaded.cart),
        Err(_) => {
            out.leases = leased.into_iter().map(|(_, lease)| lease).collect();
            return out;
        }
    };
    for (product_id, lease) in leased {
        out.leases.push(lease);
        let Some(line) = fresh
            .line(&product_id)
            .filter(|l| needs_attention(l, now, ttl_ms))
        else {
            continue;
        };
        let state = measure(Phase::Inventory, || {
            inventory_port::reserve_line(
                store.as_str(),
                &line.snapshot(),
                &line.reservation.id,
                line.quantity,
                ttl_ms,
                fresh_version + 1,
            )
        });
        match state {
            Ok(state) if state.status == ReservationStatus::Confirmed => {
                out.updates.push(Refreshed {
                    product_id,
                    quantity: line.quantity,
                    state,
                })
            }
            _ => {}
        }
    }
    out
}
