//! No lost events: the transactional outbox, the relay after the response, Kafka REST delivery.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::Duration;

use cart_tests::{
    get, put_json, request, wasm_path, CapabilityHost, Fault, Interface, KvStore, ProductSeed,
    SpinApp,
};
use serde_json::{json, Value};
use support::*;

/// Stored records of a topic in the reference sink, in arrival order.
async fn records(app: &SpinApp, topic: &str) -> Vec<Value> {
    let r = get(&format!("/events/topics/{topic}/records?limit=10000"))
        .send(app)
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    r.json()["records"].as_array().cloned().unwrap_or_default()
}

/// The events of one cart, in arrival order.
fn cart_events(all: &[Value], cart_key: &str) -> Vec<Value> {
    all.iter()
        .filter(|r| r["key"] == cart_key)
        .map(|r| r["value"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_emits_its_event_in_sequence() {
    let app = app();
    put_product(&app, "s", "a", 100, 10).await;
    put_product(&app, "s", "b", 250, 10).await;
    assert_eq!(add(&app, "s", "u", "a", 2).await.status(), 200);
    assert_eq!(add(&app, "s", "u", "a", 1).await.status(), 200);
    assert_eq!(set_qty(&app, "s", "u", "a", 5).await.status(), 200);
    assert_eq!(add(&app, "s", "u", "b", 1).await.status(), 200);
    assert_eq!(remove(&app, "s", "u", "b").await.status(), 200);
    let cleared = request(http::Method::DELETE, &cart_path("s"))
        .header("x-user-id", "u")
        .send(&app)
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(add(&app, "s", "u", "b", 2).await.status(), 200);
    let checkout = request(http::Method::POST, "/v1/stores/s/cart/checkout")
        .header("x-user-id", "u")
        .send(&app)
        .await
        .unwrap();
    assert_eq!(checkout.status(), 200, "{}", checkout.text());
    app.wait_idle().await;

    let events = cart_events(&records(&app, "cart-events").await, "cart:s:u");
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "cart.item.added",
            "cart.item.added",
            "cart.item.updated",
            "cart.item.added",
            "cart.item.removed",
            "cart.cleared",
            "cart.item.added",
            "cart.checked_out",
        ]
    );
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=8).collect::<Vec<_>>());
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 8, "ids are unique");
    for e in &events {
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["source"], "/edge-cart/stores/s");
        assert_eq!(e["subject"], "carts/u");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(events[1]["data"]["previousQuantity"], 2);
    assert_eq!(events[1]["data"]["quantity"], 3);
    assert_eq!(events[2]["data"]["quantity"], 5);
    assert_eq!(
        events[2]["data"]["unitPrice"],
        json!({"amount": 100, "currency": "EUR"})
    );
    assert_eq!(events[4]["data"]["productId"], "b");
    assert_eq!(
        events[5]["data"]["removedLines"],
        json!([{"productId": "a", "quantity": 5}])
    );
    assert_eq!(
        events[7]["data"]["subtotal"],
        json!({"amount": 500, "currency": "EUR"})
    );
    // Acknowledged events left the outbox; nothing is pending.
    let metrics = get("/metrics").send(&app).await.unwrap().text();
    assert!(
        metrics.contains("cart_outbox_pending_events 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_is_sent_before_the_relay_publishes() {
    let host = CapabilityHost::new(wasm_path("cart").unwrap()).unwrap();
    host.set_config("allow_insecure_user_header", "true");
    host.seed_product(ProductSeed::new("s", "p", "Thing", 300, 5));
    // A slow pipeline: if the response waited for the relay, it would arrive after the event.
    host.set_latency(Interface::Events, Duration::from_millis(1500));
    let r = support_add(&host).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    // The response is here and the event is not: the relay runs after the response.
    assert!(host.events("cart-events").is_empty());
    host.wait_idle().await;
    let events = host.events("cart-events");
    assert_eq!(events.len(), 1);
    let event: Value = serde_json::from_str(&events[0].value).unwrap();
    assert_eq!(event["type"], "cart.item.added");
    assert_eq!(events[0].key, "cart:s:u");
}

async fn support_add(host: &CapabilityHost) -> cart_tests::TestResponse {
    cart_tests::post_json(
        "/v1/stores/s/cart/items",
        &json!({"productId": "p", "quantity": 1}),
    )
    .header("x-user-id", "u")
    .send(host)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_publish_loses_nothing() {
    let host = CapabilityHost::new(wasm_path("cart").unwrap()).unwrap();
    host.set_config("allow_insecure_user_header", "true");
    host.set_config("admin_token", ADMIN_TOKEN);
    host.seed_product(ProductSeed::new("s", "p", "Thing", 300, 5));
    // The relay's publish traps: the instance dies after the commit, before delivery.
    host.fail_next(Interface::Events, 1, Fault::Trap("crash".into()));
    let r = support_add(&host).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    host.wait_idle().await;
    assert!(host.events("cart-events").is_empty());
    // The dead relay's lease blocks other relays of that cart only until its TTL.
    host.advance_clock(Duration::from_secs(20));
    // The event is still in the cart's outbox, and the sweep finds the cart through its marker.
    let sweep = request(http::Method::POST, "/admin/outbox/relay?force=true")
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send(&host)
        .await
        .unwrap();
    assert_eq!(sweep.status(), 200, "{}", sweep.text());
    assert_eq!(sweep.json()["published"], 1);
    let events = host.events("cart-events");
    assert_eq!(events.len(), 1);
    let event: Value = serde_json::from_str(&events[0].value).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["sequence"].as_u64()),
        (Some("cart.item.added"), Some(1))
    );
}

/// A loopback port with nothing listening (connection refused).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `count` valid mixed operations for users u0..u4, tracking what each cart holds.
async fn mixed_operations(
    app: &SpinApp,
    count: usize,
    seed: &mut u64,
    model: &mut BTreeMap<String, BTreeMap<String, u32>>,
    ops: &mut BTreeMap<String, u64>,
) {
    for _ in 0..count {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (*seed >> 33) as usize;
        let user = format!("u{}", r % 5);
        let product = format!("p{}", (r / 5) % 4);
        let lines = model.entry(user.clone()).or_default();
        let response = match (r / 20) % 6 {
            0..=2 => {
                *lines.entry(product.clone()).or_default() += 1;
                add(app, "s", &user, &product, 1).await
            }
            3 if lines.contains_key(&product) => {
                lines.insert(product.clone(), 3);
                set_qty(app, "s", &user, &product, 3).await
            }
            4 if lines.contains_key(&product) => {
                lines.remove(&product);
                remove(app, "s", &user, &product).await
            }
            5 => {
                lines.clear();
                request(http::Method::DELETE, &cart_path("s"))
                    .header("x-user-id", &user)
                    .send(app)
                    .await
                    .unwrap()
            }
            _ => {
                *lines.entry(product.clone()).or_default() += 1;
                add(app, "s", &user, &product, 1).await
            }
        };
        assert_eq!(
            response.status(),
            200,
            "{user} {product}: {}",
            response.text()
        );
        *ops.entry(user).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_operations_during_an_event_outage_lose_no_event() {
    let kv = KvStore::new();
    let healthy = app_sharing(&kv, &[]);
    for p in 0..4 {
        put_product(&healthy, "s", &format!("p{p}"), 100 + p, 1000).await;
    }
    let mut model = BTreeMap::new();
    let mut ops = BTreeMap::new();
    let mut seed = 7u64;

    // 5xx: the reference sink answers 503.
    let faults = put_json(
        "/events/admin/faults",
        &json!({"mode": "unavailable", "remaining": 100000}),
    )
    .send(&healthy)
    .await
    .unwrap();
    assert_eq!(faults.status(), 200, "{}", faults.text());
    mixed_operations(&healthy, 70, &mut seed, &mut model, &mut ops).await;

    // Timeout: an endpoint that never answers.
    let (hang_port, _hang) = hanging_endpoint();
    let hang_host = format!("http://127.0.0.1:{hang_port}");
    let hung = app_sharing(
        &kv,
        &[
            ("events_url", &format!("{hang_host}/events")),
            ("events_origin", &hang_host),
            ("events_timeout_ms", "300"),
        ],
    );
    mixed_operations(&hung, 65, &mut seed, &mut model, &mut ops).await;

    // Connection refused.
    let refused_host = format!("http://127.0.0.1:{}", closed_port());
    let refused = app_sharing(
        &kv,
        &[
            ("events_url", &format!("{refused_host}/events")),
            ("events_origin", &refused_host),
        ],
    );
    mixed_operations(&refused, 65, &mut seed, &mut model, &mut ops).await;
    healthy.wait_idle().await;
    hung.wait_idle().await;
    refused.wait_idle().await;
    assert_eq!(ops.values().sum::<u64>(), 200);

    // Nothing reached the pipeline, and the events are pending in the carts' outboxes.
    assert!(records(&healthy, "cart-events").await.is_empty());
    let pending = get("/metrics").send(&healthy).await.unwrap().text();
    assert!(
        pending.contains("cart_outbox_pending_events 200"),
        "{pending}"
    );

    // Recovery: the sink is healthy again and an admin sweep relays everything.
    put_json("/events/admin/faults", &json!({"mode": "none"}))
        .send(&healthy)
        .await
        .unwrap();
    for _ in 0..10 {
        let sweep = request(http::Method::POST, "/admin/outbox/relay?force=true")
            .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .send(&healthy)
            .await
            .unwrap();
        assert_eq!(sweep.status(), 200, "{}", sweep.text());
        if sweep.json()["stillPending"] == 0 && sweep.json()["failedCarts"] == 0 {
            break;
        }
    }
    healthy.wait_idle().await;
    let all = records(&healthy, "cart-events").await;
    let mut delivered = 0;
    for (user, count) in &ops {
        let events = cart_events(&all, &format!("cart:s:{user}"));
        // At least once; after de-duplication by id exactly once, in per-cart order.
        let mut seen = BTreeSet::new();
        let unique: Vec<u64> = events
            .iter()
            .filter(|e| seen.insert(e["id"].as_str().unwrap().to_owned()))
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(
            unique,
            (1..=*count).collect::<Vec<_>>(),
            "{user}: zero lost, in order"
        );
        delivered += unique.len();
    }
    assert_eq!(delivered, 200);
    // The carts themselves are what the shoppers did.
    for (user, lines) in &model {
        let view = cart(&healthy, "s", user).await.json();
        let expected: BTreeMap<String, u64> = lines
            .iter()
            .map(|(p, q)| (p.clone(), u64::from(*q)))
            .collect();
        assert_eq!(support::lines(&view), expected, "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_rest_v3_and_retriable_record_errors() {
    // The v3 records API (Confluent Cloud), selected by a variable.
    let app = app_with(&[("events_api", "v3"), ("events_cluster_id", "lkc-test")]);
    put_product(&app, "s", "p", 100, 10).await;
    assert_eq!(add(&app, "s", "u", "p", 1).await.status(), 200);
    assert_eq!(set_qty(&app, "s", "u", "p", 2).await.status(), 200);
    app.wait_idle().await;
    let events = cart_events(&records(&app, "cart-events").await, "cart:s:u");
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["cart.item.added", "cart.item.updated"]);

    // v2 with HTTP 200 but a retriable per-record error (error_code 2): not acknowledged.
    let app = support::app();
    put_product(&app, "s", "p", 100, 10).await;
    put_json(
        "/events/admin/faults",
        &json!({"mode": "retriable-record-error", "remaining": 1000}),
    )
    .send(&app)
    .await
    .unwrap();
    assert_eq!(add(&app, "s", "u", "p", 1).await.status(), 200);
    app.wait_idle().await;
    assert!(records(&app, "cart-events").await.is_empty());
    let pending = get("/metrics").send(&app).await.unwrap().text();
    assert!(
        pending.contains("cart_outbox_pending_events 1"),
        "{pending}"
    );
    put_json("/events/admin/faults", &json!({"mode": "none"}))
        .send(&app)
        .await
        .unwrap();
    let sweep = admin_post(&app, "/admin/outbox/relay?force=true").await;
    assert_eq!(sweep.json()["published"], 1, "{}", sweep.text());
    assert_eq!(
        cart_events(&records(&app, "cart-events").await, "cart:s:u").len(),
        1
    );
}
