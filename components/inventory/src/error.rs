//! Every way a request can fail, and the problem document each one becomes.

use crate::api::FieldError;
use crate::ids::IdError;
use crate::kv::KvError;
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    InvalidId {
        what: &'static str,
        reason: IdError,
    },
    UnsupportedMediaType,
    BodyTooLarge {
        limit: usize,
    },
    /// Not JSON, wrong shape, unknown field.
    InvalidBody(String),
    /// Parsed, but a value breaks a rule.
    InvalidField(FieldError),
    ProductNotFound {
        product_id: String,
    },
    ReservationNotFound {
        reservation_id: String,
    },
    InsufficientStock {
        available: u32,
    },
    ReservationCommitted {
        reservation_id: String,
    },
    ReservationNotHeld {
        reservation_ids: Vec<String>,
    },
    CommitShort {
        reservation_ids: Vec<String>,
    },
    Kv(KvError),
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        ApiError::Kv(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::InvalidField(e)
    }
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::NotFound => Problem::new(
                404,
                "not-found",
                "Not found",
                "no such resource in the inventory API".into(),
            ),
            ApiError::MethodNotAllowed { allow } => Problem::new(
                405,
                "method-not-allowed",
                "Method not allowed",
                format!("allowed methods: {allow}"),
            ),
            ApiError::InvalidId { what, reason } => {
                Problem::new(400, "invalid-id", "Invalid id", format!("{what} {reason}"))
                    .with("field", *what)
            }
            ApiError::UnsupportedMediaType => Problem::new(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be sent as Content-Type: application/json".into(),
            ),
            ApiError::BodyTooLarge { limit } => Problem::new(
                413,
                "body-too-large",
                "Body too large",
                format!("the body must be at most {limit} bytes"),
            ),
            ApiError::InvalidBody(detail) => {
                Problem::new(400, "invalid-body", "Invalid body", detail.clone())
            }
            ApiError::InvalidField(e) => Problem::new(
                400,
                "invalid-body",
                "Invalid body",
                format!("{} {}", e.field, e.reason),
            )
            .with("field", e.field),
            ApiError::ProductNotFound { product_id } => Problem::new(
                404,
                "product-not-found",
                "Product not found",
                format!("product {product_id:?} does not exist in this store"),
            )
            .with("productId", product_id.as_str()),
            ApiError::ReservationNotFound { reservation_id } => Problem::new(
                404,
                "reservation-not-found",
                "Reservation not found",
                format!("reservation {reservation_id:?} is not held or committed"),
            ),
            ApiError::InsufficientStock { available } => Problem::new(
                409,
                "insufficient-stock",
                "Insufficient stock",
                format!("at most {available} units can be held by this reservation"),
            )
            .with("available", *available),
            ApiError::ReservationCommitted { reservation_id } => Problem::new(
                409,
                "reservation-committed",
                "Reservation already committed",
                format!("reservation {reservation_id:?} was committed and cannot hold stock again"),
            ),
            ApiError::ReservationNotHeld { reservation_ids } => Problem::new(
                409,
                "reservation-not-held",
                "Reservation not held",
                "some reservations are expired, released or unknown; nothing was committed".into(),
            )
            .with("reservationIds", reservation_ids.clone()),
            ApiError::CommitShort { reservation_ids } => Problem::new(
                409,
                "insufficient-stock",
                "Insufficient stock",
                "stock was lowered below these holds; nothing was committed".into(),
            )
            .with("reservationIds", reservation_ids.clone()),
            ApiError::Kv(KvError::Contention { .. }) => Problem::new(
                503,
                "contention",
                "Too much contention",
                "the record kept changing under concurrent updates; retry shortly".into(),
            ),
            ApiError::Kv(KvError::Store(msg)) => Problem::new(
                503,
                "storage-unavailable",
                "Storage unavailable",
                format!("the key-value store failed: {msg}"),
            ),
            ApiError::Kv(KvError::Corrupt { key, reason }) => Problem::new(
                500,
                "corrupt-record",
                "Corrupt record",
                format!("stored record {key:?} could not be read: {reason}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_statuses_are_stable() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::NotFound, 404, "not-found"),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                405,
                "method-not-allowed",
            ),
            (
                ApiError::InvalidId {
                    what: "storeId",
                    reason: IdError::Empty,
                },
                400,
                "invalid-id",
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported-media-type",
            ),
            (ApiError::InvalidBody("x".into()), 400, "invalid-body"),
            (
                ApiError::ProductNotFound {
                    product_id: "p".into(),
                },
                404,
                "product-not-found",
            ),
            (
                ApiError::ReservationNotFound {
                    reservation_id: "r".into(),
                },
                404,
                "reservation-not-found",
            ),
            (
                ApiError::InsufficientStock { available: 2 },
                409,
                "insufficient-stock",
            ),
            (
                ApiError::ReservationNotHeld {
                    reservation_ids: vec!["r".into()],
                },
                409,
                "reservation-not-held",
            ),
            (
                ApiError::Kv(KvError::Contention { key: "k".into() }),
                503,
                "contention",
            ),
        ];
        for (err, status, slug) in cases {
            let p = err.problem();
            assert_eq!((p.status, p.slug), (status, slug), "{err:?}");
        }
    }

    #[test]
    fn extension_members_carry_the_details() {
        let p = ApiError::InsufficientStock { available: 7 }
            .problem()
            .to_json();
        assert_eq!(p["available"], 7);
        let p = ApiError::ReservationNotHeld {
            reservation_ids: vec!["a".into(), "b".into()],
        }
        .problem()
        .to_json();
        assert_eq!(p["reservationIds"], serde_json::json!(["a", "b"]));
    }
}
