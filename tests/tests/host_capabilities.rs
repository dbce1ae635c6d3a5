//! `CapabilityHost`: a cart-logic-shaped component (`cap_probe` fixture, importing the six
//! `storefront:cart` interfaces) over the in-memory capabilities, with faults and latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cart_tests::{
    ensure_fixtures, fixture_path, get, CapabilityHost, CapabilityOptions, Fault, Interface,
    Policy, ProductSeed,
};
use serde_json::{json, Value};

fn host() -> Arc<CapabilityHost> {
    ensure_fixtures().expect("test fixtures build");
    CapabilityHost::new(fixture_path("cap_probe")).expect("cap_probe loads")
}

async fn call(host: &CapabilityHost, path: &str) -> Value {
    let r = get(path).send(host).await.expect("handled");
    assert_eq!(
        r.status(),
        200,
        "{path}: {} {}",
        r.text(),
        host.guest_output()
    );
    r.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_version_and_guard_the_head() {
    let h = host();
    assert_eq!(
        call(&h, "/doc-cas?key=c&expected=0&body=one").await["ok"],
        1
    );
    assert_eq!(
        call(&h, "/doc-cas?key=c&expected=0&body=dup").await["error"],
        "Conflict(1)"
    );
    assert_eq!(
        call(&h, "/doc-cas?key=c&expected=1&body=two").await["ok"],
        2
    );
    assert_eq!(
        call(&h, "/doc-head?key=c").await["ok"],
        json!({"version": 2, "body": "two"})
    );
    assert_eq!(call(&h, "/doc-head?key=none").await["ok"], Value::Null);
    assert_eq!(h.document("c"), (2, b"two".to_vec()));
    assert_eq!(h.calls(Interface::Documents), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_reserves_absolute_quantities_against_other_holds() {
    let h = host();
    h.seed_product(ProductSeed::new("s1", "p1", "Kettle", 2599, 5).quantity_rules(1, Some(4), 1));
    h.seed_product(ProductSeed::new("s1", "p2", "Beans", 900, 50).policy(Policy::Checkout));
    let p = call(&h, "/inv-product?product=p1").await["ok"].clone();
    assert_eq!(
        p,
        json!({"title": "Kettle", "price": 2599, "currency": "EUR", "available": 5,
        "policy": "Reserve", "min": 1, "max": 4, "step": 1})
    );
    assert_eq!(
        call(&h, "/inv-product?product=p2").await["ok"]["policy"],
        "Checkout"
    );
    assert_eq!(
        call(&h, "/inv-product?product=nope").await["error"],
        "ProductNotFound"
    );
    assert_eq!(
        call(&h, "/inv-reserve?product=p1&rid=a&qty=3&ttl=60000").await["ok"]["qty"],
        3
    );
    assert_eq!(
        call(&h, "/inv-reserve?product=p1&rid=a&qty=3&ttl=60000").await["ok"]["qty"],
        3
    );
    assert_eq!(
        call(&h, "/inv-reserve?product=p1&rid=b&qty=3&ttl=60000").await["error"],
        "InsufficientStock(2)"
    );
    assert!(
        call(&h, "/inv-reserve?product=p1&rid=b&qty=9&ttl=60000").await["error"]
            .as_str()
            .unwrap()
            .starts_with("Rejected")
    );
    assert_eq!(h.reserved_quantity("s1", "p1"), 3);
    assert_eq!(call(&h, "/inv-commit?rids=a").await["ok"], true);
    assert_eq!(h.product("s1", "p1").unwrap().seed.stock, 2);
    assert_eq!(call(&h, "/inv-release?rid=unknown").await["ok"], true);
    assert_eq!(h.calls_of(Interface::Inventory, "reserve"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn reservations_expire_with_the_capability_clock() {
    let h = host();
    h.seed_product(ProductSeed::new("s1", "p1", "Mug", 500, 2));
    call(&h, "/inv-reserve?product=p1&rid=a&qty=2&ttl=1000").await;
    assert_eq!(
        call(&h, "/inv-product?product=p1").await["ok"]["available"],
        0
    );
    h.advance_clock(Duration::from_secs(2));
    assert_eq!(
        call(&h, "/inv-product?product=p1").await["ok"]["available"],
        2
    );
    assert!(call(&h, "/inv-commit?rids=a").await["error"]
        .as_str()
        .unwrap()
        .contains("expired"));
    assert!(h.reservations("s1")[0].expired);
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_kv_events_and_config() {
    let h = host();
    let lease = call(&h, "/lock-acquire?key=l&ttl=30000").await["ok"].clone();
    assert_eq!(lease["ttl_ms"], 30000);
    assert_eq!(
        call(&h, "/lock-acquire?key=l&ttl=30000").await["ok"],
        Value::Null
    );
    assert_eq!(
        call(&h, "/lock-release?key=l&token=wrong").await["ok"],
        false
    );
    let token = lease["token"].as_str().unwrap();
    assert_eq!(
        call(&h, &format!("/lock-release?key=l&token={token}")).await["ok"],
        true
    );

    assert_eq!(call(&h, "/kv-incr?key=n&delta=4").await["ok"], 4);
    assert_eq!(h.kv_get("n"), Some(4i64.to_le_bytes().to_vec()));
    call(&h, "/kv-set?key=a&value=x").await;
    assert_eq!(call(&h, "/kv-get?key=a").await["ok"], "x");
    assert!(call(&h, "/kv-incr?key=a&delta=1").await["error"]
        .as_str()
        .unwrap()
        .starts_with("Invalid"));

    assert_eq!(
        call(&h, "/publish?topic=cart-events&key=c1&values=e1,e2").await["ok"],
        2
    );
    let events = h.events("cart-events");
    assert_eq!(
        (
            events.len(),
            events[1].value.as_str(),
            events[0].key.as_str()
        ),
        (2, "e2", "c1")
    );

    assert_eq!(call(&h, "/config?name=max_lines").await["ok"], Value::Null);
    h.set_config("max_lines", "100");
    assert_eq!(call(&h, "/config?name=max_lines").await["ok"], "100");
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_fail_the_next_calls_then_clear() {
    let h = host();
    h.seed_product(ProductSeed::new("s1", "p1", "Kettle", 2599, 5));
    h.fail_next(
        Interface::Inventory,
        2,
        Fault::Unavailable("inventory down".into()),
    );
    for _ in 0..2 {
        assert_eq!(
            call(&h, "/inv-product?product=p1").await["error"],
            "Unavailable(\"inventory down\")"
        );
    }
    assert_eq!(
        call(&h, "/inv-product?product=p1").await["ok"]["available"],
        5
    );

    h.fail_next_calls_of(
        Interface::Inventory,
        "reserve",
        1,
        Fault::Rejected("no".into()),
    );
    assert_eq!(
        call(&h, "/inv-product?product=p1").await["ok"]["available"],
        5
    );
    assert_eq!(
        call(&h, "/inv-reserve?product=p1&qty=1&ttl=1000").await["error"],
        "Rejected(\"no\")"
    );

    h.fail_always(Interface::Documents, Fault::Unavailable("db".into()));
    for _ in 0..3 {
        assert_eq!(
            call(&h, "/doc-head?key=c").await["error"],
            "Unavailable(\"db\")"
        );
    }
    assert_eq!(
        call(&h, "/doc-cas?key=c&expected=0&body=x").await["error"],
        "Store(Unavailable(\"db\"))"
    );
    h.clear_faults(Interface::Documents);
    assert_eq!(call(&h, "/doc-head?key=c").await["ok"], Value::Null);

    h.fail_next(Interface::Events, 1, Fault::PartialAck(1));
    assert_eq!(call(&h, "/publish?topic=t&values=a,b,c").await["ok"], 1);
    assert_eq!(
        h.events("t").len(),
        1,
        "only acknowledged records are stored"
    );
    h.fail_next(Interface::Events, 1, Fault::Unavailable("broker".into()));
    assert_eq!(
        call(&h, "/publish?topic=t&values=a").await["error"],
        "Retriable(\"broker\")"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_fault_fails_the_component_with_500() {
    let h = host();
    h.fail_next(
        Interface::Locks,
        1,
        Fault::Trap("lock backend exploded".into()),
    );
    let r = get("/lock-acquire?key=l&ttl=10").send(&h).await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.bytes().is_empty());
    assert!(
        h.guest_output().contains("lock backend exploded"),
        "{}",
        h.guest_output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_is_added_per_call() {
    let h = host();
    h.set_latency(Interface::Kv, Duration::from_millis(150));
    let started = Instant::now();
    call(&h, "/kv-get?key=a").await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    // Only the lower bound is asserted: an upper bound on wall-clock time is a flaky test on a
    // loaded machine. That the latency is gone again is read back from the host instead.
    h.set_latency(Interface::Kv, Duration::ZERO);
    assert_eq!(h.state().latency(Interface::Kv), Duration::ZERO);
    assert_eq!(call(&h, "/kv-get?key=a").await["ok"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_and_spin_headers_follow_the_manifest_shape() {
    ensure_fixtures().unwrap();
    let h = CapabilityHost::with_options(
        fixture_path("cap_probe"),
        CapabilityOptions {
            routes: vec!["/v1/...".into()],
            ..CapabilityOptions::default()
        },
    )
    .unwrap();
    h.set_config("x", "1");
    assert_eq!(call(&h, "/v1/config?name=x").await["ok"], "1");
    let r = get("/other").send(&h).await.unwrap();
    assert_eq!((r.status(), r.bytes().len()), (404, 0));
}
