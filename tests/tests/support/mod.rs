//! Shared helpers for the cart-logic suites: the compiled cart component (`cart.wasm`) over the
//! capability host's in-memory capabilities. The in-memory inventory and event pipeline stand in
//! for the reference services: products are seeded with [`put_product`], holds and events are
//! read from the host's state. How the whole app behaves on Spin is the end-to-end suite's job
//! (`tests/e2e`, real `spin up`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cart_tests::{
    delete, get, patch_json, post_json, request, wasm_path, CapabilityHost, ProductSeed,
    TestResponse,
};
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The demo guest-token secret `spin.toml` ships with.
pub const GUEST_TOKEN_SECRET: &str = "local-demo-guest-secret-change-me-0001";

/// The cart component with the settings the local `spin.toml` gives it that matter to a
/// suite (demo identity on, guest tokens on) plus an admin token, then `config` on top: the
/// cart reads every other setting's default itself.
pub fn cart_host_with(config: &[(&str, &str)]) -> Arc<CapabilityHost> {
    let host = CapabilityHost::new(wasm_path("cart").expect("cart component path"))
        .expect("cart.wasm loads in the capability host");
    host.set_config("allow_insecure_user_header", "true");
    host.set_config("guest_token_secret", GUEST_TOKEN_SECRET);
    host.set_config("admin_token", ADMIN_TOKEN);
    for (name, value) in config {
        host.set_config(name, value);
    }
    host
}

pub fn cart_host() -> Arc<CapabilityHost> {
    cart_host_with(&[])
}

pub fn cart_path(store: &str) -> String {
    format!("/v1/stores/{store}/cart")
}

pub fn items_path(store: &str) -> String {
    format!("/v1/stores/{store}/cart/items")
}

pub fn item_path(store: &str, product: &str) -> String {
    format!("/v1/stores/{store}/cart/items/{product}")
}

/// Creates or replaces a reservable EUR product titled `Title of {product}`.
pub fn put_product(host: &CapabilityHost, store: &str, product: &str, price: i64, stock: u32) {
    host.seed_product(ProductSeed::new(
        store,
        product,
        &format!("Title of {product}"),
        price,
        stock,
    ));
}

/// Live holds of a product, by reservation id.
pub fn reservations(host: &CapabilityHost, store: &str, product: &str) -> BTreeMap<String, u64> {
    host.holds(store, product)
        .into_iter()
        .map(|(id, q)| (id, u64::from(q)))
        .collect()
}

/// The quantities of the product's live holds, in reservation-id order.
pub fn held_quantities(host: &CapabilityHost, store: &str, product: &str) -> Vec<u64> {
    reservations(host, store, product).into_values().collect()
}

/// `(stock, available)` of a product.
pub fn stock_and_available(host: &CapabilityHost, store: &str, product: &str) -> (u32, u32) {
    let p = host.product(store, product).expect("a seeded product");
    (p.seed.stock, p.available)
}

pub async fn add(
    host: &CapabilityHost,
    store: &str,
    user: &str,
    product: &str,
    qty: i64,
) -> TestResponse {
    post_json(
        &items_path(store),
        &serde_json::json!({"productId": product, "quantity": qty}),
    )
    .header("x-user-id", user)
    .send(host)
    .await
    .expect("add")
}

pub async fn set_qty(
    host: &CapabilityHost,
    store: &str,
    user: &str,
    product: &str,
    qty: i64,
) -> TestResponse {
    patch_json(
        &item_path(store, product),
        &serde_json::json!({"quantity": qty}),
    )
    .header("x-user-id", user)
    .send(host)
    .await
    .expect("patch")
}

pub async fn remove(host: &CapabilityHost, store: &str, user: &str, product: &str) -> TestResponse {
    delete(&item_path(store, product))
        .header("x-user-id", user)
        .send(host)
        .await
        .expect("delete line")
}

pub async fn clear(host: &CapabilityHost, store: &str, user: &str) -> TestResponse {
    delete(&cart_path(store))
        .header("x-user-id", user)
        .send(host)
        .await
        .expect("clear cart")
}

pub async fn checkout(host: &CapabilityHost, store: &str, user: &str) -> TestResponse {
    request(
        http::Method::POST,
        &format!("{}/checkout", cart_path(store)),
    )
    .header("x-user-id", user)
    .send(host)
    .await
    .expect("checkout")
}

pub async fn cart(host: &CapabilityHost, store: &str, user: &str) -> TestResponse {
    get(&cart_path(store))
        .header("x-user-id", user)
        .send(host)
        .await
        .expect("get cart")
}

pub async fn admin_post(host: &CapabilityHost, path: &str) -> TestResponse {
    request(http::Method::POST, path)
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send(host)
        .await
        .expect("admin post")
}

/// `/metrics` as text, once the work after earlier responses (relay, metric flush) is done.
pub async fn metrics(host: &CapabilityHost) -> String {
    host.wait_idle().await;
    let r = get("/metrics").send(host).await.expect("metrics");
    assert_eq!(r.status(), 200, "{}", r.text());
    r.text()
}

/// One sample of the Prometheus text by its exact series name (anchored: `x 1` never matches
/// `x 10`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// The CloudEvents the cart `cart:{store}:{user}` published to `topic`, in publication order.
pub fn cart_events(host: &CapabilityHost, topic: &str, store: &str, user: &str) -> Vec<Value> {
    let key = format!("cart:{store}:{user}");
    host.events(topic)
        .into_iter()
        .filter(|r| r.key == key)
        .map(|r| serde_json::from_str(&r.value).expect("an event is JSON"))
        .collect()
}

/// Line quantities of a cart view by product id.
pub fn lines(view: &Value) -> BTreeMap<String, u64> {
    view["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    (
                        l["productId"].as_str().unwrap_or_default().to_owned(),
                        l["quantity"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything the capabilities hold (see `CapabilityState::snapshot`) except the metric shards
/// (`metrics:shard:*` documents): observability, updated for every request including rejected
/// ones, so they are left out of "nothing changed".
pub fn state_snapshot(host: &CapabilityHost) -> BTreeMap<String, Vec<u8>> {
    host.snapshot()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("doc:metrics:shard:"))
        .collect()
}

/// Every metric series the cart has stored (the keys of its shard documents).
pub fn stored_metric_series(host: &CapabilityHost) -> Vec<String> {
    let mut series: Vec<String> = (0..64)
        .map(|i| host.document(&format!("metrics:shard:{i}")).1)
        .filter(|body| !body.is_empty())
        .flat_map(|body| {
            serde_json::from_slice::<BTreeMap<String, i64>>(&body)
                .expect("a shard is a JSON map of counts")
                .into_keys()
        })
        .collect();
    series.sort();
    series.dedup();
    series
}

/// Keys whose values differ between two snapshots (for readable failure messages).
pub fn changed_keys(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Asserts a problem+json response with the given status and type slug.
pub fn assert_problem(r: &TestResponse, status: u16, slug: &str) {
    assert_eq!(
        r.status(),
        status,
        "expected {status} {slug}, got: {}",
        r.text()
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "problem content type for {slug}"
    );
    let body = r.json();
    assert_eq!(
        body["type"].as_str(),
        Some(format!("https://errors.edge-cart.dev/{slug}").as_str()),
        "problem type: {body}"
    );
    assert_eq!(body["status"].as_u64(), Some(u64::from(status)));
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "problem has a detail: {body}"
    );
}

/// A guest token from `POST /v1/guest-tokens` (fails the test unless 201).
pub async fn guest_token(host: &CapabilityHost) -> String {
    let issued = request(http::Method::POST, "/v1/guest-tokens")
        .send(host)
        .await
        .expect("guest token");
    assert_eq!(issued.status(), 201, "{}", issued.text());
    issued.json()["token"].as_str().expect("a token").to_owned()
}

/// Adds `qty` of `product` to the guest's cart in store `s` (fails the test unless 200).
pub async fn guest_add(host: &CapabilityHost, token: &str, product: &str, qty: u32) {
    let r = post_json(
        &items_path("s"),
        &serde_json::json!({"productId": product, "quantity": qty}),
    )
    .header("authorization", &format!("Bearer {token}"))
    .send(host)
    .await
    .expect("guest add");
    assert_eq!(r.status(), 200, "{}", r.text());
}

/// Merges the guest cart of `token` into `user`'s cart in store `s`.
pub async fn merge(host: &CapabilityHost, token: &str, user: &str) -> TestResponse {
    post_json(
        "/v1/stores/s/cart/merge",
        &serde_json::json!({"guestToken": token}),
    )
    .header("x-user-id", user)
    .send(host)
    .await
    .expect("merge")
}

/// xorshift64*: a small, seedable generator for the fuzz suites (deterministic per seed).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}
