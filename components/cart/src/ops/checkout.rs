//! Checkout: confirm every line, commit the reservations, leave the cart checked out.
//!
//! 1. Take every line's lease (sorted, so two checkouts cannot deadlock) so no line changes
//!    under us.
//! 2. Hold each line's quantity again under its reservation id with the checkout hold TTL:
//!    this extends confirmed holds (a slow payment step cannot lose them), re-reserves
//!    `unconfirmed`/`expired` lines, and checks stock for `checkout`-policy lines.
//! 3. Any line short → 409 naming each short line; holds made only for this attempt are
//!    released and nothing is committed.
//! 4. Record the checkout as an intent in the cart (one compare-and-swap), then commit all
//!    reservation ids in inventory (all or nothing).
//! 5. One compare-and-swap removes the committed lines, records the checkout, clears the
//!    intent, starts a new epoch and emits `cart.checked_out`. Lines added meanwhile stay for
//!    the next order.
//!
//! The intent makes checkout resumable: after a failure anywhere between steps 4 and 5 (the
//! inventory unreachable, the final save lost), the next checkout request finds the intent,
//! commits its ids again (inventory commits are idempotent) and finishes, so a committed
//! checkout is never answered with an error forever and `cart.checked_out` is emitted once.
//! Until then line changes are refused (the lines may already be sold).

use crate::ops::commit::{self, already_applied, Committed, Outcome, Retry, Step, Stopped};
use crate::ops::error::{Contended, OpError, ShortLine};
use crate::ports::cart_repo;
use crate::ports::inventory_port::{self, CommitError, HoldFailure, ReserveError};
use crate::ports::line_lock;
use crate::ports::settings::WriteSettings;
use crate::runtime::timing::{measure, Phase};
use cart_domain::cart::CheckoutRecord;
use cart_domain::events::{EventFactory, EventType};
use cart_domain::idempotency::{remember, AppliedKey};
use cart_domain::precondition::EntityTags;
use cart_domain::{Cart, Line, ReservationStatus, StoreId, UserId};
use std::convert::Infallible;

fn checkout_hold_ms() -> u64 {
    crate::ports::settings::var("checkout_hold_seconds")
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
) -> Result<Committed, OpError> {
    let key = cart_repo::cart_key(store, user);
    let loaded = measure(Phase::Store, || cart_repo::load(&key))?;
    if let Some(done) = already_applied(mark.as_ref(), &loaded)? {
        return Ok(done);
    }
    if let Some(tags) = &if_match {
        if !tags.matches_strong(loaded.cart.revision) {
            return Err(OpError::PreconditionFailed {
                current_revision: loaded.cart.revision,
            });
        }
    }
    if !write.line_leases {
        // Optimistic mode: the intent's compare-and-swap decides (see `save_intent`).
        return checkout_locked(store, user, &key, if_match.as_ref(), mark);
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
    // A completed checkout empties the cart: its lines' leases are retired (keys forgotten).
    measure(Phase::Lock, || match &outcome {
        Ok(_) => line_lock::retire_all(&leases),
        Err(_) => line_lock::release_all(&leases),
    });
    outcome
}

fn checkout_locked(
    store: &StoreId,
    user: &UserId,
    key: &str,
    if_match: Option<&EntityTags>,
    mark: Option<AppliedKey>,
) -> Result<Committed, OpError> {
    // Re-read under the leases: this is the cart that gets checked out.
    let loaded = measure(Phase::Store, || cart_repo::load(key))?;
    if let Some(tags) = if_match {
        if !tags.matches_strong(loaded.cart.revision) {
            return Err(OpError::PreconditionFailed {
                current_revision: loaded.cart.revision,
            });
        }
    }
    if let Some(intent) = loaded.cart.checkout_intent.clone() {
        // An earlier attempt recorded this checkout and may have committed it: finish it.
        crate::ports::metrics::inc("cart_checkouts_resumed_total");
        return commit_and_finish(store, user, key, loaded, intent, mark, Attempt::Resumed);
    }
    if loaded.cart.lines.is_empty() {
        return Err(OpError::CartEmpty);
    }
    let lines = loaded.cart.lines.clone();
    let held = hold_all(store.as_str(), &lines, loaded.version + 1)?;
    let intent = checkout_record(user, &loaded.cart, &lines);
    let loaded = match save_intent(store.as_str(), key, loaded, &intent) {
        Ok(loaded) => loaded,
        Err(e) => {
            release_new_holds(store.as_str(), &lines, &held);
            return Err(e);
        }
    };
    commit_and_finish(store, user, key, loaded, intent, mark, Attempt::JustHeld)
}

/// The record of checking out `lines` (all confirmed once committed).
fn checkout_record(user: &UserId, cart: &Cart, lines: &[Line]) -> CheckoutRecord {
    let now = crate::runtime::clock::now_ms();
    let mut snapshot = Cart {
        lines: lines.to_vec(),
        ..Cart::default()
    };
    for line in &mut snapshot.lines {
        line.reservation.status = ReservationStatus::Confirmed;
    }
    CheckoutRecord {
        checkout_id: format!("{user}~{}~{}", cart.epoch, now),
        checked_out_at_ms: now,
        item_count: snapshot.item_count(),
        subtotal: snapshot.subtotal().ok().flatten(),
        lines: snapshot.lines,
    }
}

/// Writes the intent into the cart (the revision, the client's ETag, stays: nothing the
/// shopper sees changed yet).
///
/// The lines checked out must still be the cart's lines: under the line leases they are; without
/// leases (optimistic mode) a change may have slipped in, and then this checkout gives way: it
/// sets the changed lines' holds back to the newer version's quantities (fenced by it, so the
/// checkout's own hold of the old quantity cannot stand) and answers 409.
fn save_intent(
    store: &str,
    key: &str,
    loaded: cart_repo::Loaded,
    intent: &CheckoutRecord,
) -> Result<cart_repo::Loaded, OpError> {
    // The first version has no intent (the caller resumes one instead); a re-read one may.
    let outcome: Outcome<Infallible> = commit::run(key, loaded, Retry::CHANGE, None, |loaded| {
        loaded.cart.ensure_no_checkout_pending()?;
        let changed: Vec<&Line> = loaded
            .cart
            .lines
            .iter()
            .filter(|now| {
                intent.lines.iter().any(|was| {
                    was.product_id == now.product_id
                        && (was.quantity != now.quantity
                            || was.reservation.id != now.reservation.id)
                })
            })
            .collect();
        if !changed.is_empty() {
            for line in changed {
                let _ = inventory_port::reserve_line(
                    store,
                    &line.snapshot(),
                    &line.reservation.id,
                    line.quantity,
                    checkout_hold_ms(),
                    loaded.version + 1,
                );
            }
            return Err(OpError::CheckoutOvertaken);
        }
        let mut next = loaded.cart.clone();
        next.checkout_intent = Some(intent.clone());
        Ok(Step::Save(next))
    })
    .map_err(|stopped| stopped.or_kept_changing(Contended::CheckoutIntent))?;
    Ok(outcome.into_loaded())
}

/// Whether the intent's holds were confirmed by this very request (so the inventory must still
/// have them) or by an earlier one (they may have lapsed since).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempt {
    JustHeld,
    Resumed,
}

/// Commits the intent's reservations and records the checkout. An unreachable inventory
/// leaves the intent for the retry; a refusal (holds lapsed, stock gone) drops it so the
/// shopper can fix the cart.
fn commit_and_finish(
    store: &StoreId,
    user: &UserId,
    key: &str,
    loaded: cart_repo::Loaded,
    intent: CheckoutRecord,
    mark: Option<AppliedKey>,
    attempt: Attempt,
) -> Result<Committed, OpError> {
    let ids: Vec<String> = intent
        .lines
        .iter()
        .map(|l| l.reservation.id.clone())
        .collect();
    match measure(Phase::Inventory, || {
        inventory_port::commit(store.as_str(), &ids)
    }) {
        Ok(()) => {}
        Err(CommitError::Unavailable(d)) => {
            return Err(OpError::CheckoutPending {
                checkout_id: intent.checkout_id.clone(),
                cause: Box::new(OpError::InventoryUnavailable(d)),
            });
        }
        Err(CommitError::Refused(answer)) => {
            if attempt == Attempt::JustHeld {
                // An overselling incident: this request confirmed every hold moments ago, under
                // the line leases, for the checkout hold TTL, and the inventory will not sell
                // them (holds lost, or stock lowered below what it had confirmed). Had it
                // committed regardless, more would be sold than is in stock. A resumed
                // checkout's holds may have lapsed legitimately, so its refusal is not one.
                crate::ports::metrics::add(
                    "cart_overselling_incidents_total{source=\"checkout\"}",
                    1,
                );
                eprintln!(
                    "{{\"level\":\"error\",\"msg\":\"overselling incident: inventory refused to commit holds it had just confirmed\",\"checkoutId\":{},\"error\":{}}}",
                    serde_json::Value::String(intent.checkout_id.clone()),
                    serde_json::Value::String(answer.clone())
                );
            }
            drop_intent(key, loaded)?;
            return Err(OpError::CommitRefused(answer));
        }
    }
    save_checked_out(store, user, key, loaded, intent, mark)
}

/// Forgets an intent whose commit was refused (nothing was sold).
fn drop_intent(key: &str, loaded: cart_repo::Loaded) -> Result<(), OpError> {
    let outcome = commit::run(key, loaded, Retry::DROP_INTENT, None, |loaded| {
        if loaded.cart.checkout_intent.is_none() {
            return Ok(Step::Settled(()));
        }
        let mut next = loaded.cart.clone();
        next.checkout_intent = None;
        Ok(Step::Save(next))
    });
    match outcome {
        // Dropped, or already gone; or every attempt lost, and the next checkout request
        // finds the intent and tries its commit again.
        Ok(_) | Err(Stopped::Exhausted { .. }) => Ok(()),
        Err(Stopped::SaveFailed { error, .. } | Stopped::Failed(error)) => Err(error),
    }
}

/// Holds every line for the checkout; on any shortage releases what it newly held and
/// returns a 409 listing every short line.
fn hold_all(store: &str, lines: &[Line], fence: u64) -> Result<Vec<bool>, OpError> {
    let ttl = checkout_hold_ms();
    let mut newly_held = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    let mut unavailable = None;
    for line in lines {
        let was_held = line.reservation.status == ReservationStatus::Confirmed;
        match measure(Phase::Inventory, || {
            inventory_port::hold(
                store,
                &line.product_id,
                &line.reservation.id,
                line.quantity,
                ttl,
                fence,
            )
        }) {
            Ok(_) => newly_held.push(!was_held),
            Err(HoldFailure::InsufficientStock(available)) => {
                newly_held.push(false);
                short.push(ShortLine {
                    product_id: line.product_id.clone(),
                    requested: line.quantity,
                    available,
                    problem: "insufficient-stock",
                });
            }
            Err(HoldFailure::ProductNotFound) => {
                newly_held.push(false);
                short.push(ShortLine {
                    product_id: line.product_id.clone(),
                    requested: line.quantity,
                    available: 0,
                    problem: "unknown-product",
                });
            }
            Err(HoldFailure::Unavailable(d)) => {
                newly_held.push(false);
                unavailable = Some(d);
            }
            Err(HoldFailure::StaleFence(held)) => {
                // A change of this line overtook the checkout (optimistic mode).
                release_new_holds(store, lines, &newly_held);
                return Err(ReserveError::StaleFence {
                    product: line.product_id.clone(),
                    held,
                }
                .into());
            }
        }
    }
    if short.is_empty() && unavailable.is_none() {
        return Ok(newly_held);
    }
    release_new_holds(store, lines, &newly_held);
    if let Some(d) = unavailable.filter(|_| short.is_empty()) {
        return Err(OpError::InventoryUnavailable(d));
    }
    Err(OpError::StockShort(short))
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
            inventory_port::release(store, &held);
        }
    }
}

fn save_checked_out(
    store: &StoreId,
    user: &UserId,
    key: &str,
    loaded: cart_repo::Loaded,
    intent: CheckoutRecord,
    mark: Option<AppliedKey>,
) -> Result<Committed, OpError> {
    let now = crate::runtime::clock::now_ms();
    // Checked out when this write completes it (the cart shows `checked_out` until its next
    // change, judged by this time against the cart's own).
    let record = CheckoutRecord {
        checked_out_at_ms: now,
        ..intent
    };
    let still_ours = |cart: &Cart| {
        cart.checkout_intent
            .as_ref()
            .is_some_and(|pending| pending.checkout_id == record.checkout_id)
    };
    // The first version carries this intent (the caller just saved or found it); a re-read
    // one may not.
    let outcome = commit::run(key, loaded, Retry::CHANGE, None, |loaded| {
        if !still_ours(&loaded.cart) {
            // Another request finished this checkout meanwhile.
            return Ok(Step::Settled(loaded.cart.clone()));
        }
        let mut next = loaded.cart.clone();
        next.lines.retain(|l| {
            !record
                .lines
                .iter()
                .any(|c| c.product_id == l.product_id && c.reservation.id == l.reservation.id)
        });
        next.epoch += 1;
        next.revision = loaded.cart.revision + 1;
        next.last_checkout = Some(record.clone());
        next.checkout_intent = None;
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
        Ok(Step::Save(next))
    });
    match outcome {
        Ok(Outcome::Saved { saved: latest, .. }) => {
            // Counted by the write that records the sale (and emits `cart.checked_out`), not
            // when the inventory commits: a checkout whose save failed is committed again by
            // its retry, and would otherwise be counted twice.
            crate::ports::metrics::inc("cart_checkouts_total");
            observe_sold_cart(&record);
            Ok(Committed { cart: latest.cart })
        }
        Ok(Outcome::AlreadyApplied(latest)) => Ok(Committed { cart: latest.cart }),
        Ok(Outcome::Settled(cart)) => Ok(Committed { cart }),
        Err(Stopped::Exhausted { .. }) => {
            // One more look: a request that finished this checkout meanwhile is a success.
            let latest = measure(Phase::Store, || cart_repo::load(key))?;
            if !still_ours(&latest.cart) {
                return Ok(Committed { cart: latest.cart });
            }
            // The reservations are committed and the intent is recorded: the next checkout
            // request finishes the job.
            Err(OpError::CheckoutUnrecorded {
                checkout_id: record.checkout_id,
            })
        }
        Err(Stopped::SaveFailed { error, .. }) => Err(OpError::CheckoutPending {
            checkout_id: record.checkout_id,
            cause: Box::new(error),
        }),
        Err(Stopped::Failed(error)) => Err(error),
    }
}
/// Items and value per cart, observed once per completed checkout (the cart that was sold),
/// by the write that records it.
fn observe_sold_cart(intent: &CheckoutRecord) {
    use crate::runtime::metric_registry::{currency_label, CART_ITEMS, CART_VALUE};
    crate::ports::metrics::observe(&CART_ITEMS, "", intent.item_count);
    if let Some(subtotal) = &intent.subtotal {
        crate::ports::metrics::observe(
            &CART_VALUE,
            currency_label(subtotal.currency.as_str()),
            subtotal.amount.max(0).unsigned_abs(),
        );
    }
}
