//! Errors of the non-produce endpoints (RFC 9457 problems), and how store failures look in
//! each dialect.

use crate::ids::IdError;
use crate::kafka::KafkaError;
use crate::kv::KvError;
use crate::problem::Problem;
use crate::routes::{Dialect, RouteError};
use spin_reference_kit::common;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    NotFound,
    MethodNotAllowed { allow: &'static str },
    InvalidId { what: &'static str, reason: IdError },
    UnsupportedMediaType,
    BodyTooLarge { limit: usize },
    InvalidBody(String),
    InvalidQuery(String),
    Kv(KvError),
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        ApiError::Kv(e)
    }
}

impl From<KvError> for KafkaError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::Corrupt { key, reason } => KafkaError::new(
                500,
                500,
                format!("stored record {key:?} unreadable: {reason}"),
            ),
            other => KafkaError::unavailable(format!("storage unavailable: {other:?}")),
        }
    }
}

/// A routing failure in the dialect of the path it happened on.
pub enum Failure {
    Api(ApiError),
    Kafka(KafkaError),
}

impl From<RouteError> for Failure {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => Failure::Api(ApiError::NotFound),
            RouteError::MethodNotAllowed { allow } => {
                Failure::Api(ApiError::MethodNotAllowed { allow })
            }
            RouteError::InvalidId {
                what,
                reason,
                dialect: Dialect::Problem,
            } => Failure::Api(ApiError::InvalidId { what, reason }),
            RouteError::InvalidId {
                what,
                reason,
                dialect: Dialect::Kafka,
            } => Failure::Kafka(KafkaError::new(
                400,
                400,
                format!("invalid {what}: {reason}"),
            )),
        }
    }
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::NotFound => common::not_found("event sink"),
            ApiError::MethodNotAllowed { allow } => common::method_not_allowed(allow),
            ApiError::InvalidId { what, reason } => common::invalid_id(what, reason),
            ApiError::UnsupportedMediaType => common::unsupported_media_type(),
            ApiError::BodyTooLarge { limit } => common::body_too_large(*limit),
            ApiError::InvalidBody(detail) => common::invalid_body(detail.clone()),
            ApiError::InvalidQuery(detail) => {
                Problem::new(400, "invalid-query", "Invalid query", detail.clone())
            }
            ApiError::Kv(e) => common::kv_failure(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_statuses_are_stable() {
        let cases = [
            (ApiError::NotFound, 404, "not-found"),
            (ApiError::InvalidQuery("x".into()), 400, "invalid-query"),
            (
                ApiError::Kv(KvError::Store("down".into())),
                503,
                "storage-unavailable",
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
            "no such resource in the event sink API"
        );
    }

    #[test]
    fn produce_paths_report_kafka_errors() {
        let f = Failure::from(RouteError::InvalidId {
            what: "topic",
            reason: IdError::Empty,
            dialect: Dialect::Kafka,
        });
        assert!(matches!(f, Failure::Kafka(KafkaError { status: 400, .. })));
        let k = KafkaError::from(KvError::Store("down".into()));
        assert_eq!((k.status, k.error_code), (503, 503));
    }
}
