//! Maps method and path to an operation. Path segments are used raw: a percent-encoded or
//! otherwise odd segment fails id validation instead of being decoded into something else.

use crate::edge::problem_details::{Problem, ProblemKind};

/// The cart API's operations, by who may call them: the answer to "who is asking" decides the
/// first level, so dispatching needs no arm for a route another level already handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Anyone (or the operator's token, checked by the operation).
    Operator(OperatorRoute),
    /// `POST /v1/guest-tokens`: a signed anonymous identity for a guest cart.
    IssueGuestToken,
    /// A verified shopper (user or guest), on their own cart.
    Shopper(ShopperRoute),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorRoute {
    Health,
    /// `GET /metrics`: Prometheus text format.
    Metrics,
    /// `POST /admin/reservations/sweep?storeId=…`: release orphaned holds.
    SweepReservations {
        store: String,
    },
    /// `POST /admin/cache/invalidate` with `{"storeId", "productId"}`
    InvalidateProduct,
    /// `POST /admin/outbox/relay[?force=true&limit=N]`
    Relay {
        force: bool,
        limit: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopperRoute {
    GetCart {
        store: String,
    },
    Summary {
        store: String,
    },
    ClearCart {
        store: String,
    },
    Checkout {
        store: String,
    },
    /// `POST /v1/stores/{storeId}/cart/merge` with `{"guestToken"}`
    MergeGuestCart {
        store: String,
    },
    AddItem {
        store: String,
    },
    SetQuantity {
        store: String,
        product: String,
    },
    RemoveItem {
        store: String,
        product: String,
    },
}

fn method_not_allowed(allowed: &str) -> Problem {
    Problem::new(
        ProblemKind::MethodNotAllowed,
        format!("this resource allows {allowed}"),
    )
    .with("allow", allowed)
}

fn not_found(path: &str) -> Problem {
    Problem::new(ProblemKind::NotFound, format!("no resource at {path}"))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn route(method: &str, path_and_query: &str) -> Result<Route, Problem> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if path == "/admin/outbox/relay" {
        return match method {
            "POST" => Ok(Route::Operator(OperatorRoute::Relay {
                force: query_param(query, "force") == Some("true"),
                limit: query_param(query, "limit")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500)
                    .min(5_000),
            })),
            _ => Err(method_not_allowed("POST")),
        };
    }
    if path == "/admin/reservations/sweep" {
        return match method {
            "POST" => Ok(Route::Operator(OperatorRoute::SweepReservations {
                store: query_param(query, "storeId").unwrap_or_default().to_owned(),
            })),
            _ => Err(method_not_allowed("POST")),
        };
    }
    if path == "/admin/cache/invalidate" {
        return match method {
            "POST" => Ok(Route::Operator(OperatorRoute::InvalidateProduct)),
            _ => Err(method_not_allowed("POST")),
        };
    }
    if path == "/metrics" {
        return match method {
            "GET" | "HEAD" => Ok(Route::Operator(OperatorRoute::Metrics)),
            _ => Err(method_not_allowed("GET, HEAD")),
        };
    }
    if path == "/healthz" {
        return match method {
            "GET" | "HEAD" => Ok(Route::Operator(OperatorRoute::Health)),
            _ => Err(method_not_allowed("GET")),
        };
    }
    let segments: Vec<&str> = path.split('/').collect();
    // ["", "v1", "stores", store, "cart", ...]
    match segments.as_slice() {
        ["", "v1", "stores", store, "cart"] => {
            let store = store.to_string();
            match method {
                "GET" | "HEAD" => Ok(Route::Shopper(ShopperRoute::GetCart { store })),
                "DELETE" => Ok(Route::Shopper(ShopperRoute::ClearCart { store })),
                _ => Err(method_not_allowed("GET, DELETE")),
            }
        }
        ["", "v1", "stores", store, "cart", "summary"] => match method {
            "GET" | "HEAD" => Ok(Route::Shopper(ShopperRoute::Summary {
                store: store.to_string(),
            })),
            _ => Err(method_not_allowed("GET")),
        },
        ["", "v1", "guest-tokens"] => match method {
            "POST" => Ok(Route::IssueGuestToken),
            _ => Err(method_not_allowed("POST")),
        },
        ["", "v1", "stores", store, "cart", "merge"] => match method {
            "POST" => Ok(Route::Shopper(ShopperRoute::MergeGuestCart {
                store: store.to_string(),
            })),
            _ => Err(method_not_allowed("POST")),
        },
        ["", "v1", "stores", store, "cart", "checkout"] => match method {
            "POST" => Ok(Route::Shopper(ShopperRoute::Checkout {
                store: store.to_string(),
            })),
            _ => Err(method_not_allowed("POST")),
        },
        ["", "v1", "stores", store, "cart", "items"] => match method {
            "POST" => Ok(Route::Shopper(ShopperRoute::AddItem {
                store: store.to_string(),
            })),
            _ => Err(method_not_allowed("POST")),
        },
        ["", "v1", "stores", store, "cart", "items", product] => {
            let (store, product) = (store.to_string(), product.to_string());
            match method {
                "PATCH" => Ok(Route::Shopper(ShopperRoute::SetQuantity { store, product })),
                "DELETE" => Ok(Route::Shopper(ShopperRoute::RemoveItem { store, product })),
                _ => Err(method_not_allowed("PATCH, DELETE")),
            }
        }
        _ => Err(not_found(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_api() {
        assert_eq!(
            route("GET", "/v1/stores/s/cart?x=1").unwrap(),
            Route::Shopper(ShopperRoute::GetCart { store: "s".into() })
        );
        assert_eq!(
            route("PATCH", "/v1/stores/s/cart/items/p").unwrap(),
            Route::Shopper(ShopperRoute::SetQuantity {
                store: "s".into(),
                product: "p".into()
            })
        );
        assert_eq!(
            route("PUT", "/v1/stores/s/cart").unwrap_err().kind,
            ProblemKind::MethodNotAllowed
        );
        assert_eq!(
            route("GET", "/v1/stores/s/cart/").unwrap_err().kind,
            ProblemKind::NotFound
        );
        assert_eq!(
            route("GET", "/v1/stores/s/other").unwrap_err().kind,
            ProblemKind::NotFound
        );
    }
}
