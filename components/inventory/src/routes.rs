//! Maps a method and a full request path to one operation of the API.
//!
//! The component is mounted at `/inventory/...` and Spin hands it the full path (also through
//! service chaining), so paths start with `/inventory/v1/`. A bare `/v1/` is accepted too, so
//! the component still works when an operator mounts it at the root.

use crate::error::ApiError;
use crate::ids::{decode_segment, validate_id, validate_product_id, IdError};
use spin_reference_kit::access::Access;
use spin_sdk::http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    GetProduct { store: String, product: String },
    PutProduct { store: String, product: String },
    ListProductReservations { store: String, product: String },
    ListStoreReservations { store: String },
    GetReservation { store: String, reservation: String },
    PutReservation { store: String, reservation: String },
    DeleteReservation { store: String, reservation: String },
    Commit { store: String },
    Sweep { store: String },
}

impl Endpoint {
    /// Who may call it: reading one product is a demo read (a storefront shows it); everything
    /// else changes stock, lists or reads holds (whose ids embed user ids), or is an admin job.
    pub fn access(&self) -> Access {
        match self {
            Endpoint::GetProduct { .. } => Access::DemoRead,
            Endpoint::PutProduct { .. }
            | Endpoint::ListProductReservations { .. }
            | Endpoint::ListStoreReservations { .. }
            | Endpoint::GetReservation { .. }
            | Endpoint::PutReservation { .. }
            | Endpoint::DeleteReservation { .. }
            | Endpoint::Commit { .. }
            | Endpoint::Sweep { .. } => Access::Protected,
        }
    }
}

const PRODUCT_ALLOW: &str = "GET, PUT";
const LIST_ALLOW: &str = "GET";
const RESERVATION_ALLOW: &str = "GET, PUT, DELETE";
/// `reservations/commit` and `reservations/sweep` are actions for POST, and (since `commit` is a
/// valid id) reservation ids for the other methods.
const ACTION_ALLOW: &str = "GET, PUT, DELETE, POST";

pub fn resolve(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let rest = path.strip_prefix("/inventory").unwrap_or(path);
    let rest = rest.strip_prefix("/v1/stores/").ok_or(ApiError::NotFound)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (store, tail) = segments.split_first().ok_or(ApiError::NotFound)?;
    let store = id(store, "storeId", validate_id)?;
    match tail {
        ["products", product] => {
            let product = id(product, "productId", validate_product_id)?;
            match method {
                Method::Get => Ok(Endpoint::GetProduct { store, product }),
                Method::Put => Ok(Endpoint::PutProduct { store, product }),
                _ => Err(not_allowed(PRODUCT_ALLOW)),
            }
        }
        ["products", product, "reservations"] => {
            let product = id(product, "productId", validate_product_id)?;
            match method {
                Method::Get => Ok(Endpoint::ListProductReservations { store, product }),
                _ => Err(not_allowed(LIST_ALLOW)),
            }
        }
        ["reservations"] => match method {
            Method::Get => Ok(Endpoint::ListStoreReservations { store }),
            _ => Err(not_allowed(LIST_ALLOW)),
        },
        ["reservations", reservation] => {
            let reservation = id(reservation, "reservationId", validate_id)?;
            let action = matches!(reservation.as_str(), "commit" | "sweep");
            match method {
                Method::Get => Ok(Endpoint::GetReservation { store, reservation }),
                Method::Put => Ok(Endpoint::PutReservation { store, reservation }),
                Method::Delete => Ok(Endpoint::DeleteReservation { store, reservation }),
                Method::Post if reservation == "commit" => Ok(Endpoint::Commit { store }),
                Method::Post if reservation == "sweep" => Ok(Endpoint::Sweep { store }),
                _ if action => Err(not_allowed(ACTION_ALLOW)),
                _ => Err(not_allowed(RESERVATION_ALLOW)),
            }
        }
        _ => Err(ApiError::NotFound),
    }
}

fn id(
    raw: &str,
    what: &'static str,
    validate: fn(&str) -> Result<(), IdError>,
) -> Result<String, ApiError> {
    let decoded = decode_segment(raw).map_err(|reason| ApiError::InvalidId { what, reason })?;
    validate(&decoded).map_err(|reason| ApiError::InvalidId { what, reason })?;
    Ok(decoded)
}

fn not_allowed(allow: &'static str) -> ApiError {
    ApiError::MethodNotAllowed { allow }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn resolves_every_operation() {
        let p = "/inventory/v1/stores/demo/products/p1";
        assert_eq!(
            resolve(&Method::Get, p),
            Ok(Endpoint::GetProduct {
                store: s("demo"),
                product: s("p1")
            })
        );
        assert_eq!(
            resolve(&Method::Put, p),
            Ok(Endpoint::PutProduct {
                store: s("demo"),
                product: s("p1")
            })
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{p}/reservations")),
            Ok(Endpoint::ListProductReservations {
                store: s("demo"),
                product: s("p1")
            })
        );
        let r = "/inventory/v1/stores/demo/reservations/demo~u1~p1~0";
        let reservation = s("demo~u1~p1~0");
        assert_eq!(
            resolve(&Method::Put, r),
            Ok(Endpoint::PutReservation {
                store: s("demo"),
                reservation: reservation.clone()
            })
        );
        assert_eq!(
            resolve(&Method::Delete, r),
            Ok(Endpoint::DeleteReservation {
                store: s("demo"),
                reservation
            })
        );
        assert_eq!(
            resolve(
                &Method::Post,
                "/inventory/v1/stores/demo/reservations/commit"
            ),
            Ok(Endpoint::Commit { store: s("demo") })
        );
        assert_eq!(
            resolve(
                &Method::Post,
                "/inventory/v1/stores/demo/reservations/sweep"
            ),
            Ok(Endpoint::Sweep { store: s("demo") })
        );
    }

    #[test]
    fn only_reading_one_product_is_a_demo_read() {
        let demo_reads: Vec<String> = [
            (Method::Get, "/inventory/v1/stores/s/products/p"),
            (Method::Put, "/inventory/v1/stores/s/products/p"),
            (
                Method::Get,
                "/inventory/v1/stores/s/products/p/reservations",
            ),
            (Method::Get, "/inventory/v1/stores/s/reservations"),
            (Method::Get, "/inventory/v1/stores/s/reservations/r"),
            (Method::Put, "/inventory/v1/stores/s/reservations/r"),
            (Method::Delete, "/inventory/v1/stores/s/reservations/r"),
            (Method::Post, "/inventory/v1/stores/s/reservations/commit"),
            (Method::Post, "/inventory/v1/stores/s/reservations/sweep"),
        ]
        .iter()
        .filter(|(m, p)| resolve(m, p).unwrap().access() == Access::DemoRead)
        .map(|(m, p)| format!("{m:?} {p}"))
        .collect();
        assert_eq!(
            demo_reads,
            ["Method::Get /inventory/v1/stores/s/products/p"]
        );
    }

    #[test]
    fn unprefixed_and_escaped_paths() {
        assert_eq!(
            resolve(&Method::Get, "/v1/stores/demo/reservations/a%7Eb"),
            Ok(Endpoint::GetReservation {
                store: s("demo"),
                reservation: s("a~b")
            })
        );
    }

    #[test]
    fn wrong_methods_paths_and_ids() {
        assert_eq!(
            resolve(&Method::Post, "/inventory/v1/stores/demo/products/p1"),
            Err(ApiError::MethodNotAllowed { allow: "GET, PUT" })
        );
        assert_eq!(
            resolve(&Method::Post, "/inventory/v1/stores/demo/reservations/r1"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET, PUT, DELETE"
            })
        );
        for path in [
            "/",
            "/inventory",
            "/inventory/v1/stores/demo",
            "/inventory/v1/stores/demo/products",
            "/inventory/v1/stores/demo/products/p1/",
            "/inventory/v2/stores/demo/products/p1",
            "/inventory/v1/stores/demo/other/p1",
        ] {
            assert_eq!(
                resolve(&Method::Get, path),
                Err(ApiError::NotFound),
                "{path}"
            );
        }
        assert!(matches!(
            resolve(&Method::Get, "/inventory/v1/stores/de:mo/products/p1"),
            Err(ApiError::InvalidId {
                what: "storeId",
                ..
            })
        ));
        assert!(matches!(
            resolve(&Method::Get, "/inventory/v1/stores/demo/products/products"),
            Err(ApiError::InvalidId {
                what: "productId",
                reason: IdError::Reserved
            })
        ));
        assert!(matches!(
            resolve(&Method::Get, "/inventory/v1/stores//products/p1"),
            Err(ApiError::InvalidId {
                what: "storeId",
                ..
            })
        ));
    }
}
