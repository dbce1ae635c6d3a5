//! Soak: the store's key count grows with carts, users and products, not with requests.
//!
//! 10,000 mixed operations (adds, sets, removes, reads, clears, checkouts, half of the writes
//! under an `Idempotency-Key`) on 200 carts (100 users in 2 stores) over 40 products. After
//! 2,000 and after 10,000 operations every stored key is put in its family (docs/keys.md) and
//! each family is held to a bound stated in carts, users or products; a key that fits no
//! family fails the test. A scrape of `/metrics` costs the same store calls at both points and
//! never lists keys.
//!
//! Leases are not counted here: the capability host keeps them as entries that vanish on
//! release, like Redis keys. The key-value lease records are counted on real Spin by the
//! end-to-end suite (`tests/e2e/tests/key_growth.rs`).

mod support;

use std::collections::BTreeMap;

use cart_tests::{get, post_json, CapabilityHost, Interface};
use serde_json::json;
use support::*;

const USERS: usize = 100;
const STORES: [&str; 2] = ["s1", "s2"];
const PRODUCTS_PER_STORE: usize = 20;
const RECORD_SLOTS: usize = 16;

fn user(i: usize) -> String {
    format!("soak-user-{i}")
}

fn product(i: usize) -> String {
    format!("p{i}")
}

/// Runs `n` random operations, 16 at a time on different carts.
async fn drive(host: &std::sync::Arc<CapabilityHost>, rng: &mut Rng, n: usize, serial: &mut u64) {
    let mut done = 0;
    while done < n {
        let mut batch = Vec::new();
        let mut carts_in_batch = std::collections::BTreeSet::new();
        while batch.len() < 16 && done + batch.len() < n {
            let u = rng.below(USERS);
            let s = *rng.pick(&STORES);
            if !carts_in_batch.insert((u, s)) {
                continue;
            }
            let p = product(rng.below(PRODUCTS_PER_STORE));
            let qty = 1 + rng.below(3) as i64;
            let roll = rng.below(100);
            let key = rng.chance(50).then(|| {
                *serial += 1;
                format!("soak-key-{serial}")
            });
            batch.push((roll, user(u), s, p, qty, key));
        }
        let mut tasks = Vec::new();
        for (roll, u, s, p, qty, key) in batch {
            let host = host.clone();
            tasks.push(tokio::spawn(async move {
                let with_key = |r: cart_tests::TestRequest| match &key {
                    Some(k) => r.header("idempotency-key", k.as_str()),
                    None => r,
                };
                let request = match roll {
                    0..=39 => with_key(post_json(
                        &items_path(s),
                        &json!({"productId": p, "quantity": qty}),
                    )),
                    40..=54 => with_key(cart_tests::patch_json(
                        &item_path(s, &p),
                        &json!({"quantity": qty}),
                    )),
                    55..=64 => with_key(cart_tests::delete(&item_path(s, &p))),
                    65..=84 => get(&cart_path(s)),
                    85..=92 => with_key(cart_tests::delete(&cart_path(s))),
                    _ => with_key(cart_tests::request(
                        http::Method::POST,
                        &format!("{}/checkout", cart_path(s)),
                    )),
                };
                let response = request
                    .header("x-user-id", u.as_str())
                    .send(&host)
                    .await
                    .expect("request");
                assert!(
                    response.status() < 500,
                    "no 5xx in the soak: {} {}",
                    response.status(),
                    response.text()
                );
            }));
        }
        done += tasks.len();
        for task in tasks {
            task.await.expect("request task");
        }
    }
    host.wait_idle().await;
}

/// Store keys by family (docs/keys.md). Panics on a key no family claims.
fn families(host: &CapabilityHost) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for key in host.snapshot().keys() {
        let family = if let Some(doc) = key.strip_prefix("doc:") {
            if doc.contains('@') {
                continue; // the body of a head: the same document
            }
            match doc {
                d if d.starts_with("cart:") => "cart document",
                d if d.starts_with("metrics:shard:") => "metrics shard",
                other => panic!("document {other} belongs to no family in docs/keys.md"),
            }
        } else if let Some(kv) = key.strip_prefix("kv:") {
            match kv {
                k if k.starts_with("idem:") && k.contains(":slot") => "idempotency record",
                k if k.starts_with("product:") => "product cache",
                k if k.starts_with("breaker:inventory:") => "breaker",
                k if k.starts_with("metrics:shard:") => "metrics shard",
                k if k.starts_with("outbox:pending:") => "outbox marker",
                k if k.starts_with("outbox-chunk:") => "outbox chunk",
                k if k.starts_with("cart:") && k.ends_with(":seq") => "cart creation guard",
                k if k.starts_with("jwks:") => "identity keys",
                other => panic!("key {other} belongs to no family in docs/keys.md"),
            }
        } else {
            // Leases, holds, stock and events are the other services' state, not the store's.
            continue;
        };
        *out.entry(family).or_default() += 1;
    }
    out
}

/// The store calls of one `/metrics` scrape, and whether it listed keys.
async fn scrape_cost(host: &CapabilityHost) -> (u64, u64) {
    host.wait_idle().await;
    host.reset_calls();
    let r = get("/metrics").send(host).await.expect("metrics");
    assert_eq!(r.status(), 200, "{}", r.text());
    host.wait_idle().await;
    // A sampled request (one in `metrics_sample_every`, the scrape included) flushes its own
    // counts after the response: a shard read and its compare-and-swap per attempt. That is
    // the flush's cost, not the scrape's, so it is left out.
    let flush_calls = 2 * host.calls_of(Interface::Documents, "compare-and-swap");
    let store_calls = host.calls(Interface::Kv) + host.calls(Interface::Documents) - flush_calls;
    (store_calls, host.calls_of(Interface::Kv, "list-keys"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_grow_with_carts_and_products_not_with_requests() {
    let host = cart_host_with(&[("admin_token", ADMIN_TOKEN)]);
    for store in STORES {
        for i in 0..PRODUCTS_PER_STORE {
            put_product(&host, store, &product(i), 250, 1_000_000);
        }
    }
    let seed = std::env::var("CART_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    eprintln!("key-growth soak seed {seed} (CART_SOAK_SEED replays it)");
    let mut rng = Rng(seed);
    let mut serial = 0;

    drive(&host, &mut rng, 2_000, &mut serial).await;
    let early = families(&host);
    let early_scrape = scrape_cost(&host).await;
    drive(&host, &mut rng, 8_000, &mut serial).await;
    let late = families(&host);
    let late_scrape = scrape_cost(&host).await;
    eprintln!("keys after 2,000 operations: {early:?}\nkeys after 10,000: {late:?}");

    let carts = USERS * STORES.len();
    let products = PRODUCTS_PER_STORE * STORES.len();
    // Each family's bound, in what it may grow with.
    let bounds: [(&str, usize); 9] = [
        ("cart document", carts),
        ("cart creation guard", carts),
        ("outbox marker", carts),
        // Chunks exist only while the event pipeline is behind; it is up here.
        ("outbox chunk", 0),
        ("idempotency record", USERS * RECORD_SLOTS),
        ("product cache", products),
        // Per-bucket counters and slot records of the breaker ring, plus its state.
        ("breaker", 7 * 2 + 7 + 1),
        ("metrics shard", 16),
        // The cached key set of `jwt_jwks_url` (not set here).
        ("identity keys", 1),
    ];
    for (family, count) in &late {
        let bound = bounds
            .iter()
            .find(|(f, _)| f == family)
            .map(|(_, b)| *b)
            .unwrap_or_else(|| panic!("no bound for {family}"));
        assert!(
            *count <= bound,
            "{family}: {count} keys after 10,000 operations, bound {bound}"
        );
    }
    let total: usize = late.values().sum();
    let stated = 2 * (carts + products) + USERS * RECORD_SLOTS + 38;
    assert!(total <= stated, "{total} keys, stated bound {stated}");
    // Thousands of keyed requests ran: one record per key would be far over the slot bound.
    assert!(
        serial as usize > 2 * USERS * RECORD_SLOTS,
        "the soak sends more keys than the records it may keep ({serial})"
    );

    assert_eq!(
        early_scrape, late_scrape,
        "a scrape costs the same store calls after 2,000 and 10,000 operations"
    );
    assert_eq!(late_scrape.1, 0, "a scrape never lists keys");
}
