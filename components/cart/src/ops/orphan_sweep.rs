//! The admin sweep that releases orphaned reservations: holds in inventory whose cart line is
//! gone (a crash between a commit and a release, a cleared cart whose release failed).
//!
//! Each candidate is decided under its line's lease (taken without waiting), because a line
//! change reserves before it commits: a hold without a line may be a change in flight, which
//! holds that lease until its commit. A busy line is skipped for the next sweep.

use crate::ops::error::OpError;
use crate::ports::cart_repo;
use crate::ports::inventory_port;
use crate::ports::line_lock;
use cart_domain::reservation::ReservationState;
use cart_domain::{Line, ReservationStatus, StoreId, UserId};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanReport {
    pub examined: usize,
    pub released: usize,
    pub skipped_busy: usize,
    pub overselling_incidents: usize,
}

pub fn sweep_orphans(store: &StoreId) -> Result<OrphanReport, OpError> {
    let holds =
        inventory_port::list_reservations(store.as_str()).map_err(OpError::ReservationListing)?;
    let mut report = OrphanReport::default();
    for hold in holds {
        report.examined += 1;
        // Reservation ids are `{user}~{product}~{epoch}` (see cart_domain::reservation).
        let mut parts = hold.reservation_id.splitn(3, '~');
        let (Some(user), Some(product)) = (parts.next(), parts.next()) else {
            continue; // not one of ours
        };
        let Ok(user) = UserId::parse(user) else {
            continue;
        };
        let lock_key = line_lock::line_key(store, &user, product);
        let Some(lease) = line_lock::try_acquire(&lock_key, 10_000) else {
            report.skipped_busy += 1;
            continue;
        };
        let key = cart_repo::cart_key(store, &user);
        let line = cart_repo::load(&key).map(|loaded| loaded.cart.line(&hold.product_id).cloned());
        // Ok(None): the cart has no line for the product (its lease key can be forgotten).
        let line_exists = !matches!(line, Ok(None));
        // The line this hold belongs to, if the cart's line for the product is still its owner.
        let owner = line.as_ref().map(|l| {
            l.as_ref()
                .filter(|l| l.reservation.id == hold.reservation_id)
        });
        if let Ok(Some(line)) = owner {
            if promises_more_than_held(line, hold.quantity, crate::runtime::clock::now_ms()) {
                report.overselling_incidents += 1;
                eprintln!(
                    "{{\"level\":\"error\",\"msg\":\"overselling incident: cart line confirmed for more than the inventory holds\",\"reservationId\":{},\"lineQuantity\":{},\"heldQuantity\":{}}}",
                    serde_json::Value::String(hold.reservation_id.clone()),
                    line.quantity,
                    hold.quantity
                );
            }
        }
        if let Ok(None) = owner {
            inventory_port::release(
                store.as_str(),
                &ReservationState {
                    id: hold.reservation_id.clone(),
                    status: ReservationStatus::Confirmed,
                    expires_at_ms: None,
                },
            );
            report.released += 1;
        }
        if line_exists {
            line_lock::release(&lease);
        } else {
            line_lock::retire(&lease);
        }
    }
    crate::ports::metrics::add(
        "cart_orphan_reservations_released_total",
        report.released as i64,
    );
    crate::ports::metrics::add(
        "cart_overselling_incidents_total{source=\"sweep\"}",
        report.overselling_incidents as i64,
    );
    Ok(report)
}

/// An overselling incident the sweep can see: the line (decided under its lease, so no change
/// of it is in flight) shows the shopper `confirmed` and unexpired for more units than the
/// inventory holds under its reservation id. The difference is stock the inventory may sell
/// to someone else while this cart promises it. (A hold larger than its line is normal for a
/// moment: a lowered quantity shrinks its hold after the response.)
fn promises_more_than_held(line: &Line, held: u32, now_ms: u64) -> bool {
    line.reservation.status == ReservationStatus::Confirmed
        && line.reservation.expires_at_ms.is_some_and(|t| t > now_ms)
        && line.quantity > held
}
