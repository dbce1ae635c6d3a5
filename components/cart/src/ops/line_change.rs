//! Adding, re-setting and removing one cart line.
//!
//! Order of work, under the line's lease (taken first; none in optimistic mode):
//! 1. read the cart head; check `If-Match` and the cart's rules;
//! 2. read the small records the change needs in one call (`record_reads`), look the product
//!    up (title, price, policy, quantity rules) from the cache or the inventory;
//! 3. reserve the line's new absolute quantity under its deterministic reservation id;
//! 4. compare-and-swap the new cart version. On conflict (another line of the same cart changed)
//!    re-read and re-apply to the newer version, a bounded number of times; with `If-Match` the
//!    client asked for exactly one version, so a conflict is a 412 instead;
//! 5. release holds that the committed cart no longer needs (a removed line, or a hold made for a
//!    cart epoch that a concurrent clear retired).
//!
//! If the save finally fails, the line's previous hold is restored, so inventory never keeps
//! more for the cart than the cart shows for longer than a reservation TTL.

use crate::ops::commit::{self, already_applied, Committed, Outcome, Retry, Step, Stopped};
use crate::ops::error::{Contended, OpError};
use crate::ports::cart_repo::{self, Loaded};
use crate::ports::inventory_port::{self, LookupError, ReserveError};
use crate::ports::line_lock;
use crate::ports::settings::{Settings, WriteSettings};
use crate::runtime::timing::{measure, Phase};
use cart_domain::cart::check_product_rules;
use cart_domain::events::{line_data, EventFactory, EventType};
use cart_domain::idempotency::{remember, AppliedKey};
use cart_domain::precondition::EntityTags;
use cart_domain::reservation::{reservation_id, ReservationState};
use cart_domain::{
    Cart, LineChange, ProductId, ProductSnapshot, ReservationPolicy, ReservationStatus, StoreId,
    UserId,
};
use std::convert::Infallible;

pub struct LineRequest<'a> {
    pub store: &'a StoreId,
    pub user: &'a UserId,
    pub product: &'a ProductId,
    pub change: LineChange,
    pub if_match: Option<EntityTags>,
    /// The idempotency key's mark, saved with the change.
    pub mark: Option<AppliedKey>,
}

pub fn change_line(
    req: &LineRequest<'_>,
    settings: &Settings,
    write: &WriteSettings,
) -> Result<Committed, OpError> {
    let key = cart_repo::cart_key(req.store, req.user);
    if !write.line_leases {
        // Optimistic mode: no lease. The reservation is fenced with the version it was decided
        // from, and a lost compare-and-swap re-decides and re-reserves on the newer version.
        return load_and_change(req, settings, write, &key);
    }
    // The lease comes first and the cart is read under it: the line's quantity must come
    // from a read under its lease (a reservation computed from an earlier read could shrink a
    // hold that a request finishing just before us grew). Reading only once, under the lease,
    // keeps the shopper's path to lease, read, records, reservation and commit. A request
    // refused by a cart rule has then taken the lease: it retires it (see below), so on the
    // key-value lock backend no lease record is left behind for a line that does not exist.
    let lock_key = line_lock::line_key(req.store, req.user, req.product.as_str());
    let (lease, _stats) = measure(Phase::Lock, || {
        line_lock::acquire(&lock_key, write.lock_ttl_ms, write.lock_wait_ms)
    })?;
    let outcome = load_and_change(req, settings, write, &key);
    // Released after the response, after any hold shrink queued under it (`finish_after_commit`):
    // a hold is only ever changed under its line's lease, and the shopper does not wait for
    // the release write. A line the change removed, or a refused change, retires the lease
    // (its key is forgotten); a line still in the cart keeps its lease record for next time.
    let keep = matches!(&outcome, Ok(done) if done.cart.line(req.product.as_str()).is_some());
    crate::runtime::deferred::defer(move || {
        if keep {
            line_lock::release(&lease)
        } else {
            line_lock::retire(&lease)
        }
    });
    outcome
}

/// Reads the cart (under the line's lease when there is one), checks the request against it
/// and applies the change.
fn load_and_change(
    req: &LineRequest<'_>,
    settings: &Settings,
    write: &WriteSettings,
    key: &str,
) -> Result<Committed, OpError> {
    let loaded = measure(Phase::Store, || cart_repo::load(key))?;
    let loaded = crate::ops::lifecycle::expire_if_abandoned(req.store, req.user, loaded)?;
    if let Some(done) = already_applied(req.mark.as_ref(), &loaded)? {
        return Ok(done);
    }
    if let Some(tags) = &req.if_match {
        if !tags.matches_strong(loaded.cart.revision) {
            return Err(OpError::PreconditionFailed {
                current_revision: loaded.cart.revision,
            });
        }
    }
    loaded.cart.ensure_no_checkout_pending()?;
    loaded
        .cart
        .target_quantity(req.product.as_str(), req.change, &settings.limits())?;
    change_line_locked(req, settings, write, key, loaded)
}

/// A hold this request made, to re-use on retry or undo on failure.
struct Held {
    state: ReservationState,
    quantity: u32,
}

fn change_line_locked(
    req: &LineRequest<'_>,
    settings: &Settings,
    write: &WriteSettings,
    key: &str,
    loaded: Loaded,
) -> Result<Committed, OpError> {
    let product_id = req.product.as_str();
    // The small records this change consults, in one crossing (see `record_reads`).
    crate::ports::record_reads::prefetch(&[
        crate::ports::product_cache::cache_key(req.store.as_str(), product_id),
        crate::ports::breaker::STATE_KEY.to_owned(),
        crate::ports::outbox::marker_key(key),
    ]);
    let product = product_for(req, &loaded)?;
    // Activity keeps the cart's other holds alive (bounded; see `holds`).
    let ttl = crate::ports::settings::reservation_ttl_ms(req.user);
    // Other lines' holds are refreshed under their leases; without leases they wait for their
    // own next change (or the checkout).
    let maintained = if write.line_leases {
        crate::ops::holds::maintain(
            req.store,
            req.user,
            &loaded.cart,
            Some(product_id),
            ttl,
            write.lock_ttl_ms,
        )
    } else {
        crate::ops::holds::Maintained::default()
    };
    let outcome = save_loop(req, settings, write, key, loaded, &product, &maintained);
    maintained.release_after_response();
    outcome
}

/// Applies the change to the newest cart until a compare-and-swap succeeds (`commit::run`).
/// Whatever stops it undoes this request's hold first, so the line holds what the stored cart
/// says: a rule or reservation refusal, a failed write, every attempt lost, or the change
/// found already applied.
fn save_loop(
    req: &LineRequest<'_>,
    settings: &Settings,
    write: &WriteSettings,
    key: &str,
    loaded: Loaded,
    product: &ProductSnapshot,
    maintained: &crate::ops::holds::Maintained,
) -> Result<Committed, OpError> {
    let store = req.store.as_str();
    let product_id = req.product.as_str();
    let mut held: Option<Held> = None;
    let ctx = Attempt {
        req,
        settings,
        write,
        key,
        product,
        maintained,
    };
    let outcome: Result<Outcome<Infallible>, Stopped> = commit::run(
        key,
        loaded,
        Retry::LINE_CHANGE,
        req.mark.as_ref(),
        |loaded| {
            // With If-Match the client allowed exactly one revision; a conflict that was only
            // the relay trimming the outbox leaves the revision as it was.
            if let Some(tags) = &req.if_match {
                if !tags.matches_strong(loaded.cart.revision) {
                    undo_hold(store, loaded, product_id, held.as_ref());
                    return Err(OpError::PreconditionFailed {
                        current_revision: loaded.cart.revision,
                    });
                }
            }
            decide(&ctx, loaded, &mut held).inspect_err(|_| {
                undo_hold(store, loaded, product_id, held.as_ref());
            })
        },
    );
    match outcome {
        Ok(Outcome::Saved { base, saved }) => {
            let committed = Committed { cart: saved.cart };
            let ttl = crate::ports::settings::reservation_ttl_ms(req.user);
            finish_after_commit(store, &base, &committed, product, ttl);
            Ok(committed)
        }
        Ok(Outcome::AlreadyApplied(latest)) => {
            undo_hold(store, &latest, product_id, held.as_ref());
            Ok(Committed { cart: latest.cart })
        }
        Ok(Outcome::Settled(never)) => match never {},
        Err(Stopped::Exhausted { attempts, latest }) => {
            undo_hold(store, &latest, product_id, held.as_ref());
            Err(OpError::KeptChanging(Contended::Line { attempts }))
        }
        Err(Stopped::SaveFailed { error, latest }) => {
            undo_hold(store, &latest, product_id, held.as_ref());
            Err(error)
        }
        // `decide` undid the hold before refusing; a failed re-read leaves it to its TTL, and
        // a key reused for another request made no hold of its own on that version.
        Err(Stopped::Failed(error)) => Err(error),
    }
}

/// Product facts for the line: from inventory, or, when inventory is unavailable and the line
/// already exists, from the line's own snapshot (so quantity changes degrade instead of fail).
fn product_for(req: &LineRequest<'_>, loaded: &Loaded) -> Result<ProductSnapshot, OpError> {
    let product_id = req.product.as_str();
    let existing = loaded.cart.line(product_id);
    if req.change == LineChange::Remove {
        if let Some(line) = existing {
            return Ok(line.snapshot());
        }
        return Err(OpError::LineNotFound(product_id.to_owned()));
    }
    match measure(Phase::Inventory, || {
        crate::ports::product_cache::lookup(req.store.as_str(), product_id)
    }) {
        Ok(p) => Ok(with_policy_override(p)),
        Err(LookupError::NotFound) => {
            Err(ReserveError::UnknownProduct(product_id.to_owned()).into())
        }
        Err(LookupError::Malformed(detail)) => Err(OpError::InventoryMalformed(detail)),
        Err(LookupError::Unavailable(detail)) => match existing {
            Some(line) => Ok(line.snapshot()),
            None => Err(OpError::InventoryUnavailable(detail)),
        },
    }
}

/// The `reservation_policy` variable (`reserve` or `checkout`) overrides every product's own
/// policy, e.g. to stop holding stock during a sale without touching the catalogue.
fn with_policy_override(mut product: ProductSnapshot) -> ProductSnapshot {
    match crate::ports::settings::var("reservation_policy")
        .as_deref()
        .map(str::trim)
    {
        Some("reserve") => product.policy = ReservationPolicy::Reserve,
        Some("checkout") => product.policy = ReservationPolicy::Checkout,
        _ => {}
    }
    product
}

/// Everything one attempt needs besides the cart it starts from.
struct Attempt<'a> {
    req: &'a LineRequest<'a>,
    settings: &'a Settings,
    write: &'a WriteSettings,
    key: &'a str,
    product: &'a ProductSnapshot,
    maintained: &'a crate::ops::holds::Maintained,
}

/// One attempt against `loaded`: check the rules, hold the line's new quantity, and say what
/// to write.
fn decide(
    ctx: &Attempt<'_>,
    loaded: &Loaded,
    held: &mut Option<Held>,
) -> Result<Step<Infallible>, OpError> {
    let Attempt {
        req,
        settings,
        write,
        key,
        product,
        maintained,
    } = *ctx;
    let store = req.store.as_str();
    loaded.cart.ensure_no_checkout_pending()?;
    let target =
        loaded
            .cart
            .target_quantity(req.product.as_str(), req.change, &settings.limits())?;
    check_product_rules(product, target)?;
    let rid = reservation_id(req.store, req.user, req.product, loaded.cart.epoch);
    let now = crate::runtime::clock::now_ms();

    let reservation = if target == 0 {
        // Removal: release after the commit, so a failed save leaves the hold in place.
        None
    } else {
        // A hold made for an older cart epoch (a clear raced us) is no longer named by the cart.
        if let Some(h) = held.as_ref().filter(|h| h.state.id != rid) {
            inventory_port::release(store, &h.state);
            *held = None;
        }
        // Fewer units of a line we hold: keep the larger hold through the commit and shrink it
        // afterwards (`finish_after_commit`), so a failed save can never leave the line holding
        // less than the cart shows while other shoppers take the difference.
        let shrinking = loaded.cart.line(req.product.as_str()).filter(|l| {
            l.reservation.id == rid
                && l.reservation.status == ReservationStatus::Confirmed
                && target < l.quantity
                && product.policy == ReservationPolicy::Reserve
                && held.is_none()
                // The shrink after the response is safe only under the line's lease.
                && write.line_leases
        });
        let state = match held.as_ref() {
            _ if shrinking.is_some() => shrinking
                .map(|l| l.reservation.clone())
                .unwrap_or_else(|| placeholder(&rid)),
            // Under the lease nobody else moved the hold since this request set it; without a
            // lease another writer may have, so every attempt reserves again (fenced).
            Some(h) if h.quantity == target && write.line_leases => h.state.clone(),
            _ => {
                let reserved = measure(Phase::Inventory, || {
                    inventory_port::reserve_line(
                        store,
                        product,
                        &rid,
                        target,
                        crate::ports::settings::reservation_ttl_ms(req.user),
                        loaded.version + 1,
                    )
                });
                let state = match reserved {
                    Ok(state) => state,
                    // A writer that decided from a newer version set the hold: this version
                    // is stale, so the compare-and-swap would fail too.
                    Err(ReserveError::StaleFence { .. }) => return Ok(Step::Stale),
                    Err(e) => return Err(e.into()),
                };
                *held = Some(Held {
                    state: state.clone(),
                    quantity: target,
                });
                state
            }
        };
        Some(state)
    };

    let previous_quantity = loaded
        .cart
        .line(req.product.as_str())
        .map_or(0, |l| l.quantity);
    let mut next = loaded.cart.clone();
    maintained.apply(&mut next);
    let status = reservation.as_ref().map(|r| r.status);
    match reservation {
        Some(state) => next.put_line(product, target, state, now),
        None => next.put_line(product, 0, placeholder(&rid), now),
    }?;
    next.revision = loaded.cart.revision + 1;
    emit_line_events(
        &mut next,
        req,
        key,
        now,
        previous_quantity,
        target,
        product,
        status,
    );
    if let Some(mark) = &req.mark {
        remember(&mut next.applied_keys, mark.clone(), now);
    }
    Ok(Step::Save(next))
}

/// The events of one line change: what happened to the line, and whether its hold fell back.
#[allow(clippy::too_many_arguments)]
fn emit_line_events(
    cart: &mut Cart,
    req: &LineRequest<'_>,
    cart_key: &str,
    now_ms: u64,
    previous_quantity: u32,
    quantity: u32,
    product: &ProductSnapshot,
    status: Option<ReservationStatus>,
) {
    let factory = EventFactory {
        store_id: req.store.as_str(),
        user_id: req.user.as_str(),
        cart_key,
        now_ms,
    };
    let event_type = match (req.change, quantity) {
        (_, 0) => EventType::ItemRemoved,
        (LineChange::Add(_), _) => EventType::ItemAdded,
        _ => EventType::ItemUpdated,
    };
    let status_name = status.map(status_name);
    let data = line_data(
        req.store.as_str(),
        req.user.as_str(),
        req.product.as_str(),
        previous_quantity,
        quantity,
        (quantity > 0).then_some(&product.unit_price),
        status_name,
    );
    cart.emit(&factory, event_type, data.clone());
    if status == Some(ReservationStatus::Unconfirmed) {
        cart.emit(&factory, EventType::ReservationUnconfirmed, data);
    }
}

fn status_name(status: ReservationStatus) -> &'static str {
    match status {
        ReservationStatus::Confirmed => "confirmed",
        ReservationStatus::Unconfirmed => "unconfirmed",
        ReservationStatus::Expired => "expired",
        ReservationStatus::NotRequired => "not_required",
    }
}

fn placeholder(rid: &str) -> ReservationState {
    ReservationState {
        id: rid.to_owned(),
        status: ReservationStatus::Unconfirmed,
        expires_at_ms: None,
    }
}

/// After the commit: a removed line's hold goes back to stock.
fn finish_after_commit(
    store: &str,
    base: &Loaded,
    committed: &Committed,
    product: &ProductSnapshot,
    ttl_ms: u64,
) {
    // The version just committed: the hold is set as of it.
    let fence = base.version + 1;
    let product_id = product.product_id.as_str();
    let Some(old) = base.cart.line(product_id) else {
        return;
    };
    match committed.cart.line(product_id) {
        // Fenced: a re-add of the product after this commit holds under the same id.
        None => measure(Phase::Inventory, || {
            inventory_port::release_fenced(store, product_id, &old.reservation, fence)
        }),
        // A shrink kept the old hold through the commit: bring it down after the response,
        // still under the line's lease (released after this job). If this never runs, the
        // hold is larger than needed until its TTL.
        Some(line) if line.quantity < old.quantity && line.reservation == old.reservation => {
            let (store, product, rid, quantity) = (
                store.to_owned(),
                product.clone(),
                line.reservation.id.clone(),
                line.quantity,
            );
            crate::runtime::deferred::defer(move || {
                let _ =
                    inventory_port::reserve_line(&store, &product, &rid, quantity, ttl_ms, fence);
            });
        }
        Some(_) => {}
    }
}

/// The save failed: put the line's hold back to what the stored cart says.
fn undo_hold(store: &str, latest: &Loaded, product_id: &str, held: Option<&Held>) {
    let Some(h) = held else { return };
    match latest.cart.line(product_id) {
        Some(line)
            if line.reservation.id == h.state.id
                && line.reservation.status == ReservationStatus::Confirmed =>
        {
            // Restore the stored quantity. The product snapshot only needs id and policy here.
            let product = line.snapshot();
            let _ = inventory_port::reserve_line(
                store,
                &product,
                &line.reservation.id,
                line.quantity,
                line.reservation
                    .expires_at_ms
                    .map(|e| e.saturating_sub(crate::runtime::clock::now_ms()).max(1000))
                    .unwrap_or(60_000),
                latest.version + 1,
            );
        }
        Some(line) if line.reservation.id == h.state.id => {}
        _ => inventory_port::release(store, &h.state),
    }
}
