//! The one place where what went wrong below the edge becomes an HTTP problem: each error
//! of `ops` and `ports` gets its kind (status, `type`, title) and extension members here;
//! its `Display` is the problem's `detail`. `http_io::HttpResponse::problem` renders it.
//! The typed refusals of `cart_domain`'s rules are mapped here too: `RuleError` (carried as
//! `OpError::Rule`), `RequestError` (request bodies), `EntityTagError` (`If-Match` /
//! `If-None-Match`) and `KeyError` (`Idempotency-Key`). The `Problem` type itself is
//! `problem_details`.

use crate::edge::problem_details::{Problem, ProblemKind};
use crate::ops::error::{Contended, OpError, ShortLine};
use crate::ports::cart_repo::RepoError;
use crate::ports::inventory_port::ReserveError;
use crate::ports::jwks::KeysUnavailable;
use crate::ports::line_lock::LeaseError;
use cart_domain::idempotency::KeyError;
use cart_domain::precondition::{etag, EntityTagError};
use cart_domain::requests::RequestError;
use cart_domain::RuleError;

impl From<OpError> for Problem {
    fn from(e: OpError) -> Self {
        let detail = e.to_string();
        match e {
            OpError::Rule(e) => e.into(),
            OpError::Store(e) => e.into(),
            OpError::OutboxIndex(_) => {
                Problem::new(ProblemKind::StoreUnavailable, detail).with("retryAfterSeconds", 1)
            }
            OpError::Lease(e) => e.into(),
            OpError::Reserve(e) => e.into(),
            OpError::InventoryUnavailable(_) => {
                Problem::new(ProblemKind::InventoryUnavailable, detail).with("retryAfterSeconds", 2)
            }
            OpError::InventoryMalformed(_) => {
                Problem::new(ProblemKind::InventoryUnavailable, detail)
            }
            OpError::PreconditionFailed { current_revision } => {
                precondition_failed(current_revision)
            }
            OpError::IdempotencyKeyReused => {
                Problem::new(ProblemKind::IdempotencyKeyReused, detail)
            }
            OpError::LineNotFound(product) => {
                Problem::new(ProblemKind::LineNotFound, detail).with("productId", product)
            }
            // A merge that keeps losing has never said when to retry; kept as it was.
            OpError::KeptChanging(Contended::Merge) => {
                Problem::new(ProblemKind::CartConflict, detail)
            }
            OpError::KeptChanging(_) | OpError::CheckoutOvertaken => {
                Problem::new(ProblemKind::CartConflict, detail).with("retryAfterSeconds", 1)
            }
            OpError::CartEmpty => Problem::new(ProblemKind::CartEmpty, detail),
            OpError::StockShort(lines) => Problem::new(ProblemKind::InsufficientStock, detail)
                .with("lines", lines.iter().map(short_line).collect::<Vec<_>>()),
            OpError::CommitRefused(_) => Problem::new(ProblemKind::InsufficientStock, detail),
            OpError::CheckoutPending { checkout_id, cause } => {
                Problem::from(*cause).with("checkoutId", checkout_id)
            }
            OpError::CheckoutUnrecorded { checkout_id } => {
                Problem::new(ProblemKind::CartConflict, detail)
                    .with("checkoutId", checkout_id)
                    .with("retryAfterSeconds", 1)
            }
            OpError::StoredProductId(_) => Problem::new(ProblemKind::Internal, detail),
            OpError::OutboxListing(_) => Problem::new(ProblemKind::StoreUnavailable, detail),
            OpError::ReservationListing(_) => {
                Problem::new(ProblemKind::InventoryUnavailable, detail)
            }
        }
    }
}

/// The 412 for a stale `If-Match`, naming the current version and its `ETag`.
fn precondition_failed(current_version: u64) -> Problem {
    Problem::new(
        ProblemKind::PreconditionFailed,
        format!("the cart is at version {current_version}; reload it and retry"),
    )
    .with("currentVersion", current_version)
    .with("currentETag", etag(current_version))
}

fn short_line(line: &ShortLine) -> serde_json::Value {
    serde_json::json!({
        "productId": line.product_id,
        "requested": line.requested,
        "available": line.available,
        "problem": line.problem,
    })
}

impl From<RepoError> for Problem {
    fn from(e: RepoError) -> Self {
        let detail = e.to_string();
        match e {
            RepoError::Unavailable(_) => {
                Problem::new(ProblemKind::StoreUnavailable, detail).with("retryAfterSeconds", 1)
            }
            RepoError::Unreadable { .. } | RepoError::Unencodable(_) => {
                Problem::new(ProblemKind::Internal, detail)
            }
        }
    }
}

impl From<LeaseError> for Problem {
    fn from(e: LeaseError) -> Self {
        let kind = match e {
            LeaseError::Unavailable(_) => ProblemKind::LockUnavailable,
            LeaseError::Busy { .. } => ProblemKind::LineBusy,
        };
        Problem::new(kind, e.to_string()).with("retryAfterSeconds", 1)
    }
}

impl From<ReserveError> for Problem {
    fn from(e: ReserveError) -> Self {
        let detail = e.to_string();
        match e {
            ReserveError::InsufficientStock {
                product,
                requested,
                available,
            } => Problem::new(ProblemKind::InsufficientStock, detail)
                .with("productId", product)
                .with("requested", requested)
                .with("available", available),
            ReserveError::UnknownProduct(product) => {
                Problem::new(ProblemKind::UnknownProduct, detail).with("productId", product)
            }
            ReserveError::StaleFence { product, held } => {
                Problem::new(ProblemKind::CartConflict, detail)
                    .with("productId", product)
                    .with("staleFence", held)
                    .with("retryAfterSeconds", 1)
            }
        }
    }
}

impl From<KeysUnavailable> for Problem {
    fn from(e: KeysUnavailable) -> Self {
        Problem::new(ProblemKind::IdentityKeysUnavailable, e.to_string())
            .with("code", "identity-keys-unavailable")
            .with("retryAfterSeconds", e.retry_after_seconds())
    }
}

impl From<RuleError> for Problem {
    fn from(e: RuleError) -> Self {
        let detail = e.to_string();
        match e {
            RuleError::CheckoutPending { checkout_id } => {
                Problem::new(ProblemKind::CartConflict, detail).with("checkoutId", checkout_id)
            }
            RuleError::QuantityOutOfRange => {
                Problem::new(ProblemKind::QuantityLimitExceeded, detail)
            }
            RuleError::LineNotFound { product_id } => {
                Problem::new(ProblemKind::LineNotFound, detail).with("productId", product_id)
            }
            RuleError::LineQuantityAboveLimit { max, .. }
            | RuleError::AboveProductMaximum { max, .. } => {
                Problem::new(ProblemKind::QuantityLimitExceeded, detail).with("maxQuantity", max)
            }
            RuleError::TooManyLines { max } => {
                Problem::new(ProblemKind::TooManyLines, detail).with("maxLines", max)
            }
            RuleError::CurrencyMismatch { .. } => {
                Problem::new(ProblemKind::CurrencyMismatch, detail)
            }
            RuleError::BelowProductMinimum { min, .. } => {
                Problem::new(ProblemKind::InvalidQuantity, detail).with("minQuantity", min)
            }
            RuleError::OffProductStep { step, .. } => {
                Problem::new(ProblemKind::InvalidQuantity, detail).with("quantityStep", step)
            }
        }
    }
}

impl From<RequestError> for Problem {
    fn from(e: RequestError) -> Self {
        let detail = e.to_string();
        match e {
            RequestError::UnsupportedMediaType { .. } | RequestError::MissingContentType => {
                Problem::new(ProblemKind::UnsupportedMediaType, detail)
            }
            RequestError::BodyTooLarge { max, .. } => {
                Problem::new(ProblemKind::BodyTooLarge, detail).with("maxBytes", max)
            }
            RequestError::InvalidJson(_) => Problem::new(ProblemKind::InvalidBody, detail),
            RequestError::InvalidProductId(_) => {
                Problem::new(ProblemKind::InvalidId, detail).with("field", "productId")
            }
            RequestError::QuantityNotPositive { .. } | RequestError::QuantityNegative { .. } => {
                Problem::new(ProblemKind::InvalidQuantity, detail)
            }
            RequestError::QuantityAboveLimit { max, .. } => {
                Problem::new(ProblemKind::QuantityLimitExceeded, detail).with("maxQuantity", max)
            }
        }
    }
}

impl From<EntityTagError> for Problem {
    fn from(e: EntityTagError) -> Self {
        Problem::new(ProblemKind::InvalidHeader, e.to_string())
    }
}

impl From<KeyError> for Problem {
    fn from(e: KeyError) -> Self {
        Problem::new(ProblemKind::InvalidHeader, e.to_string()).with("header", "Idempotency-Key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cart_domain::ids::IdError;
    use cart_domain::Currency;
    use serde_json::{json, Value};

    fn rendered(problem: impl Into<Problem>) -> Value {
        problem.into().to_json()
    }

    fn body(slug: &str, title: &str, status: u16, detail: &str, extra: Value) -> Value {
        let mut body = json!({
            "type": format!("https://errors.edge-cart.dev/{slug}"),
            "title": title,
            "status": status,
            "detail": detail,
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    }

    #[test]
    fn cart_rules_render_their_problems() {
        let eur = || Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let cases = [
            (
                RuleError::CheckoutPending {
                    checkout_id: "co-1".into(),
                },
                body(
                    "cart-conflict",
                    "The cart kept changing; try again",
                    409,
                    "checkout co-1 is in progress and its lines may already be sold; \
                     POST the checkout again to finish it, then change the cart",
                    json!({"checkoutId": "co-1"}),
                ),
            ),
            (
                RuleError::QuantityOutOfRange,
                body(
                    "quantity-limit-exceeded",
                    "The quantity is above the limit",
                    422,
                    "quantity out of range",
                    json!({}),
                ),
            ),
            (
                RuleError::LineNotFound {
                    product_id: "mug".into(),
                },
                body(
                    "line-not-found",
                    "The cart has no line for this product",
                    404,
                    "the cart has no line for product mug",
                    json!({"productId": "mug"}),
                ),
            ),
            (
                RuleError::LineQuantityAboveLimit { max: 5, target: 6 },
                body(
                    "quantity-limit-exceeded",
                    "The quantity is above the limit",
                    422,
                    "a line may hold at most 5 units; this change would make it 6",
                    json!({"maxQuantity": 5}),
                ),
            ),
            (
                RuleError::TooManyLines { max: 1 },
                body(
                    "too-many-lines",
                    "The cart has too many lines",
                    422,
                    "a cart may hold at most 1 lines",
                    json!({"maxLines": 1}),
                ),
            ),
            (
                RuleError::CurrencyMismatch {
                    cart: eur(),
                    product_id: "b".into(),
                    product: usd,
                },
                body(
                    "currency-mismatch",
                    "The product is priced in another currency than the cart",
                    422,
                    "the cart is priced in EUR, b in USD",
                    json!({}),
                ),
            ),
            (
                RuleError::BelowProductMinimum {
                    product_id: "a".into(),
                    min: 2,
                },
                body(
                    "invalid-quantity",
                    "The quantity is not valid",
                    422,
                    "a must be bought in quantities of at least 2",
                    json!({"minQuantity": 2}),
                ),
            ),
            (
                RuleError::AboveProductMaximum {
                    product_id: "a".into(),
                    max: 10,
                },
                body(
                    "quantity-limit-exceeded",
                    "The quantity is above the limit",
                    422,
                    "a is limited to 10 per cart",
                    json!({"maxQuantity": 10}),
                ),
            ),
            (
                RuleError::OffProductStep {
                    product_id: "a".into(),
                    step: 2,
                    min: 2,
                },
                body(
                    "invalid-quantity",
                    "The quantity is not valid",
                    422,
                    "a is sold in steps of 2 from 2",
                    json!({"quantityStep": 2}),
                ),
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(rendered(error.clone()), expected, "{error:?}");
        }
    }

    #[test]
    fn request_refusals_render_their_problems() {
        let bad_json = serde_json::from_slice::<Value>(b"{").unwrap_err();
        let json_detail = format!("invalid JSON body: {bad_json}");
        let cases = [
            (
                RequestError::UnsupportedMediaType {
                    essence: "text/plain".into(),
                },
                body(
                    "unsupported-media-type",
                    "The request body must be application/json",
                    415,
                    r#"Content-Type "text/plain" is not supported; send application/json"#,
                    json!({}),
                ),
            ),
            (
                RequestError::MissingContentType,
                body(
                    "unsupported-media-type",
                    "The request body must be application/json",
                    415,
                    "Content-Type is missing; send application/json",
                    json!({}),
                ),
            ),
            (
                RequestError::BodyTooLarge { bytes: 5, max: 4 },
                body(
                    "body-too-large",
                    "The request body is too large",
                    413,
                    "the body has 5 bytes; at most 4 are accepted",
                    json!({"maxBytes": 4}),
                ),
            ),
            (
                RequestError::InvalidJson(bad_json),
                body(
                    "invalid-body",
                    "The request body is not valid",
                    400,
                    &json_detail,
                    json!({}),
                ),
            ),
            (
                RequestError::InvalidProductId(IdError::Empty),
                body(
                    "invalid-id",
                    "An id in the request is not valid",
                    400,
                    "productId must not be empty",
                    json!({"field": "productId"}),
                ),
            ),
            (
                RequestError::QuantityNotPositive { quantity: 0 },
                body(
                    "invalid-quantity",
                    "The quantity is not valid",
                    422,
                    "quantity must be at least 1, got 0",
                    json!({}),
                ),
            ),
            (
                RequestError::QuantityNegative { quantity: -1 },
                body(
                    "invalid-quantity",
                    "The quantity is not valid",
                    422,
                    "quantity must be 0 or more, got -1",
                    json!({}),
                ),
            ),
            (
                RequestError::QuantityAboveLimit {
                    quantity: 100000,
                    max: 99,
                },
                body(
                    "quantity-limit-exceeded",
                    "The quantity is above the limit",
                    422,
                    "quantity 100000 is above the per-line limit of 99",
                    json!({"maxQuantity": 99}),
                ),
            ),
        ];
        for (error, expected) in cases {
            let shown = format!("{error:?}");
            assert_eq!(rendered(error), expected, "{shown}");
        }
    }

    #[test]
    fn header_refusals_render_invalid_header_problems() {
        let title = "A request header is not valid";
        assert_eq!(
            rendered(EntityTagError::EmptyList),
            body(
                "invalid-header",
                title,
                400,
                "empty entity-tag list",
                json!({})
            )
        );
        assert_eq!(
            rendered(KeyError::Empty),
            body(
                "invalid-header",
                title,
                400,
                "Idempotency-Key must not be empty",
                json!({"header": "Idempotency-Key"})
            )
        );
    }
}
