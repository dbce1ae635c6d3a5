//! Product operations: create or replace catalogue fields and stock, read products and their holds.

use crate::accounting;
use crate::api::{holds_of, ProductView, ReservationView};
use crate::error::ApiError;
use crate::keys;
use crate::kv::{Edit, Kv};
use crate::model::{Catalogue, ProductDoc, ProductIndex};

/// Creates the product or replaces its catalogue fields and stock, keeping its reservations.
pub fn put_product(
    kv: &Kv,
    store: &str,
    product: &str,
    catalogue: Catalogue,
    stock: u32,
    now_ms: u64,
) -> Result<ProductView, ApiError> {
    // Index first: if we fail between the two writes, the index names a product that does not
    // exist yet (the sweep skips it), never a product the sweep cannot find.
    add_to_index(kv, store, product)?;
    crate::pointers::update_product(kv, store, product, |doc: Option<ProductDoc>| {
        let doc = match doc {
            Some(mut doc) => {
                doc.catalogue = catalogue.clone();
                doc.stock = stock;
                accounting::drop_expired(&mut doc, now_ms);
                doc
            }
            None => ProductDoc::new(catalogue.clone(), stock),
        };
        let view = ProductView::new(store, product, &doc, now_ms);
        Ok::<_, ApiError>(Edit::Write(doc, view))
    })
}

/// Creates the product only if it does not exist; true when it was created. Used for seeding,
/// so a product someone already PUT is never overwritten.
pub fn create_if_absent(
    kv: &Kv,
    store: &str,
    product: &str,
    catalogue: Catalogue,
    stock: u32,
) -> Result<bool, ApiError> {
    add_to_index(kv, store, product)?;
    kv.update(&keys::product(store, product), |doc: Option<ProductDoc>| {
        Ok::<_, ApiError>(match doc {
            Some(_) => Edit::Keep(false),
            None => Edit::Write(ProductDoc::new(catalogue.clone(), stock), true),
        })
    })
}

pub fn get_product(
    kv: &Kv,
    store: &str,
    product: &str,
    now_ms: u64,
) -> Result<ProductView, ApiError> {
    let doc = load(kv, store, product)?;
    Ok(ProductView::new(store, product, &doc, now_ms))
}

pub fn list_reservations(
    kv: &Kv,
    store: &str,
    product: &str,
    now_ms: u64,
) -> Result<Vec<ReservationView>, ApiError> {
    let doc = load(kv, store, product)?;
    Ok(holds_of(&doc, product, now_ms))
}

/// Every unexpired hold in the store, across its products (for the cart's orphan sweep).
pub fn list_store_reservations(
    kv: &Kv,
    store: &str,
    now_ms: u64,
) -> Result<Vec<ReservationView>, ApiError> {
    let mut all = Vec::new();
    for product in product_ids(kv, store)? {
        match load(kv, store, &product) {
            Ok(doc) => all.extend(holds_of(&doc, &product, now_ms)),
            // Indexed before it was written, or written by a crashed creator: nothing held.
            Err(ApiError::ProductNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

/// The store's product ids as the index lists them (empty for an unknown store).
pub fn product_ids(kv: &Kv, store: &str) -> Result<Vec<String>, ApiError> {
    let index: Option<ProductIndex> = kv.get_doc(&keys::product_index(store))?;
    Ok(index.map(|i| i.product_ids).unwrap_or_default())
}

fn load(kv: &Kv, store: &str, product: &str) -> Result<ProductDoc, ApiError> {
    kv.get_doc(&keys::product(store, product))?
        .ok_or_else(|| ApiError::ProductNotFound {
            product_id: product.to_owned(),
        })
}

fn add_to_index(kv: &Kv, store: &str, product: &str) -> Result<(), ApiError> {
    let key = keys::product_index(store);
    // A plain read first: replacing an existing product (the common case) costs no index write.
    let known: Option<ProductIndex> = kv.get_doc(&key)?;
    if known.is_some_and(|i| i.contains(product)) {
        return Ok(());
    }
    kv.update(&key, |index: Option<ProductIndex>| {
        let mut index = index.unwrap_or_default();
        Ok::<_, ApiError>(if index.insert(product) {
            Edit::Write(index, ())
        } else {
            Edit::Keep(())
        })
    })
}
