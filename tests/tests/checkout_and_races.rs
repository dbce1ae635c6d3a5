//! Behaviours shoppers hit that had no test: two checkouts at once, a replayed checkout, the
//! inventory down during a checkout's hold or commit, and concurrent changes of one line or one
//! cart (PATCH against DELETE, clear against add). After each: holds equal lines, stock sold at
//! most once, one `cart.checked_out` per checkout.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use cart_tests::{request, CapabilityHost, Fault, Interface};
use serde_json::Value;
use support::*;

fn patient() -> Arc<CapabilityHost> {
    cart_host_with(&[("lock_wait_ms", "60000")])
}

/// Every hold of `product` belongs to a line of one of `users` with the same quantity, and
/// every reserved line has its hold.
async fn holds_equal_lines(host: &CapabilityHost, users: &[&str], product: &str) {
    host.wait_idle().await;
    let holds = reservations(host, "s", product);
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for user in users {
        let view = cart(host, "s", user).await.json();
        for line in view["lines"].as_array().into_iter().flatten() {
            if line["productId"] == product {
                let rid = line["reservation"]["id"].as_str().unwrap_or_default();
                lines.insert(rid.to_owned(), line["quantity"].as_u64().unwrap_or(0));
            }
        }
    }
    assert_eq!(holds, lines, "holds of {product} against its lines");
}

fn checked_out_events(host: &CapabilityHost, user: &str) -> usize {
    cart_events(host, "cart-events", "s", user)
        .iter()
        .filter(|e| e["type"] == "cart.checked_out")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checkouts_at_once_sell_the_cart_once() {
    let host = patient();
    put_product(&host, "s", "p", 100, 10);
    put_product(&host, "s", "q", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    assert_eq!(add(&host, "s", "u", "q", 3).await.status(), 200);
    let both: Vec<_> = (0..2)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { checkout(&host, "s", "u").await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in both {
        let r = task.await.expect("task");
        if r.status() != 200 {
            assert_problem(&r, 422, "cart-empty");
        }
        statuses.push(r.status());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        vec![200, 422],
        "one checkout sells, the other finds nothing"
    );
    host.wait_idle().await;
    assert_eq!(stock_and_available(&host, "s", "p"), (8, 8));
    assert_eq!(stock_and_available(&host, "s", "q"), (7, 7));
    assert_eq!(checked_out_events(&host, "u"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_retried_under_its_idempotency_key_is_replayed_not_repeated() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    let send = || {
        request(http::Method::POST, &format!("{}/checkout", cart_path("s")))
            .header("x-user-id", "u")
            .header("idempotency-key", "\"pay-1\"")
            .send(&host)
    };
    let first = send().await.expect("checkout");
    assert_eq!(first.status(), 200, "{}", first.text());
    host.wait_idle().await;
    let again = send().await.expect("checkout again");
    assert_eq!(again.status(), 200, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json(), "the same answer");
    host.wait_idle().await;
    assert_eq!(stock_and_available(&host, "s", "p"), (8, 8), "sold once");
    assert_eq!(checked_out_events(&host, "u"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_down_while_a_checkout_holds_sells_nothing_and_changes_nothing() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    host.wait_idle().await;
    let before = cart(&host, "s", "u").await.json();
    host.fail_next_calls_of(
        Interface::Inventory,
        "reserve",
        1,
        Fault::Unavailable("inventory down".into()),
    );
    let r = checkout(&host, "s", "u").await;
    assert_problem(&r, 503, "inventory-unavailable");
    host.wait_idle().await;
    assert_eq!(
        stock_and_available(&host, "s", "p"),
        (10, 8),
        "nothing sold"
    );
    let after = cart(&host, "s", "u").await.json();
    assert_eq!(after["lines"], before["lines"], "the cart is as it was");
    holds_equal_lines(&host, &["u"], "p").await;
    let retry = checkout(&host, "s", "u").await;
    assert_eq!(retry.status(), 200, "{}", retry.text());
    host.wait_idle().await;
    assert_eq!(stock_and_available(&host, "s", "p"), (8, 8));
    assert_eq!(checked_out_events(&host, "u"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_down_at_the_commit_leaves_a_checkout_the_retry_finishes() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    host.fail_next_calls_of(
        Interface::Inventory,
        "commit",
        1,
        Fault::Unavailable("inventory down".into()),
    );
    let r = checkout(&host, "s", "u").await;
    assert_problem(&r, 503, "inventory-unavailable");
    assert!(r.json()["checkoutId"].is_string(), "{}", r.text());
    // The checkout is recorded: its lines cannot change until it is finished.
    assert_problem(&add(&host, "s", "u", "p", 1).await, 409, "cart-conflict");
    let retry = checkout(&host, "s", "u").await;
    assert_eq!(retry.status(), 200, "{}", retry.text());
    host.wait_idle().await;
    assert_eq!(stock_and_available(&host, "s", "p"), (8, 8));
    assert_eq!(checked_out_events(&host, "u"), 1);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200, "unfrozen");
}

/// PATCH to 5 and DELETE of the same line, at once, 20 times over (with a fresh line each
/// time): whichever wins, the hold ends equal to the line (or gone with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_against_delete_of_one_line_never_leaves_a_hold_out_of_step() {
    let host = patient();
    put_product(&host, "s", "p", 100, 1_000);
    for _ in 0..20 {
        if cart(&host, "s", "u").await.json()["lines"]
            .as_array()
            .is_none_or(|l| l.is_empty())
        {
            assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
        }
        let (a, b) = {
            let (h1, h2) = (host.clone(), host.clone());
            (
                tokio::spawn(async move { set_qty(&h1, "s", "u", "p", 5).await }),
                tokio::spawn(async move { remove(&h2, "s", "u", "p").await }),
            )
        };
        for r in [a.await.expect("task"), b.await.expect("task")] {
            match r.status() {
                200 => {}
                _ => assert_problem(&r, 404, "line-not-found"),
            }
        }
        holds_equal_lines(&host, &["u"], "p").await;
    }
}

/// A clear and an add of another product at once, 20 times over: the cart ends with the added
/// line or empty, and its holds with it; no hold of a cleared line survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_against_add_leaves_holds_equal_to_lines() {
    let host = patient();
    put_product(&host, "s", "p", 100, 1_000);
    put_product(&host, "s", "q", 100, 1_000);
    for _ in 0..20 {
        assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
        let (a, b) = {
            let (h1, h2) = (host.clone(), host.clone());
            (
                tokio::spawn(async move { clear(&h1, "s", "u").await }),
                tokio::spawn(async move { add(&h2, "s", "u", "q", 1).await }),
            )
        };
        assert_eq!(a.await.expect("task").status(), 200);
        assert_eq!(b.await.expect("task").status(), 200);
        holds_equal_lines(&host, &["u"], "p").await;
        holds_equal_lines(&host, &["u"], "q").await;
    }
    let view: Value = cart(&host, "s", "u").await.json();
    assert!(view["lines"].is_array());
}

/// Two PATCHes of one line at once (to 3 and to 7), 20 times over, in both lock modes: both
/// succeed, the line ends at one of the two and its hold equals it.
async fn patch_against_patch(host: Arc<CapabilityHost>) {
    put_product(&host, "s", "p", 100, 1_000);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    for round in 0..20 {
        let (a, b) = {
            let (h1, h2) = (host.clone(), host.clone());
            (
                tokio::spawn(async move { set_qty(&h1, "s", "u", "p", 3).await }),
                tokio::spawn(async move { set_qty(&h2, "s", "u", "p", 7).await }),
            )
        };
        for r in [a.await.expect("task"), b.await.expect("task")] {
            assert_eq!(r.status(), 200, "round {round}: {}", r.text());
        }
        holds_equal_lines(&host, &["u"], "p").await;
        let quantity = cart(&host, "s", "u").await.json()["lines"][0]["quantity"].as_u64();
        assert!(
            matches!(quantity, Some(3 | 7)),
            "round {round}: {quantity:?}"
        );
        assert_eq!(
            held_quantities(&host, "s", "p"),
            vec![quantity.unwrap_or(0)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_against_patch_of_one_line_leaves_the_hold_of_the_last_writer() {
    patch_against_patch(patient()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_against_patch_of_one_line_without_line_leases() {
    patch_against_patch(cart_host_with(&[("lock_url", "none")])).await;
}

/// The same race in one forced order (line leases): the PATCH to 3 is held at the inventory
/// with the line's lease; the PATCH to 7 finds the line busy and waits; the first goes on and
/// commits; the second then decides from the committed 3 and sets 7. The hold is 7: the
/// waiting writer re-read the line under the lease instead of using what it read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_waiting_for_the_lines_lease_decides_from_what_the_first_committed() {
    let host = patient();
    put_product(&host, "s", "p", 100, 1_000);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    host.wait_idle().await;
    let reserve = host.pause_next_call(Interface::Inventory, "reserve");
    let first = tokio::spawn({
        let host = host.clone();
        async move { set_qty(&host, "s", "u", "p", 3).await }
    });
    reserve.arrived().await;
    let attempts = host.calls_of(Interface::Locks, "try-acquire");
    let second = tokio::spawn({
        let host = host.clone();
        async move { set_qty(&host, "s", "u", "p", 7).await }
    });
    // Bounded wait for a condition (not a timed assertion): the second PATCH found the lease
    // taken at least once.
    let mut waited = 0;
    while host.calls_of(Interface::Locks, "try-acquire") < attempts + 1 {
        waited += 1;
        assert!(
            waited < 4_000,
            "the second PATCH never tried the line's lease"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        !second.is_finished(),
        "the line was busy: the second PATCH waits"
    );
    reserve.resume();
    let first = first.await.expect("first task");
    assert_eq!(first.status(), 200, "{}", first.text());
    assert_eq!(first.json()["lines"][0]["quantity"], 3);
    let second = second.await.expect("second task");
    assert_eq!(second.status(), 200, "{}", second.text());
    assert_eq!(second.json()["lines"][0]["quantity"], 7);
    holds_equal_lines(&host, &["u"], "p").await;
    assert_eq!(held_quantities(&host, "s", "p"), vec![7]);
}

/// A DELETE's release of the line's hold is held at the inventory; meanwhile the same product
/// is added again (same cart epoch, so the same reservation id). When the late release lands
/// it must not take away the new line's hold: the new line of 2 ends held at 2. The release is
/// a fenced reserve of 0 units (the fence of the removal's version), which is the call held
/// here. Before: an unfenced `release` that, without line leases, emptied the re-added line's
/// hold (holds {} under a line of 2).
async fn a_late_release_never_cancels_a_re_added_lines_hold(
    host: Arc<CapabilityHost>,
    line_leases: bool,
) {
    put_product(&host, "s", "p", 100, 1_000);
    assert_eq!(add(&host, "s", "u", "p", 3).await.status(), 200);
    host.wait_idle().await;
    let release = host.pause_next_call(Interface::Inventory, "reserve");
    let removal = tokio::spawn({
        let host = host.clone();
        async move { remove(&host, "s", "u", "p").await }
    });
    release.arrived().await;
    // From here the only requests are the paused removal and the re-add.
    host.reset_calls();
    let again = tokio::spawn({
        let host = host.clone();
        async move { add(&host, "s", "u", "p", 2).await }
    });
    if line_leases {
        // The removal still holds the line's lease: the re-add waits for it (bounded wait for
        // that condition, not a timed assertion).
        let mut waited = 0;
        while host.calls_of(Interface::Locks, "try-acquire") < 1 {
            waited += 1;
            assert!(waited < 4_000, "the re-add never tried the line's lease");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!again.is_finished(), "the line was busy: the re-add waits");
    } else {
        let r = again.await.expect("re-add task");
        assert_eq!(r.status(), 200, "{}", r.text());
        release.resume();
        let removed = removal.await.expect("removal task");
        assert_eq!(removed.status(), 200, "{}", removed.text());
        holds_equal_lines(&host, &["u"], "p").await;
        assert_eq!(held_quantities(&host, "s", "p"), vec![2]);
        return;
    }
    release.resume();
    let removed = removal.await.expect("removal task");
    assert_eq!(removed.status(), 200, "{}", removed.text());
    let r = again.await.expect("re-add task");
    assert_eq!(r.status(), 200, "{}", r.text());
    holds_equal_lines(&host, &["u"], "p").await;
    assert_eq!(held_quantities(&host, "s", "p"), vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_release_never_cancels_a_re_added_lines_hold_with_line_leases() {
    let host = patient();
    a_late_release_never_cancels_a_re_added_lines_hold(host, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_release_never_cancels_a_re_added_lines_hold_without_line_leases() {
    let host = cart_host_with(&[("lock_url", "none")]);
    a_late_release_never_cancels_a_re_added_lines_hold(host, false).await;
}

/// PATCH and DELETE of one line in a forced order: the first is held at its inventory call
/// (the PATCH's reserve, or the DELETE's fenced release), the second runs meanwhile (with line
/// leases it must wait for the lease). Whatever the order and the lock mode, the line ends
/// removed and no hold is left behind.
async fn patch_and_delete_in_order(host: Arc<CapabilityHost>, patch_first: bool, leases: bool) {
    put_product(&host, "s", "p", 100, 1_000);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    host.wait_idle().await;
    let held = host.pause_next_call(Interface::Inventory, "reserve");
    let patch = |host: Arc<CapabilityHost>| {
        tokio::spawn(async move { set_qty(&host, "s", "u", "p", 5).await })
    };
    let delete =
        |host: Arc<CapabilityHost>| tokio::spawn(async move { remove(&host, "s", "u", "p").await });
    let first = if patch_first {
        patch(host.clone())
    } else {
        delete(host.clone())
    };
    held.arrived().await;
    host.reset_calls();
    let second = if patch_first {
        delete(host.clone())
    } else {
        patch(host.clone())
    };
    if leases {
        // The second either found the line busy (and waits for the lease) or, after a DELETE
        // that already committed, was refused before taking it (404): bounded wait for either.
        let mut waited = 0;
        while !second.is_finished() && host.calls_of(Interface::Locks, "try-acquire") < 1 {
            waited += 1;
            assert!(
                waited < 4_000,
                "the second request neither finished nor tried the lease"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if patch_first {
            assert!(!second.is_finished(), "the line was busy: the DELETE waits");
        }
        held.resume();
    } else {
        // No lease: the second finishes while the first is held.
        let done = second.await.expect("second task");
        held.resume();
        let first = first.await.expect("first task");
        check_patch_and_delete(&host, patch_first, &first, &done).await;
        return;
    }
    let first = first.await.expect("first task");
    let second = second.await.expect("second task");
    check_patch_and_delete(&host, patch_first, &first, &second).await;
}

async fn check_patch_and_delete(
    host: &CapabilityHost,
    patch_first: bool,
    first: &cart_tests::TestResponse,
    second: &cart_tests::TestResponse,
) {
    let (patched, deleted) = if patch_first {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(deleted.status(), 200, "{}", deleted.text());
    // The PATCH either committed before the DELETE or found the line gone.
    if patched.status() != 200 {
        assert_problem(patched, 404, "line-not-found");
    }
    holds_equal_lines(host, &["u"], "p").await;
    assert!(
        held_quantities(host, "s", "p").is_empty(),
        "no hold left behind"
    );
    assert!(
        lines(&cart(host, "s", "u").await.json()).is_empty(),
        "the line is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_then_delete_forced_under_the_line_lease() {
    patch_and_delete_in_order(patient(), true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_then_patch_forced_under_the_line_lease() {
    patch_and_delete_in_order(patient(), false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_then_delete_forced_without_line_leases() {
    patch_and_delete_in_order(cart_host_with(&[("lock_url", "none")]), true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_then_patch_forced_without_line_leases() {
    patch_and_delete_in_order(cart_host_with(&[("lock_url", "none")]), false, false).await;
}
