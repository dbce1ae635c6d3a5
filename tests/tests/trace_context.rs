//! Traces across services: a client's W3C `traceparent` is continued on the inventory and
//! event calls the change causes and on each event of the change; a request without one
//! starts a trace of its own.

mod support;

use cart_tests::{post_json, Interface};
use serde_json::json;
use support::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_trace_reaches_the_inventory_and_every_event_of_its_change() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    let added = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 2}))
        .header("x-user-id", "u")
        .header("traceparent", CLIENT_PARENT)
        .header("tracestate", "congo=t61rcWkgMzE")
        .send(&host)
        .await
        .expect("add");
    assert_eq!(added.status(), 200, "{}", added.text());
    host.wait_idle().await;

    let calls = host.traced_calls();
    let reserve = calls
        .iter()
        .find(|c| c.interface == Interface::Inventory && c.function == "reserve")
        .expect("the add reserved");
    let sent = reserve
        .traceparent
        .as_deref()
        .expect("a traceparent on the reserve");
    assert_eq!(trace_id(sent), TRACE_ID);
    assert!(
        !sent.contains("00f067aa0ba902b7"),
        "the cart is the parent of its calls, not the client's span: {sent}"
    );
    let publish = calls
        .iter()
        .find(|c| c.interface == Interface::Events)
        .expect("the relay published");
    assert_eq!(publish.traceparent.as_deref(), Some(sent));

    let events = cart_events(&host, "cart-events", "s", "u");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["traceparent"], sent);
    assert_eq!(events[0]["tracestate"], "congo=t61rcWkgMzE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_traceparent_each_request_starts_its_own_trace() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    let bad = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 1}))
        .header("x-user-id", "u")
        .header("traceparent", "00-not-a-trace-01")
        .send(&host)
        .await
        .expect("add");
    assert_eq!(bad.status(), 200, "a bad traceparent never fails a request");
    host.wait_idle().await;
    let events = cart_events(&host, "cart-events", "s", "u");
    assert_eq!(events.len(), 2);
    let ids: Vec<&str> = events
        .iter()
        .map(|e| trace_id(e["traceparent"].as_str().expect("a traceparent")))
        .collect();
    assert!(
        ids.iter().all(|id| id.len() == 32 && *id != "0".repeat(32)),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1], "two requests, two traces");
}
