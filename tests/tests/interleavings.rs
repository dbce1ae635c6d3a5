//! The interleavings that used to let a line's hold drift from the line, each forced in one
//! order by pause points in the capability host (a call is held at the host's door until the
//! test lets it through), so the outcome is decided by the test, not by the scheduler. Each
//! test failed on the code before the one-write-path work; the comment above it says how.

mod support;

use std::time::Duration;

use cart_tests::{Fault, Interface, ProductSeed};
use serde_json::Value;
use support::*;

/// Waits (bounded) until `done` holds; fails the test with `what` otherwise. A wait on a
/// condition the test needs before its next step, not a timed assertion.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..4_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("gave up waiting for: {what}");
}

fn line<'a>(view: &'a Value, product: &str) -> &'a Value {
    view["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["productId"] == product))
        .unwrap_or_else(|| panic!("no line {product} in {view}"))
}

/// A read re-confirms an `unconfirmed` line. It read the cart (quantity 2) before it took the
/// line's lease; a PATCH to 6 commits in between. Before: the read reserved the 2 it had read
/// and stamped the line of 6 `confirmed`, so inventory held 2 for a line of 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reads_reconfirmation_holds_what_a_patch_that_overtook_it_set() {
    let host = cart_host_with(&[("lock_wait_ms", "5000")]);
    put_product(&host, "s", "p", 100, 100);
    host.fail_next_calls_of(
        Interface::Inventory,
        "reserve",
        1,
        Fault::Unavailable("down for the add".into()),
    );
    let added = add(&host, "s", "u", "p", 2).await;
    assert_eq!(added.status(), 200, "{}", added.text());
    assert_eq!(
        line(&added.json(), "p")["reservation"]["status"],
        "unconfirmed"
    );
    host.wait_idle().await;
    assert!(held_quantities(&host, "s", "p").is_empty());

    let lease = host.pause_next_call(Interface::Locks, "try-acquire");
    let reader = tokio::spawn({
        let host = host.clone();
        async move { cart(&host, "s", "u").await }
    });
    lease.arrived().await;
    let patched = set_qty(&host, "s", "u", "p", 6).await;
    assert_eq!(patched.status(), 200, "{}", patched.text());
    until("the PATCH released the line's lease", || {
        host.lease("line:s:u:p").is_none()
    })
    .await;
    lease.resume();
    let read = reader.await.expect("reader task");
    assert_eq!(read.status(), 200, "{}", read.text());
    host.wait_idle().await;

    assert_eq!(held_quantities(&host, "s", "p"), vec![6]);
    let view = cart(&host, "s", "u").await.json();
    assert_eq!(line(&view, "p")["quantity"], 6);
    assert_eq!(line(&view, "p")["reservation"]["status"], "confirmed");
}

/// Lowering a quantity keeps the larger hold through the commit and shrinks it after the
/// response. A raise to 4 arrives while that shrink is pending. Before: the shrink ran
/// outside the lease, after the raise had reserved 4, and set the hold to 1 under a line of 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shrink_after_the_response_never_lands_under_a_later_raise() {
    let host = cart_host_with(&[("lock_wait_ms", "10000")]);
    put_product(&host, "s", "p", 100, 100);
    assert_eq!(add(&host, "s", "u", "p", 5).await.status(), 200);
    host.wait_idle().await;
    assert_eq!(held_quantities(&host, "s", "p"), vec![5]);

    let shrink = host.pause_next_call(Interface::Inventory, "reserve");
    let lowered = set_qty(&host, "s", "u", "p", 1).await;
    assert_eq!(lowered.status(), 200, "{}", lowered.text());
    shrink.arrived().await;
    let attempts_before = host.calls_of(Interface::Locks, "try-acquire");
    let raise = tokio::spawn({
        let host = host.clone();
        async move { set_qty(&host, "s", "u", "p", 4).await }
    });
    // Either the raise went through (the lease was free) or it found the line busy and waits.
    until("the raise finished or found the line busy", || {
        raise.is_finished() || host.calls_of(Interface::Locks, "try-acquire") >= attempts_before + 2
    })
    .await;
    shrink.resume();
    let raised = raise.await.expect("raise task");
    assert_eq!(raised.status(), 200, "{}", raised.text());
    host.wait_idle().await;

    assert_eq!(held_quantities(&host, "s", "p"), vec![4]);
    assert_eq!(
        line(&cart(&host, "s", "u").await.json(), "p")["quantity"],
        4
    );
}

/// The checkout committed the reservations in inventory, then its final save failed. Before:
/// every retry re-reserved the committed ids, was refused, and answered 503 forever;
/// `cart.checked_out` was never emitted. Now the retry finishes the recorded checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_whose_final_save_failed_is_finished_by_the_retry_once() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    host.wait_idle().await;

    let commit = host.pause_next_call(Interface::Inventory, "commit");
    let first = tokio::spawn({
        let host = host.clone();
        async move { checkout(&host, "s", "u").await }
    });
    commit.arrived().await;
    host.fail_next_calls_of(
        Interface::Documents,
        "compare-and-swap",
        1,
        Fault::Unavailable("store down after the commit".into()),
    );
    commit.resume();
    let first = first.await.expect("checkout task");
    assert_problem(&first, 503, "store-unavailable");
    host.wait_idle().await;
    // Sold already: the two units left stock, and no hold is left to expire.
    assert_eq!(stock_and_available(&host, "s", "p").1, 8);

    let changed = add(&host, "s", "u", "p", 1).await;
    assert_problem(&changed, 409, "cart-conflict");

    let retry = checkout(&host, "s", "u").await;
    assert_eq!(retry.status(), 200, "{}", retry.text());
    let again = checkout(&host, "s", "u").await;
    assert_problem(&again, 422, "cart-empty");
    host.wait_idle().await;
    assert_eq!(
        admin_post(&host, "/admin/outbox/relay?force=true")
            .await
            .status(),
        200
    );

    let view = cart(&host, "s", "u").await.json();
    assert!(lines(&view).is_empty(), "{view}");
    assert_eq!(stock_and_available(&host, "s", "p").1, 8, "sold once");
    assert!(held_quantities(&host, "s", "p").is_empty());
    let checked_out = cart_events(&host, "cart-events", "s", "u")
        .into_iter()
        .filter(|e| e["type"] == "cart.checked_out")
        .count();
    assert_eq!(checked_out, 1);
    // Counted once too: by the write that recorded the sale, not by each inventory commit.
    let text = metrics(&host).await;
    assert_eq!(metric(&text, "cart_checkouts_total"), Some(1.0), "{text}");
    assert_eq!(
        metric(&text, "cart_checkout_items_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "cart_checkout_items_sum"),
        Some(2.0),
        "{text}"
    );
}

/// Guest 6 + user 6 of a product sold at most 10, in steps of 2. Before: the merge added them
/// up to a line (and a hold) of 12, past the product's own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_keeps_the_products_quantity_rules() {
    let host = cart_host();
    host.seed_product(ProductSeed::new("s", "m", "Mug", 100, 100).quantity_rules(2, Some(10), 2));
    assert_eq!(add(&host, "s", "u", "m", 6).await.status(), 200);
    let token = guest_token(&host).await;
    guest_add(&host, &token, "m", 6).await;
    let merged = merge(&host, &token, "u").await;
    assert_eq!(merged.status(), 200, "{}", merged.text());
    host.wait_idle().await;
    assert_eq!(lines(&merged.json()), [("m".to_owned(), 10)].into());
    assert_eq!(held_quantities(&host, "s", "m"), vec![10]);
}

/// The user's cart is in EUR, the guest's line in USD. Before: the merge released the guest's
/// hold, reserved for the user, then failed with 422, leaving an orphan hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_across_currencies_leaves_no_hold_behind() {
    let host = cart_host();
    put_product(&host, "s", "e", 100, 100);
    host.seed_product(ProductSeed::new("s", "d", "Dollar thing", 100, 100).currency("USD"));
    assert_eq!(add(&host, "s", "u", "e", 1).await.status(), 200);
    let token = guest_token(&host).await;
    guest_add(&host, &token, "d", 3).await;
    let merged = merge(&host, &token, "u").await;
    assert_eq!(merged.status(), 200, "{}", merged.text());
    host.wait_idle().await;
    assert_eq!(lines(&merged.json()), [("e".to_owned(), 1)].into());
    assert!(
        held_quantities(&host, "s", "d").is_empty(),
        "no orphan hold"
    );
    assert_eq!(held_quantities(&host, "s", "e"), vec![1]);
}

/// Optimistic mode (no line leases). A PATCH to 5 decides from version 1 and is slow to reach
/// the inventory; meanwhile PATCHes to 2 and to 3 commit. When the slow reserve finally lands,
/// its fence (the version it decided from) is older than the hold's, so the inventory refuses
/// it; the request then dies (a trap) before it can repair anything. Before fences the late
/// reserve overwrote the newer hold: the cart showed 3 and inventory held 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_reserve_from_an_older_version_cannot_overwrite_a_newer_hold() {
    let host = cart_host_with(&[("lock_url", "none")]);
    put_product(&host, "s", "p", 100, 100);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    host.wait_idle().await;

    let slow = host.pause_next_call(Interface::Inventory, "reserve");
    let late = tokio::spawn({
        let host = host.clone();
        async move { set_qty(&host, "s", "u", "p", 5).await }
    });
    slow.arrived().await;
    assert_eq!(set_qty(&host, "s", "u", "p", 2).await.status(), 200);
    assert_eq!(set_qty(&host, "s", "u", "p", 3).await.status(), 200);
    assert_eq!(held_quantities(&host, "s", "p"), vec![3]);
    // Everything the two PATCHes do after their responses (relay, metric flush) is done: the
    // only instance left is the paused one, so the next document read is the late request's.
    until("only the paused request still runs", || {
        host.instances_running() == 1
    })
    .await;
    host.fail_next_calls_of(
        Interface::Documents,
        "read-head",
        1,
        Fault::Trap("the late request dies".into()),
    );
    slow.resume();
    let died = late.await.expect("late task");
    assert_eq!(died.status(), 500, "{}", died.text());

    assert_eq!(held_quantities(&host, "s", "p"), vec![3]);
    assert_eq!(
        line(&cart(&host, "s", "u").await.json(), "p")["quantity"],
        3
    );
}
