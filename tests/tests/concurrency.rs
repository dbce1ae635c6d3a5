//! Concurrency you can bet stock on, in the cart logic: line leases, compare-and-swap merges of
//! concurrent changes and idempotency records, over the capability host's in-memory
//! capabilities (atomic CAS, leases with a TTL). The same scenarios on real `spin up` with each
//! shipped lock backend (the key-value lease and Redis) are `tests/e2e/tests/concurrency.rs`.

mod support;

use std::time::Duration;

use cart_tests::post_json;
use serde_json::json;
use support::*;

/// Line leases waited for as long as a loaded 2-core machine may need, so contention is never
/// turned into `line-busy` and the figures below are exact (the bounded wait itself is
/// `a_dead_lock_holder_blocks_only_until_its_ttl`).
fn patient_host() -> std::sync::Arc<cart_tests::CapabilityHost> {
    cart_host_with(&[("lock_wait_ms", "120000")])
}

/// Optimistic mode (`lock_url = none`): no line leases at all; fenced reservations and the
/// compare-and-swap keep each hold equal to its line.
fn optimistic_host() -> std::sync::Arc<cart_tests::CapabilityHost> {
    cart_host_with(&[("lock_url", "none")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_adds_against_stock_ten_reserve_exactly_ten() {
    hundred_adds_against_stock_ten(patient_host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_adds_against_stock_ten_reserve_exactly_ten_without_line_leases() {
    let host = optimistic_host();
    hundred_adds_against_stock_ten(host.clone()).await;
    assert_eq!(
        host.calls_of(cart_tests::Interface::Locks, "try-acquire"),
        0,
        "optimistic mode takes no lease"
    );
}

/// 100 adds of one unit from 10 shoppers (10 concurrent adds to each shopper's one line)
/// against a stock of 10.
async fn hundred_adds_against_stock_ten(host: std::sync::Arc<cart_tests::CapabilityHost>) {
    put_product(&host, "s", "hot", 999, 10);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let host = host.clone();
            let user = format!("user{}", i % 10);
            tokio::spawn(async move {
                let r = add(&host, "s", &user, "hot", 1).await;
                (r.status(), r.text())
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            409 => assert!(
                body.contains("/insufficient-stock"),
                "a 409 that is not insufficient stock: {body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 10, "exactly ten adds succeed");
    let held = reservations(&host, "s", "hot");
    assert_eq!(held.values().sum::<u64>(), 10, "{held:?}");
    let mut in_carts = 0;
    for u in 0..10 {
        let user = format!("user{u}");
        let view = cart(&host, "s", &user).await.json();
        let q = lines(&view).get("hot").copied().unwrap_or(0);
        in_carts += q;
        // No doubled hold: each cart's line is backed by exactly its own reservation.
        if q > 0 {
            assert_eq!(
                view["lines"][0]["reservation"]["status"], "confirmed",
                "{user}"
            );
            let rid = view["lines"][0]["reservation"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(held.get(&rid).copied(), Some(q), "{user}");
        }
    }
    assert_eq!(in_carts, 10, "carts sum to the stock");
    assert_eq!(stock_and_available(&host, "s", "hot"), (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_adds_of_different_products_all_survive() {
    fifty_lines(patient_host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_adds_of_different_products_all_survive_without_line_leases() {
    fifty_lines(optimistic_host()).await;
}

/// One cart, 50 concurrent adds of 50 different products: every line survives, each held.
async fn fifty_lines(host: std::sync::Arc<cart_tests::CapabilityHost>) {
    for i in 0..50 {
        put_product(&host, "s", &format!("p{i}"), 100 + i, 5);
    }
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move {
                let r = add(&host, "s", "shopper", &format!("p{i}"), 1).await;
                (r.status(), r.text())
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let view = cart(&host, "s", "shopper").await.json();
    let got = lines(&view);
    assert_eq!(got.len(), 50, "all 50 lines present: {got:?}");
    assert!(got.values().all(|q| *q == 1));
    for i in 0..50 {
        assert_eq!(held_quantities(&host, "s", &format!("p{i}")), vec![1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_retried_twenty_times_in_parallel_applies_once() {
    let host = patient_host();
    put_product(&host, "s", "p", 250, 100);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                let r = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 3}))
                    .header("x-user-id", "u")
                    .header("idempotency-key", "\"order-42-add\"")
                    .send(&host)
                    .await
                    .unwrap();
                (
                    r.status(),
                    r.header("idempotent-replayed").map(str::to_owned),
                    r.text(),
                )
            })
        })
        .collect();
    let mut applied = Vec::new();
    let mut replays = Vec::new();
    for t in tasks {
        let (status, replayed, body) = t.await.unwrap();
        match (status, replayed.as_deref()) {
            (200, None) => applied.push(body),
            (200, Some("true")) => replays.push(body),
            (409, None) => assert!(body.contains("/idempotency-key-in-use"), "{body}"),
            (other, replayed) => panic!("unexpected {other} (replayed {replayed:?}): {body}"),
        }
    }
    assert_eq!(applied.len(), 1, "exactly one request was applied");
    let original: serde_json::Value = serde_json::from_str(&applied[0]).unwrap();
    for replay in &replays {
        let replay: serde_json::Value = serde_json::from_str(replay).unwrap();
        assert_eq!(replay, original, "a replay is the same answer");
    }
    let view = cart(&host, "s", "u").await.json();
    assert_eq!(lines(&view)["p"], 3, "applied once");
    assert_eq!(reservations(&host, "s", "p").values().sum::<u64>(), 3);

    // A later retry replays the stored response; a different body under the key is a 422.
    let replay = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 3}))
        .header("x-user-id", "u")
        .header("idempotency-key", "order-42-add")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json(), original);
    let reused = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 4}))
        .header("x-user-id", "u")
        .header("idempotency-key", "order-42-add")
        .send(&host)
        .await
        .unwrap();
    assert_problem(&reused, 422, "idempotency-key-reused");
    // Keys are per user: another shopper's identical key is a different request.
    let other = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 3}))
        .header("x-user-id", "v")
        .header("idempotency-key", "order-42-add")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.header("idempotent-replayed"), None);
    assert_eq!(lines(&cart(&host, "s", "u").await.json())["p"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lock_holder_blocks_only_until_its_ttl() {
    let host = cart_host_with(&[("lock_wait_ms", "200")]);
    put_product(&host, "s", "p", 100, 10);
    put_product(&host, "s", "q", 100, 10);
    // A holder that took the line's lease (`line:{store}:{user}:{product}`) and died without
    // releasing it.
    let ttl = Duration::from_secs(30);
    let dead = host
        .lock_try_acquire("line:s:u:p", ttl.as_millis() as u32)
        .unwrap()
        .expect("the lease is free");
    let blocked = add(&host, "s", "u", "p", 1).await;
    assert_problem(&blocked, 409, "line-busy");
    assert!(blocked.header("retry-after").is_some());
    // Other lines of the same cart were never blocked.
    let other = add(&host, "s", "u", "q", 1).await;
    assert_eq!(other.status(), 200, "{}", other.text());
    assert_eq!(lines(&other.json()), [("q".to_string(), 1)].into());
    assert_eq!(host.lease("line:s:u:p").map(|l| l.token), Some(dead.token));

    host.advance_clock(ttl + Duration::from_secs(1));
    let after = add(&host, "s", "u", "p", 1).await;
    assert_eq!(after.status(), 200, "{}", after.text());
    assert_eq!(
        lines(&after.json()),
        [("p".to_string(), 1), ("q".to_string(), 1)].into()
    );
    assert_eq!(held_quantities(&host, "s", "p"), vec![1]);
    // The lease is released after the response, with the rest of the after-response work.
    host.wait_idle().await;
    assert!(
        host.lease("line:s:u:p").is_none(),
        "the new holder released it"
    );
}

/// Lock families never share a key: ids crafted to spell another family's lease (the breaker's
/// probe, a product refresh, an idempotent write in flight, a relay) give a line lease of its
/// own, so a shopper's line is never blocked by, and never blocks, another kind of work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_ids_cannot_take_another_lock_familys_lease() {
    let host = cart_host_with(&[("lock_wait_ms", "200")]);
    // (store, user, product) whose `{store}:{user}:{product}` spells another family's key, and
    // that family's key as it is now.
    let crafted = [
        ("breaker", "inventory", "probe", "breaker-probe:inventory"),
        ("breaker-probe", "inventory", "x", "breaker-probe:inventory"),
        ("product-refresh", "s", "p", "product-refresh:s:p"),
        ("idem", "u", "abc123", "idem:u:abc123"),
        ("relay", "cart", "s", "relay:cart:s:u"),
    ];
    let ttl = 30_000;
    for (store, user, product, other) in crafted {
        put_product(&host, store, product, 100, 10);
        // Another family holds its lease, and a key equal to the old unprefixed line key too.
        for key in [other.to_owned(), format!("{store}:{user}:{product}")] {
            if host.lease(&key).is_none() {
                host.lock_try_acquire(&key, ttl)
                    .unwrap()
                    .expect("the lease is free");
            }
        }
        let r = add(&host, store, user, product, 1).await;
        assert_eq!(r.status(), 200, "{store}/{user}/{product}: {}", r.text());
        host.wait_idle().await;
        // The line's lease was its own, released after the write; the others are untouched.
        assert!(host
            .lease(&format!("line:{store}:{user}:{product}"))
            .is_none());
        assert!(host.lease(other).is_some(), "{other}");
    }
}
