//! `storefront:cart/inventory`: the inventory service's HTTP API.
//!
//! | call        | request                                                        | success   |
//! |-------------|----------------------------------------------------------------|-----------|
//! | get-product | `GET {base}/stores/{s}/products/{p}`                           | 200 JSON  |
//! | reserve     | `PUT {base}/stores/{s}/reservations/{rid}` `{productId,quantity,ttlMs}` | 200/201 JSON |
//! | release     | `DELETE {base}/stores/{s}/reservations/{rid}`                  | 2xx, 404  |
//! | commit      | `POST {base}/stores/{s}/reservations/commit` `{reservationIds}` | 2xx      |
//!
//! Failures: 404 on a product → product-not-found; 409 on reserve with `available` in the
//! problem → insufficient-stock; 401, 403, 408, 429, 5xx, timeouts and transport errors →
//! unavailable (what the cart's circuit breaker counts: a refused credential is this
//! deployment's fault, not the shopper's, so lines degrade to `unconfirmed`); any other 4xx →
//! rejected. `{base}` is the `inventory_url` variable; each call is bounded by
//! `inventory_timeout_ms` and, when `reference_token` is set, carries
//! `Authorization: Bearer <reference_token>` (what the reference inventory requires).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config;
use crate::exports::storefront::cart::inventory::{
    Guest, InventoryError, Money, Product, Reservation, ReservationPolicy,
};
use crate::http_util::{self, InboundResponse, Method, OutboundRequest};
use crate::urls;

const DEFAULT_INVENTORY_URL: &str = "http://inventory.spin.internal/inventory/v1";
const DEFAULT_TIMEOUT_MS: u64 = 1500;

impl Guest for crate::Adapter {
    fn get_product(store_id: String, product_id: String) -> Result<Product, InventoryError> {
        let client = Client::load()?;
        let url = client.url(&["stores", &store_id, "products", &product_id]);
        let response = client.call(Method::Get, &url, None)?;
        match response.status {
            200 => parse_product(&response.body, &store_id, &product_id),
            404 => Err(InventoryError::ProductNotFound),
            _ => Err(failure(&response)),
        }
    }

    fn reserve(
        store_id: String,
        product_id: String,
        reservation_id: String,
        quantity: u32,
        ttl_ms: u64,
        fence: u64,
    ) -> Result<Reservation, InventoryError> {
        let client = Client::load()?;
        let url = client.url(&["stores", &store_id, "reservations", &reservation_id]);
        let body = json!({
            "productId": product_id,
            "quantity": quantity,
            "ttlMs": ttl_ms,
            "fence": fence,
        });
        let response = client.call(Method::Put, &url, Some(&body))?;
        match response.status {
            200 | 201 => parse_reservation(&response.body, &reservation_id, &product_id, quantity),
            404 => Err(InventoryError::ProductNotFound),
            409 => Err(
                match (
                    problem_available(&response.body),
                    problem_fence(&response.body),
                ) {
                    (Some(available), _) => InventoryError::InsufficientStock(available),
                    (None, Some(fence)) => InventoryError::StaleFence(fence),
                    (None, None) => InventoryError::Rejected(problem_detail(&response)),
                },
            ),
            _ => Err(failure(&response)),
        }
    }

    fn release(store_id: String, reservation_id: String) -> Result<(), InventoryError> {
        let client = Client::load()?;
        let url = client.url(&["stores", &store_id, "reservations", &reservation_id]);
        let response = client.call(Method::Delete, &url, None)?;
        // Releasing is idempotent: an unknown (expired, swept, never made) reservation is fine.
        if response.is_success() || response.status == 404 {
            Ok(())
        } else {
            Err(failure(&response))
        }
    }

    fn commit(store_id: String, reservation_ids: Vec<String>) -> Result<(), InventoryError> {
        let client = Client::load()?;
        let url = client.url(&["stores", &store_id, "reservations", "commit"]);
        let body = json!({"reservationIds": reservation_ids});
        let response = client.call(Method::Post, &url, Some(&body))?;
        match response.status {
            s if (200..300).contains(&s) => Ok(()),
            409 => Err(InventoryError::Rejected(problem_detail(&response))),
            _ => Err(failure(&response)),
        }
    }

    fn list_reservations(store_id: String) -> Result<Vec<Reservation>, InventoryError> {
        let client = Client::load()?;
        let url = client.url(&["stores", &store_id, "reservations"]);
        let response = client.call(Method::Get, &url, None)?;
        if !response.is_success() {
            return Err(failure(&response));
        }
        parse_reservation_list(&response.body)
    }
}

/// The configured inventory endpoint.
struct Client {
    base_url: String,
    timeout_ms: u64,
    /// `reference_token`, sent as a bearer token when set.
    token: Option<String>,
}

impl Client {
    fn load() -> Result<Self, InventoryError> {
        let bad = |e: config::ConfigError| InventoryError::Unavailable(e.to_string());
        Ok(Client {
            base_url: config::setting_or("inventory_url", DEFAULT_INVENTORY_URL).map_err(bad)?,
            timeout_ms: config::timeout_ms("inventory_timeout_ms", DEFAULT_TIMEOUT_MS)
                .map_err(bad)?,
            token: config::setting("reference_token").map_err(bad)?,
        })
    }

    fn url(&self, segments: &[&str]) -> String {
        urls::join(&self.base_url, segments)
    }

    fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<InboundResponse, InventoryError> {
        let mut headers = vec![("accept", "application/json".to_owned())];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        if let Some(token) = &self.token {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        headers.extend(crate::trace::headers());
        http_util::send(&OutboundRequest {
            method,
            url,
            headers,
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            timeout_ms: self.timeout_ms,
        })
        // A timeout reads "inventory: timed out": the cart counts details containing
        // "timed out" in cart_inventory_timeouts_total (the contract has no timeout variant).
        .map_err(|e| InventoryError::Unavailable(format!("inventory: {e}")))
    }
}

/// The error for a status no call-specific rule covered.
fn failure(response: &InboundResponse) -> InventoryError {
    classify(response.status, problem_detail(response))
}

/// Transient statuses are `unavailable` (worth a retry, counted by the breaker); other client
/// errors are `rejected`; anything else (1xx, 3xx, unexpected 2xx) is `unavailable`.
fn classify(status: u16, detail: String) -> InventoryError {
    match status {
        401 | 403 => InventoryError::Unavailable(format!(
            "inventory refused this deployment's credentials ({status}; check reference_token): {detail}"
        )),
        408 | 429 | 500..=599 => {
            InventoryError::Unavailable(format!("inventory answered {status}: {detail}"))
        }
        400..=499 => InventoryError::Rejected(detail),
        _ => {
            InventoryError::Unavailable(format!("inventory answered unexpected {status}: {detail}"))
        }
    }
}

/// A short human-readable reason from an RFC 9457 problem (or any) body.
fn problem_detail(response: &InboundResponse) -> String {
    detail_from_body(response.status, &response.body)
}

fn detail_from_body(status: u16, body: &[u8]) -> String {
    const MAX_DETAIL_CHARS: usize = 200;
    if let Ok(Value::Object(problem)) = serde_json::from_slice::<Value>(body) {
        for field in ["detail", "title", "message", "error"] {
            if let Some(Value::String(text)) = problem.get(field) {
                return text.chars().take(MAX_DETAIL_CHARS).collect();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text.chars().take(MAX_DETAIL_CHARS).collect()
    }
}

/// `available` from a 409 problem body.
fn problem_available(body: &[u8]) -> Option<u32> {
    let problem: Value = serde_json::from_slice(body).ok()?;
    let available = problem.get("available")?;
    match (available.as_u64(), available.as_i64()) {
        (Some(n), _) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        (None, Some(_negative)) => Some(0),
        _ => None,
    }
}

/// The `fence` of a `stale-fence` problem (a newer writer set the reservation).
fn problem_fence(body: &[u8]) -> Option<u64> {
    let problem: Value = serde_json::from_slice(body).ok()?;
    let kind = problem.get("type")?.as_str()?;
    if !kind.ends_with("/stale-fence") && kind != "stale-fence" {
        return None;
    }
    problem.get("fence")?.as_u64()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductBody {
    store_id: Option<String>,
    product_id: Option<String>,
    title: String,
    unit_price: MoneyBody,
    available: Option<i64>,
    stock: Option<i64>,
    reserved: Option<i64>,
    policy: Option<String>,
    min_quantity: Option<u32>,
    max_quantity: Option<u32>,
    quantity_step: Option<u32>,
}

#[derive(Deserialize)]
struct MoneyBody {
    amount: i64,
    currency: String,
}

/// Reads a product. Lenient where a sane reading exists (missing ids, rules and policy take
/// safe defaults), strict where a guess would be wrong (title, price, stock).
fn parse_product(body: &[u8], store_id: &str, product_id: &str) -> Result<Product, InventoryError> {
    let product: ProductBody =
        serde_json::from_slice(body).map_err(|e| bad_response("product", &e))?;
    let available = match (product.available, product.stock, product.reserved) {
        (Some(available), _, _) => available,
        (None, Some(stock), reserved) => stock.saturating_sub(reserved.unwrap_or(0)),
        (None, None, _) => {
            return Err(InventoryError::Unavailable(
                "inventory sent a product without available stock".into(),
            ))
        }
    };
    Ok(Product {
        store_id: product.store_id.unwrap_or_else(|| store_id.to_owned()),
        product_id: product.product_id.unwrap_or_else(|| product_id.to_owned()),
        title: product.title,
        unit_price: Money {
            amount_minor: product.unit_price.amount,
            currency: product.unit_price.currency,
        },
        available: clamp_u32(available),
        policy: parse_policy(product.policy.as_deref()),
        // 0 would mean "no minimum"/"no step"; 1 says the same and is safe to divide by.
        min_quantity: product.min_quantity.unwrap_or(1).max(1),
        max_quantity: product.max_quantity,
        quantity_step: product.quantity_step.unwrap_or(1).max(1),
    })
}

/// Unknown or missing policies reserve: holding stock is the safe side (no overselling).
fn parse_policy(policy: Option<&str>) -> ReservationPolicy {
    match policy {
        Some(p) if p.eq_ignore_ascii_case("checkout") => ReservationPolicy::Checkout,
        _ => ReservationPolicy::Reserve,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReservationBody {
    reservation_id: Option<String>,
    product_id: Option<String>,
    quantity: Option<u32>,
    expires_at_ms: u64,
}

/// Reads a reservation; ids and quantity default to what was asked for.
fn parse_reservation(
    body: &[u8],
    reservation_id: &str,
    product_id: &str,
    quantity: u32,
) -> Result<Reservation, InventoryError> {
    let reservation: ReservationBody =
        serde_json::from_slice(body).map_err(|e| bad_response("reservation", &e))?;
    Ok(Reservation {
        reservation_id: reservation
            .reservation_id
            .unwrap_or_else(|| reservation_id.to_owned()),
        product_id: reservation
            .product_id
            .unwrap_or_else(|| product_id.to_owned()),
        quantity: reservation.quantity.unwrap_or(quantity),
        expires_at_ms: reservation.expires_at_ms,
    })
}

#[derive(Deserialize)]
struct ReservationList {
    reservations: Vec<ListedReservation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedReservation {
    reservation_id: String,
    product_id: String,
    quantity: u32,
    expires_at_ms: u64,
}

/// Reads `{"reservations": [...]}` from the store-wide listing.
fn parse_reservation_list(body: &[u8]) -> Result<Vec<Reservation>, InventoryError> {
    let list: ReservationList =
        serde_json::from_slice(body).map_err(|e| bad_response("reservation list", &e))?;
    Ok(list
        .reservations
        .into_iter()
        .map(|r| Reservation {
            reservation_id: r.reservation_id,
            product_id: r.product_id,
            quantity: r.quantity,
            expires_at_ms: r.expires_at_ms,
        })
        .collect())
}

/// A 2xx the adapter cannot read: the service misbehaves, which the breaker should see.
fn bad_response(what: &str, error: &serde_json::Error) -> InventoryError {
    InventoryError::Unavailable(format!("inventory sent an unreadable {what}: {error}"))
}

fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCT: &str = r#"{
        "storeId": "s1", "productId": "p1", "title": "Socks",
        "unitPrice": {"amount": 1299, "currency": "EUR"},
        "stock": 10, "reserved": 3, "available": 7, "policy": "reserve",
        "minQuantity": 1, "maxQuantity": 5, "quantityStep": 1, "extra": true
    }"#;

    #[test]
    fn a_stale_fence_problem_is_told_apart_from_other_conflicts() {
        let stale =
            br#"{"type":"https://errors.edge-cart.dev/stale-fence","status":409,"fence":42}"#;
        assert_eq!(problem_fence(stale), Some(42));
        let committed = br#"{"type":"https://errors.edge-cart.dev/reservation-committed","status":409,"fence":1}"#;
        assert_eq!(problem_fence(committed), None);
        assert_eq!(problem_fence(b"not json"), None);
    }

    #[test]
    fn reads_a_full_product() {
        let product = parse_product(PRODUCT.as_bytes(), "x", "y").expect("valid product");
        assert_eq!(product.store_id, "s1");
        assert_eq!(product.product_id, "p1");
        assert_eq!(product.title, "Socks");
        assert_eq!(product.unit_price.amount_minor, 1299);
        assert_eq!(product.unit_price.currency, "EUR");
        assert_eq!(product.available, 7);
        assert!(matches!(product.policy, ReservationPolicy::Reserve));
        assert_eq!(product.min_quantity, 1);
        assert_eq!(product.max_quantity, Some(5));
        assert_eq!(product.quantity_step, 1);
    }

    #[test]
    fn product_defaults_are_safe() {
        let body = r#"{"title":"Hat","unitPrice":{"amount":500,"currency":"USD"},
            "stock":4,"reserved":6,"maxQuantity":null,"quantityStep":0,"policy":"checkout"}"#;
        let product = parse_product(body.as_bytes(), "s", "p").expect("valid product");
        assert_eq!(
            (product.store_id.as_str(), product.product_id.as_str()),
            ("s", "p")
        );
        assert_eq!(product.available, 0, "stock minus reserved, never negative");
        assert!(matches!(product.policy, ReservationPolicy::Checkout));
        assert_eq!(product.min_quantity, 1);
        assert_eq!(product.max_quantity, None);
        assert_eq!(product.quantity_step, 1);
        assert!(matches!(
            parse_policy(Some("later")),
            ReservationPolicy::Reserve
        ));
    }

    #[test]
    fn unreadable_products_are_unavailable() {
        let float_price =
            r#"{"title":"T","unitPrice":{"amount":12.5,"currency":"EUR"},"available":1}"#;
        let no_stock = r#"{"title":"T","unitPrice":{"amount":1,"currency":"EUR"}}"#;
        for body in ["", "[]", float_price, no_stock] {
            assert!(
                matches!(
                    parse_product(body.as_bytes(), "s", "p"),
                    Err(InventoryError::Unavailable(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn reads_a_reservation() {
        let body =
            r#"{"reservationId":"r1","productId":"p1","quantity":3,"expiresAtMs":1700000000000}"#;
        let reservation = parse_reservation(body.as_bytes(), "x", "y", 9).expect("valid");
        assert_eq!(reservation.reservation_id, "r1");
        assert_eq!(reservation.product_id, "p1");
        assert_eq!(reservation.quantity, 3);
        assert_eq!(reservation.expires_at_ms, 1_700_000_000_000);

        let minimal = parse_reservation(br#"{"expiresAtMs":5}"#, "r2", "p2", 4).expect("valid");
        assert_eq!(
            (
                minimal.reservation_id.as_str(),
                minimal.product_id.as_str(),
                minimal.quantity
            ),
            ("r2", "p2", 4)
        );
        assert!(parse_reservation(b"{}", "r", "p", 1).is_err());
    }

    #[test]
    fn insufficient_stock_reads_available_from_the_problem() {
        let body = br#"{"type":"https://x/insufficient-stock","title":"Insufficient stock","status":409,"available":2}"#;
        assert_eq!(problem_available(body), Some(2));
        assert_eq!(problem_available(br#"{"available":-3}"#), Some(0));
        assert_eq!(problem_available(br#"{"title":"conflict"}"#), None);
        assert_eq!(problem_available(b"nope"), None);
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(500, "x".into()),
            InventoryError::Unavailable(_)
        ));
        assert!(matches!(
            classify(503, "x".into()),
            InventoryError::Unavailable(_)
        ));
        assert!(matches!(
            classify(429, "x".into()),
            InventoryError::Unavailable(_)
        ));
        assert!(matches!(
            classify(408, "x".into()),
            InventoryError::Unavailable(_)
        ));
        assert!(matches!(
            classify(302, "x".into()),
            InventoryError::Unavailable(_)
        ));
        for refused in [401, 403] {
            assert!(matches!(
                classify(refused, "x".into()),
                InventoryError::Unavailable(d) if d.contains("reference_token")
            ));
        }
        assert!(matches!(classify(400, "bad".into()), InventoryError::Rejected(d) if d == "bad"));
        assert!(matches!(
            classify(422, "x".into()),
            InventoryError::Rejected(_)
        ));
    }

    #[test]
    fn details_come_from_problem_fields_or_text() {
        assert_eq!(detail_from_body(409, br#"{"title":"T","detail":"D"}"#), "D");
        assert_eq!(detail_from_body(409, br#"{"title":"T"}"#), "T");
        assert_eq!(detail_from_body(502, b" bad gateway \n"), "bad gateway");
        assert_eq!(detail_from_body(500, b""), "HTTP 500");
        assert_eq!(detail_from_body(500, "x".repeat(500).as_bytes()).len(), 200);
    }

    #[test]
    fn urls_are_built_from_the_base_with_encoded_segments() {
        let client = Client {
            base_url: DEFAULT_INVENTORY_URL.into(),
            timeout_ms: 1,
            token: None,
        };
        assert_eq!(
            client.url(&["stores", "s-1", "products", "sku 7"]),
            "http://inventory.spin.internal/inventory/v1/stores/s-1/products/sku%207"
        );
        assert_eq!(
            client.url(&["stores", "s~1", "reservations", "commit"]),
            "http://inventory.spin.internal/inventory/v1/stores/s~1/reservations/commit"
        );
    }
}
