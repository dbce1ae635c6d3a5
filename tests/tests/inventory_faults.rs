//! Inventory that degrades gracefully: the circuit breaker, timeouts, the reservation lifecycle,
//! the product cache and checkout. The compiled cart component over the capability host, whose
//! in-memory inventory stands in for the reference service and fails, stalls or changes stock on
//! demand; the host's clock (the cart's wall clock too) is moved forward instead of sleeping.
//! Inventory down and back on real `spin up` is `tests/e2e/tests/inventory_down.rs`.

mod support;

use std::time::Duration;

use cart_tests::{Fault, Interface, Policy, ProductSeed};
use serde_json::{json, Value};
use support::*;

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
    // The breaker stays open for a minute of the host's clock, however slowly the machine
    // serves the requests below; the test ends the open period by moving the clock.
    let host = cart_host_with(&[
        ("breaker_min_volume", "5"),
        ("breaker_open_ms", "60000"),
        ("product_cache_ttl_ms", "600000"),
    ]);
    for i in 0..10 {
        host.seed_product(ProductSeed::new("s", &format!("p{i}"), "Thing", 100, 50));
        assert_eq!(
            add(&host, "s", "u", &format!("p{i}"), 1).await.status(),
            200
        );
    }
    host.wait_idle().await;

    // Inventory down: every call fails.
    host.fail_always(Interface::Inventory, Fault::Unavailable("down".into()));
    host.reset_calls();
    for i in 0..30 {
        let r = set_qty(&host, "s", "u", &format!("p{}", i % 10), 2 + i / 10).await;
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
    let text = metrics(&host).await;
    assert_eq!(
        metric(&text, "cart_inventory_breaker_state"),
        Some(2.0),
        "{text}"
    );
    let short_circuits = metric(&text, "cart_inventory_short_circuits_total").unwrap_or(0.0);
    assert!(short_circuits >= 10.0, "{text}");

    // Recovery: after the open period one probe goes through and closes the breaker; reads
    // re-confirm the unconfirmed lines (at most 3 per request).
    host.clear_all_faults();
    host.advance_clock(Duration::from_secs(61));
    let mut view = cart(&host, "s", "u").await.json();
    for _ in 0..6 {
        if statuses(&view).iter().all(|s| s == "confirmed") {
            break;
        }
        view = cart(&host, "s", "u").await.json();
    }
    assert!(statuses(&view).iter().all(|s| s == "confirmed"), "{view}");
    for i in 0..10 {
        assert_eq!(held_quantities(&host, "s", &format!("p{i}")), vec![4]);
    }
    let text = metrics(&host).await;
    assert_eq!(
        metric(&text, "cart_inventory_breaker_state"),
        Some(0.0),
        "{text}"
    );
}

/// A hung inventory as the adapter reports it: each call takes its whole timeout, then fails as
/// unavailable. Ten such calls open the breaker, which then keeps every request away from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_inventory_times_out_and_trips_the_breaker() {
    let host = cart_host_with(&[("breaker_min_volume", "3")]);
    for i in 0..5 {
        put_product(&host, "s", &format!("p{i}"), 100, 50);
        assert_eq!(
            add(&host, "s", "u", &format!("p{i}"), 1).await.status(),
            200
        );
    }
    host.wait_idle().await;
    host.set_latency(Interface::Inventory, Duration::from_millis(200));
    host.fail_always(
        Interface::Inventory,
        Fault::Unavailable("no answer within inventory_timeout_ms (200 ms)".into()),
    );
    host.reset_calls();
    for i in 0..16 {
        let r = set_qty(&host, "s", "u", &format!("p{}", i % 5), 2).await;
        assert_eq!(r.status(), 200, "{}", r.text());
    }
    host.wait_idle().await;
    // The window holds the warm-up's 10 successes (5 lookups, 5 holds): 10 calls time out,
    // then the breaker keeps the remaining 6 requests away from the hung inventory.
    assert_eq!(
        host.calls(Interface::Inventory),
        10,
        "{:?}",
        host.call_counts()
    );
    let view = cart(&host, "s", "u").await.json();
    assert_eq!(
        lines(&view).values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2, 2, 2]
    );
    assert!(statuses(&view).iter().all(|s| s == "unconfirmed"), "{view}");
    assert_eq!(
        host.calls(Interface::Inventory),
        10,
        "the open breaker keeps reads away too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_are_reconfirmed_on_read_and_orphans_are_swept() {
    // The default 15-minute hold, ended by moving the host's clock: a re-confirmed hold then
    // outlives the rest of the test however slowly the machine runs it (a 1 s hold could
    // lapse again in real time before the assertions below).
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    put_product(&host, "s", "q", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    // The add releases its line lease after its response; a read re-confirms a line only
    // under that lease (taken without waiting), so let the add finish first.
    host.wait_idle().await;
    host.advance_clock(Duration::from_secs(901));
    // Expired holds no longer count against stock.
    assert!(reservations(&host, "s", "p").is_empty());
    assert_eq!(stock_and_available(&host, "s", "p"), (10, 10));
    // Reading the cart re-confirms the line (inventory is healthy).
    let view = cart(&host, "s", "u").await.json();
    assert_eq!(view["lines"][0]["reservation"]["status"], "confirmed");
    assert_eq!(reservations(&host, "s", "p").values().sum::<u64>(), 2);

    // An orphan: a hold of u's with no cart line behind it.
    host.inv_reserve("s", "q", "u~q~0", 3, 600_000).unwrap();
    let sweep = admin_post(&host, "/admin/reservations/sweep?storeId=s").await;
    assert_eq!(sweep.status(), 200, "{}", sweep.text());
    assert_eq!(sweep.json()["released"], 1);
    assert!(reservations(&host, "s", "q").is_empty());
    assert_eq!(
        reservations(&host, "s", "p").values().sum::<u64>(),
        2,
        "real holds stay"
    );
}

/// A stale product record and a stampede: the first request takes the refresh lease and its
/// fetch is held at the host's door (a pause point), so every other request of the stampede
/// certainly arrives while the refresh is out. Each serves the stale record without asking the
/// inventory; when the refresh lands, one fetch was made in all. Without the refresh lease
/// each request of the burst fetches (20 fetches); the order is decided here, not by timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stampede_on_a_stale_product_record_makes_one_fetch() {
    // A minute of freshness (±10% jitter): once refreshed, the record stays fresh for the
    // whole stampede however slowly the machine serves it, so a second fetch is a real bug.
    let host = cart_host_with(&[("product_cache_ttl_ms", "60000")]);
    host.seed_product(ProductSeed::new("s", "p", "Thing", 100, 1000));
    assert_eq!(add(&host, "s", "u0", "p", 1).await.status(), 200);
    host.wait_idle().await;
    // The record goes stale.
    host.advance_clock(Duration::from_secs(70));
    host.reset_calls();
    let refresh = host.pause_next_call(Interface::Inventory, "get-product");
    let refresher = tokio::spawn({
        let host = host.clone();
        async move { add(&host, "s", "u1", "p", 1).await }
    });
    refresh.arrived().await;
    let tasks: Vec<_> = (2..=20)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move { add(&host, "s", &format!("u{i}"), "p", 1).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.expect("add task");
        assert_eq!(r.status(), 200, "{}", r.text());
    }
    assert_eq!(
        host.calls_of(Interface::Inventory, "get-product"),
        0,
        "while the refresh is out, the others serve the stale record"
    );
    refresh.resume();
    let r = refresher.await.expect("refresher task");
    assert_eq!(r.status(), 200, "{}", r.text());
    host.wait_idle().await;
    assert_eq!(host.calls_of(Interface::Inventory, "get-product"), 1);
    // And the refreshed record serves the next request from the cache.
    assert_eq!(add(&host, "s", "u21", "p", 1).await.status(), 200);
    assert_eq!(host.calls_of(Interface::Inventory, "get-product"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_with_a_short_line_commits_nothing_and_names_it() {
    let host = cart_host();
    put_product(&host, "s", "a", 100, 5);
    put_product(&host, "s", "b", 250, 5);
    host.seed_product(ProductSeed::new("s", "gift", "Gift card", 2500, 1).policy(Policy::Checkout));
    assert_eq!(add(&host, "s", "u", "a", 2).await.status(), 200);
    assert_eq!(add(&host, "s", "u", "b", 3).await.status(), 200);
    let gift = add(&host, "s", "u", "gift", 1).await.json();
    let gift_line = gift["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["productId"] == "gift")
        .cloned()
        .unwrap();
    assert_eq!(gift_line["reservation"]["status"], "not_required");
    assert!(
        reservations(&host, "s", "gift").is_empty(),
        "checkout policy holds nothing"
    );

    // b's stock drops below what the cart holds.
    host.set_stock("s", "b", 1);
    let refused = checkout(&host, "s", "u").await;
    assert_problem(&refused, 409, "insufficient-stock");
    let short = refused.json()["lines"].clone();
    assert_eq!(
        short,
        json!([{"productId": "b", "requested": 3, "available": 1, "problem": "insufficient-stock"}])
    );
    // Nothing committed: stock unchanged, the cart still open with its lines.
    assert_eq!(stock_and_available(&host, "s", "a").0, 5);
    assert!(host.reservations("s").iter().all(|r| !r.committed));
    assert!(
        reservations(&host, "s", "gift").is_empty(),
        "the checkout-only hold was released"
    );
    let view = cart(&host, "s", "u").await.json();
    assert_eq!(view["status"], "open");
    assert_eq!(lines(&view).len(), 3);

    host.set_stock("s", "b", 10);
    let done = checkout(&host, "s", "u").await;
    assert_eq!(done.status(), 200, "{}", done.text());
    let view = done.json();
    assert_eq!(view["status"], "checked_out");
    assert_eq!(view["lines"], json!([]));
    assert_eq!(
        view["lastCheckout"]["subtotal"],
        json!({"amount": 2 * 100 + 3 * 250 + 2500, "currency": "EUR"})
    );
    assert_eq!(view["lastCheckout"]["lines"].as_array().unwrap().len(), 3);
    assert_eq!(stock_and_available(&host, "s", "a").0, 3);
    assert_eq!(stock_and_available(&host, "s", "b").0, 7);
    assert_eq!(stock_and_available(&host, "s", "gift").0, 0);
    let empty = checkout(&host, "s", "u").await;
    assert_problem(&empty, 422, "cart-empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_carts_expire_and_release_their_holds() {
    // Zero days: any cart that has not changed since its last write counts as abandoned.
    let host = cart_host_with(&[("abandon_after_days", "0")]);
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    assert_eq!(reservations(&host, "s", "p").values().sum::<u64>(), 2);
    host.advance_clock(Duration::from_secs(1));
    let view = cart(&host, "s", "u").await.json();
    assert_eq!(view["lines"], json!([]));
    assert!(reservations(&host, "s", "p").is_empty());
    host.wait_idle().await;
    let events = cart_events(&host, "cart-events", "s", "u");
    let last = events.last().cloned().unwrap();
    assert_eq!(last["type"], "cart.cleared");
    assert_eq!(last["data"]["reason"], "abandoned");
}
