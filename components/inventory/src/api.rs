//! Request bodies (strict: unknown fields are refused) and response views of the HTTP API.

use crate::accounting;
use crate::ids::{validate_id, validate_product_id};
use crate::model::{Catalogue, Money, Policy, ProductDoc};
use serde::{Deserialize, Serialize};

/// Longest accepted reservation TTL: one day.
pub const MAX_TTL_MS: u64 = 86_400_000;
/// Most reservation ids in one commit.
pub const MAX_COMMIT_IDS: usize = 1000;
const MAX_TITLE_CHARS: usize = 200;

/// A body field that parsed but is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn field_error(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

fn one() -> u32 {
    1
}

/// `PUT /inventory/v1/stores/{storeId}/products/{productId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    pub title: String,
    pub unit_price: Money,
    pub stock: u32,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default = "one")]
    pub min_quantity: u32,
    #[serde(default)]
    pub max_quantity: Option<u32>,
    #[serde(default = "one")]
    pub quantity_step: u32,
}

impl ProductInput {
    /// Checks the value rules serde cannot express and splits off the stock.
    pub fn validate(self) -> Result<(Catalogue, u32), FieldError> {
        let title_len = self.title.chars().count();
        if self.title.trim().is_empty() || title_len > MAX_TITLE_CHARS {
            return Err(field_error(
                "title",
                format!("must be 1 to {MAX_TITLE_CHARS} characters and not blank"),
            ));
        }
        if self.unit_price.amount < 0 {
            return Err(field_error("unitPrice.amount", "must not be negative"));
        }
        let currency = &self.unit_price.currency;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(field_error(
                "unitPrice.currency",
                "must be an ISO 4217 code: three uppercase letters",
            ));
        }
        if self.min_quantity < 1 {
            return Err(field_error("minQuantity", "must be at least 1"));
        }
        if self.quantity_step < 1 {
            return Err(field_error("quantityStep", "must be at least 1"));
        }
        if let Some(max) = self.max_quantity {
            if max < self.min_quantity {
                return Err(field_error("maxQuantity", "must not be below minQuantity"));
            }
        }
        let catalogue = Catalogue {
            title: self.title,
            unit_price: self.unit_price,
            policy: self.policy,
            min_quantity: self.min_quantity,
            max_quantity: self.max_quantity,
            quantity_step: self.quantity_step,
        };
        Ok((catalogue, self.stock))
    }
}

/// `PUT /inventory/v1/stores/{storeId}/reservations/{reservationId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveInput {
    pub product_id: String,
    pub quantity: u32,
    pub ttl_ms: u64,
    /// The caller's fencing token (see `model::Hold::fence`); 0 when it sends none.
    #[serde(default)]
    pub fence: u64,
}

impl ReserveInput {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_product_id(&self.product_id)
            .map_err(|e| field_error("productId", e.to_string()))?;
        if !(1..=MAX_TTL_MS).contains(&self.ttl_ms) {
            return Err(field_error(
                "ttlMs",
                format!("must be between 1 and {MAX_TTL_MS}"),
            ));
        }
        Ok(())
    }
}

/// `POST /inventory/v1/stores/{storeId}/reservations/commit`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitInput {
    pub reservation_ids: Vec<String>,
}

impl CommitInput {
    /// The ids, validated and de-duplicated in request order.
    pub fn validate(self) -> Result<Vec<String>, FieldError> {
        if self.reservation_ids.len() > MAX_COMMIT_IDS {
            return Err(field_error(
                "reservationIds",
                format!("at most {MAX_COMMIT_IDS} ids per commit"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(self.reservation_ids.len());
        for id in self.reservation_ids {
            validate_id(&id).map_err(|e| field_error("reservationIds", format!("{id:?} {e}")))?;
            if seen.insert(id.clone()) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// `GET .../products/{productId}` and the answer to a product PUT.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub store_id: String,
    pub product_id: String,
    pub title: String,
    pub unit_price: Money,
    pub stock: u32,
    pub reserved: u64,
    pub available: u32,
    pub policy: Policy,
    pub min_quantity: u32,
    pub max_quantity: Option<u32>,
    pub quantity_step: u32,
}

impl ProductView {
    pub fn new(store_id: &str, product_id: &str, doc: &ProductDoc, now_ms: u64) -> Self {
        let c = &doc.catalogue;
        Self {
            store_id: store_id.to_owned(),
            product_id: product_id.to_owned(),
            title: c.title.clone(),
            unit_price: c.unit_price.clone(),
            stock: doc.stock,
            reserved: accounting::reserved(doc, now_ms, None),
            available: accounting::available(doc, now_ms),
            policy: c.policy,
            min_quantity: c.min_quantity,
            max_quantity: c.max_quantity,
            quantity_step: c.quantity_step,
        }
    }
}

/// Whether a looked-up reservation still holds stock or was sold.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    Held,
    Committed,
}

/// A reservation as the API shows it. `status` is only present on the single-reservation GET.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    pub reservation_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub expires_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ReservationStatus>,
}

/// Looks a reservation up in its product document; `None` when it is neither held nor committed.
pub fn reservation_in(
    doc: &ProductDoc,
    reservation_id: &str,
    product_id: &str,
    now_ms: u64,
) -> Option<ReservationView> {
    let view = |quantity, expires_at_ms, status| ReservationView {
        reservation_id: reservation_id.to_owned(),
        product_id: product_id.to_owned(),
        quantity,
        expires_at_ms,
        status: Some(status),
    };
    if let Some(c) = doc.committed.get(reservation_id) {
        return Some(view(
            c.quantity,
            c.expires_at_ms,
            ReservationStatus::Committed,
        ));
    }
    accounting::live_hold(doc, reservation_id, now_ms)
        .map(|h| view(h.quantity, h.expires_at_ms, ReservationStatus::Held))
}

/// Unexpired holds of one product, sorted by reservation id.
pub fn holds_of(doc: &ProductDoc, product_id: &str, now_ms: u64) -> Vec<ReservationView> {
    // BTreeMap iteration is already sorted by id.
    doc.holds
        .iter()
        .filter(|(_, h)| h.expires_at_ms > now_ms)
        .map(|(id, h)| ReservationView {
            reservation_id: id.clone(),
            product_id: product_id.to_owned(),
            quantity: h.quantity,
            expires_at_ms: h.expires_at_ms,
            status: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn product(body: serde_json::Value) -> Result<ProductInput, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn product_defaults_apply() {
        let (c, stock) = product(json!({
            "title": "Mug", "unitPrice": {"amount": 1200, "currency": "EUR"}, "stock": 3
        }))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(stock, 3);
        assert_eq!(c.policy, Policy::Reserve);
        assert_eq!(
            (c.min_quantity, c.max_quantity, c.quantity_step),
            (1, None, 1)
        );
    }

    #[test]
    fn product_refuses_unknown_fields_and_bad_types() {
        assert!(product(json!({
            "title": "Mug", "unitPrice": {"amount": 1, "currency": "EUR"}, "stock": 3, "x": 1
        }))
        .is_err());
        assert!(product(json!({
            "title": "Mug", "unitPrice": {"amount": 1, "currency": "EUR", "x": 1}, "stock": 3
        }))
        .is_err());
        assert!(product(json!({
            "title": "Mug", "unitPrice": {"amount": 1, "currency": "EUR"}, "stock": -1
        }))
        .is_err());
        assert!(product(json!({
            "title": "Mug", "unitPrice": {"amount": 1.5, "currency": "EUR"}, "stock": 1
        }))
        .is_err());
        assert!(product(json!({
            "title": "Mug", "unitPrice": {"amount": 1, "currency": "EUR"}, "stock": 1,
            "policy": "sometimes"
        }))
        .is_err());
    }

    #[test]
    fn product_value_rules() {
        let check = |patch: serde_json::Value| {
            let mut body = json!({
                "title": "Mug", "unitPrice": {"amount": 1, "currency": "EUR"}, "stock": 1
            });
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            product(body)
                .unwrap()
                .validate()
                .map(|_| ())
                .map_err(|e| e.field)
        };
        assert_eq!(check(json!({"title": ""})), Err("title"));
        assert_eq!(check(json!({"title": "  "})), Err("title"));
        assert_eq!(check(json!({"title": "é".repeat(200)})), Ok(()));
        assert_eq!(check(json!({"title": "x".repeat(201)})), Err("title"));
        assert_eq!(
            check(json!({"unitPrice": {"amount": -1, "currency": "EUR"}})),
            Err("unitPrice.amount")
        );
        assert_eq!(
            check(json!({"unitPrice": {"amount": 1, "currency": "eur"}})),
            Err("unitPrice.currency")
        );
        assert_eq!(check(json!({"minQuantity": 0})), Err("minQuantity"));
        assert_eq!(check(json!({"quantityStep": 0})), Err("quantityStep"));
        assert_eq!(
            check(json!({"minQuantity": 3, "maxQuantity": 2})),
            Err("maxQuantity")
        );
        assert_eq!(check(json!({"maxQuantity": null})), Ok(()));
    }

    #[test]
    fn reserve_input_rules() {
        let r = |v| {
            serde_json::from_value::<ReserveInput>(v)
                .unwrap()
                .validate()
        };
        assert!(r(json!({"productId": "p", "quantity": 0, "ttlMs": 1})).is_ok());
        assert!(r(json!({"productId": "p", "quantity": 1, "ttlMs": 0})).is_err());
        assert!(r(json!({"productId": "p", "quantity": 1, "ttlMs": 86_400_001})).is_err());
        assert!(r(json!({"productId": "a:b", "quantity": 1, "ttlMs": 5})).is_err());
        assert!(
            serde_json::from_value::<ReserveInput>(json!({"productId": "p", "quantity": 1}))
                .is_err()
        );
    }

    #[test]
    fn commit_ids_are_validated_and_deduplicated() {
        let c = |v| serde_json::from_value::<CommitInput>(v).unwrap().validate();
        assert_eq!(
            c(json!({"reservationIds": ["b", "a", "b"]})),
            Ok(vec!["b".to_string(), "a".to_string()])
        );
        assert!(c(json!({"reservationIds": ["bad id"]})).is_err());
        let many: Vec<String> = (0..=MAX_COMMIT_IDS).map(|i| format!("r{i}")).collect();
        assert!(c(json!({ "reservationIds": many })).is_err());
    }

    #[test]
    fn views_serialise_camel_case() {
        let v = ReservationView {
            reservation_id: "r".into(),
            product_id: "p".into(),
            quantity: 2,
            expires_at_ms: 9,
            status: None,
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"reservationId": "r", "productId": "p", "quantity": 2, "expiresAtMs": 9})
        );
    }
}
