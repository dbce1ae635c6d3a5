//! The reservation pointers `inv:{store}:res:{id}` (which product document an id lives in),
//! kept only while that document knows the id, so they grow with live and recently committed
//! reservations, not with every id ever reserved.
//!
//! A pointer is written before the compare-and-swap that puts its hold in (`reserve`), so a
//! commit or release by id can always find the hold. Every update of a product document goes
//! through [`update_product`], which notes the ids the update made the document forget
//! (released, expired, trimmed from the committed log) and then forgets their pointers:
//! check that the document still does not know the id, delete, and look again, restoring the
//! pointer if a reserve of the same id put a hold in meanwhile. The reserve, for its part,
//! checks its pointer after its compare-and-swap and writes it again if it is gone; between
//! the two second looks every interleaving ends with a pointer for every hold.

use std::collections::BTreeSet;

use crate::error::ApiError;
use crate::keys;
use crate::kv::{Edit, Kv};
use crate::model::ProductDoc;

/// The ids a product document knows: held or committed.
fn known_ids(doc: &ProductDoc) -> BTreeSet<&String> {
    doc.holds.keys().chain(doc.committed.keys()).collect()
}

/// `kv.update` of a product document that then forgets the pointers of the ids the update
/// dropped from it.
pub fn update_product<R>(
    kv: &Kv,
    store: &str,
    product: &str,
    mut edit: impl FnMut(Option<ProductDoc>) -> Result<Edit<ProductDoc, R>, ApiError>,
) -> Result<R, ApiError> {
    let mut dropped: Vec<String> = Vec::new();
    let answer = kv.update(&keys::product(store, product), |doc: Option<ProductDoc>| {
        let before: BTreeSet<String> = doc
            .as_ref()
            .map(|d| known_ids(d).into_iter().cloned().collect())
            .unwrap_or_default();
        let outcome = edit(doc)?;
        dropped = match &outcome {
            Edit::Write(after, _) => {
                let after = known_ids(after);
                before
                    .into_iter()
                    .filter(|id| !after.contains(id))
                    .collect()
            }
            Edit::Keep(_) => Vec::new(),
        };
        Ok::<_, ApiError>(outcome)
    })?;
    for id in &dropped {
        if let Err(e) = forget(kv, store, product, id) {
            // A pointer left behind only costs a key; nothing reads it as a hold.
            eprintln!(
                "{}",
                serde_json::json!({
                    "level": "warn", "msg": "reservation pointer not removed",
                    "reservationId": id, "error": format!("{e:?}"),
                })
            );
        }
    }
    Ok(answer)
}

/// Points `id` at `product` again if a concurrent forget removed it after this reserve wrote
/// it (see the module doc).
pub fn ensure(kv: &Kv, store: &str, id: &str, product: &str) -> Result<(), ApiError> {
    let key = keys::reservation_product(store, id);
    if kv.get_raw(&key)?.as_deref() != Some(product.as_bytes()) {
        kv.set_raw(&key, product.as_bytes())?;
    }
    Ok(())
}

fn forget(kv: &Kv, store: &str, product: &str, id: &str) -> Result<(), ApiError> {
    let key = keys::reservation_product(store, id);
    // An id that moved to another product keeps its pointer there.
    if kv.get_raw(&key)?.as_deref() != Some(product.as_bytes()) || knows(kv, store, product, id)? {
        return Ok(());
    }
    kv.delete_raw(&key)?;
    if knows(kv, store, product, id)? {
        kv.set_raw(&key, product.as_bytes())?;
    }
    Ok(())
}

fn knows(kv: &Kv, store: &str, product: &str, id: &str) -> Result<bool, ApiError> {
    let doc: Option<ProductDoc> = kv.get_doc(&keys::product(store, product))?;
    Ok(doc.is_some_and(|d| d.holds.contains_key(id) || d.committed.contains_key(id)))
}
