//! Responses in both dialects, and JSON request bodies for the admin endpoint.

use crate::error::ApiError;
use crate::kafka::{self, KafkaError};
use crate::routes::{Dialect, Endpoint};
use serde::de::DeserializeOwned;
use serde::Serialize;
use spin_reference_kit::access::Denied;
use spin_sdk::http::{Request, Response};

/// Largest admin body accepted; the fault switch is a few dozen bytes.
pub const MAX_ADMIN_BODY_BYTES: usize = 4096;

pub fn content_type(req: &Request) -> Option<&str> {
    req.header("content-type").and_then(|v| v.as_str())
}

/// Parses an `application/json` body strictly (unknown fields refused by the target type).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if !kafka::media_type_is(content_type(req), "application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    if req.body().len() > MAX_ADMIN_BODY_BYTES {
        return Err(ApiError::BodyTooLarge {
            limit: MAX_ADMIN_BODY_BYTES,
        });
    }
    serde_json::from_slice(req.body()).map_err(|e| ApiError::InvalidBody(e.to_string()))
}

pub fn json<T: Serialize>(status: u16, media_type: &str, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(status, media_type, body),
        Err(e) => kafka_error(
            &KafkaError::new(500, 500, format!("serialisation failed: {e}")),
            "application/json",
        ),
    }
}

pub fn with_body(status: u16, media_type: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", media_type)
        .body(body)
        .build()
}

pub fn problem(err: &ApiError) -> Response {
    let p = err.problem();
    let mut response = with_body(
        p.status,
        "application/problem+json",
        p.to_json().to_string().into_bytes(),
    );
    if let ApiError::MethodNotAllowed { allow } = err {
        response.set_header("allow", *allow);
    }
    response
}

/// A Kafka REST error in the media type of the dialect (v2 or v3) it answers.
pub fn kafka_error(err: &KafkaError, media_type: &str) -> Response {
    with_body(err.status, media_type, err.body().to_string().into_bytes())
}

/// A request refused for want of the reference token, in the dialect of its route.
pub fn denied(endpoint: &Endpoint, denied: Denied) -> Response {
    let mut response = match endpoint.dialect() {
        Dialect::Kafka => {
            let media_type = match endpoint {
                Endpoint::ProduceV2 { .. } => kafka::V2_RESPONSE_TYPE,
                _ => "application/json",
            };
            let err = KafkaError::new(denied.status(), denied.kafka_error_code(), denied.detail());
            kafka_error(&err, media_type)
        }
        Dialect::Problem => {
            let p = denied.problem();
            with_body(
                p.status,
                "application/problem+json",
                p.to_json().to_string().into_bytes(),
            )
        }
    };
    if let Some(challenge) = denied.challenge() {
        response.set_header("www-authenticate", challenge);
    }
    response
}
