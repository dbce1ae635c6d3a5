//! The stored product document and the values inside it.
//!
//! Stored types never deny unknown fields, so a newer build can add fields without breaking an
//! older reader during a rolling deploy; the revision counter lives in the KV envelope
//! (see `kv::Stored`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Money in integer minor units of an ISO 4217 currency. Never floats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// How a product's stock is held while a shopper has it in the cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Reserve when the line is added or changed.
    #[default]
    Reserve,
    /// No reservation while shopping; stock is checked at checkout.
    Checkout,
}

/// The catalogue part of a product: everything `PUT .../products/{id}` replaces besides stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalogue {
    pub title: String,
    pub unit_price: Money,
    pub policy: Policy,
    pub min_quantity: u32,
    pub max_quantity: Option<u32>,
    pub quantity_step: u32,
}

/// A live reservation: counts against stock until `expires_at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub quantity: u32,
    pub expires_at_ms: u64,
    /// The writer's fencing token (the cart version it decided from): a reserve carrying a
    /// lower one is refused, so a writer that lost its lease or its race cannot overwrite a
    /// newer hold. 0 for holds made without one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fence: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A committed reservation: its quantity has already been taken out of `stock`. Kept only so a
/// retried commit is idempotent and a lookup can say "committed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    pub quantity: u32,
    /// The hold's expiry at commit time, restored if a multi-product commit is rolled back.
    pub expires_at_ms: u64,
    pub committed_at_ms: u64,
}

/// One product of one store, with its reservations: the unit of compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDoc {
    #[serde(flatten)]
    pub catalogue: Catalogue,
    /// Units on hand. Committed reservations have been subtracted; holds have not.
    pub stock: u32,
    #[serde(default)]
    pub holds: BTreeMap<String, Hold>,
    #[serde(default)]
    pub committed: BTreeMap<String, Committed>,
}

impl ProductDoc {
    pub fn new(catalogue: Catalogue, stock: u32) -> Self {
        Self {
            catalogue,
            stock,
            holds: BTreeMap::new(),
            committed: BTreeMap::new(),
        }
    }
}

/// The store's product index (`inv:{store}:products`), so a sweep can find every product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductIndex {
    pub product_ids: Vec<String>,
}

impl ProductIndex {
    /// Adds `id` keeping the list sorted; false when it was already there.
    pub fn insert(&mut self, id: &str) -> bool {
        match self.product_ids.binary_search_by(|p| p.as_str().cmp(id)) {
            Ok(_) => false,
            Err(at) => {
                self.product_ids.insert(at, id.to_owned());
                true
            }
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.product_ids.iter().any(|p| p == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_doc_round_trips_flat_json() {
        let doc = ProductDoc::new(
            Catalogue {
                title: "Mug".into(),
                unit_price: Money {
                    amount: 1200,
                    currency: "EUR".into(),
                },
                policy: Policy::Checkout,
                min_quantity: 1,
                max_quantity: Some(10),
                quantity_step: 1,
            },
            5,
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["title"], "Mug");
        assert_eq!(json["policy"], "checkout");
        assert_eq!(json["unitPrice"]["amount"], 1200);
        let back: ProductDoc = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn index_insert_is_sorted_and_idempotent() {
        let mut idx = ProductIndex::default();
        assert!(idx.insert("b"));
        assert!(idx.insert("a"));
        assert!(!idx.insert("b"));
        assert_eq!(idx.product_ids, vec!["a", "b"]);
        assert!(idx.contains("a"));
    }
}
