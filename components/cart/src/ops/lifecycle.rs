//! What happens to a cart as time passes: abandoned carts are emptied (their holds go back to
//! stock), and reading a cart re-confirms `unconfirmed`/`expired` lines once the inventory is
//! healthy again (bounded work per request; see `holds`).

use crate::ops::commit::{self, Outcome, Retry, Step, Stopped};
use crate::ops::error::OpError;
use crate::ops::holds;
use crate::ports::cart_repo::{self, Loaded};
use crate::ports::settings::{abandon_after_ms, WriteSettings};
use crate::runtime::timing::{measure, Phase};
use cart_domain::{StoreId, UserId};

/// Empties the cart when it has not changed for the abandonment period, releasing its holds.
pub fn expire_if_abandoned(
    store: &StoreId,
    user: &UserId,
    loaded: Loaded,
) -> Result<Loaded, OpError> {
    // A half-done checkout is finished by the shopper's next checkout request, not emptied.
    if loaded.cart.lines.is_empty() || loaded.cart.checkout_intent.is_some() {
        return Ok(loaded);
    }
    let idle = crate::runtime::clock::now_ms().saturating_sub(loaded.cart.updated_at_ms);
    if idle < abandon_after_ms(user) {
        return Ok(loaded);
    }
    crate::ports::metrics::inc("cart_abandoned_carts_expired_total");
    crate::ops::clear::clear_cart(store, user, None, None, "abandoned")?;
    let key = cart_repo::cart_key(store, user);
    Ok(measure(Phase::Store, || cart_repo::load(&key))?)
}

/// The cart for a read: abandoned carts expired, lapsed or unconfirmed holds re-confirmed.
pub fn load_for_read(store: &StoreId, user: &UserId) -> Result<Loaded, OpError> {
    let key = cart_repo::cart_key(store, user);
    let loaded = measure(Phase::Store, || cart_repo::load(&key))?;
    if loaded.cart.lines.is_empty() {
        return Ok(loaded);
    }
    let loaded = expire_if_abandoned(store, user, loaded)?;
    // Only the hold lifetime is needed to see that nothing needs attention (the common read);
    // the write settings are read when there is work to do.
    let ttl = crate::ports::settings::reservation_ttl_ms(user);
    if !holds::any_need_attention(&loaded.cart, None, ttl) {
        return Ok(loaded);
    }
    let write = WriteSettings::load();
    if !write.line_leases {
        // Re-reserving on a read is safe only under the line's lease (optimistic mode: the
        // line's next change or the checkout re-confirms it).
        return Ok(loaded);
    }
    let maintained = holds::maintain(store, user, &loaded.cart, None, ttl, write.lock_ttl_ms);
    if maintained.is_empty() {
        maintained.release_after_response();
        return Ok(loaded);
    }
    let saved = save_maintained(&key, loaded, &maintained);
    maintained.release_after_response();
    saved
}

/// Saves re-confirmed holds as a new revision (the line statuses the shopper sees changed).
fn save_maintained(
    key: &str,
    loaded: Loaded,
    maintained: &holds::Maintained,
) -> Result<Loaded, OpError> {
    let outcome = commit::run(key, loaded, Retry::READ_REPAIR, None, |loaded| {
        let mut next = loaded.cart.clone();
        maintained.apply(&mut next);
        if next == loaded.cart {
            return Ok(Step::Settled(loaded.clone()));
        }
        next.revision = loaded.cart.revision + 1;
        Ok(Step::Save(next))
    });
    match outcome {
        Ok(Outcome::Saved { saved: latest, .. })
        | Ok(Outcome::Settled(latest))
        | Ok(Outcome::AlreadyApplied(latest)) => Ok(latest),
        // Another writer kept winning; the holds are refreshed in inventory either way and
        // the statuses will be saved by a later request.
        Err(Stopped::Exhausted { .. }) => Ok(measure(Phase::Store, || cart_repo::load(key))?),
        Err(Stopped::SaveFailed { error, .. } | Stopped::Failed(error)) => Err(error),
    }
}
