//! Clearing a cart: one compare-and-swap empties it, starts a new reservation epoch and records
//! `cart.cleared`; then the removed lines' holds go back to stock.

use crate::ops::commit::{self, Committed, Outcome, Retry, Step};
use crate::ops::error::{Contended, OpError};
use crate::ports::cart_repo;
use crate::ports::inventory_port;
use crate::runtime::timing::{measure, Phase};
use cart_domain::events::{EventFactory, EventType};
use cart_domain::idempotency::{remember, AppliedKey};
use cart_domain::precondition::EntityTags;
use cart_domain::{Line, StoreId, UserId};
use std::convert::Infallible;

pub fn clear_cart(
    store: &StoreId,
    user: &UserId,
    if_match: Option<EntityTags>,
    mark: Option<AppliedKey>,
    reason: &str,
) -> Result<Committed, OpError> {
    let key = cart_repo::cart_key(store, user);
    let loaded = measure(Phase::Store, || cart_repo::load(&key))?;
    // The lines of the version that was written: their holds go back after the commit.
    let mut removed: Vec<Line> = Vec::new();
    let outcome: Outcome<Infallible> =
        commit::run(&key, loaded, Retry::CHANGE, mark.as_ref(), |loaded| {
            if let Some(tags) = &if_match {
                if !tags.matches_strong(loaded.cart.revision) {
                    return Err(OpError::PreconditionFailed {
                        current_revision: loaded.cart.revision,
                    });
                }
            }
            loaded.cart.ensure_no_checkout_pending()?;
            let now = crate::runtime::clock::now_ms();
            let mut next = loaded.cart.clone();
            removed = next.clear(now);
            next.revision = loaded.cart.revision + 1;
            if let Some(mark) = &mark {
                remember(&mut next.applied_keys, mark.clone(), now);
            }
            let factory = EventFactory {
                store_id: store.as_str(),
                user_id: user.as_str(),
                cart_key: &key,
                now_ms: now,
            };
            let lines: Vec<_> = removed
                .iter()
                .map(|l| serde_json::json!({"productId": l.product_id, "quantity": l.quantity}))
                .collect();
            next.emit(
                &factory,
                EventType::Cleared,
                serde_json::json!({
                    "storeId": store.as_str(),
                    "userId": user.as_str(),
                    "reason": reason,
                    "removedLines": lines,
                }),
            );
            Ok(Step::Save(next))
        })
        .map_err(|stopped| stopped.or_kept_changing(Contended::Clear))?;
    if let Outcome::Saved { .. } = &outcome {
        for line in &removed {
            measure(Phase::Inventory, || {
                inventory_port::release(store.as_str(), &line.reservation)
            });
        }
    }
    Ok(Committed {
        cart: outcome.into_loaded().cart,
    })
}
