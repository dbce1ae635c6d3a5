//! Request bodies of the cart API, parsed strictly: unknown fields and malformed JSON are 400,
//! quantities that are not positive are 422, all before anything is read or stored.

use crate::ids::ProductId;
use crate::limits::Limits;
use crate::problem::{Problem, ProblemKind};
use serde::Deserialize;

/// `POST /v1/stores/{storeId}/cart/items`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddItem {
    pub product_id: ProductId,
    pub quantity: u32,
}

/// `PATCH /v1/stores/{storeId}/cart/items/{productId}`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetQuantity {
    pub quantity: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddItemBody {
    product_id: String,
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetQuantityBody {
    quantity: i64,
}

/// Checks the media type: JSON bodies only (`application/json`, parameters allowed).
pub fn check_json_content_type(content_type: Option<&str>) -> Result<(), Problem> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) => Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            format!("Content-Type {other:?} is not supported; send application/json"),
        )),
        None => Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "Content-Type is missing; send application/json",
        )),
    }
}

/// Checks the size before parsing, so an oversized body is refused without work.
pub fn check_body_size(body: &[u8], limits: &Limits) -> Result<(), Problem> {
    if body.len() > limits.max_body_bytes {
        return Err(Problem::new(
            ProblemKind::BodyTooLarge,
            format!(
                "the body has {} bytes; at most {} are accepted",
                body.len(),
                limits.max_body_bytes
            ),
        )
        .with("maxBytes", limits.max_body_bytes));
    }
    Ok(())
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::new(ProblemKind::InvalidBody, format!("invalid JSON body: {e}")))
}

fn positive_quantity(raw: i64, limits: &Limits) -> Result<u32, Problem> {
    if raw <= 0 {
        return Err(Problem::new(
            ProblemKind::InvalidQuantity,
            format!("quantity must be at least 1, got {raw}"),
        ));
    }
    quantity_within_limit(raw, limits)
}

fn quantity_within_limit(raw: i64, limits: &Limits) -> Result<u32, Problem> {
    match u32::try_from(raw) {
        Ok(q) if q <= limits.max_quantity_per_line => Ok(q),
        _ => Err(Problem::new(
            ProblemKind::QuantityLimitExceeded,
            format!(
                "quantity {raw} is above the per-line limit of {}",
                limits.max_quantity_per_line
            ),
        )
        .with("maxQuantity", limits.max_quantity_per_line)),
    }
}

impl AddItem {
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, Problem> {
        let raw: AddItemBody = parse_json(body)?;
        let product_id =
            ProductId::parse_with_max(&raw.product_id, limits.max_id_len).map_err(|e| {
                Problem::new(ProblemKind::InvalidId, format!("productId {e}"))
                    .with("field", "productId")
            })?;
        Ok(AddItem {
            product_id,
            quantity: positive_quantity(raw.quantity, limits)?,
        })
    }
}

impl SetQuantity {
    /// Zero is allowed here: it removes the line.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, Problem> {
        let raw: SetQuantityBody = parse_json(body)?;
        if raw.quantity < 0 {
            return Err(Problem::new(
                ProblemKind::InvalidQuantity,
                format!("quantity must be 0 or more, got {}", raw.quantity),
            ));
        }
        Ok(SetQuantity {
            quantity: quantity_within_limit(raw.quantity, limits)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: Result<AddItem, Problem>) -> ProblemKind {
        r.unwrap_err().kind
    }

    #[test]
    fn parses_a_valid_add() {
        let a = AddItem::parse(br#"{"productId":"mug","quantity":2}"#, &Limits::default()).unwrap();
        assert_eq!(a.product_id.as_str(), "mug");
        assert_eq!(a.quantity, 2);
    }

    #[test]
    fn refuses_each_bad_input_class() {
        let l = Limits::default();
        assert_eq!(kind(AddItem::parse(b"{", &l)), ProblemKind::InvalidBody);
        assert_eq!(
            kind(AddItem::parse(
                br#"{"productId":"m","quantity":1,"x":1}"#,
                &l
            )),
            ProblemKind::InvalidBody
        );
        assert_eq!(
            kind(AddItem::parse(br#"{"productId":"m","quantity":1.5}"#, &l)),
            ProblemKind::InvalidBody
        );
        assert_eq!(
            kind(AddItem::parse(br#"{"productId":"m","quantity":0}"#, &l)),
            ProblemKind::InvalidQuantity
        );
        assert_eq!(
            kind(AddItem::parse(br#"{"productId":"m","quantity":-3}"#, &l)),
            ProblemKind::InvalidQuantity
        );
        assert_eq!(
            kind(AddItem::parse(
                br#"{"productId":"m","quantity":100000}"#,
                &l
            )),
            ProblemKind::QuantityLimitExceeded
        );
        assert_eq!(
            kind(AddItem::parse(br#"{"productId":"../x","quantity":1}"#, &l)),
            ProblemKind::InvalidId
        );
        assert_eq!(
            kind(AddItem::parse(br#"{"quantity":1}"#, &l)),
            ProblemKind::InvalidBody
        );
    }

    #[test]
    fn set_quantity_allows_zero_but_not_negative() {
        let l = Limits::default();
        assert_eq!(
            SetQuantity::parse(br#"{"quantity":0}"#, &l)
                .unwrap()
                .quantity,
            0
        );
        assert_eq!(
            SetQuantity::parse(br#"{"quantity":-1}"#, &l)
                .unwrap_err()
                .kind,
            ProblemKind::InvalidQuantity
        );
    }

    #[test]
    fn content_type_and_size() {
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("Application/JSON")).is_ok());
        assert_eq!(
            check_json_content_type(Some("text/plain"))
                .unwrap_err()
                .kind,
            ProblemKind::UnsupportedMediaType
        );
        assert!(check_json_content_type(None).is_err());
        let l = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(
            check_body_size(b"12345", &l).unwrap_err().kind,
            ProblemKind::BodyTooLarge
        );
    }
}
