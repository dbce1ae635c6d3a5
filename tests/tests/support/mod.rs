//! Shared helpers for the cart suites: load the real app from `spin.toml`, seed inventory
//! through its public API, and compare store contents.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cart_tests::allowed_hosts::AllowedHosts;
use cart_tests::manifest::Manifest;
use cart_tests::variables::Template;
use cart_tests::{
    delete, get, patch_json, post_json, put_json, request, workspace_root, AppOptions, KvStore,
    SpinApp, TestResponse,
};
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Variables every test app gets unless a test sets them: the admin token, and an inventory
/// timeout generous enough that a loaded CI machine never turns a slow reservation into an
/// `unconfirmed` line (fault tests set their own).
fn test_variables(vars: &[(&str, &str)]) -> HashMap<String, String> {
    let mut variables: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_services_allowed(&variables);
    variables
        .entry("admin_token".into())
        .or_insert_with(|| ADMIN_TOKEN.into());
    variables
        .entry("inventory_timeout_ms".into())
        .or_insert_with(|| "20000".into());
    variables
}

/// The service URL variables an operator repoints, each with the variable holding its origin in
/// the cart's `allowed_outbound_hosts` (`"{{ inventory_origin }}"`...).
pub const SERVICE_ORIGINS: [(&str, &str); 3] = [
    ("inventory_url", "inventory_origin"),
    ("events_url", "events_origin"),
    ("lock_url", "lock_origin"),
];

/// `scheme://host[:port]` of `url`: the value of the `*_origin` variable that lets the cart
/// call it.
pub fn origin_of(url: &str) -> String {
    let (scheme, host, port) = cart_tests::allowed_hosts::parse_url_authority(url)
        .unwrap_or_else(|| panic!("{url:?} is not a scheme://host[:port] URL"));
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Panics when a test points a service URL (`inventory_url`, `events_url`, `lock_url`) where the
/// cart's `allowed_outbound_hosts`, rendered with the test's variables as Spin renders them, does
/// not reach: every call would fail as "not permitted", which a fault test cannot tell from the
/// fault it meant to inject. Set the matching `*_origin` variable too, as an operator does.
fn assert_services_allowed(variables: &HashMap<String, String>) {
    let manifest = Manifest::load(&workspace_root().join("spin.toml")).expect("spin.toml parses");
    let mut values: BTreeMap<String, String> = manifest
        .variables
        .iter()
        .filter_map(|(name, def)| Some((name.clone(), def.default.clone()?)))
        .collect();
    values.extend(variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    let hosts: Vec<String> = manifest.components["cart"]
        .allowed_outbound_hosts
        .iter()
        .map(|entry| {
            Template::parse(entry)
                .and_then(|t| t.render(&values))
                .unwrap_or_else(|e| panic!("allowed host {entry:?}: {e}"))
        })
        .collect();
    // An invalid origin makes the load itself fail, with the host's own message.
    let Ok(allowed) = AllowedHosts::parse(&hosts) else {
        return;
    };
    for (url_var, origin_var) in SERVICE_ORIGINS {
        let Some(url) = variables.get(url_var).filter(|u| u.contains("://")) else {
            continue;
        };
        assert!(
            allowed.allows_url(url),
            "{url_var} = {url:?} is outside the cart's allowed_outbound_hosts {hosts:?}: \
             set {origin_var} = {:?} too",
            origin_of(url)
        );
    }
}

/// The app exactly as `spin.toml` describes it, with a fresh key-value store and the given
/// `--variable`s (the admin token is always set so admin routes can be exercised).
///
/// Services move the way an operator moves them, by variables alone: `inventory_url` with
/// `inventory_origin`, `events_url` with `events_origin`, `lock_url` with `lock_origin` (see
/// [`origin_of`]). A service URL the cart would not be allowed to call panics.
pub fn app_with(vars: &[(&str, &str)]) -> Arc<SpinApp> {
    app_sharing(&KvStore::new(), vars)
}

pub fn app() -> Arc<SpinApp> {
    app_with(&[])
}

/// Like [`app_with`], over a given key-value store: several apps with different configuration
/// can share one store, as successive deployments of one app would.
pub fn app_sharing(kv: &KvStore, vars: &[(&str, &str)]) -> Arc<SpinApp> {
    SpinApp::load(
        &workspace_root().join("spin.toml"),
        AppOptions {
            variables: test_variables(vars),
            kv: Some(kv.clone()),
            env: Some(HashMap::new()),
            ..AppOptions::default()
        },
    )
    .expect("spin.toml loads")
}

/// A loopback port that accepts connections, counts them and never answers (a hung service).
pub fn hanging_endpoint() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(1000) {
            match stream {
                Ok(s) => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    held.push(s);
                }
                Err(_) => break,
            }
        }
    });
    (port, accepted)
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

/// Creates or replaces a product through the reference inventory's public API.
pub async fn put_product(app: &SpinApp, store: &str, product: &str, price: i64, stock: u32) {
    put_product_with(
        app,
        store,
        product,
        json!({
            "title": format!("Title of {product}"),
            "unitPrice": {"amount": price, "currency": "EUR"},
            "stock": stock,
        }),
    )
    .await;
}

pub async fn put_product_with(app: &SpinApp, store: &str, product: &str, body: Value) {
    let r = put_json(
        &format!("/inventory/v1/stores/{store}/products/{product}"),
        &body,
    )
    .send(app)
    .await
    .expect("inventory PUT");
    assert_eq!(r.status(), 200, "inventory PUT failed: {}", r.text());
}

pub async fn product(app: &SpinApp, store: &str, product: &str) -> Value {
    let r = get(&format!("/inventory/v1/stores/{store}/products/{product}"))
        .send(app)
        .await
        .expect("inventory GET");
    assert_eq!(r.status(), 200, "{}", r.text());
    r.json()
}

/// Quantities of the product's unexpired reservations, by reservation id.
pub async fn reservations(app: &SpinApp, store: &str, product: &str) -> BTreeMap<String, u64> {
    let r = get(&format!(
        "/inventory/v1/stores/{store}/products/{product}/reservations"
    ))
    .send(app)
    .await
    .expect("reservations GET");
    assert_eq!(r.status(), 200, "{}", r.text());
    r.json()["reservations"]
        .as_array()
        .expect("reservations array")
        .iter()
        .map(|r| {
            (
                r["reservationId"].as_str().unwrap_or_default().to_owned(),
                r["quantity"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The quantities of the product's unexpired holds, in reservation-id order.
pub async fn held_quantities(app: &SpinApp, store: &str, product: &str) -> Vec<u64> {
    reservations(app, store, product)
        .await
        .into_values()
        .collect()
}

pub async fn add(app: &SpinApp, store: &str, user: &str, product: &str, qty: i64) -> TestResponse {
    post_json(
        &items_path(store),
        &json!({"productId": product, "quantity": qty}),
    )
    .header("x-user-id", user)
    .send(app)
    .await
    .expect("add")
}

pub async fn set_qty(
    app: &SpinApp,
    store: &str,
    user: &str,
    product: &str,
    qty: i64,
) -> TestResponse {
    patch_json(&item_path(store, product), &json!({"quantity": qty}))
        .header("x-user-id", user)
        .send(app)
        .await
        .expect("patch")
}

pub async fn remove(app: &SpinApp, store: &str, user: &str, product: &str) -> TestResponse {
    delete(&item_path(store, product))
        .header("x-user-id", user)
        .send(app)
        .await
        .expect("delete line")
}

pub async fn cart(app: &SpinApp, store: &str, user: &str) -> TestResponse {
    get(&cart_path(store))
        .header("x-user-id", user)
        .send(app)
        .await
        .expect("get cart")
}

pub async fn admin_post(app: &SpinApp, path: &str) -> TestResponse {
    request(http::Method::POST, path)
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send(app)
        .await
        .expect("admin post")
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

/// Store contents that carry state. Metrics counters (`metrics:*`) are observability, updated
/// for every request including rejected ones, so they are left out of "nothing changed".
pub fn state_snapshot(kv: &KvStore) -> BTreeMap<String, Vec<u8>> {
    kv.snapshot()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("metrics:"))
        .collect()
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
