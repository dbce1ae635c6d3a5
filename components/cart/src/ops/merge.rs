//! Merging a guest cart into the signed-in shopper's cart on login.
//!
//! For every guest line, the user's line grows by the guest quantity: the guest's hold is
//! released and the user's line is reserved at the combined absolute quantity under the user's
//! own reservation id (transferred, never doubled). One compare-and-swap saves the user's cart
//! together with a merge mark naming the guest cart revision; then the guest cart is emptied.
//!
//! Exact under retries: a retry that finds the mark skips straight to emptying the guest cart;
//! a retry after a crash before the save redoes only absolute, idempotent steps.

use crate::ops::clear;
use crate::ops::commit::{self, Committed, Outcome, Retry, Step};
use crate::ops::error::{Contended, OpError};
use crate::ports::cart_repo;
use crate::ports::inventory_port::{self, ReserveError};
use crate::ports::line_lock;
use crate::ports::settings::{Settings, WriteSettings};
use crate::runtime::timing::{measure, Phase};
use cart_domain::events::{line_data, EventFactory, EventType};
use cart_domain::idempotency::{remember, AppliedKey};
use cart_domain::merge::{merge_target, merge_within_stock};
use cart_domain::reservation::{reservation_id, ReservationState};
use cart_domain::{Line, ProductId, StoreId, UserId};
use std::convert::Infallible;

/// One guest line's outcome in the user's cart.
struct Merged {
    line: Line,
    state: ReservationState,
    quantity: u32,
    guest_quantity: u32,
}

pub fn merge_guest_cart(
    store: &StoreId,
    user: &UserId,
    guest: &UserId,
    settings: &Settings,
    write: &WriteSettings,
) -> Result<Committed, OpError> {
    let guest_key = cart_repo::cart_key(store, guest);
    let user_key = cart_repo::cart_key(store, user);
    let guest_cart = measure(Phase::Store, || cart_repo::load(&guest_key))?;
    let user_cart = measure(Phase::Store, || cart_repo::load(&user_key))?;
    if guest_cart.cart.lines.is_empty() {
        return Ok(Committed {
            cart: user_cart.cart,
        });
    }
    let mark = AppliedKey {
        key_hash: format!("merge~{guest}~{}", guest_cart.cart.revision),
        fingerprint: "merge".into(),
        at_ms: crate::runtime::clock::now_ms(),
    };
    let committed = if user_cart.cart.applied(&mark.key_hash).is_some() {
        Committed {
            cart: user_cart.cart,
        }
    } else {
        let leases = measure(Phase::Lock, || {
            line_lock::acquire_lines(
                store,
                user,
                &guest_cart.cart.lines,
                write.lock_ttl_ms,
                write.lock_wait_ms,
            )
        })?;
        // Decide again under the leases: a concurrent retry may have merged meanwhile.
        let outcome = merge_locked(store, user, guest, &user_key, &guest_key, settings);
        line_lock::release_all(&leases);
        outcome?
    };
    clear::clear_cart(store, guest, None, None, "merged")?;
    crate::ports::metrics::inc("cart_guest_merges_total");
    Ok(committed)
}

fn merge_locked(
    store: &StoreId,
    user: &UserId,
    guest: &UserId,
    user_key: &str,
    guest_key: &str,
    settings: &Settings,
) -> Result<Committed, OpError> {
    let guest_cart = measure(Phase::Store, || cart_repo::load(guest_key))?;
    let user_cart = measure(Phase::Store, || cart_repo::load(user_key))?;
    let mark = AppliedKey {
        key_hash: format!("merge~{guest}~{}", guest_cart.cart.revision),
        fingerprint: "merge".into(),
        at_ms: crate::runtime::clock::now_ms(),
    };
    if guest_cart.cart.lines.is_empty() || user_cart.cart.applied(&mark.key_hash).is_some() {
        return Ok(Committed {
            cart: user_cart.cart,
        });
    }
    transfer(
        store,
        user,
        user_key,
        &guest_cart.cart.lines,
        mark,
        settings,
    )
}

fn transfer(
    store: &StoreId,
    user: &UserId,
    user_key: &str,
    guest_lines: &[Line],
    mark: AppliedKey,
    settings: &Settings,
) -> Result<Committed, OpError> {
    let loaded = measure(Phase::Store, || cart_repo::load(user_key))?;
    loaded.cart.ensure_no_checkout_pending()?;
    let ttl = crate::ports::settings::reservation_ttl_ms(user);
    let limits = settings.limits();
    let mut merged = Vec::with_capacity(guest_lines.len());
    let mut new_lines = 0usize;
    for guest_line in guest_lines {
        let product = ProductId::parse(&guest_line.product_id)
            .map_err(|e| OpError::StoredProductId(e.to_string()))?;
        let existing_line = loaded.cart.line(product.as_str());
        let existing = existing_line.map_or(0, |l| l.quantity);
        if existing_line.is_none() {
            // The line limit holds for merged carts too.
            if loaded.cart.lines.len() + new_lines >= limits.max_lines_per_cart {
                crate::ports::metrics::inc("cart_merge_lines_dropped_total");
                continue;
            }
        }
        // The product's own rules (maximum, step) apply to the combined quantity: ask the
        // inventory (through the cache); if it is unavailable, the line's own facts.
        let snapshot = match measure(Phase::Inventory, || {
            crate::ports::product_cache::lookup(store.as_str(), product.as_str())
        }) {
            Ok(current) => current,
            Err(_) => guest_line.snapshot(),
        };
        let other_currency = loaded
            .cart
            .lines
            .first()
            .is_some_and(|l| l.unit_price.currency != snapshot.unit_price.currency);
        if other_currency {
            // A cart has one currency; the guest's line cannot join it (and is not held for
            // the user, so nothing is left behind).
            crate::ports::metrics::inc("cart_merge_lines_dropped_total");
            continue;
        }
        let Some(target) = merge_target(
            &snapshot,
            existing,
            guest_line.quantity,
            limits.max_quantity_per_line,
        ) else {
            // Nothing of the guest's line fits; the user's line stays as it is.
            continue;
        };
        let rid = reservation_id(store, user, &product, loaded.cart.epoch);
        // Hold for the user first and only then release the guest's hold, so a failure in
        // between leaves both held (the guest's until it expires) rather than neither.
        let state = measure(Phase::Inventory, || {
            inventory_port::reserve_line(
                store.as_str(),
                &snapshot,
                &rid,
                target,
                ttl,
                loaded.version + 1,
            )
        });
        let (state, quantity) = match state {
            Ok(state) => {
                inventory_port::release(store.as_str(), &guest_line.reservation);
                (state, target)
            }
            Err(ReserveError::InsufficientStock { .. }) => {
                // The guest's own hold counted against the user's: give it back and ask again
                // for the combined quantity; if that is still short, keep what is available.
                inventory_port::release(store.as_str(), &guest_line.reservation);
                let reserve = |quantity: u32| {
                    measure(Phase::Inventory, || {
                        inventory_port::reserve_line(
                            store.as_str(),
                            &snapshot,
                            &rid,
                            quantity,
                            ttl,
                            loaded.version + 1,
                        )
                    })
                };
                match reserve(target) {
                    Ok(state) => (state, target),
                    Err(ReserveError::InsufficientStock { available, .. }) => {
                        let Some(quantity) =
                            merge_within_stock(&snapshot, existing, target, available)
                        else {
                            continue;
                        };
                        (reserve(quantity)?, quantity)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        if existing_line.is_none() {
            new_lines += 1;
        }
        merged.push(Merged {
            line: guest_line.clone(),
            state,
            quantity,
            guest_quantity: guest_line.quantity,
        });
    }
    // The holds are taken: only the write is retried, each time onto the newest version.
    let outcome: Outcome<Infallible> =
        commit::run(user_key, loaded, Retry::CHANGE, None, |loaded| {
            let now = crate::runtime::clock::now_ms();
            let mut next = loaded.cart.clone();
            let factory = EventFactory {
                store_id: store.as_str(),
                user_id: user.as_str(),
                cart_key: user_key,
                now_ms: now,
            };
            for m in &merged {
                let previous = next.line(&m.line.product_id).map_or(0, |l| l.quantity);
                let snapshot = m.line.snapshot();
                next.put_line(&snapshot, m.quantity, m.state.clone(), now)?;
                let mut data = line_data(
                    store.as_str(),
                    user.as_str(),
                    &m.line.product_id,
                    previous,
                    m.quantity,
                    Some(&m.line.unit_price),
                    None,
                );
                data["mergedFromGuest"] = serde_json::Value::from(m.guest_quantity);
                next.emit(&factory, EventType::ItemAdded, data);
            }
            next.revision = loaded.cart.revision + 1;
            remember(&mut next.applied_keys, mark.clone(), now);
            Ok(Step::Save(next))
        })
        .map_err(|stopped| stopped.or_kept_changing(Contended::Merge))?;
    Ok(Committed {
        cart: outcome.into_loaded().cart,
    })
}
