//! Checkout: confirm every line, commit the reservations, leave the cart checked out.
//!
//! 1. Take every line's lease (sorted, so two checkouts cannot deadlock) so no line changes
//!    under us.
//! 2. Hold each line's quantity again under its reservation id with the checkout hold TTL:
//!    this extends confirmed holds (a slow payment step cannot lose them), re-reserves
//!    `unconfirmed`/`expired` lines, and checks stock for `checkout`-policy lines.
//! 3. Any line short → 409 naming each short line; holds made only for this attempt are
//!    released and nothing is committed.
//! 4. Commit all reservation ids in inventory (all or nothing).
//! 5. One compare-and-swap removes the committed lines, records the checkout, starts a new
//!    epoch and emits `cart.checked_out`. Lines added meanwhile stay for the next order.

use crate::bindings::inventory::{self, InventoryError};
use crate::cart_repo::{self, SaveError};
use crate::line_change::{already_applied, Committed, MAX_SAVE_ATTEMPTS};
use crate::line_lock;
use crate::settings::WriteSettings;
use crate::timing::{measure, Phase};
use cart_domain::cart::CheckoutRecord;
use cart_domain::events::{EventFactory, EventType};
use cart_domain::idempotency::{remember, AppliedKey};
use cart_domain::precondition::{precondition_failed, EntityTags};
use cart_domain::{Cart, Line, Problem, ProblemKind, ReservationStatus, StoreId, UserId};

fn checkout_hold_ms() -> u64 {
    crate::settings::var("checkout_hold_seconds")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1_800)
        .saturating_mul(1_000)
}

pub fn checkout(
    store: &StoreId,
    user: &UserId,
    if_match: Option<EntityTags>,
    mark: Option<AppliedKey>,
    write: &WriteSettings,
) -> Result<Committed, Problem> {
    let key = cart_repo::cart_key(store, user);
    let loaded = measure(Phase::Store, || cart_repo::load(&key))?;
    if let Some(done) = already_applied(mark.as_ref(), &loaded)? {
        return Ok(done);
    }
    if let Some(tags) = &if_match {
        if !tags.matches_strong(loaded.cart.revision) {
            return Err(precondition_failed(loaded.cart.revision));
        }
    }
    let leases = measure(Phase::Lock, || {
        line_lock::acquire_lines(
            store,
            user,
            &loaded.cart.lines,
            write.lock_ttl_ms,
            write.lock_wait_ms,
        )
    })?;
    let outcome = checkout_locked(store, user, &key, if_match.as_ref(), mark);
    measure(Phase::Lock, || line_lock::release_all(&leases));
    outcome
}

fn checkout_locked(
    store: &StoreId,
    user: &UserId,
    key: &str,
    if_match: Option<&EntityTags>,
    mark: Option<AppliedKey>,
) -> Result<Committed, Problem> {
    // Re-read under the leases: this is the cart that gets checked out.
    let loaded = measure(Phase::Store, || cart_repo::load(key))?;
    if let Some(tags) = if_match {
        if !tags.matches_strong(loaded.cart.revision) {
            return Err(precondition_failed(loaded.cart.revision));
        }
    }
    if loaded.cart.lines.is_empty() {
        return Err(Problem::new(
            ProblemKind::CartEmpty,
            "there is nothing to check out",
        ));
    }
    let lines = loaded.cart.lines.clone();
    let held = hold_all(store.as_str(), &lines)?;
    let ids: Vec<String> = lines.iter().map(|l| l.reservation.id.clone()).collect();
    if let Err(e) = measure(Phase::Inventory, || {
        crate::breaker::call(|| inventory::commit(store.as_str(), &ids))
    }) {
        release_new_holds(store.as_str(), &lines, &held);
        return Err(match e {
            InventoryError::Unavailable(d) => crate::inventory_port::inventory_unavailable(&d),
            other => Problem::new(
                ProblemKind::InsufficientStock,
                format!("the inventory refused to commit the reservations: {other:?}"),
            ),
        });
    }
    crate::metrics::inc("cart_checkouts_total");
    save_checked_out(store, user, key, loaded, &lines, mark)
}

/// Holds every line for the checkout; on any shortage releases what it newly held and
/// returns a 409 listing every short line.
fn hold_all(store: &str, lines: &[Line]) -> Result<Vec<bool>, Problem> {
    let ttl = checkout_hold_ms();
    let mut newly_held = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    let mut unavailable = None;
    for line in lines {
        let was_held = line.reservation.status == ReservationStatus::Confirmed;
        match measure(Phase::Inventory, || {
            crate::breaker::call(|| {
                inventory::reserve(
                    store,
                    &line.product_id,
                    &line.reservation.id,
                    line.quantity,
                    ttl,
                )
            })
        }) {
            Ok(_) => newly_held.push(!was_held),
            Err(InventoryError::InsufficientStock(available)) => {
                newly_held.push(false);
                short.push(serde_json::json!({
                    "productId": line.product_id,
                    "requested": line.quantity,
                    "available": available,
                    "problem": "insufficient-stock",
                }));
            }
            Err(InventoryError::ProductNotFound) => {
                newly_held.push(false);
                short.push(serde_json::json!({
                    "productId": line.product_id,
                    "requested": line.quantity,
                    "available": 0,
                    "problem": "unknown-product",
                }));
            }
            Err(InventoryError::Unavailable(d)) | Err(InventoryError::Rejected(d)) => {
                newly_held.push(false);
                unavailable = Some(d);
            }
        }
    }
    if short.is_empty() && unavailable.is_none() {
        return Ok(newly_held);
    }
    release_new_holds(store, lines, &newly_held);
    if let Some(d) = unavailable.filter(|_| short.is_empty()) {
        return Err(crate::inventory_port::inventory_unavailable(&d));
    }
    Err(Problem::new(
        ProblemKind::InsufficientStock,
        format!(
            "{} line(s) cannot be fulfilled; nothing was committed",
            short.len()
        ),
    )
    .with("lines", serde_json::Value::Array(short)))
}

/// Releases holds that exist only because of this checkout attempt.
fn release_new_holds(store: &str, lines: &[Line], newly_held: &[bool]) {
    for (line, new) in lines.iter().zip(newly_held) {
        if *new {
            // The hold exists now whatever the line's status said (checkout-policy lines too).
            let held = cart_domain::reservation::ReservationState {
                status: ReservationStatus::Confirmed,
                ..line.reservation.clone()
            };
            crate::inventory_port::release(store, &held);
        }
    }
}

fn save_checked_out(
    store: &StoreId,
    user: &UserId,
    key: &str,
    mut loaded: cart_repo::Loaded,
    committed_lines: &[Line],
    mark: Option<AppliedKey>,
) -> Result<Committed, Problem> {
    let now = crate::clock::now_ms();
    let mut snapshot = Cart {
        lines: committed_lines.to_vec(),
        ..Cart::default()
    };
    for line in &mut snapshot.lines {
        line.reservation.status = ReservationStatus::Confirmed;
    }
    let record = CheckoutRecord {
        checkout_id: format!("{user}~{}~{}", loaded.cart.epoch, now),
        checked_out_at_ms: now,
        item_count: snapshot.item_count(),
        subtotal: snapshot.subtotal().ok().flatten(),
        lines: snapshot.lines,
    };
    for attempt in 0..MAX_SAVE_ATTEMPTS {
        let mut next = loaded.cart.clone();
        next.lines.retain(|l| {
            !committed_lines
                .iter()
                .any(|c| c.product_id == l.product_id && c.reservation.id == l.reservation.id)
        });
        next.epoch += 1;
        next.revision = loaded.cart.revision + 1;
        next.last_checkout = Some(record.clone());
        next.updated_at_ms = now;
        if let Some(mark) = &mark {
            remember(&mut next.applied_keys, mark.clone(), now);
        }
        let factory = EventFactory {
            store_id: store.as_str(),
            user_id: user.as_str(),
            cart_key: key,
            now_ms: now,
        };
        next.emit(
            &factory,
            EventType::CheckedOut,
            serde_json::to_value(&record).unwrap_or(serde_json::Value::Null),
        );
        match crate::commit::save(key, &loaded, next) {
            Ok(saved) => {
                return Ok(Committed { cart: saved.cart });
            }
            Err(SaveError::Conflict) => {
                crate::metrics::inc("cart_version_conflicts_total");
                crate::line_change::conflict_backoff(attempt);
                loaded = measure(Phase::Store, || cart_repo::load(key))?;
            }
            Err(SaveError::Failed(p)) => return Err(p),
        }
    }
    // The reservations are committed; the cart could not be updated. Say so plainly.
    Err(Problem::new(
        ProblemKind::CartConflict,
        format!(
            "checkout {} was committed but the cart kept changing; reload the cart",
            record.checkout_id
        ),
    ))
}
