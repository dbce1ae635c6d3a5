//! Maps a method and a full request path to one operation of the event sink.
//!
//! The component is mounted at `/events/...` and Spin hands it the full path (also through
//! service chaining); a bare path without `/events` is accepted too, for a root mount.

use crate::ids::{decode_segment, validate_id, IdError};
use spin_reference_kit::access::Access;
use spin_sdk::http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ProduceV2 { topic: String },
    ProduceV3 { cluster: String, topic: String },
    ReadRecords { topic: String },
    ListTopics,
    GetFaults,
    PutFaults,
}

impl Endpoint {
    /// Who may call it: reading a topic's records is a demo read (demos show the events);
    /// producing, listing topics and the fault switch (an admin route) need the token.
    pub fn access(&self) -> Access {
        match self {
            Endpoint::ReadRecords { .. } => Access::DemoRead,
            Endpoint::ProduceV2 { .. }
            | Endpoint::ProduceV3 { .. }
            | Endpoint::ListTopics
            | Endpoint::GetFaults
            | Endpoint::PutFaults => Access::Protected,
        }
    }

    /// Whether errors on it speak the Kafka REST dialect (the produce routes).
    pub fn dialect(&self) -> Dialect {
        match self {
            Endpoint::ProduceV2 { .. } | Endpoint::ProduceV3 { .. } => Dialect::Kafka,
            _ => Dialect::Problem,
        }
    }
}

/// How errors on a path are reported: produce paths speak Kafka REST errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Problem,
    Kafka,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    InvalidId {
        what: &'static str,
        reason: IdError,
        dialect: Dialect,
    },
}

pub fn resolve(method: &Method, path: &str) -> Result<Endpoint, RouteError> {
    let rest = path.strip_prefix("/events").unwrap_or(path);
    let segments: Vec<&str> = rest.strip_prefix('/').unwrap_or(rest).split('/').collect();
    let (endpoint, allow) = match segments.as_slice() {
        ["topics"] => (
            matches!(method, Method::Get).then_some(Endpoint::ListTopics),
            "GET",
        ),
        ["topics", topic] => {
            let topic = id(topic, "topic", Dialect::Kafka)?;
            (
                matches!(method, Method::Post).then_some(Endpoint::ProduceV2 { topic }),
                "POST",
            )
        }
        ["topics", topic, "records"] => {
            let topic = id(topic, "topic", Dialect::Problem)?;
            (
                matches!(method, Method::Get).then_some(Endpoint::ReadRecords { topic }),
                "GET",
            )
        }
        ["kafka", "v3", "clusters", cluster, "topics", topic, "records"] => {
            let cluster = id(cluster, "cluster", Dialect::Kafka)?;
            let topic = id(topic, "topic", Dialect::Kafka)?;
            (
                matches!(method, Method::Post).then_some(Endpoint::ProduceV3 { cluster, topic }),
                "POST",
            )
        }
        ["admin", "faults"] => (
            match method {
                Method::Get => Some(Endpoint::GetFaults),
                Method::Put => Some(Endpoint::PutFaults),
                _ => None,
            },
            "GET, PUT",
        ),
        _ => return Err(RouteError::NotFound),
    };
    endpoint.ok_or(RouteError::MethodNotAllowed { allow })
}

fn id(raw: &str, what: &'static str, dialect: Dialect) -> Result<String, RouteError> {
    let invalid = |reason| RouteError::InvalidId {
        what,
        reason,
        dialect,
    };
    let decoded = decode_segment(raw).map_err(invalid)?;
    validate_id(&decoded).map_err(invalid)?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn resolves_every_operation() {
        assert_eq!(
            resolve(&Method::Post, "/events/topics/cart-events"),
            Ok(Endpoint::ProduceV2 {
                topic: t("cart-events")
            })
        );
        assert_eq!(
            resolve(&Method::Get, "/events/topics/cart-events/records"),
            Ok(Endpoint::ReadRecords {
                topic: t("cart-events")
            })
        );
        assert_eq!(
            resolve(&Method::Get, "/events/topics"),
            Ok(Endpoint::ListTopics)
        );
        assert_eq!(
            resolve(
                &Method::Post,
                "/events/kafka/v3/clusters/lkc-1/topics/cart-events/records"
            ),
            Ok(Endpoint::ProduceV3 {
                cluster: t("lkc-1"),
                topic: t("cart-events")
            })
        );
        assert_eq!(
            resolve(&Method::Put, "/events/admin/faults"),
            Ok(Endpoint::PutFaults)
        );
        assert_eq!(
            resolve(&Method::Get, "/topics/a%7Eb/records"),
            Ok(Endpoint::ReadRecords { topic: t("a~b") })
        );
    }

    #[test]
    fn only_reading_records_is_a_demo_read() {
        let demo_reads: Vec<String> = [
            (Method::Post, "/events/topics/t"),
            (Method::Get, "/events/topics/t/records"),
            (Method::Get, "/events/topics"),
            (Method::Post, "/events/kafka/v3/clusters/c/topics/t/records"),
            (Method::Get, "/events/admin/faults"),
            (Method::Put, "/events/admin/faults"),
        ]
        .iter()
        .filter(|(m, p)| resolve(m, p).unwrap().access() == Access::DemoRead)
        .map(|(m, p)| format!("{m:?} {p}"))
        .collect();
        assert_eq!(demo_reads, ["Method::Get /events/topics/t/records"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            resolve(&Method::Get, "/events/topics/x"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            resolve(&Method::Delete, "/events/admin/faults"),
            Err(RouteError::MethodNotAllowed { allow: "GET, PUT" })
        );
        for path in [
            "/events",
            "/events/",
            "/events/topics/x/records/1",
            "/events/other",
        ] {
            assert_eq!(
                resolve(&Method::Get, path),
                Err(RouteError::NotFound),
                "{path}"
            );
        }
        assert!(matches!(
            resolve(&Method::Post, "/events/topics/a:b"),
            Err(RouteError::InvalidId {
                dialect: Dialect::Kafka,
                ..
            })
        ));
        assert!(matches!(
            resolve(&Method::Get, "/events/topics/a:b/records"),
            Err(RouteError::InvalidId {
                dialect: Dialect::Problem,
                ..
            })
        ));
    }
}
