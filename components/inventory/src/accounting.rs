//! Reservation accounting on one product document. Pure: every function takes `now` so tests
//! can move time, and the caller decides whether the document needs writing back.
//!
//! Expiry is lazy: a hold with `expires_at_ms <= now` stops counting the moment it expires,
//! whether or not anyone has removed it from the document yet.

use crate::model::{Committed, Hold, ProductDoc};

/// Committed entries kept per product for idempotent re-commits and lookups; the oldest go
/// first so the document cannot grow without bound.
pub const MAX_COMMITTED_KEPT: usize = 1000;

/// Why a reservation could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    /// `available` counts this reservation's own hold: the most it may be set to.
    InsufficientStock { available: u32 },
    /// The id was already committed (sold); it cannot hold stock again.
    AlreadyCommitted,
    /// A newer writer set this hold: its fence is above the one offered.
    StaleFence { held: u64 },
}

/// Result of setting a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldOutcome {
    pub quantity: u32,
    /// For a release (quantity 0): `now`.
    pub expires_at_ms: u64,
    /// Whether the document changed and must be written back.
    pub changed: bool,
}

/// Why a commit was refused for this product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// These ids are neither unexpired holds nor already committed.
    NotHeld(Vec<String>),
    /// Stock was lowered below these holds (by a catalogue PUT), so they cannot all be sold.
    InsufficientStock(Vec<String>),
}

/// Removes expired holds; returns how many were removed.
pub fn drop_expired(doc: &mut ProductDoc, now_ms: u64) -> usize {
    let before = doc.holds.len();
    doc.holds.retain(|_, h| h.expires_at_ms > now_ms);
    before - doc.holds.len()
}

/// Units held by unexpired reservations, optionally leaving one reservation out.
pub fn reserved(doc: &ProductDoc, now_ms: u64, except: Option<&str>) -> u64 {
    doc.holds
        .iter()
        .filter(|(id, h)| h.expires_at_ms > now_ms && Some(id.as_str()) != except)
        .map(|(_, h)| u64::from(h.quantity))
        .sum()
}

/// Stock minus unexpired holds, never below zero.
pub fn available(doc: &ProductDoc, now_ms: u64) -> u32 {
    saturating_u32(u64::from(doc.stock).saturating_sub(reserved(doc, now_ms, None)))
}

/// The unexpired hold of `id`, if any.
pub fn live_hold<'a>(doc: &'a ProductDoc, id: &str, now_ms: u64) -> Option<&'a Hold> {
    doc.holds.get(id).filter(|h| h.expires_at_ms > now_ms)
}

/// [`set_fenced_hold`] without a fence (tests of the accounting itself).
#[cfg(test)]
pub fn set_hold(
    doc: &mut ProductDoc,
    id: &str,
    quantity: u32,
    ttl_ms: u64,
    now_ms: u64,
) -> Result<HoldOutcome, ReserveError> {
    set_fenced_hold(doc, id, quantity, ttl_ms, now_ms, 0)
}

/// Sets reservation `id` to exactly `quantity` (0 releases it), expiring `ttl_ms` from now, if
/// `fence` is not below the fence of the live hold it replaces.
/// On error the document is unchanged except that expired holds may have been dropped.
pub fn set_fenced_hold(
    doc: &mut ProductDoc,
    id: &str,
    quantity: u32,
    ttl_ms: u64,
    now_ms: u64,
    fence: u64,
) -> Result<HoldOutcome, ReserveError> {
    if doc.committed.contains_key(id) {
        return Err(ReserveError::AlreadyCommitted);
    }
    if let Some(held) = live_hold(doc, id, now_ms).filter(|h| fence < h.fence) {
        return Err(ReserveError::StaleFence { held: held.fence });
    }
    let pruned = drop_expired(doc, now_ms) > 0;
    if quantity == 0 {
        let removed = doc.holds.remove(id).is_some();
        return Ok(HoldOutcome {
            quantity: 0,
            expires_at_ms: now_ms,
            changed: pruned || removed,
        });
    }
    let others = reserved(doc, now_ms, Some(id));
    let room = saturating_u32(u64::from(doc.stock).saturating_sub(others));
    if quantity > room {
        return Err(ReserveError::InsufficientStock { available: room });
    }
    let expires_at_ms = now_ms.saturating_add(ttl_ms);
    doc.holds.insert(
        id.to_owned(),
        Hold {
            quantity,
            expires_at_ms,
            fence,
        },
    );
    Ok(HoldOutcome {
        quantity,
        expires_at_ms,
        changed: true,
    })
}

/// Checks that every id can be committed, without changing anything: each is an unexpired hold
/// or already committed, and the holds fit in stock.
pub fn check_commit(doc: &ProductDoc, ids: &[String], now_ms: u64) -> Result<(), CommitError> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !doc.committed.contains_key(*id) && live_hold(doc, id, now_ms).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(CommitError::NotHeld(missing));
    }
    let pending: Vec<&String> = ids
        .iter()
        .filter(|id| !doc.committed.contains_key(*id))
        .collect();
    let wanted: u64 = pending
        .iter()
        .filter_map(|id| live_hold(doc, id, now_ms))
        .map(|h| u64::from(h.quantity))
        .sum();
    if wanted > u64::from(doc.stock) {
        return Err(CommitError::InsufficientStock(
            pending.into_iter().cloned().collect(),
        ));
    }
    Ok(())
}

/// Turns the holds `ids` into sold stock, all or nothing for this document. Already committed
/// ids are left alone (idempotent). Returns the ids this call committed, for a rollback.
pub fn commit(
    doc: &mut ProductDoc,
    ids: &[String],
    now_ms: u64,
) -> Result<Vec<String>, CommitError> {
    check_commit(doc, ids, now_ms)?;
    drop_expired(doc, now_ms);
    let mut newly = Vec::new();
    for id in ids {
        if doc.committed.contains_key(id) {
            continue;
        }
        if let Some(hold) = doc.holds.remove(id) {
            // check_commit proved the sum fits, so this never saturates.
            doc.stock = doc.stock.saturating_sub(hold.quantity);
            doc.committed.insert(
                id.clone(),
                Committed {
                    quantity: hold.quantity,
                    expires_at_ms: hold.expires_at_ms,
                    committed_at_ms: now_ms,
                },
            );
            newly.push(id.clone());
        }
    }
    trim_committed(doc);
    Ok(newly)
}

/// Undoes [`commit`] for `ids` (a multi-product commit failed on a later product): the stock
/// comes back and each becomes a hold again with its old expiry. Returns whether anything changed.
pub fn uncommit(doc: &mut ProductDoc, ids: &[String]) -> bool {
    let mut changed = false;
    for id in ids {
        if let Some(c) = doc.committed.remove(id) {
            doc.stock = doc.stock.saturating_add(c.quantity);
            doc.holds.insert(
                id.clone(),
                Hold {
                    quantity: c.quantity,
                    expires_at_ms: c.expires_at_ms,
                    fence: 0,
                },
            );
            changed = true;
        }
    }
    changed
}

/// Keeps the newest [`MAX_COMMITTED_KEPT`] committed entries.
fn trim_committed(doc: &mut ProductDoc) {
    let excess = doc.committed.len().saturating_sub(MAX_COMMITTED_KEPT);
    if excess == 0 {
        return;
    }
    let mut by_age: Vec<(u64, String)> = doc
        .committed
        .iter()
        .map(|(id, c)| (c.committed_at_ms, id.clone()))
        .collect();
    by_age.sort();
    for (_, id) in by_age.into_iter().take(excess) {
        doc.committed.remove(&id);
    }
}

fn saturating_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Catalogue, Money, Policy};

    fn doc(stock: u32) -> ProductDoc {
        ProductDoc::new(
            Catalogue {
                title: "Kettle".into(),
                unit_price: Money {
                    amount: 4900,
                    currency: "EUR".into(),
                },
                policy: Policy::Reserve,
                min_quantity: 1,
                max_quantity: None,
                quantity_step: 1,
            },
            stock,
        )
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn holds_reduce_availability_until_they_expire() {
        let mut d = doc(10);
        set_hold(&mut d, "r1", 4, 1000, 0).unwrap();
        assert_eq!(available(&d, 0), 6);
        assert_eq!(available(&d, 999), 6);
        // expiresAtMs <= now no longer counts.
        assert_eq!(available(&d, 1000), 10);
    }

    #[test]
    fn absolute_quantity_counts_own_hold() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 6, 1000, 0).unwrap();
        set_hold(&mut d, "b", 4, 1000, 0).unwrap();
        // Re-setting "a" to 6 is fine: its own hold is not "other".
        assert!(set_hold(&mut d, "a", 6, 1000, 1).is_ok());
        assert_eq!(
            set_hold(&mut d, "a", 7, 1000, 2),
            Err(ReserveError::InsufficientStock { available: 6 })
        );
        assert_eq!(d.holds["a"].quantity, 6);
        assert_eq!(reserved(&d, 2, None), 10);
    }

    #[test]
    fn refresh_extends_expiry() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 2, 100, 0).unwrap();
        let out = set_hold(&mut d, "a", 2, 100, 50).unwrap();
        assert_eq!(out.expires_at_ms, 150);
        assert_eq!(d.holds["a"].expires_at_ms, 150);
    }

    #[test]
    fn zero_releases_and_reports_changes() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 2, 100, 0).unwrap();
        let out = set_hold(&mut d, "a", 0, 100, 1).unwrap();
        assert!(out.changed);
        assert!(d.holds.is_empty());
        let again = set_hold(&mut d, "a", 0, 100, 2).unwrap();
        assert!(!again.changed);
    }

    #[test]
    fn expired_holds_of_others_free_stock_and_are_dropped() {
        let mut d = doc(3);
        set_hold(&mut d, "old", 3, 10, 0).unwrap();
        assert!(set_hold(&mut d, "new", 1, 10, 5).is_err());
        set_hold(&mut d, "new", 3, 10, 10).unwrap();
        assert!(!d.holds.contains_key("old"));
    }

    #[test]
    fn many_reservers_never_exceed_stock() {
        let mut d = doc(10);
        let ok = (0..100)
            .filter(|i| set_hold(&mut d, &format!("r{i}"), 1, 1000, 0).is_ok())
            .count();
        assert_eq!(ok, 10);
        assert_eq!(reserved(&d, 0, None), 10);
        assert_eq!(available(&d, 0), 0);
    }

    #[test]
    fn a_lower_fence_never_overwrites_a_newer_hold() {
        let mut d = doc(10);
        set_fenced_hold(&mut d, "a", 3, 100, 0, 5).unwrap();
        assert_eq!(
            set_fenced_hold(&mut d, "a", 1, 100, 1, 4),
            Err(ReserveError::StaleFence { held: 5 })
        );
        assert_eq!(
            set_fenced_hold(&mut d, "a", 0, 100, 1, 4),
            Err(ReserveError::StaleFence { held: 5 }),
            "nor releases it"
        );
        assert_eq!(live_hold(&d, "a", 1).map(|h| h.quantity), Some(3));
        set_fenced_hold(&mut d, "a", 4, 100, 2, 5).expect("the same fence may repeat");
        set_fenced_hold(&mut d, "a", 2, 100, 3, 9).expect("a newer fence wins");
        assert_eq!(
            live_hold(&d, "a", 3).map(|h| (h.quantity, h.fence)),
            Some((2, 9))
        );
        // An expired hold's fence no longer guards anything.
        set_fenced_hold(&mut d, "a", 1, 100, 200, 1).expect("after expiry");
    }

    #[test]
    fn commit_moves_holds_to_sold_stock_idempotently() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 3, 100, 0).unwrap();
        set_hold(&mut d, "b", 2, 100, 0).unwrap();
        let newly = commit(&mut d, &ids(&["a"]), 1).unwrap();
        assert_eq!(newly, ids(&["a"]));
        assert_eq!(d.stock, 7);
        assert_eq!(available(&d, 1), 5);
        // Committed ones no longer count as holds and survive their old expiry.
        assert_eq!(available(&d, 500), 7);
        let again = commit(&mut d, &ids(&["a"]), 2).unwrap();
        assert!(again.is_empty());
        assert_eq!(d.stock, 7);
        assert_eq!(
            set_hold(&mut d, "a", 1, 100, 3),
            Err(ReserveError::AlreadyCommitted)
        );
    }

    #[test]
    fn commit_is_all_or_nothing_per_document() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 3, 100, 0).unwrap();
        set_hold(&mut d, "late", 1, 10, 0).unwrap();
        let before = d.clone();
        assert_eq!(
            commit(&mut d, &ids(&["a", "late", "nope"]), 10),
            Err(CommitError::NotHeld(ids(&["late", "nope"])))
        );
        assert_eq!(d, before);
    }

    #[test]
    fn commit_refuses_holds_that_stock_no_longer_covers() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 8, 100, 0).unwrap();
        d.stock = 5;
        assert_eq!(
            commit(&mut d, &ids(&["a"]), 1),
            Err(CommitError::InsufficientStock(ids(&["a"])))
        );
    }

    #[test]
    fn uncommit_restores_stock_and_hold() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 3, 100, 0).unwrap();
        let before = d.clone();
        let newly = commit(&mut d, &ids(&["a"]), 1).unwrap();
        assert!(uncommit(&mut d, &newly));
        assert_eq!(d, before);
        assert!(!uncommit(&mut d, &newly));
    }

    #[test]
    fn committed_entries_are_bounded() {
        let mut d = doc(u32::MAX);
        for i in 0..(MAX_COMMITTED_KEPT + 5) {
            let id = format!("r{i:05}");
            set_hold(&mut d, &id, 1, 100, i as u64).unwrap();
            commit(&mut d, std::slice::from_ref(&id), i as u64).unwrap();
        }
        assert_eq!(d.committed.len(), MAX_COMMITTED_KEPT);
        assert!(!d.committed.contains_key("r00000"));
        assert!(d
            .committed
            .contains_key(&format!("r{:05}", MAX_COMMITTED_KEPT + 4)));
    }

    #[test]
    fn drop_expired_counts_removed() {
        let mut d = doc(10);
        set_hold(&mut d, "a", 1, 10, 0).unwrap();
        set_hold(&mut d, "b", 1, 20, 0).unwrap();
        assert_eq!(drop_expired(&mut d, 10), 1);
        assert_eq!(drop_expired(&mut d, 10), 0);
    }
}
