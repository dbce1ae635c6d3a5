//! Reservation state carried by each cart line, and the deterministic reservation id.

use crate::ids::{ProductId, StoreId, UserId};
use serde::{Deserialize, Serialize};

/// How stock is held for a product while it sits in a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationPolicy {
    /// Reserve when the line is added or changed.
    Reserve,
    /// No hold while shopping; stock is checked at checkout.
    Checkout,
}

/// What the cart shows for a line's hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Inventory holds the line's quantity until `expires_at_ms`.
    Confirmed,
    /// Inventory could not be asked; the line is confirmed or refused at checkout.
    Unconfirmed,
    /// The hold lapsed; re-confirmed on the next activity or at checkout.
    Expired,
    /// The product's policy holds nothing while shopping.
    NotRequired,
}

/// A line's reservation as stored in the cart document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationState {
    pub id: String,
    pub status: ReservationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl ReservationState {
    /// The status as of `now_ms`: a confirmed hold past its expiry shows as expired.
    pub fn status_at(&self, now_ms: u64) -> ReservationStatus {
        match (self.status, self.expires_at_ms) {
            (ReservationStatus::Confirmed, Some(expiry)) if expiry <= now_ms => {
                ReservationStatus::Expired
            }
            (status, _) => status,
        }
    }

    /// Whether cart activity should re-reserve this hold now: an `unconfirmed` line always
    /// (inventory was down), a confirmed or expired one whose hold lapses within half a
    /// `ttl_ms` (or has no expiry on record); a line whose policy holds nothing never.
    pub fn needs_attention(&self, now_ms: u64, ttl_ms: u64) -> bool {
        match self.status {
            ReservationStatus::NotRequired => false,
            ReservationStatus::Unconfirmed => true,
            ReservationStatus::Confirmed | ReservationStatus::Expired => self
                .expires_at_ms
                .is_none_or(|e| e < now_ms.saturating_add(ttl_ms / 2)),
        }
    }
}

/// The reservation id of one cart line: derived, not random, so a retried reservation names the
/// same hold and can never double-reserve. The cart epoch changes when the cart is cleared or
/// checked out, so a late release of an old line can never cancel a newer hold.
/// `~` cannot occur in ids (see `ids`), so the parts cannot run into each other.
pub fn reservation_id(store: &StoreId, user: &UserId, product: &ProductId, epoch: u64) -> String {
    let _ = store; // the store scopes every inventory call already
    format!("{user}~{product}~{epoch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: ReservationStatus, expires_at_ms: Option<u64>) -> ReservationState {
        ReservationState {
            id: "u~p~0".into(),
            status,
            expires_at_ms,
        }
    }

    #[test]
    fn an_unconfirmed_line_always_needs_attention_a_not_required_one_never() {
        for expiry in [None, Some(0), Some(u64::MAX)] {
            assert!(state(ReservationStatus::Unconfirmed, expiry).needs_attention(1_000, 900_000));
            assert!(!state(ReservationStatus::NotRequired, expiry).needs_attention(1_000, 900_000));
        }
    }

    #[test]
    fn a_hold_is_refreshed_once_less_than_half_its_lifetime_is_left() {
        let ttl = 900_000;
        let now = 1_000_000;
        for status in [ReservationStatus::Confirmed, ReservationStatus::Expired] {
            // Exactly half left: not yet; one millisecond less: yes.
            assert!(!state(status, Some(now + ttl / 2)).needs_attention(now, ttl));
            assert!(state(status, Some(now + ttl / 2 - 1)).needs_attention(now, ttl));
            assert!(!state(status, Some(now + ttl)).needs_attention(now, ttl));
            assert!(state(status, Some(now - 1)).needs_attention(now, ttl));
            // No expiry on record: re-reserve to learn one.
            assert!(state(status, None).needs_attention(now, ttl));
        }
    }

    #[test]
    fn a_far_clock_does_not_overflow() {
        let s = state(ReservationStatus::Confirmed, Some(u64::MAX));
        assert!(!s.needs_attention(u64::MAX - 1, 900_000));
    }

    #[test]
    fn ids_are_deterministic_and_epoch_scoped() {
        let s = StoreId::parse("demo").unwrap();
        let u = UserId::parse("alice").unwrap();
        let p = ProductId::parse("mug").unwrap();
        // Deterministic: the same parts always give this id (a retry reserves the same hold).
        assert_eq!(reservation_id(&s, &u, &p, 0), "alice~mug~0");
        assert_ne!(reservation_id(&s, &u, &p, 0), reservation_id(&s, &u, &p, 1));
        let bob = UserId::parse("bob").unwrap();
        assert_ne!(
            reservation_id(&s, &u, &p, 0),
            reservation_id(&s, &bob, &p, 0)
        );
    }

    #[test]
    fn confirmed_holds_expire_in_the_view() {
        let r = ReservationState {
            id: "x".into(),
            status: ReservationStatus::Confirmed,
            expires_at_ms: Some(1_000),
        };
        assert_eq!(r.status_at(999), ReservationStatus::Confirmed);
        assert_eq!(r.status_at(1_000), ReservationStatus::Expired);
    }
}
