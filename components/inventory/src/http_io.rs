//! Request bodies in, JSON and problem documents out.

use crate::error::ApiError;
use crate::problem::Problem;
use serde::de::DeserializeOwned;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

/// Largest request body accepted. The biggest legitimate body is a commit of 1000 ids.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Parses a JSON request body after checking its Content-Type and size.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let content_type = req.header("content-type").and_then(|v| v.as_str());
    if !is_json(content_type) {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(req.body())
}

/// `application/json`, any case, with or without parameters such as `charset`.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidBody(e.to_string()))
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body)
            .build(),
        Err(e) => problem(&Problem::new(
            500,
            "internal-error",
            "Internal error",
            format!("could not serialise the response: {e}"),
        )),
    }
}

pub fn no_content() -> Response {
    Response::builder().status(204).build()
}

pub fn error(err: &ApiError) -> Response {
    let mut response = problem(&err.problem());
    if let ApiError::MethodNotAllowed { allow } = err {
        response.set_header("allow", *allow);
    }
    if let Some(challenge) = match err {
        ApiError::Denied(d) => d.challenge(),
        _ => None,
    } {
        response.set_header("www-authenticate", challenge);
    }
    response
}

fn problem(p: &Problem) -> Response {
    Response::builder()
        .status(p.status)
        .header("content-type", "application/problem+json")
        .body(p.to_json().to_string())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/jsonx")));
        assert!(!is_json(None));
    }

    #[test]
    fn body_errors() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct B {
            #[allow(dead_code)]
            a: u32,
        }
        assert!(parse_json::<B>(br#"{"a":1}"#).is_ok());
        assert!(matches!(
            parse_json::<B>(br#"{"a":1,"b":2}"#),
            Err(ApiError::InvalidBody(_))
        ));
        assert!(matches!(
            parse_json::<B>(b"{"),
            Err(ApiError::InvalidBody(_))
        ));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(
            parse_json::<B>(&big),
            Err(ApiError::BodyTooLarge { .. })
        ));
    }
}
