//! The cart document and the rules for changing it.
//!
//! A `Cart` is what one immutable version of `cart:{store}:{user}` holds. Changes are computed
//! here without I/O: the component asks inventory, then applies the outcome with these functions
//! inside its compare-and-swap loop, so a retried apply on a newer version re-derives everything
//! from that version.

use crate::events::{EventFactory, EventType, OutboxEntry};
use crate::idempotency::AppliedKey;
use crate::limits::Limits;
use crate::money::{Money, MoneyError};
use crate::reservation::{ReservationPolicy, ReservationState};
use crate::rule_error::RuleError;
use serde::{Deserialize, Serialize};

/// Catalogue facts about a product at the time it is put in the cart (title and price are
/// snapshotted into the line so the cart shows what the shopper saw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub product_id: String,
    pub title: String,
    pub unit_price: Money,
    pub policy: ReservationPolicy,
    pub min_quantity: u32,
    pub max_quantity: Option<u32>,
    pub quantity_step: u32,
}

/// One product in the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub product_id: String,
    pub title: String,
    pub unit_price: Money,
    pub quantity: u32,
    pub reservation: ReservationState,
    pub added_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Line {
    pub fn total(&self) -> Result<Money, MoneyError> {
        self.unit_price.times(self.quantity)
    }

    /// The product facts the line itself remembers, for when the inventory cannot be asked
    /// (quantity rules unknown: the loosest). The policy follows the line's hold.
    pub fn snapshot(&self) -> ProductSnapshot {
        ProductSnapshot {
            product_id: self.product_id.clone(),
            title: self.title.clone(),
            unit_price: self.unit_price.clone(),
            policy: if self.reservation.status == crate::ReservationStatus::NotRequired {
                ReservationPolicy::Checkout
            } else {
                ReservationPolicy::Reserve
            },
            min_quantity: 1,
            max_quantity: None,
            quantity_step: 1,
        }
    }
}

/// A whole cart version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    /// The user-visible version (the `ETag`): bumped by every shopper change, not by the relay
    /// trimming the outbox, so relaying events never invalidates a client's `If-Match`.
    #[serde(default)]
    pub revision: u64,
    /// Bumped when the cart is emptied, so new lines get new reservation ids.
    pub epoch: u64,
    pub lines: Vec<Line>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// The version this one replaced (0 for the first), so the version before it can be pruned.
    #[serde(default)]
    pub previous_version: u64,
    /// The last event sequence number used; never reset, so sequences only grow.
    #[serde(default)]
    pub last_sequence: u64,
    /// Transactional outbox: events committed with the change, removed once acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<OutboxEntry>,
    /// The most recent checkout, kept so the shopper (and a retried request) can see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkout: Option<CheckoutRecord>,
    /// Idempotency keys applied by recent versions (see `idempotency::AppliedKey`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_keys: Vec<AppliedKey>,
    /// A checkout that recorded its lines before committing them in inventory and has not
    /// finished yet. The next checkout request finishes it (committing again is harmless),
    /// and until then the cart's lines cannot change: they may already be sold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_intent: Option<CheckoutRecord>,
    /// Who relays this cart's outbox, or until when it backs off (see `RelayClaim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayClaim>,
    /// Pending events older than the inline outbox, kept in chunk records while the event
    /// pipeline is down (see `outbox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill: Option<crate::outbox::Spill>,
}

/// The right to publish a cart's outbox, kept in the cart document itself.
///
/// A change that commits events claims the relay in the same compare-and-swap when nobody
/// holds it, so relaying needs no lease of its own (on Spin's default store a lease costs two
/// disk transactions). A change that commits while someone else holds the claim leaves its
/// events to the holder: the holder's next compare-and-swap (removing what it published)
/// conflicts with that change, re-reads, and so sees the new events. One relay per cart at a
/// time keeps each cart's events in sequence order. After a failed publish the claim turns into
/// a backoff (`token` empty) that keeps this cart's relays quiet until `until_ms`, so a down
/// pipeline is not hammered by every write, and one bad cart does not slow the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayClaim {
    /// The relay's token; empty while the cart only backs off.
    pub token: String,
    /// Unix epoch milliseconds until which the claim (or the backoff) stands.
    pub until_ms: u64,
    /// Failed publishes in a row (drives the backoff).
    #[serde(default)]
    pub failures: u32,
}

impl RelayClaim {
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.until_ms > now_ms
    }
}

/// A completed checkout: the priced lines that were committed in inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRecord {
    pub checkout_id: String,
    pub checked_out_at_ms: u64,
    pub lines: Vec<Line>,
    pub item_count: u64,
    pub subtotal: Option<Money>,
}

/// What a request asks for one product's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineChange {
    /// Add this many units to the line (creating it).
    Add(u32),
    /// Set the line to exactly this many units (0 removes it).
    Set(u32),
    /// Remove the line.
    Remove,
}

impl Cart {
    /// Appends an event to the outbox with the next sequence number.
    pub fn emit(
        &mut self,
        factory: &EventFactory<'_>,
        event_type: EventType,
        data: serde_json::Value,
    ) {
        self.last_sequence += 1;
        self.outbox
            .push(factory.event(self.last_sequence, event_type, data));
    }

    /// Drops outbox entries up to and including `sequence` (they were acknowledged).
    /// Returns the dropped entries.
    pub fn acknowledge_through(&mut self, sequence: u64) -> Vec<OutboxEntry> {
        let (acked, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|e| e.event.sequence <= sequence);
        self.outbox = pending;
        acked
    }

    /// Claims the relay of this cart's outbox for `token` until `until_ms`, unless the outbox
    /// is empty or someone holds a live claim (or backoff). True when claimed.
    pub fn claim_relay(&mut self, token: &str, now_ms: u64, until_ms: u64) -> bool {
        if !self.has_pending_events() || self.relay.as_ref().is_some_and(|c| c.is_live(now_ms)) {
            return false;
        }
        let failures = self.relay.as_ref().map_or(0, |c| c.failures);
        self.relay = Some(RelayClaim {
            token: token.to_owned(),
            until_ms,
            failures,
        });
        true
    }

    /// Whether events wait to be published (inline or spilled).
    pub fn has_pending_events(&self) -> bool {
        !self.outbox.is_empty() || self.spill.is_some()
    }

    /// Whether `token` holds a live relay claim on this version.
    pub fn relay_claimed_by(&self, token: &str, now_ms: u64) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|c| !c.token.is_empty() && c.token == token && c.is_live(now_ms))
    }

    /// Refuses a change to the cart's lines while a checkout is half done.
    pub fn ensure_no_checkout_pending(&self) -> Result<(), RuleError> {
        match &self.checkout_intent {
            None => Ok(()),
            Some(intent) => Err(RuleError::CheckoutPending {
                checkout_id: intent.checkout_id.clone(),
            }),
        }
    }

    /// The mark of an idempotency key this cart already applied, if any.
    pub fn applied(&self, key_hash: &str) -> Option<&AppliedKey> {
        self.applied_keys.iter().find(|m| m.key_hash == key_hash)
    }

    pub fn line(&self, product_id: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.product_id == product_id)
    }

    /// Total number of units.
    pub fn item_count(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }

    /// Sum of line totals; `None` for an empty cart (it has no currency yet).
    pub fn subtotal(&self) -> Result<Option<Money>, MoneyError> {
        let mut total: Option<Money> = None;
        for line in &self.lines {
            let line_total = line.total()?;
            total = Some(match total {
                None => line_total,
                Some(t) => t.plus(&line_total)?,
            });
        }
        Ok(total)
    }

    /// The absolute quantity the line will have after `change`, validated against the request
    /// limits; 0 means the line goes away. Product rules are checked by `check_product_rules`.
    pub fn target_quantity(
        &self,
        product_id: &str,
        change: LineChange,
        limits: &Limits,
    ) -> Result<u32, RuleError> {
        let current = self.line(product_id).map(|l| l.quantity);
        let target = match change {
            LineChange::Add(n) => current
                .unwrap_or(0)
                .checked_add(n)
                .ok_or(RuleError::QuantityOutOfRange)?,
            LineChange::Set(n) => {
                if current.is_none() {
                    return Err(line_not_found(product_id));
                }
                n
            }
            LineChange::Remove => {
                if current.is_none() {
                    return Err(line_not_found(product_id));
                }
                0
            }
        };
        if target > limits.max_quantity_per_line {
            return Err(RuleError::LineQuantityAboveLimit {
                max: limits.max_quantity_per_line,
                target,
            });
        }
        if current.is_none() && target > 0 && self.lines.len() >= limits.max_lines_per_cart {
            return Err(RuleError::TooManyLines {
                max: limits.max_lines_per_cart,
            });
        }
        Ok(target)
    }

    /// Puts the line for `product` at `quantity` units with `reservation` (0 removes it).
    /// A new line must be in the cart's currency.
    pub fn put_line(
        &mut self,
        product: &ProductSnapshot,
        quantity: u32,
        reservation: ReservationState,
        now_ms: u64,
    ) -> Result<(), RuleError> {
        if quantity == 0 {
            self.lines.retain(|l| l.product_id != product.product_id);
            self.updated_at_ms = now_ms;
            return Ok(());
        }
        if let Some(line) = self
            .lines
            .iter_mut()
            .find(|l| l.product_id == product.product_id)
        {
            line.quantity = quantity;
            line.reservation = reservation;
            line.updated_at_ms = now_ms;
        } else {
            if let Some(first) = self.lines.first() {
                if first.unit_price.currency != product.unit_price.currency {
                    return Err(RuleError::CurrencyMismatch {
                        cart: first.unit_price.currency.clone(),
                        product_id: product.product_id.clone(),
                        product: product.unit_price.currency.clone(),
                    });
                }
            }
            self.lines.push(Line {
                product_id: product.product_id.clone(),
                title: product.title.clone(),
                unit_price: product.unit_price.clone(),
                quantity,
                reservation,
                added_at_ms: now_ms,
                updated_at_ms: now_ms,
            });
        }
        self.updated_at_ms = now_ms;
        Ok(())
    }

    /// Whether the last thing that happened to this cart was a checkout (no change since).
    pub fn is_checked_out(&self) -> bool {
        self.lines.is_empty()
            && self
                .last_checkout
                .as_ref()
                .is_some_and(|c| c.checked_out_at_ms >= self.updated_at_ms)
    }

    /// Removes every line and starts a new reservation epoch. Returns the removed lines.
    pub fn clear(&mut self, now_ms: u64) -> Vec<Line> {
        self.epoch += 1;
        self.updated_at_ms = now_ms;
        std::mem::take(&mut self.lines)
    }
}

fn line_not_found(product_id: &str) -> RuleError {
    RuleError::LineNotFound {
        product_id: product_id.to_owned(),
    }
}

/// Checks a target quantity against the product's own rules (minimum, maximum, increment).
pub fn check_product_rules(product: &ProductSnapshot, quantity: u32) -> Result<(), RuleError> {
    if quantity == 0 {
        return Ok(());
    }
    if quantity < product.min_quantity {
        return Err(RuleError::BelowProductMinimum {
            product_id: product.product_id.clone(),
            min: product.min_quantity,
        });
    }
    if let Some(max) = product.max_quantity {
        if quantity > max {
            return Err(RuleError::AboveProductMaximum {
                product_id: product.product_id.clone(),
                max,
            });
        }
    }
    let step = product.quantity_step.max(1);
    if !(quantity - product.min_quantity.min(quantity)).is_multiple_of(step) {
        return Err(RuleError::OffProductStep {
            product_id: product.product_id.clone(),
            step,
            min: product.min_quantity,
        });
    }
    Ok(())
}

/// The largest quantity of `product` that is at most `at_most` and obeys its rules (minimum,
/// maximum, step from the minimum); 0 when none does. Used where quantities are combined
/// rather than asked for (merging a guest cart), so the result is clamped, not refused.
pub fn largest_allowed(product: &ProductSnapshot, at_most: u32) -> u32 {
    let cap = product.max_quantity.map_or(at_most, |max| max.min(at_most));
    let min = product.min_quantity.max(1);
    if cap < min {
        return 0;
    }
    let step = product.quantity_step.max(1);
    min + (cap - min) / step * step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn largest_allowed_clamps_to_max_and_step() {
        let mut p = product("m", 100, "EUR");
        p.max_quantity = Some(10);
        p.quantity_step = 2;
        p.min_quantity = 2;
        assert_eq!(largest_allowed(&p, 12), 10, "guest 6 + user 6 with max 10");
        assert_eq!(largest_allowed(&p, 7), 6, "steps of 2 from 2");
        assert_eq!(largest_allowed(&p, 1), 0, "below the minimum");
        for q in 0..30 {
            let got = largest_allowed(&p, q);
            assert!(got <= q);
            assert!(
                got == 0 || check_product_rules(&p, got).is_ok(),
                "{q} -> {got}"
            );
        }
        let plain = product("n", 100, "EUR");
        assert_eq!(largest_allowed(&plain, 999), 999);
    }
    use crate::reservation::ReservationStatus;

    fn product(id: &str, price: i64, currency: &str) -> ProductSnapshot {
        ProductSnapshot {
            product_id: id.into(),
            title: format!("Title {id}"),
            unit_price: Money::new(price, Currency::parse(currency).unwrap()),
            policy: ReservationPolicy::Reserve,
            min_quantity: 1,
            max_quantity: None,
            quantity_step: 1,
        }
    }

    fn held(id: &str) -> ReservationState {
        ReservationState {
            id: id.into(),
            status: ReservationStatus::Confirmed,
            expires_at_ms: Some(10_000),
        }
    }

    fn with_event(mut cart: Cart) -> Cart {
        let factory = EventFactory {
            store_id: "s",
            user_id: "u",
            cart_key: "cart:s:u",
            now_ms: 1,
        };
        cart.emit(&factory, EventType::Cleared, serde_json::json!({}));
        cart
    }

    #[test]
    fn the_relay_is_claimed_only_for_pending_events_and_by_one_holder() {
        let mut cart = Cart::default();
        assert!(!cart.claim_relay("a", 100, 200), "nothing to relay");
        assert_eq!(cart.relay, None);
        let mut cart = with_event(cart);
        assert!(cart.claim_relay("a", 100, 200));
        assert!(cart.relay_claimed_by("a", 199));
        assert!(!cart.relay_claimed_by("a", 200), "expired at until_ms");
        assert!(!cart.relay_claimed_by("b", 150));
        assert!(!cart.claim_relay("b", 150, 250), "a live claim excludes");
        assert!(
            cart.claim_relay("b", 200, 300),
            "an expired claim is taken over"
        );
        assert!(cart.relay_claimed_by("b", 250));
    }

    #[test]
    fn a_backoff_excludes_relays_until_it_ends_and_keeps_its_failure_count() {
        let mut cart = with_event(Cart::default());
        cart.relay = Some(RelayClaim {
            token: String::new(),
            until_ms: 500,
            failures: 3,
        });
        assert!(
            !cart.relay_claimed_by("", 100),
            "a backoff is nobody's claim"
        );
        assert!(!cart.claim_relay("a", 499, 600));
        assert!(cart.claim_relay("a", 500, 600));
        assert_eq!(cart.relay.as_ref().map(|c| c.failures), Some(3));
    }

    #[test]
    fn adding_an_existing_product_adds_to_its_line() {
        let mut cart = Cart::default();
        let p = product("mug", 1200, "EUR");
        let limits = Limits::default();
        let q = cart
            .target_quantity("mug", LineChange::Add(2), &limits)
            .unwrap();
        cart.put_line(&p, q, held("r"), 1).unwrap();
        let q = cart
            .target_quantity("mug", LineChange::Add(3), &limits)
            .unwrap();
        assert_eq!(q, 5);
        cart.put_line(&p, q, held("r"), 2).unwrap();
        assert_eq!(cart.lines.len(), 1);
        assert_eq!(cart.item_count(), 5);
        assert_eq!(cart.subtotal().unwrap().unwrap().amount, 6000);
    }

    #[test]
    fn set_and_remove_need_an_existing_line() {
        let cart = Cart::default();
        let limits = Limits::default();
        let not_found = RuleError::LineNotFound {
            product_id: "mug".into(),
        };
        assert_eq!(
            cart.target_quantity("mug", LineChange::Set(2), &limits),
            Err(not_found.clone())
        );
        assert_eq!(
            cart.target_quantity("mug", LineChange::Remove, &limits),
            Err(not_found)
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_lines_per_cart: 1,
            max_quantity_per_line: 5,
            ..Limits::default()
        };
        let mut cart = Cart::default();
        assert_eq!(
            cart.target_quantity("a", LineChange::Add(6), &limits),
            Err(RuleError::LineQuantityAboveLimit { max: 5, target: 6 })
        );
        cart.put_line(&product("a", 1, "EUR"), 1, held("r"), 1)
            .unwrap();
        assert_eq!(
            cart.target_quantity("b", LineChange::Add(1), &limits),
            Err(RuleError::TooManyLines { max: 1 })
        );
        // Changing an existing line is fine at the line limit.
        assert_eq!(
            cart.target_quantity("a", LineChange::Add(1), &limits)
                .unwrap(),
            2
        );
    }

    #[test]
    fn currencies_do_not_mix() {
        let mut cart = Cart::default();
        cart.put_line(&product("a", 1, "EUR"), 1, held("r"), 1)
            .unwrap();
        let err = cart
            .put_line(&product("b", 1, "USD"), 1, held("r2"), 1)
            .unwrap_err();
        assert!(
            matches!(&err, RuleError::CurrencyMismatch { product_id, .. } if product_id == "b"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the cart is priced in EUR, b in USD");
    }

    #[test]
    fn clear_bumps_the_epoch() {
        let mut cart = Cart::default();
        cart.put_line(&product("a", 1, "EUR"), 1, held("r"), 1)
            .unwrap();
        let removed = cart.clear(2);
        assert_eq!(removed.len(), 1);
        let f = EventFactory {
            store_id: "s",
            user_id: "u",
            cart_key: "cart:s:u",
            now_ms: 2,
        };
        cart.emit(&f, EventType::Cleared, serde_json::Value::Null);
        cart.emit(&f, EventType::Cleared, serde_json::Value::Null);
        assert_eq!(cart.last_sequence, 2);
        assert_eq!(cart.acknowledge_through(1).len(), 1);
        assert_eq!(cart.outbox.len(), 1);
        assert_eq!(cart.outbox[0].event.sequence, 2);
        assert_eq!(cart.epoch, 1);
        assert!(cart.lines.is_empty());
    }

    #[test]
    fn product_rules() {
        let mut p = product("a", 1, "EUR");
        p.min_quantity = 2;
        p.max_quantity = Some(10);
        p.quantity_step = 2;
        assert!(check_product_rules(&p, 2).is_ok());
        assert!(check_product_rules(&p, 4).is_ok());
        assert!(matches!(
            check_product_rules(&p, 1),
            Err(RuleError::BelowProductMinimum { min: 2, .. })
        ));
        assert!(matches!(
            check_product_rules(&p, 3),
            Err(RuleError::OffProductStep {
                step: 2,
                min: 2,
                ..
            })
        ));
        assert!(matches!(
            check_product_rules(&p, 12),
            Err(RuleError::AboveProductMaximum { max: 10, .. })
        ));
        assert!(check_product_rules(&p, 0).is_ok());
    }
}
