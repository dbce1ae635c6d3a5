//! Settings and states shoppers meet without asking: the breaker's half-open probe (one at a
//! time, a failed probe re-opens it), the bound on re-confirmations per read, the
//! `reservation_policy` override and guest hold lifetimes.

mod support;

use std::time::Duration;

use cart_tests::{post_json, request, Fault, Interface, Policy, ProductSeed};
use serde_json::{json, Value};
use support::*;

fn statuses(view: &Value) -> Vec<String> {
    view["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            l["reservation"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn breaker_state(host: &cart_tests::CapabilityHost) -> f64 {
    let text = metrics(host).await;
    metric(&text, "cart_inventory_breaker_state").expect("the breaker gauge")
}

/// The inventory fails until the breaker opens; after the open period one read's hold is the
/// probe (held at the host's door here) while another read makes no inventory call at all;
/// the failed probe re-opens the breaker; a later successful probe closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_half_open_breaker_lets_one_probe_through_and_a_failed_probe_reopens_it() {
    let host = cart_host_with(&[("breaker_min_volume", "2"), ("metrics_sample_every", "1")]);
    for p in ["a", "b", "c"] {
        put_product(&host, "s", p, 100, 100);
    }
    host.fail_always(Interface::Inventory, Fault::Unavailable("down".into()));
    // New lines cannot be priced while the inventory is down; existing lines degrade. Add
    // them first, with the inventory up for the lookups only.
    host.clear_all_faults();
    for p in ["a", "b", "c"] {
        assert_eq!(add(&host, "s", "u", p, 1).await.status(), 200);
    }
    host.wait_idle().await;
    host.fail_always(Interface::Inventory, Fault::Unavailable("down".into()));
    for i in 0..12 {
        let r = set_qty(&host, "s", "u", ["a", "b", "c"][i % 3], 2 + (i as i64 % 2)).await;
        assert_eq!(r.status(), 200, "{}", r.text());
        host.wait_idle().await;
        if breaker_state(&host).await == 2.0 {
            break;
        }
    }
    assert_eq!(breaker_state(&host).await, 2.0, "open");

    // Open: reads make no inventory call.
    host.reset_calls();
    assert_eq!(cart(&host, "s", "u").await.status(), 200);
    host.wait_idle().await;
    assert_eq!(host.calls(Interface::Inventory), 0);

    // Half-open: one probe at a time.
    host.advance_clock(Duration::from_secs(31));
    let probe = host.pause_next_call(Interface::Inventory, "reserve");
    let prober = tokio::spawn({
        let host = host.clone();
        async move { cart(&host, "s", "u").await }
    });
    probe.arrived().await;
    let other = cart(&host, "s", "u").await;
    assert_eq!(other.status(), 200);
    assert_eq!(
        host.calls(Interface::Inventory),
        0,
        "while the probe is out, nobody else calls the inventory"
    );
    probe.resume();
    assert_eq!(prober.await.expect("probe task").status(), 200);
    host.wait_idle().await;
    assert_eq!(
        host.calls_of(Interface::Inventory, "reserve"),
        1,
        "one probe"
    );
    assert_eq!(
        breaker_state(&host).await,
        2.0,
        "the failed probe re-opened it"
    );
    assert_eq!(cart(&host, "s", "u").await.status(), 200);
    host.wait_idle().await;
    assert_eq!(host.calls(Interface::Inventory), 1, "open again: no call");

    // After another open period a successful probe closes it; reads re-confirm the lines.
    host.clear_all_faults();
    host.advance_clock(Duration::from_secs(31));
    let view = cart(&host, "s", "u").await.json();
    host.wait_idle().await;
    assert_eq!(breaker_state(&host).await, 0.0, "closed");
    let view = if statuses(&view).iter().all(|s| s == "confirmed") {
        view
    } else {
        cart(&host, "s", "u").await.json()
    };
    assert!(statuses(&view).iter().all(|s| s == "confirmed"), "{view}");
}

/// Five lines left `unconfirmed` while the inventory was down: one read re-confirms at most
/// three of them (bounded work per request), the next read the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_reconfirms_at_most_three_lines() {
    // The breaker stays closed through the setup's failures (it is not what this is about).
    let host = cart_host_with(&[("breaker_min_volume", "1000")]);
    host.fail_next_calls_of(
        Interface::Inventory,
        "reserve",
        1_000,
        Fault::Unavailable("down".into()),
    );
    for i in 0..5 {
        put_product(&host, "s", &format!("p{i}"), 100, 100);
        let r = add(&host, "s", "u", &format!("p{i}"), 1).await;
        assert_eq!(r.status(), 200, "{}", r.text());
    }
    host.wait_idle().await;
    host.clear_all_faults();
    host.reset_calls();
    let first = cart(&host, "s", "u").await.json();
    host.wait_idle().await;
    assert_eq!(
        host.calls_of(Interface::Inventory, "reserve"),
        3,
        "bounded per read"
    );
    let confirmed = |view: &Value| statuses(view).iter().filter(|s| *s == "confirmed").count();
    assert_eq!(confirmed(&first), 3, "{first}");
    let second = cart(&host, "s", "u").await.json();
    host.wait_idle().await;
    assert_eq!(
        host.calls_of(Interface::Inventory, "reserve"),
        5,
        "the other two"
    );
    assert_eq!(confirmed(&second), 5, "{second}");
}

/// `reservation_policy = checkout` stops holding stock for every product; `reserve` holds even
/// a product whose own policy is checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reservation_policy_variable_overrides_each_products_policy() {
    let host = cart_host_with(&[("reservation_policy", "checkout")]);
    put_product(&host, "s", "p", 100, 10);
    let r = add(&host, "s", "u", "p", 2).await;
    assert_eq!(statuses(&r.json()), vec!["not_required"]);
    assert!(reservations(&host, "s", "p").is_empty());

    let host = cart_host_with(&[("reservation_policy", "reserve")]);
    host.seed_product(ProductSeed::new("s", "g", "Gift card", 2500, 10).policy(Policy::Checkout));
    let r = add(&host, "s", "u", "g", 1).await;
    assert_eq!(statuses(&r.json()), vec!["confirmed"]);
    assert_eq!(held_quantities(&host, "s", "g"), vec![1]);
}

/// A guest's holds last `guest_reservation_ttl_seconds` (300 by default), a signed-in
/// shopper's `reservation_ttl_seconds` (900).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_holds_are_shorter_than_a_shoppers() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    let now = host.now_ms();
    let user = add(&host, "s", "u", "p", 1).await.json();
    let user_expiry = user["lines"][0]["reservation"]["expiresAtMs"]
        .as_u64()
        .unwrap_or(0);
    let issued = request(http::Method::POST, "/v1/guest-tokens")
        .send(&host)
        .await
        .expect("guest token");
    let token = issued.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let guest = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 1}))
        .header("authorization", &format!("Bearer {token}"))
        .send(&host)
        .await
        .expect("guest add")
        .json();
    let guest_expiry = guest["lines"][0]["reservation"]["expiresAtMs"]
        .as_u64()
        .unwrap_or(0);
    let within = |expiry: u64, seconds: u64| {
        expiry >= now + seconds * 1000 && expiry <= now + seconds * 1000 + 10_000
    };
    assert!(
        within(user_expiry, 900),
        "user hold until {user_expiry}, now {now}"
    );
    assert!(
        within(guest_expiry, 300),
        "guest hold until {guest_expiry}, now {now}"
    );
}

/// The guest's own hold counts against the user's while both exist: a merge that fits the
/// stock once the guest's hold is given back takes the whole combined quantity; one that does
/// not takes what the stock allows. Either way no hold is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_short_of_stock_keeps_what_is_available_and_no_more() {
    // (stock after both carts were filled, merged quantity): 8 fits user 2 + guest 5 once the
    // guest's hold is given back; at 5 (stock lowered in the catalogue) only 5 can be held.
    for (stock_now, merged) in [(8, 7), (5, 5)] {
        let host = cart_host();
        put_product(&host, "s", "p", 100, 8);
        assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
        let token = guest_token(&host).await;
        guest_add(&host, &token, "p", 5).await;
        host.set_stock("s", "p", stock_now);
        let r = merge(&host, &token, "u").await;
        assert_eq!(r.status(), 200, "{}", r.text());
        host.wait_idle().await;
        assert_eq!(
            lines(&r.json()),
            [("p".to_owned(), merged)].into(),
            "stock {stock_now}"
        );
        assert_eq!(
            held_quantities(&host, "s", "p"),
            vec![merged],
            "stock {stock_now}"
        );
    }
}

/// Headers beyond `max_header_bytes` are refused with 431 before anything runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused_and_change_nothing() {
    let host = cart_host_with(&[("max_header_bytes", "600")]);
    put_product(&host, "s", "p", 100, 10);
    host.wait_idle().await;
    let before = state_snapshot(&host);
    let big = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 1}))
        .header("x-user-id", "u")
        .header("x-padding", &"a".repeat(1_000))
        .send(&host)
        .await
        .expect("send");
    assert_problem(&big, 431, "headers-too-large");
    assert_eq!(big.json()["maxBytes"], 600);
    host.wait_idle().await;
    assert_eq!(
        changed_keys(&before, &state_snapshot(&host)),
        Vec::<String>::new()
    );
    let small = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 1}))
        .header("x-user-id", "u")
        .header("x-padding", &"a".repeat(300))
        .send(&host)
        .await
        .expect("send");
    assert_eq!(small.status(), 200, "{}", small.text());
}
