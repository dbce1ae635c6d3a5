//! RFC 9457 problem details: the one error body shape the reference services answer with.

use serde_json::{Map, Value};

/// Base of every problem `type`; the slug after it is stable and part of the API.
pub const TYPE_BASE: &str = "https://errors.edge-cart.dev/";

/// One problem, ready to be serialised as `application/problem+json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extension members, merged into the top-level object.
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(status: u16, slug: &'static str, title: &'static str, detail: String) -> Self {
        Self {
            status,
            slug,
            title,
            detail,
            extra: Map::new(),
        }
    }

    /// Adds an extension member (e.g. `available`, `reservationIds`).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.to_owned(), value.into());
        self
    }

    /// The JSON body. Extension members never override the standard ones.
    pub fn to_json(&self) -> Value {
        let mut body = self.extra.clone();
        body.insert("type".into(), format!("{TYPE_BASE}{}", self.slug).into());
        body.insert("title".into(), self.title.into());
        body.insert("status".into(), self.status.into());
        body.insert("detail".into(), self.detail.clone().into());
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_standard_and_extension_members() {
        let p = Problem::new(
            409,
            "insufficient-stock",
            "Insufficient stock",
            "only 3".into(),
        )
        .with("available", 3);
        assert_eq!(
            p.to_json(),
            json!({
                "type": "https://errors.edge-cart.dev/insufficient-stock",
                "title": "Insufficient stock",
                "status": 409,
                "detail": "only 3",
                "available": 3
            })
        );
    }

    #[test]
    fn extensions_cannot_override_standard_members() {
        let p = Problem::new(404, "x", "X", "d".into()).with("status", 200);
        assert_eq!(p.to_json()["status"], 404);
    }
}
