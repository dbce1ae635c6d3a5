//! The app's public HTTP API as the suite uses it: the cart under `/v1`, the reference
//! inventory under `/inventory/v1` and the reference event sink under `/events` (called as an
//! operator does, with the app's `reference_token`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::http::{Client, Response};

/// Counts answers by status, failing on anything but 200 and 409 `insufficient-stock`: what
/// racing adds against a short stock may answer.
pub fn tally_stock_race(results: &[Response]) -> BTreeMap<u16, usize> {
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for r in results {
        *by_status.entry(r.status).or_default() += 1;
        match r.status {
            200 => {}
            409 => assert_eq!(r.problem_slug(), "insufficient-stock", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    by_status
}

pub fn cart_path(store: &str) -> String {
    format!("/v1/stores/{store}/cart")
}

pub fn item_path(store: &str, product: &str) -> String {
    format!("/v1/stores/{store}/cart/items/{product}")
}

/// Creates or replaces a product with this price (EUR minor units) and stock.
pub fn put_product(c: &Client, store: &str, product: &str, price: i64, stock: u32) {
    c.put(&format!("/inventory/v1/stores/{store}/products/{product}"))
        .reference()
        .json(&json!({
            "title": format!("Product {product}"),
            "unitPrice": {"amount": price, "currency": "EUR"},
            "stock": stock,
        }))
        .send()
        .expect(200);
}

/// `POST .../cart/items` as a demo-identity user.
pub fn add(c: &Client, store: &str, user: &str, product: &str, quantity: u32) -> Response {
    c.post(&format!("{}/items", cart_path(store)))
        .user(user)
        .json(&json!({"productId": product, "quantity": quantity}))
        .send()
}

/// `PATCH .../cart/items/{product}` as a demo-identity user.
pub fn set_quantity(c: &Client, store: &str, user: &str, product: &str, quantity: u32) -> Response {
    c.patch(&item_path(store, product))
        .user(user)
        .json(&json!({"quantity": quantity}))
        .send()
}

/// The caller's cart (fails the test unless 200).
pub fn cart(c: &Client, store: &str, user: &str) -> Value {
    c.get(&cart_path(store))
        .user(user)
        .send()
        .expect(200)
        .json()
}

/// The items of a JSON array, keyed by one string field, each mapped by `value`.
fn keyed<T>(items: &Value, key: &str, value: impl Fn(&Value) -> T) -> BTreeMap<String, T> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            (
                item[key].as_str().unwrap_or_default().to_owned(),
                value(item),
            )
        })
        .collect()
}

/// Line quantities of a cart view by product.
pub fn line_quantities(view: &Value) -> BTreeMap<String, u64> {
    keyed(&view["lines"], "productId", |l| {
        l["quantity"].as_u64().unwrap_or(0)
    })
}

/// Reservation status of each line of a cart view, by product.
pub fn line_statuses(view: &Value) -> BTreeMap<String, String> {
    keyed(&view["lines"], "productId", |l| {
        l["reservation"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    })
}

/// Live holds of one product in the reference inventory: reservation id → quantity.
pub fn holds(c: &Client, store: &str, product: &str) -> BTreeMap<String, u64> {
    let body = c
        .get(&format!(
            "/inventory/v1/stores/{store}/products/{product}/reservations"
        ))
        .reference()
        .send()
        .expect(200)
        .json();
    keyed(&body["reservations"], "reservationId", |r| {
        r["quantity"].as_u64().unwrap_or(0)
    })
}

/// The product as the inventory shows it (stock, reserved, available).
pub fn product(c: &Client, store: &str, product: &str) -> Value {
    c.get(&format!("/inventory/v1/stores/{store}/products/{product}"))
        .reference()
        .send()
        .expect(200)
        .json()
}

/// Every record of a topic in the reference sink, in arrival order.
pub fn records(c: &Client, topic: &str) -> Vec<Value> {
    let body = c
        .get(&format!("/events/topics/{topic}/records?limit=10000"))
        .reference()
        .send()
        .expect(200)
        .json();
    body["records"].as_array().cloned().unwrap_or_default()
}

/// The CloudEvents of one cart (`cart:{store}:{user}` is the record key), in arrival order.
pub fn cart_events(records: &[Value], store: &str, user: &str) -> Vec<Value> {
    let key = format!("cart:{store}:{user}");
    records
        .iter()
        .filter(|r| r["key"] == key.as_str())
        .map(|r| r["value"].clone())
        .collect()
}

/// The `sequence` of each event.
pub fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap_or(0))
        .collect()
}

/// One sample of a Prometheus text exposition, by its exact series name (with labels, as
/// written, e.g. `cart_inventory_breaker_state`); anchored, so `x 1` never matches `x 10`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// `/metrics` as text.
pub fn metrics(c: &Client) -> String {
    c.get("/metrics").send().expect(200).body
}

/// The outbox gauge: events committed and not yet acknowledged by the sink.
pub fn pending_events(c: &Client) -> Option<f64> {
    metric(&metrics(c), "cart_outbox_pending_events")
}

/// Sets the reference sink's fault switch (`{"mode": "unavailable" | "retriable-record-error" |
/// "none", "remaining": n?}`).
pub fn sink_fault(c: &Client, fault: &Value) {
    c.put("/events/admin/faults")
        .reference()
        .json(fault)
        .send()
        .expect(200);
}

/// One admin outbox sweep (`force`: also while the relay backs off); its report.
pub fn relay_sweep(c: &Client, admin_token: &str) -> Value {
    c.post("/admin/outbox/relay?force=true")
        .bearer(admin_token)
        .send()
        .expect(200)
        .json()
}
