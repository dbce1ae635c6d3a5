//! Reservation operations. Each one is a CAS update of the product document the reservation
//! belongs to; `inv:{store}:res:{id}` only points at that document.

use crate::accounting::{self, CommitError, ReserveError};
use crate::api::{reservation_in, ReservationView, ReserveInput};
use crate::catalog;
use crate::error::ApiError;
use crate::keys;
use crate::kv::{Edit, Kv};
use crate::model::ProductDoc;
use crate::pointers;
use std::collections::BTreeMap;

/// Sets reservation `reservation` to exactly `input.quantity` units of `input.product_id`
/// (0 releases), unless a newer writer's fence holds it.
pub fn reserve(
    kv: &Kv,
    store: &str,
    reservation: &str,
    input: &ReserveInput,
    now_ms: u64,
) -> Result<ReservationView, ApiError> {
    let (product, quantity, ttl_ms, fence) = (
        input.product_id.as_str(),
        input.quantity,
        input.ttl_ms,
        input.fence,
    );
    let pointer_key = keys::reservation_product(store, reservation);
    let pointed = pointed_product(kv, &pointer_key)?;
    if let Some(previous) = pointed.as_deref().filter(|p| *p != product) {
        // The id moves to another product: drop its hold on the old one first, or that hold
        // would keep counting there with nothing pointing at it. A committed id cannot move:
        // its commit record would become unreachable and a retried commit would sell the new
        // hold instead.
        release_on(
            kv,
            store,
            reservation,
            previous,
            now_ms,
            OnCommitted::Refuse,
        )?;
    }
    if quantity > 0 && pointed.as_deref() != Some(product) {
        // Written before the product CAS so a commit or release by id can always find the
        // hold; a pointer left behind by a refused reserve is harmless.
        kv.set_raw(&pointer_key, product.as_bytes())?;
    }
    let outcome = pointers::update_product(kv, store, product, |doc: Option<ProductDoc>| {
        let mut doc = doc.ok_or_else(|| ApiError::ProductNotFound {
            product_id: product.to_owned(),
        })?;
        let outcome =
            accounting::set_fenced_hold(&mut doc, reservation, quantity, ttl_ms, now_ms, fence)
                .map_err(|e| match e {
                    ReserveError::InsufficientStock { available } => {
                        ApiError::InsufficientStock { available }
                    }
                    ReserveError::AlreadyCommitted => ApiError::ReservationCommitted {
                        reservation_id: reservation.to_owned(),
                    },
                    ReserveError::StaleFence { held } => ApiError::StaleFence {
                        reservation_id: reservation.to_owned(),
                        held,
                    },
                })?;
        Ok::<_, ApiError>(if outcome.changed {
            Edit::Write(doc, outcome)
        } else {
            Edit::Keep(outcome)
        })
    })?;
    if outcome.quantity > 0 {
        pointers::ensure(kv, store, reservation, product)?;
    }
    Ok(ReservationView {
        reservation_id: reservation.to_owned(),
        product_id: product.to_owned(),
        quantity: outcome.quantity,
        expires_at_ms: outcome.expires_at_ms,
        status: None,
    })
}

/// Releases a reservation; unknown, expired and committed ones are left as they are.
pub fn release(kv: &Kv, store: &str, reservation: &str, now_ms: u64) -> Result<(), ApiError> {
    // The pointer goes with the hold (`pointers`), unless the id is committed.
    match pointed_product(kv, &keys::reservation_product(store, reservation))? {
        Some(product) => release_on(
            kv,
            store,
            reservation,
            &product,
            now_ms,
            OnCommitted::Ignore,
        ),
        None => Ok(()),
    }
}

/// The reservation, held or committed.
pub fn get(
    kv: &Kv,
    store: &str,
    reservation: &str,
    now_ms: u64,
) -> Result<ReservationView, ApiError> {
    let not_found = || ApiError::ReservationNotFound {
        reservation_id: reservation.to_owned(),
    };
    let product = pointed_product(kv, &keys::reservation_product(store, reservation))?
        .ok_or_else(not_found)?;
    let doc: ProductDoc = kv
        .get_doc(&keys::product(store, &product))?
        .ok_or_else(not_found)?;
    reservation_in(&doc, reservation, &product, now_ms).ok_or_else(not_found)
}

/// Commits the reservations, all or nothing, and returns their ids.
///
/// The ids may span several product documents and there is no multi-key transaction, so this
/// checks every document first and only then commits document by document. A hold can still
/// expire or be released between the check and its document's commit; the later documents then
/// refuse and the ones already committed by this call are rolled back (uncommitted). During that
/// window another reader may briefly see the first documents committed, and if the rollback
/// itself fails (store outage) they stay committed; both are logged.
pub fn commit(
    kv: &Kv,
    store: &str,
    reservation_ids: &[String],
    now_ms: u64,
) -> Result<Vec<String>, ApiError> {
    let Grouped {
        by_product,
        mut missing,
    } = group_by_product(kv, store, reservation_ids)?;

    // Check phase: read every document, change nothing.
    let mut short = Vec::new();
    for (product, ids) in &by_product {
        let doc: Option<ProductDoc> = kv.get_doc(&keys::product(store, product))?;
        match doc.map(|d| accounting::check_commit(&d, ids, now_ms)) {
            None => missing.extend(ids.iter().cloned()),
            Some(Ok(())) => {}
            Some(Err(CommitError::NotHeld(ids))) => missing.extend(ids),
            Some(Err(CommitError::InsufficientStock(ids))) => short.extend(ids),
        }
    }
    if !missing.is_empty() {
        return Err(not_held(reservation_ids, &missing));
    }
    if !short.is_empty() {
        return Err(ApiError::CommitShort {
            reservation_ids: in_request_order(reservation_ids, &short),
        });
    }

    // Apply phase.
    let mut applied: Vec<(&String, Vec<String>)> = Vec::new();
    for (product, ids) in &by_product {
        match commit_on(kv, store, product, ids, now_ms) {
            Ok(newly) => applied.push((product, newly)),
            Err(e) => {
                roll_back(kv, store, &applied);
                return Err(match e {
                    ApiError::ReservationNotHeld { reservation_ids: m } => {
                        not_held(reservation_ids, &m)
                    }
                    other => other,
                });
            }
        }
    }
    Ok(reservation_ids.to_vec())
}

/// Drops expired holds from every product of the store; returns how many holds were dropped.
pub fn sweep(kv: &Kv, store: &str, now_ms: u64) -> Result<usize, ApiError> {
    let mut released = 0;
    for product in catalog::product_ids(kv, store)? {
        released += pointers::update_product(kv, store, &product, |doc: Option<ProductDoc>| {
            Ok::<_, ApiError>(match doc {
                Some(mut doc) => match accounting::drop_expired(&mut doc, now_ms) {
                    0 => Edit::Keep(0),
                    n => Edit::Write(doc, n),
                },
                None => Edit::Keep(0),
            })
        })?;
    }
    Ok(released)
}

fn pointed_product(kv: &Kv, pointer_key: &str) -> Result<Option<String>, ApiError> {
    Ok(kv
        .get_raw(pointer_key)?
        .and_then(|bytes| String::from_utf8(bytes).ok()))
}

/// What releasing a committed reservation means to the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnCommitted {
    /// Nothing to release: it is sold (DELETE stays idempotent).
    Ignore,
    /// Refuse with `reservation-committed`.
    Refuse,
}

fn release_on(
    kv: &Kv,
    store: &str,
    reservation: &str,
    product: &str,
    now_ms: u64,
    on_committed: OnCommitted,
) -> Result<(), ApiError> {
    pointers::update_product(kv, store, product, |doc: Option<ProductDoc>| {
        let Some(mut doc) = doc else {
            return Ok::<_, ApiError>(Edit::Keep(()));
        };
        if on_committed == OnCommitted::Refuse && doc.committed.contains_key(reservation) {
            return Err(ApiError::ReservationCommitted {
                reservation_id: reservation.to_owned(),
            });
        }
        let pruned = accounting::drop_expired(&mut doc, now_ms) > 0;
        let removed = doc.holds.remove(reservation).is_some();
        Ok(if pruned || removed {
            Edit::Write(doc, ())
        } else {
            Edit::Keep(())
        })
    })
}

/// Reservation ids grouped by the product document they live in.
struct Grouped {
    by_product: BTreeMap<String, Vec<String>>,
    /// Ids without a pointer: never reserved in this store.
    missing: Vec<String>,
}

/// Resolves each id's product through its pointer.
fn group_by_product(kv: &Kv, store: &str, reservation_ids: &[String]) -> Result<Grouped, ApiError> {
    let mut by_product: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    for id in reservation_ids {
        match pointed_product(kv, &keys::reservation_product(store, id))? {
            Some(product) => by_product.entry(product).or_default().push(id.clone()),
            None => missing.push(id.clone()),
        }
    }
    Ok(Grouped {
        by_product,
        missing,
    })
}

fn commit_on(
    kv: &Kv,
    store: &str,
    product: &str,
    ids: &[String],
    now_ms: u64,
) -> Result<Vec<String>, ApiError> {
    pointers::update_product(kv, store, product, |doc: Option<ProductDoc>| {
        let Some(mut doc) = doc else {
            return Err(ApiError::ReservationNotHeld {
                reservation_ids: ids.to_vec(),
            });
        };
        match accounting::commit(&mut doc, ids, now_ms) {
            Ok(newly) if newly.is_empty() => Ok(Edit::Keep(newly)),
            Ok(newly) => Ok(Edit::Write(doc, newly)),
            Err(CommitError::NotHeld(m)) => {
                Err(ApiError::ReservationNotHeld { reservation_ids: m })
            }
            Err(CommitError::InsufficientStock(s)) => {
                Err(ApiError::CommitShort { reservation_ids: s })
            }
        }
    })
}

fn roll_back(kv: &Kv, store: &str, applied: &[(&String, Vec<String>)]) {
    for (product, newly) in applied {
        let undone = kv.update(&keys::product(store, product), |doc: Option<ProductDoc>| {
            let Some(mut doc) = doc else {
                return Ok::<_, ApiError>(Edit::Keep(()));
            };
            Ok(if accounting::uncommit(&mut doc, newly) {
                Edit::Write(doc, ())
            } else {
                Edit::Keep(())
            })
        });
        if let Err(e) = undone {
            eprintln!(
                "{}",
                serde_json::json!({
                    "msg": "commit rollback failed; reservations stay committed",
                    "store": store, "product": product, "reservationIds": newly,
                    "error": format!("{e:?}"),
                })
            );
        }
    }
}

fn not_held(request: &[String], missing: &[String]) -> ApiError {
    ApiError::ReservationNotHeld {
        reservation_ids: in_request_order(request, missing),
    }
}

/// `subset` in the order the caller sent the ids, so answers are deterministic.
fn in_request_order(request: &[String], subset: &[String]) -> Vec<String> {
    request
        .iter()
        .filter(|id| subset.contains(id))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_ids_follow_request_order() {
        let req: Vec<String> = ["c", "a", "b"].iter().map(|s| s.to_string()).collect();
        let subset: Vec<String> = ["b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(in_request_order(&req, &subset), vec!["c", "b"]);
    }
}
