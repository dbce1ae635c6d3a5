//! Errors of the non-produce endpoints (RFC 9457 problems), and how store failures look in
//! each dialect.

use crate::ids::IdError;
use crate::kafka::KafkaError;
use crate::kv::KvError;
use crate::problem::Problem;
use crate::routes::{Dialect, RouteError};

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
            ApiError::NotFound => Problem::new(
                404,
                "not-found",
                "Not found",
                "no such resource in the event sink API".into(),
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
            ApiError::InvalidQuery(detail) => {
                Problem::new(400, "invalid-query", "Invalid query", detail.clone())
            }
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
        let cases = [
            (ApiError::NotFound, 404, "not-found"),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                405,
                "method-not-allowed",
            ),
            (
                ApiError::InvalidId {
                    what: "topic",
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
