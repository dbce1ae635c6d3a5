//! Domain events on real `spin up`: CloudEvents through the outbox to the reference Kafka REST
//! sink in per-cart order (REST Proxy v2 and the v3 records API), and no event lost when the
//! sink fails: down across a restart, answering 503, hanging, refusing connections, or refusing
//! records with a retriable error inside an HTTP 200. The failing cases go through the adapter's
//! real outbound HTTP client on loopback, not only through service chaining.

use std::collections::BTreeSet;

use cart_e2e::api::{
    add, cart_events, cart_path, metric, metrics, pending_events, put_product, records,
    relay_sweep, sequences, set_quantity, sink_fault,
};
use cart_e2e::loopback::{ClosedPort, HungServer, RecordingProxy};
use cart_e2e::{eventually, in_parallel, spin_cli, Client, SpinUp};
use serde_json::{json, Value};

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
    let up = SpinUp::start(spin, "events", &[PATIENT_INVENTORY, EXACT_METRICS]);
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
        EXACT_METRICS,
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
        &[
            ("inventory_timeout_ms", "60000"),
            ("admin_token", ADMIN),
            EXACT_METRICS,
        ],
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

// ---- Sink failures through the adapter's HTTP client ------------------------------------------

/// Two shoppers, three changes each (add a, add b, set a): six events.
const FEW_USERS: [&str; 2] = ["fay", "gus"];
const FEW_TYPES: [&str; 3] = ["cart.item.added", "cart.item.added", "cart.item.updated"];

fn few_changes(c: &Client, store: &str, user: &str) {
    add(c, store, user, "a", 1).expect(200);
    add(c, store, user, "b", 1).expect(200);
    set_quantity(c, store, user, "a", 3).expect(200);
}

/// Every change answers 200 while the sink fails; its events wait in the outboxes and none
/// reaches the sink.
fn changes_succeed_and_events_wait(c: &Client, store: &str) {
    stock(c, store);
    in_parallel(FEW_USERS.len(), |i| few_changes(c, store, FEW_USERS[i]));
    let pending = (FEW_USERS.len() * FEW_TYPES.len()) as f64;
    eventually(60, "every event pending in the outboxes", || {
        (pending_events(c) == Some(pending)).then_some(())
    });
    let all = records(c, "cart-events");
    for user in FEW_USERS {
        assert!(cart_events(&all, store, user).is_empty(), "{user}");
    }
}

/// The forced admin sweep, repeated until nothing is pending, delivers every event: each cart's
/// sequence 1..=3 in order, with the types of its changes.
fn sweep_delivers_every_event(c: &Client, store: &str) {
    eventually(120, "the admin sweep empties every outbox", || {
        relay_sweep(c, ADMIN);
        (pending_events(c) == Some(0.0)).then_some(())
    });
    let all = records(c, "cart-events");
    for user in FEW_USERS {
        let events = first_arrivals(cart_events(&all, store, user));
        assert_eq!(sequences(&events), vec![1, 2, 3], "{user}");
        let types: Vec<&str> = events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(types, FEW_TYPES, "{user}");
    }
}

const PATIENT_INVENTORY: (&str, &str) = ("inventory_timeout_ms", "60000");
/// These tests read exact outbox counts: every event counted (the shipped `spin.toml` samples
/// one in 16; see `metrics::add_for_event`).
const EXACT_METRICS: (&str, &str) = ("metrics_sample_every", "1");

/// The reference sink answers 503 (its fault switch) to every produce request.
#[test]
fn events_wait_while_the_sink_answers_503_and_the_sweep_delivers_them() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "sink-503",
        &[PATIENT_INVENTORY, ("admin_token", ADMIN), EXACT_METRICS],
    );
    let c = up.client().clone();
    sink_fault(&c, &json!({"mode": "unavailable"}));
    changes_succeed_and_events_wait(&c, "s5");
    sink_fault(&c, &json!({"mode": "none"}));
    sweep_delivers_every_event(&c, "s5");
}

/// The sink at `base` (an origin on loopback) fails every publish; after a restart on the same
/// state directory with the default sink, the sweep delivers everything. `while_down` runs
/// once the events are pending.
fn events_survive_an_unreachable_sink(label: &str, base: &str, while_down: impl FnOnce()) {
    let Some(spin) = spin_cli() else { return };
    let events_url = format!("{base}/events");
    let down = [
        PATIENT_INVENTORY,
        ("admin_token", ADMIN),
        EXACT_METRICS,
        ("events_url", events_url.as_str()),
        ("events_origin", base),
        ("events_timeout_ms", "300"),
    ];
    let up = SpinUp::start(spin, label, &down);
    let c = up.client().clone();
    changes_succeed_and_events_wait(&c, "su");
    while_down();
    let up = up.restart(
        spin,
        &[PATIENT_INVENTORY, ("admin_token", ADMIN), EXACT_METRICS],
    );
    sweep_delivers_every_event(up.client(), "su");
}

/// A sink that accepts the connection and never answers: each publish ends at
/// `events_timeout_ms`, and the request that caused it was already answered.
#[test]
fn events_wait_while_the_sink_hangs_and_the_sweep_delivers_them_after_a_restart() {
    let hung = HungServer::start();
    events_survive_an_unreachable_sink("sink-hung", &hung.url(), || {
        eventually(30, "the relay to have called the hung sink", || {
            (hung.accepted() >= 1).then_some(())
        });
    });
}

/// A loopback port nobody listens on: every publish is refused at connect.
#[test]
fn events_wait_while_the_sink_refuses_connections_and_the_sweep_delivers_them_after_a_restart() {
    // Bound and not listening for the whole test: refused, and nobody else can take it.
    let closed = ClosedPort::reserve();
    events_survive_an_unreachable_sink("sink-closed", &closed.url(), || {
        assert!(
            std::net::TcpStream::connect(closed.url().trim_start_matches("http://")).is_err(),
            "the reserved port refuses connections"
        );
    });
}

// ---- Kafka REST v3 ----------------------------------------------------------------------------

/// `events_api=v3`: one `POST {events_url}/kafka/v3/clusters/{cluster}/topics/{topic}/records`
/// per event. The app reaches the reference sink through a recording proxy on loopback, so the
/// test sees the dialect on the wire as well as the CloudEvents in the sink. A record refused
/// with a retriable `error_code` inside an HTTP 200 answer stays pending until the sweep
/// publishes it.
#[test]
fn v3_records_api_delivers_cloudevents_and_retries_a_retriable_record_error() {
    let Some(spin) = spin_cli() else { return };
    let proxy = RecordingProxy::start();
    let base = proxy.url();
    let events_url = format!("{base}/events");
    let up = SpinUp::start(
        spin,
        "events-v3",
        &[
            PATIENT_INVENTORY,
            ("admin_token", ADMIN),
            EXACT_METRICS,
            ("events_api", "v3"),
            ("events_cluster_id", "lkc-test"),
            ("events_url", events_url.as_str()),
            ("events_origin", base.as_str()),
        ],
    );
    proxy.forward_to(&up.base_url());
    let c = up.client().clone();
    stock(&c, "v3");
    in_parallel(2, |i| shop(&c, "v3", &format!("v3shopper{i}")));
    for i in 0..2 {
        let user = format!("v3shopper{i}");
        let events = eventually(60, "every event of the cart in the sink", || {
            let events = first_arrivals(cart_events(&records(&c, "cart-events"), "v3", &user));
            (events.len() >= 8).then_some(events)
        });
        assert_shop_events(&events, "v3", &user);
    }
    eventually(60, "nothing pending once delivered", || {
        (pending_events(&c) == Some(0.0)).then_some(())
    });
    let v3_produce = "POST /events/kafka/v3/clusters/lkc-test/topics/cart-events/records";
    let sent = proxy.requests();
    assert!(sent.len() >= 16, "one request per event: {sent:?}");
    assert!(sent.iter().all(|r| r == v3_produce), "{sent:?}");

    // Every record is now answered `{"error_code": 503, ...}` with HTTP 200.
    sink_fault(&c, &json!({"mode": "retriable-record-error"}));
    let before = proxy.requests().len();
    add(&c, "v3", "late", "a", 1).expect(200);
    eventually(60, "the relay tried to publish the new event", || {
        (proxy.requests().len() > before).then_some(())
    });
    eventually(60, "the refused event pending", || {
        (pending_events(&c) == Some(1.0)).then_some(())
    });
    assert!(cart_events(&records(&c, "cart-events"), "v3", "late").is_empty());

    sink_fault(&c, &json!({"mode": "none"}));
    eventually(120, "the admin sweep publishes it", || {
        relay_sweep(&c, ADMIN);
        (pending_events(&c) == Some(0.0)).then_some(())
    });
    let late = first_arrivals(cart_events(&records(&c, "cart-events"), "v3", "late"));
    assert_eq!(sequences(&late), vec![1]);
    assert_eq!(late[0]["type"], "cart.item.added");
}

// ---- events_auth --------------------------------------------------------------------------------

fn borrowed(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `events_auth` puts the pipeline's own credentials on every produce request in place of the
/// reference sink's token: `basic` (`events_username`, `events_password`) as an RFC 7617
/// `Basic` header, then (after a restart) `bearer` (`events_token`). Read on the wire by a
/// recording proxy standing in for the pipeline; it forwards nothing and answers 503, so the
/// events wait in the outbox and the relay keeps trying, each try with the same credentials.
#[test]
fn events_auth_sends_the_pipelines_credentials_instead_of_the_reference_token() {
    let Some(spin) = spin_cli() else { return };
    let proxy = RecordingProxy::start();
    let base = proxy.url();
    let events_url = format!("{base}/events");
    let with = |auth: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        let mut vars = vec![
            PATIENT_INVENTORY,
            ("admin_token", ADMIN),
            ("events_url", events_url.as_str()),
            ("events_origin", base.as_str()),
        ];
        vars.extend_from_slice(auth);
        vars.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let basic = with(&[
        ("events_auth", "basic"),
        ("events_username", "Aladdin"),
        ("events_password", "open sesame"),
    ]);
    let bearer = with(&[("events_auth", "bearer"), ("events_token", "pipeline-t0k")]);

    let up = SpinUp::start(spin, "events-auth", &borrowed(&basic));
    stock(up.client(), "ea");
    add(up.client(), "ea", "ann", "a", 1).expect(200);
    let sent = eventually(60, "the relay tried to publish", || {
        let sent = proxy.header_of_each("authorization");
        (!sent.is_empty()).then_some(sent)
    });
    for (request, authorization) in &sent {
        assert_eq!(
            authorization.as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            "{request}"
        );
    }

    let up = up.restart(spin, &borrowed(&bearer));
    let before = proxy.requests().len();
    add(up.client(), "ea", "bob", "a", 1).expect(200);
    let sent = eventually(60, "the relay tried to publish again", || {
        let sent = proxy.header_of_each("authorization");
        (sent.len() > before).then_some(sent)
    });
    for (request, authorization) in &sent[before..] {
        assert_eq!(
            authorization.as_deref(),
            Some("Bearer pipeline-t0k"),
            "{request}"
        );
    }
}
