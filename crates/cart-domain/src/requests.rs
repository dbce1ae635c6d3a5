//! Request bodies of the cart API, parsed strictly: unknown fields and malformed JSON are 400,
//! quantities that are not positive are 422, all before anything is read or stored.

use crate::ids::{IdError, ProductId};
use crate::limits::Limits;
use serde::Deserialize;
use std::fmt;

/// Why a request body (or its media type) was refused. The cart component's edge gives each
/// its problem kind and extension members; `Display` is the problem's `detail`.
#[derive(Debug)]
pub enum RequestError {
    /// `Content-Type` names another media type than JSON (lowercased, parameters dropped).
    UnsupportedMediaType {
        essence: String,
    },
    MissingContentType,
    BodyTooLarge {
        bytes: usize,
        max: usize,
    },
    /// Not JSON, or not the body's shape (unknown or missing field, wrong type). Kept whole
    /// because its message, with line and column, is the detail the client gets.
    InvalidJson(serde_json::Error),
    InvalidProductId(IdError),
    /// An add's quantity is 0 or negative.
    QuantityNotPositive {
        quantity: i64,
    },
    /// A set's quantity is negative.
    QuantityNegative {
        quantity: i64,
    },
    /// Above the per-line limit `max` (or beyond any `u32`).
    QuantityAboveLimit {
        quantity: i64,
        max: u32,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnsupportedMediaType { essence } => write!(
                f,
                "Content-Type {essence:?} is not supported; send application/json"
            ),
            RequestError::MissingContentType => {
                f.write_str("Content-Type is missing; send application/json")
            }
            RequestError::BodyTooLarge { bytes, max } => {
                write!(f, "the body has {bytes} bytes; at most {max} are accepted")
            }
            RequestError::InvalidJson(e) => write!(f, "invalid JSON body: {e}"),
            RequestError::InvalidProductId(e) => write!(f, "productId {e}"),
            RequestError::QuantityNotPositive { quantity } => {
                write!(f, "quantity must be at least 1, got {quantity}")
            }
            RequestError::QuantityNegative { quantity } => {
                write!(f, "quantity must be 0 or more, got {quantity}")
            }
            RequestError::QuantityAboveLimit { quantity, max } => write!(
                f,
                "quantity {quantity} is above the per-line limit of {max}"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

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
pub fn check_json_content_type(content_type: Option<&str>) -> Result<(), RequestError> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase());
    match essence {
        Some(essence) if essence == "application/json" => Ok(()),
        Some(essence) => Err(RequestError::UnsupportedMediaType { essence }),
        None => Err(RequestError::MissingContentType),
    }
}

/// Checks the size before parsing, so an oversized body is refused without work.
pub fn check_body_size(body: &[u8], limits: &Limits) -> Result<(), RequestError> {
    if body.len() > limits.max_body_bytes {
        return Err(RequestError::BodyTooLarge {
            bytes: body.len(),
            max: limits.max_body_bytes,
        });
    }
    Ok(())
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RequestError> {
    serde_json::from_slice(body).map_err(RequestError::InvalidJson)
}

fn positive_quantity(raw: i64, limits: &Limits) -> Result<u32, RequestError> {
    if raw <= 0 {
        return Err(RequestError::QuantityNotPositive { quantity: raw });
    }
    quantity_within_limit(raw, limits)
}

fn quantity_within_limit(raw: i64, limits: &Limits) -> Result<u32, RequestError> {
    match u32::try_from(raw) {
        Ok(q) if q <= limits.max_quantity_per_line => Ok(q),
        _ => Err(RequestError::QuantityAboveLimit {
            quantity: raw,
            max: limits.max_quantity_per_line,
        }),
    }
}

impl AddItem {
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, RequestError> {
        let raw: AddItemBody = parse_json(body)?;
        let product_id = ProductId::parse_with_max(&raw.product_id, limits.max_id_len)
            .map_err(RequestError::InvalidProductId)?;
        Ok(AddItem {
            product_id,
            quantity: positive_quantity(raw.quantity, limits)?,
        })
    }
}

impl SetQuantity {
    /// Zero is allowed here: it removes the line.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, RequestError> {
        let raw: SetQuantityBody = parse_json(body)?;
        if raw.quantity < 0 {
            return Err(RequestError::QuantityNegative {
                quantity: raw.quantity,
            });
        }
        Ok(SetQuantity {
            quantity: quantity_within_limit(raw.quantity, limits)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &[u8]) -> RequestError {
        match AddItem::parse(body, &Limits::default()) {
            Ok(add) => panic!("{add:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_a_valid_add() {
        let a = AddItem::parse(br#"{"productId":"mug","quantity":2}"#, &Limits::default()).unwrap();
        assert_eq!(a.product_id.as_str(), "mug");
        assert_eq!(a.quantity, 2);
    }

    #[test]
    fn refuses_each_bad_input_class() {
        assert!(matches!(refusal(b"{"), RequestError::InvalidJson(_)));
        let unknown = refusal(br#"{"productId":"m","quantity":1,"x":1}"#);
        assert!(matches!(unknown, RequestError::InvalidJson(_)));
        assert!(
            unknown
                .to_string()
                .starts_with("invalid JSON body: unknown field `x`"),
            "{unknown}"
        );
        assert!(matches!(
            refusal(br#"{"productId":"m","quantity":1.5}"#),
            RequestError::InvalidJson(_)
        ));
        assert!(matches!(
            refusal(br#"{"productId":"m","quantity":0}"#),
            RequestError::QuantityNotPositive { quantity: 0 }
        ));
        assert!(matches!(
            refusal(br#"{"productId":"m","quantity":-3}"#),
            RequestError::QuantityNotPositive { quantity: -3 }
        ));
        let above = refusal(br#"{"productId":"m","quantity":100000}"#);
        assert!(
            matches!(
                above,
                RequestError::QuantityAboveLimit {
                    quantity: 100000,
                    ..
                }
            ),
            "{above:?}"
        );
        assert!(matches!(
            refusal(br#"{"productId":"../x","quantity":1}"#),
            RequestError::InvalidProductId(IdError::BadCharacter('/'))
        ));
        assert!(matches!(
            refusal(br#"{"quantity":1}"#),
            RequestError::InvalidJson(_)
        ));
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
        let negative = SetQuantity::parse(br#"{"quantity":-1}"#, &l).unwrap_err();
        assert!(matches!(
            negative,
            RequestError::QuantityNegative { quantity: -1 }
        ));
        assert_eq!(negative.to_string(), "quantity must be 0 or more, got -1");
    }

    #[test]
    fn content_type_and_size() {
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("Application/JSON")).is_ok());
        let other = check_json_content_type(Some("Text/Plain; charset=utf-8")).unwrap_err();
        assert!(matches!(
            &other,
            RequestError::UnsupportedMediaType { essence } if essence == "text/plain"
        ));
        assert_eq!(
            other.to_string(),
            r#"Content-Type "text/plain" is not supported; send application/json"#
        );
        assert!(matches!(
            check_json_content_type(None),
            Err(RequestError::MissingContentType)
        ));
        let l = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        assert!(matches!(
            check_body_size(b"12345", &l),
            Err(RequestError::BodyTooLarge { bytes: 5, max: 4 })
        ));
    }
}
