//! The problems every reference component answers alike: routing, body and storage failures.
//!
//! Each component keeps its own error enum and maps its shared variants through these, so the
//! slugs, titles and details stay identical across services.

use crate::ids::IdError;
use crate::kv::KvError;
use crate::problem::Problem;

/// 404 `not-found`; `api` names the service ("inventory", "event sink").
pub fn not_found(api: &str) -> Problem {
    Problem::new(
        404,
        "not-found",
        "Not found",
        format!("no such resource in the {api} API"),
    )
}

/// 405 `method-not-allowed`; `allow` is the value of the `Allow` header.
pub fn method_not_allowed(allow: &str) -> Problem {
    Problem::new(
        405,
        "method-not-allowed",
        "Method not allowed",
        format!("allowed methods: {allow}"),
    )
}

/// 400 `invalid-id`, naming the offending field.
pub fn invalid_id(what: &str, reason: &IdError) -> Problem {
    Problem::new(400, "invalid-id", "Invalid id", format!("{what} {reason}")).with("field", what)
}

/// 415 `unsupported-media-type`.
pub fn unsupported_media_type() -> Problem {
    Problem::new(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "the body must be sent as Content-Type: application/json".into(),
    )
}

/// 413 `body-too-large`.
pub fn body_too_large(limit: usize) -> Problem {
    Problem::new(
        413,
        "body-too-large",
        "Body too large",
        format!("the body must be at most {limit} bytes"),
    )
}

/// 400 `invalid-body`: not JSON, wrong shape, unknown field.
pub fn invalid_body(detail: String) -> Problem {
    Problem::new(400, "invalid-body", "Invalid body", detail)
}

/// The problem a key-value failure becomes: 503 `contention` / `storage-unavailable`, 500
/// `corrupt-record`.
pub fn kv_failure(e: &KvError) -> Problem {
    match e {
        KvError::Contention { .. } => Problem::new(
            503,
            "contention",
            "Too much contention",
            "the record kept changing under concurrent updates; retry shortly".into(),
        ),
        KvError::Store(msg) => Problem::new(
            503,
            "storage-unavailable",
            "Storage unavailable",
            format!("the key-value store failed: {msg}"),
        ),
        KvError::Corrupt { key, reason } => Problem::new(
            500,
            "corrupt-record",
            "Corrupt record",
            format!("stored record {key:?} could not be read: {reason}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slugs_and_statuses_are_stable() {
        let cases = [
            (not_found("x"), 404, "not-found"),
            (method_not_allowed("GET"), 405, "method-not-allowed"),
            (invalid_id("topic", &IdError::Empty), 400, "invalid-id"),
            (unsupported_media_type(), 415, "unsupported-media-type"),
            (body_too_large(1), 413, "body-too-large"),
            (invalid_body("x".into()), 400, "invalid-body"),
            (
                kv_failure(&KvError::Contention { key: "k".into() }),
                503,
                "contention",
            ),
            (
                kv_failure(&KvError::Store("down".into())),
                503,
                "storage-unavailable",
            ),
            (
                kv_failure(&KvError::Corrupt {
                    key: "k".into(),
                    reason: "r".into(),
                }),
                500,
                "corrupt-record",
            ),
        ];
        for (p, status, slug) in cases {
            assert_eq!((p.status, p.slug), (status, slug), "{p:?}");
        }
    }

    #[test]
    fn invalid_id_names_the_field() {
        assert_eq!(
            invalid_id("storeId", &IdError::Empty).to_json(),
            json!({
                "type": "https://errors.edge-cart.dev/invalid-id",
                "title": "Invalid id",
                "status": 400,
                "detail": "storeId must not be empty",
                "field": "storeId"
            })
        );
        assert_eq!(
            not_found("event sink").detail,
            "no such resource in the event sink API"
        );
    }
}
