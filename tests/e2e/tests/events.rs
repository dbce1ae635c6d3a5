//! Domain events on real `spin up`: CloudEvents through the outbox to the reference Kafka REST
//! sink in per-cart order, and no event lost when the sink is down across a restart.

use std::collections::BTreeSet;

use cart_e2e::api::{
    add, cart_events, cart_path, metric, metrics, put_product, records, sequences, set_quantity,
};
use cart_e2e::{eventually, in_parallel, spin_cli, Client, SpinUp};
use serde_json::Value;

const ADMIN: &str = "e2e-admin-token";

/// Each shopper's changes: add, add more, set, add another, remove it, clear, add, checkout.
fn shop(c: &Client, store: &str, user: &str) {
    add(c, store, user, "a", 2).expect(200);
    add(c, store, user, "a", 1).expect(200);
    set_quantity(c, store, user, "a", 5).expect(200);
    add(c, store, user, "b", 1).expect(200);
    c.delete(&format!("{}/items/b", cart_path(store)))
        .user(user)
        .send()
        .expect(200);
    c.delete(&cart_path(store)).user(user).send().expect(200);
    add(c, store, user, "b", 2).expect(200);
    c.post(&format!("{}/checkout", cart_path(store)))
        .user(user)
        .send()
        .expect(200);
}

const SHOP_TYPES: [&str; 8] = [
    "cart.item.added",
    "cart.item.added",
    "cart.item.updated",
    "cart.item.added",
    "cart.item.removed",
    "cart.cleared",
    "cart.item.added",
    "cart.checked_out",
];

/// The cart's events once each (at-least-once delivery may repeat an id), in arrival order.
fn first_arrivals(events: Vec<Value>) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    events
        .into_iter()
        .filter(|e| seen.insert(e["id"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn assert_shop_events(events: &[Value], store: &str, user: &str) {
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(types, SHOP_TYPES, "{user}");
    assert_eq!(sequences(events), (1..=8).collect::<Vec<u64>>(), "{user}");
    for e in events {
        assert_eq!(e["specversion"], "1.0", "{e}");
        assert_eq!(e["source"], format!("/edge-cart/stores/{store}"), "{e}");
        assert_eq!(e["subject"], format!("carts/{user}"), "{e}");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    assert_eq!(events[2]["data"]["quantity"], 5);
    assert_eq!(events[7]["data"]["subtotal"]["amount"], 2 * 250);
}

fn stock(c: &Client, store: &str) {
    put_product(c, store, "a", 100, 1000);
    put_product(c, store, "b", 250, 1000);
}

/// Six shoppers change their carts at the same time; each cart's events arrive in the sink in
/// the order of its changes, numbered 1..=8 without gaps, as CloudEvents 1.0.
#[test]
fn events_reach_the_sink_as_cloudevents_in_per_cart_order() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(spin, "events", &[("inventory_timeout_ms", "60000")]);
    let c = up.client().clone();
    stock(&c, "ev");
    in_parallel(6, |i| shop(&c, "ev", &format!("shopper{i}")));
    for i in 0..6 {
        let user = format!("shopper{i}");
        let events = eventually(60, "every event of the cart in the sink", || {
            let events = first_arrivals(cart_events(&records(&c, "cart-events"), "ev", &user));
            (events.len() >= 8).then_some(events)
        });
        assert_shop_events(&events, "ev", &user);
    }
}

/// With the sink unreachable every change still succeeds and its events wait in the outbox;
/// after a restart on the same state directory with the sink back, the admin relay sweep
/// delivers every event, each cart's sequence complete and in order.
#[test]
fn events_pending_while_the_sink_is_down_are_delivered_after_a_restart() {
    let Some(spin) = spin_cli() else { return };
    let down = [
        ("inventory_timeout_ms", "60000"),
        ("admin_token", ADMIN),
        // A service-chaining host that names no component: every publish fails at once.
        ("events_url", "http://gone.spin.internal/events"),
    ];
    let up = SpinUp::start(spin, "sink-down", &down);
    let c = up.client().clone();
    stock(&c, "sd");
    in_parallel(3, |i| shop(&c, "sd", &format!("s{i}")));
    let all = records(&c, "cart-events");
    for i in 0..3 {
        assert!(cart_events(&all, "sd", &format!("s{i}")).is_empty());
    }
    // The gauge is updated after each response too, so it settles rather than jumps.
    eventually(30, "3 carts × 8 events pending in their outboxes", || {
        (metric(&metrics(&c), "cart_outbox_pending_events") == Some(24.0)).then_some(())
    });

    let up = up.restart(
        spin,
        &[("inventory_timeout_ms", "60000"), ("admin_token", ADMIN)],
    );
    let c = up.client().clone();
    eventually(60, "the admin sweep empties every outbox", || {
        c.post("/admin/outbox/relay?force=true")
            .bearer(ADMIN)
            .send()
            .expect(200);
        (metric(&metrics(&c), "cart_outbox_pending_events") == Some(0.0)).then_some(())
    });
    let all = records(&c, "cart-events");
    for i in 0..3 {
        let user = format!("s{i}");
        let events = first_arrivals(cart_events(&all, "sd", &user));
        assert_shop_events(&events, "sd", &user);
    }
}
