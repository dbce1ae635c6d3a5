//! The one compare-and-swap every cart change ends with.
//!
//! Whatever the change (a line, a clear, a checkout, a merge, an abandoned cart), its new
//! version is written here, so the bookkeeping that must ride in the same write lives in one
//! place: the predecessor link, the outbox's index marker, the relay claim, and the committed
//! events' metrics. On Spin's default store every key-value write is a disk transaction, so
//! this path writes only the document itself in the common case (the marker only once per
//! cart, see `outbox::ensure_listed`).

use crate::ops::error::OpError;
use crate::ports::cart_repo::{self, Loaded};
use crate::ports::outbox;
use crate::runtime::timing::{measure, Phase};
use cart_domain::idempotency::AppliedKey;
use cart_domain::Cart;
use std::cell::RefCell;

/// How many times a change is re-applied after losing a compare-and-swap race.
pub const MAX_SAVE_ATTEMPTS: u32 = 32;

/// Waits a little before re-applying after a lost compare-and-swap, so that many writers to one
/// cart spread out instead of colliding again in lockstep.
pub fn conflict_backoff(attempt: u32) {
    crate::runtime::clock::sleep_ms(cart_domain::backoff::backoff_delay_ms(
        attempt,
        2,
        50,
        crate::runtime::clock::random_unit(),
    ));
}

/// Why a save did not happen.
pub enum SaveError {
    /// Someone else moved the head.
    Conflict,
    Failed(OpError),
}

impl From<cart_repo::SaveError> for SaveError {
    fn from(e: cart_repo::SaveError) -> Self {
        match e {
            cart_repo::SaveError::Conflict => SaveError::Conflict,
            cart_repo::SaveError::Failed(e) => SaveError::Failed(e.into()),
        }
    }
}

/// The committed result of a change.
pub struct Committed {
    pub cart: Cart,
}

/// When the cart already carries this idempotency key's mark, the change was committed by an
/// earlier attempt whose response was lost: answer with the cart as it is, apply nothing.
pub fn already_applied(
    mark: Option<&AppliedKey>,
    loaded: &Loaded,
) -> Result<Option<Committed>, OpError> {
    let Some(mark) = mark else { return Ok(None) };
    match loaded.cart.applied(&mark.key_hash) {
        None => Ok(None),
        Some(done) if done.fingerprint != mark.fingerprint => Err(OpError::IdempotencyKeyReused),
        Some(_) => Ok(Some(Committed {
            cart: loaded.cart.clone(),
        })),
    }
}

thread_local! {
    /// Relay claims this request won, to publish after the response: (cart key, token).
    static CLAIMED: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    /// This request's relay token (one per request; a claim names its request).
    static TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// This request's relay token (the same for every claim the request makes).
pub fn request_token() -> String {
    TOKEN.with(|t| {
        t.borrow_mut()
            .get_or_insert_with(|| format!("{:016x}", crate::runtime::clock::random_u64()))
            .clone()
    })
}

/// Writes `next` as the version after `base`. On success the new version is returned, and if
/// the write claimed the cart's relay, the relay is queued to run after the response.
pub fn save(key: &str, base: &Loaded, mut next: Cart) -> Result<Loaded, SaveError> {
    next.previous_version = base.version;
    let now = crate::runtime::clock::now_ms();
    stamp_trace(&mut next, base.cart.last_sequence);
    let new_events: Vec<String> = next
        .outbox
        .iter()
        .filter(|e| e.event.sequence > base.cart.last_sequence)
        .map(|e| e.event.id.clone())
        .collect();
    let token = request_token();
    let claimed = if new_events.is_empty() {
        false
    } else {
        // Listed for the sweep before the events exist, so a crash after the commit cannot
        // leave them where no sweep looks.
        measure(Phase::Store, || outbox::ensure_listed(key))
            .map_err(|e| SaveError::Failed(e.into()))?;
        measure(Phase::Store, || {
            spill_overflow(key, &mut next, base.cart.last_sequence)
        });
        next.claim_relay(&token, now, now + outbox::CLAIM_TTL_MS)
    };
    let version = measure(Phase::Store, || cart_repo::save(key, base.version, &next))
        .map_err(SaveError::from)?;
    for id in &new_events {
        crate::ports::metrics::add_for_event(outbox::metric_keys::COMMITTED, id, 1);
    }
    if claimed {
        CLAIMED.with(|c| c.borrow_mut().push((key.to_owned(), token)));
    }
    Ok(Loaded {
        version,
        cart: next,
    })
}

/// Moves the oldest committed events out of an inline outbox that grew past its limit (the
/// event pipeline is down) into chunk records, so the document stays bounded. Best effort: if
/// a chunk cannot be written the events simply stay inline this time.
fn spill_overflow(key: &str, next: &mut Cart, committed_through: u64) {
    use cart_domain::outbox::{chunk_key, plan_spill, Spill};
    let spilled_through = next.spill.map_or(0, |s| s.through);
    let plan = plan_spill(&next.outbox, committed_through, spilled_through);
    let mut moved = 0usize;
    let mut through = None;
    for (from, last, events) in &plan {
        if !outbox::write_chunk(&chunk_key(key, *from, *last), events) {
            break;
        }
        moved += events.len();
        through = Some(*last);
    }
    let Some(through) = through else { return };
    let from = next
        .spill
        .map_or_else(|| plan[0].0, |existing| existing.from);
    next.outbox.drain(..moved);
    next.spill = Some(Spill { from, through });
}

/// Puts this request's trace context on the events it adds.
fn stamp_trace(next: &mut Cart, last_sequence: u64) {
    let Some((traceparent, tracestate)) = crate::ports::trace::current() else {
        return;
    };
    for entry in next
        .outbox
        .iter_mut()
        .filter(|e| e.event.sequence > last_sequence)
    {
        entry.event.traceparent = Some(traceparent.clone());
        entry.event.tracestate = tracestate.clone();
    }
}

/// The relays this request claimed (taken: each runs once).
pub fn take_claimed() -> Vec<(String, String)> {
    CLAIMED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}
