//! Inventory that degrades gracefully: the circuit breaker, the reservation lifecycle, the
//! product cache and checkout, with faults injected into real compiled components.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cart_tests::{
    get, post_json, put_json, request, wasm_path, CapabilityHost, Fault, Interface, KvStore,
    ProductSeed,
};
use serde_json::{json, Value};
use support::*;

fn cart_host(config: &[(&str, &str)]) -> Arc<CapabilityHost> {
    let host = CapabilityHost::new(wasm_path("cart").unwrap()).unwrap();
    host.set_config("allow_insecure_user_header", "true");
    host.set_config("admin_token", ADMIN_TOKEN);
    for (k, v) in config {
        host.set_config(k, v);
    }
    host
}

async fn host_add(
    host: &CapabilityHost,
    user: &str,
    product: &str,
    qty: u32,
) -> cart_tests::TestResponse {
    post_json(
        "/v1/stores/s/cart/items",
        &json!({"productId": product, "quantity": qty}),
    )
    .header("x-user-id", user)
    .send(host)
    .await
    .unwrap()
}

async fn host_set(
    host: &CapabilityHost,
    user: &str,
    product: &str,
    qty: u32,
) -> cart_tests::TestResponse {
    cart_tests::patch_json(
        &format!("/v1/stores/s/cart/items/{product}"),
        &json!({"quantity": qty}),
    )
    .header("x-user-id", user)
    .send(host)
    .await
    .unwrap()
}

async fn host_cart(host: &CapabilityHost, user: &str) -> Value {
    let r = get("/v1/stores/s/cart")
        .header("x-user-id", user)
        .send(host)
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    r.json()
}

fn statuses(view: &Value) -> Vec<String> {
    view["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["reservation"]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_degrades_lines_and_closes_after_recovery() {
    let host = cart_host(&[
        ("breaker_min_volume", "5"),
        ("breaker_open_ms", "300"),
        ("product_cache_ttl_ms", "600000"),
    ]);
    for i in 0..10 {
        host.seed_product(ProductSeed::new("s", &format!("p{i}"), "Thing", 100, 50));
        assert_eq!(
            host_add(&host, "u", &format!("p{i}"), 1).await.status(),
            200
        );
    }
    host.wait_idle().await;

    // Inventory down: every call fails.
    host.fail_always(Interface::Inventory, Fault::Unavailable("down".into()));
    host.reset_calls();
    for i in 0..30 {
        let r = host_set(&host, "u", &format!("p{}", i % 10), 2 + (i / 10) as u32).await;
        assert_eq!(r.status(), 200, "operations keep succeeding: {}", r.text());
        let line = r.json()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["productId"] == format!("p{}", i % 10))
            .cloned()
            .unwrap();
        assert_eq!(line["reservation"]["status"], "unconfirmed");
    }
    host.wait_idle().await;
    // Each fallback is announced to the event pipeline.
    let unconfirmed = host
        .events("cart-events")
        .iter()
        .filter(|e| e.value.contains("\"cart.reservation.unconfirmed\""))
        .count();
    assert!(unconfirmed >= 20, "one per degraded change: {unconfirmed}");
    // The window also holds the 20 successful calls of the warm-up (10 lookups, 10 holds), so
    // the 20th failed call (an operation's own hold, or the re-confirmation of an earlier
    // unconfirmed line) reaches 50% errors and opens the breaker; after that no operation
    // calls the inventory.
    assert_eq!(
        host.calls(Interface::Inventory),
        20,
        "{:?}",
        host.call_counts()
    );
    let metrics = get("/metrics").send(&*host).await.unwrap().text();
    assert!(
        metrics.contains("cart_inventory_breaker_state 2"),
        "{metrics}"
    );
    let short_circuits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cart_inventory_short_circuits_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(short_circuits >= 10, "{metrics}");

    // Recovery: after the open period one probe goes through and closes the breaker; reads
    // re-confirm the unconfirmed lines (at most 3 per request).
    host.clear_all_faults();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut view = host_cart(&host, "u").await;
    for _ in 0..6 {
        if statuses(&view).iter().all(|s| s == "confirmed") {
            break;
        }
        view = host_cart(&host, "u").await;
    }
    assert!(statuses(&view).iter().all(|s| s == "confirmed"), "{view}");
    for i in 0..10 {
        assert_eq!(host.reserved_quantity("s", &format!("p{i}")), 4);
    }
    host.wait_idle().await;
    let metrics = get("/metrics").send(&*host).await.unwrap().text();
    assert!(
        metrics.contains("cart_inventory_breaker_state 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_inventory_times_out_and_trips_the_breaker() {
    let kv = KvStore::new();
    let healthy = app_sharing(&kv, &[]);
    for i in 0..5 {
        put_product(&healthy, "s", &format!("p{i}"), 100, 50).await;
        assert_eq!(
            add(&healthy, "s", "u", &format!("p{i}"), 1).await.status(),
            200
        );
    }
    healthy.wait_idle().await;
    let (port, accepted) = hanging_endpoint();
    let host = format!("http://127.0.0.1:{port}");
    let slow = app_sharing(
        &kv,
        &[
            ("inventory_url", &format!("{host}/inventory/v1")),
            ("inventory_origin", &host),
            ("inventory_timeout_ms", "200"),
            ("breaker_min_volume", "3"),
        ],
    );
    for i in 0..16 {
        let r = set_qty(&slow, "s", "u", &format!("p{}", i % 5), 2).await;
        assert_eq!(r.status(), 200, "{}", r.text());
    }
    slow.wait_idle().await;
    // The window holds the warm-up's 10 successes (5 lookups, 5 holds): 10 calls time out,
    // then the breaker keeps the remaining 6 requests away from the hung inventory.
    assert_eq!(accepted.load(Ordering::SeqCst), 10);
    let view = cart(&healthy, "s", "u").await.json();
    assert_eq!(
        lines(&view).values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2, 2, 2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_are_reconfirmed_on_read_and_orphans_are_swept() {
    let app = app_with(&[("reservation_ttl_seconds", "1")]);
    put_product(&app, "s", "p", 100, 10).await;
    put_product(&app, "s", "q", 100, 10).await;
    assert_eq!(add(&app, "s", "u", "p", 2).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Expired holds no longer count against stock.
    assert!(reservations(&app, "s", "p").await.is_empty());
    assert_eq!(product(&app, "s", "p").await["available"], 10);
    // Reading the cart re-confirms the line (inventory is healthy).
    let view = cart(&app, "s", "u").await.json();
    assert_eq!(view["lines"][0]["reservation"]["status"], "confirmed");
    assert_eq!(reservations(&app, "s", "p").await.values().sum::<u64>(), 2);

    // An orphan: a hold of u's with no cart line behind it.
    let orphan = put_json(
        "/inventory/v1/stores/s/reservations/u~q~0",
        &json!({"productId": "q", "quantity": 3, "ttlMs": 600000}),
    )
    .send(&app)
    .await
    .unwrap();
    assert_eq!(orphan.status(), 200, "{}", orphan.text());
    let sweep = admin_post(&app, "/admin/reservations/sweep?storeId=s").await;
    assert_eq!(sweep.status(), 200, "{}", sweep.text());
    assert_eq!(sweep.json()["released"], 1);
    assert!(reservations(&app, "s", "q").await.is_empty());
    assert_eq!(
        reservations(&app, "s", "p").await.values().sum::<u64>(),
        2,
        "real holds stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stampede_on_a_stale_product_record_makes_one_fetch() {
    let host = cart_host(&[("product_cache_ttl_ms", "50")]);
    host.seed_product(ProductSeed::new("s", "p", "Thing", 100, 1000));
    assert_eq!(host_add(&host, "u0", "p", 1).await.status(), 200);
    host.wait_idle().await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    host.reset_calls();
    let tasks: Vec<_> = (1..=20)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move { host_add(&host, &format!("u{i}"), "p", 1).await.status() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(host.calls_of(Interface::Inventory, "get-product"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_with_a_short_line_commits_nothing_and_names_it() {
    let app = app();
    put_product(&app, "s", "a", 100, 5).await;
    put_product(&app, "s", "b", 250, 5).await;
    put_product_with(
        &app,
        "s",
        "gift",
        json!({
            "title": "Gift card", "unitPrice": {"amount": 2500, "currency": "EUR"}, "stock": 1,
            "policy": "checkout"
        }),
    )
    .await;
    assert_eq!(add(&app, "s", "u", "a", 2).await.status(), 200);
    assert_eq!(add(&app, "s", "u", "b", 3).await.status(), 200);
    let gift = add(&app, "s", "u", "gift", 1).await.json();
    let gift_line = gift["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["productId"] == "gift")
        .cloned()
        .unwrap();
    assert_eq!(gift_line["reservation"]["status"], "not_required");
    assert!(
        reservations(&app, "s", "gift").await.is_empty(),
        "checkout policy holds nothing"
    );

    // b's stock drops below what the cart holds.
    put_product(&app, "s", "b", 250, 1).await;
    let refused = request(http::Method::POST, "/v1/stores/s/cart/checkout")
        .header("x-user-id", "u")
        .send(&app)
        .await
        .unwrap();
    assert_problem(&refused, 409, "insufficient-stock");
    let short = refused.json()["lines"].clone();
    assert_eq!(
        short,
        json!([{"productId": "b", "requested": 3, "available": 1, "problem": "insufficient-stock"}])
    );
    // Nothing committed: stock unchanged, the cart still open with its lines.
    assert_eq!(product(&app, "s", "a").await["stock"], 5);
    assert!(
        reservations(&app, "s", "gift").await.is_empty(),
        "the checkout-only hold was released"
    );
    let view = cart(&app, "s", "u").await.json();
    assert_eq!(view["status"], "open");
    assert_eq!(lines(&view).len(), 3);

    put_product(&app, "s", "b", 250, 10).await;
    let done = request(http::Method::POST, "/v1/stores/s/cart/checkout")
        .header("x-user-id", "u")
        .send(&app)
        .await
        .unwrap();
    assert_eq!(done.status(), 200, "{}", done.text());
    let view = done.json();
    assert_eq!(view["status"], "checked_out");
    assert_eq!(view["lines"], json!([]));
    assert_eq!(
        view["lastCheckout"]["subtotal"],
        json!({"amount": 2 * 100 + 3 * 250 + 2500, "currency": "EUR"})
    );
    assert_eq!(view["lastCheckout"]["lines"].as_array().unwrap().len(), 3);
    assert_eq!(product(&app, "s", "a").await["stock"], 3);
    assert_eq!(product(&app, "s", "b").await["stock"], 7);
    assert_eq!(product(&app, "s", "gift").await["stock"], 0);
    let empty = request(http::Method::POST, "/v1/stores/s/cart/checkout")
        .header("x-user-id", "u")
        .send(&app)
        .await
        .unwrap();
    assert_problem(&empty, 422, "cart-empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_carts_expire_and_release_their_holds() {
    // Zero days: any cart that has not changed since its last write counts as abandoned.
    let app = app_with(&[("abandon_after_days", "0")]);
    put_product(&app, "s", "p", 100, 10).await;
    assert_eq!(add(&app, "s", "u", "p", 2).await.status(), 200);
    assert_eq!(reservations(&app, "s", "p").await.values().sum::<u64>(), 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let view = cart(&app, "s", "u").await.json();
    assert_eq!(view["lines"], json!([]));
    assert!(reservations(&app, "s", "p").await.is_empty());
    app.wait_idle().await;
    let records = get("/events/topics/cart-events/records")
        .send(&*app)
        .await
        .unwrap()
        .json();
    let last = records["records"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["value"]["type"], "cart.cleared");
    assert_eq!(last["value"]["data"]["reason"], "abandoned");
}
