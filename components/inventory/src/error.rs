//! Every way a request can fail, and the problem document each one becomes.

use crate::api::FieldError;
use crate::ids::IdError;
use crate::kv::KvError;
use crate::problem::Problem;
use spin_reference_kit::access::Denied;
use spin_reference_kit::common;

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
    StaleFence {
        reservation_id: String,
        held: u64,
    },
    ReservationNotHeld {
        reservation_ids: Vec<String>,
    },
    CommitShort {
        reservation_ids: Vec<String>,
    },
    Kv(KvError),
    /// No or the wrong reference token (401/403).
    Denied(Denied),
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
            ApiError::NotFound => common::not_found("inventory"),
            ApiError::MethodNotAllowed { allow } => common::method_not_allowed(allow),
            ApiError::InvalidId { what, reason } => common::invalid_id(what, reason),
            ApiError::UnsupportedMediaType => common::unsupported_media_type(),
            ApiError::BodyTooLarge { limit } => common::body_too_large(*limit),
            ApiError::InvalidBody(detail) => common::invalid_body(detail.clone()),
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
            ApiError::StaleFence {
                reservation_id,
                held,
            } => Problem::new(
                409,
                "stale-fence",
                "Reservation set by a newer writer",
                format!(
                    "reservation {reservation_id:?} was set with fence {held}, above this request's"
                ),
            )
            .with("fence", *held),
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
            ApiError::Kv(e) => common::kv_failure(e),
            ApiError::Denied(d) => d.problem(),
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
        // The variants shared by every component map through `spin_reference_kit::common` (tested
        // there); only the service name in `not-found` is this component's own.
        assert_eq!(
            ApiError::NotFound.problem().detail,
            "no such resource in the inventory API"
        );
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
