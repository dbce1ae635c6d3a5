//! Key growth on real `spin up` with the default key-value store: the lease records of the
//! key-value lock backend and the idempotency records stay bounded by what is in the carts and
//! by the number of users, whatever the number of requests.
//!
//! 1,200 mixed operations (adds, quantity changes, removes, reads and checkouts, half of the
//! writes under a fresh `Idempotency-Key`) from 20 shoppers over 10 products, then every key of
//! the store is read from Spin's SQLite file and put in its family (docs/keys.md). Without
//! retiring, every `Idempotency-Key` would leave a lease record and its guard, and every line
//! a cart ever had would keep its lease record: both grow with requests. The reference
//! inventory's reservation pointers are held to the reservations it still knows.

use std::collections::BTreeMap;

use cart_e2e::api::{cart, cart_path, item_path, line_quantities, put_product};
use cart_e2e::kv_file::default_store_keys;
use cart_e2e::{eventually, spin_cli, SpinUp};
use serde_json::json;

const STORE: &str = "kg";
const USERS: usize = 20;
const PRODUCTS: usize = 10;
const RECORD_SLOTS: usize = 16;
const OPERATIONS: usize = 1_200;

/// xorshift64*, seeded per run (printed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// The family of a key of the `default` store (docs/keys.md); None for the reference
/// services' own keys.
fn family(key: &str) -> Option<&'static str> {
    Some(match key {
        k if k.starts_with("lock:line:") => "line lease",
        k if k.starts_with("lock:idem:") => "idempotency lease",
        k if k.starts_with("lock:") => "other lease",
        k if k.starts_with("idem:") => "idempotency record",
        k if k.starts_with("cart:") => "cart",
        k if k.starts_with("product:") => "product cache",
        k if k.starts_with("breaker:") => "breaker",
        k if k.starts_with("metrics:") => "metrics",
        k if k.starts_with("outbox") => "outbox",
        k if k.starts_with("jwks:") => "identity keys",
        k if k.starts_with("inv:") || k.starts_with("evt:") => return None,
        other => panic!("key {other} belongs to no family in docs/keys.md"),
    })
}

#[test]
fn lease_and_idempotency_records_do_not_grow_with_requests() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(spin, "key-growth", &[("lock_wait_ms", "60000")]);
    let c = up.client().clone();
    for p in 0..PRODUCTS {
        put_product(&c, STORE, &format!("p{p}"), 300, 1_000_000);
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(7);
    eprintln!("key-growth e2e seed {seed}");

    // Four shoppers' streams at a time, each on its own users, so requests overlap.
    let mut keyed = 0;
    std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for worker in 0..4 {
            let c = c.clone();
            workers.push(scope.spawn(move || {
                let mut rng = Rng(seed.wrapping_add(worker as u64 * 7919) | 1);
                let mut keyed = 0;
                for i in 0..OPERATIONS / 4 {
                    let user = format!("kg-user-{}", worker + 4 * rng.below(USERS / 4));
                    let product = format!("p{}", rng.below(PRODUCTS));
                    let with_key = |r: cart_e2e::http::Request, keyed: &mut usize| {
                        if i % 2 == 0 {
                            *keyed += 1;
                            r.header("idempotency-key", &format!("kg-{worker}-{i}"))
                        } else {
                            r
                        }
                    };
                    let request = match rng.below(100) {
                        0..=39 => with_key(
                            c.post(&format!("{}/items", cart_path(STORE)))
                                .json(&json!({"productId": product, "quantity": 1 + rng.below(2)})),
                            &mut keyed,
                        ),
                        40..=54 => with_key(
                            c.patch(&item_path(STORE, &product))
                                .json(&json!({"quantity": 1 + rng.below(3)})),
                            &mut keyed,
                        ),
                        55..=74 => with_key(c.delete(&item_path(STORE, &product)), &mut keyed),
                        75..=94 => c.get(&cart_path(STORE)),
                        _ => with_key(
                            c.post(&format!("{}/checkout", cart_path(STORE))),
                            &mut keyed,
                        ),
                    };
                    let r = request.user(&user).send();
                    assert!(r.status < 500, "no 5xx: {} {}", r.status, r.body);
                }
                keyed
            }));
        }
        for w in workers {
            keyed += w.join().expect("worker");
        }
    });

    // Lines in the carts now: each may keep its lease record and guard.
    let lines: usize = (0..USERS)
        .map(|u| line_quantities(&cart(&c, STORE, &format!("kg-user-{u}"))).len())
        .sum();
    // Leases are retired after the responses: wait until no idempotency lease is left.
    let families = eventually(30, "idempotency leases to be retired", || {
        let mut families: BTreeMap<&str, usize> = BTreeMap::new();
        for key in default_store_keys(up.state_dir(), "") {
            if let Some(f) = family(&key) {
                *families.entry(f).or_default() += 1;
            }
        }
        (families.get("idempotency lease").copied().unwrap_or(0) == 0).then_some(families)
    });
    eprintln!("{keyed} keyed requests, {lines} lines in carts; keys by family: {families:?}");

    let count = |f: &str| families.get(f).copied().unwrap_or(0);
    assert!(
        count("line lease") <= 2 * lines,
        "line lease records ({}) beyond the lines in carts ({lines}, two keys each)",
        count("line lease")
    );
    assert!(
        count("idempotency record") <= USERS * RECORD_SLOTS,
        "idempotency records ({}) beyond {RECORD_SLOTS} per user",
        count("idempotency record")
    );
    assert!(
        keyed > USERS * RECORD_SLOTS,
        "the run sent more keys ({keyed}) than the records it may keep"
    );
    // One document and one creation guard per cart.
    assert!(count("cart") <= 2 * USERS, "{families:?}");

    // The reference inventory keeps a pointer per reservation id only while the id is held or
    // in its product's committed log: every pointer left names a reservation it knows.
    let prefix = format!("inv:{STORE}:res:");
    let pointers = default_store_keys(up.state_dir(), &prefix);
    let stale: Vec<&String> = pointers
        .iter()
        .filter(|key| {
            let id = &key[prefix.len()..];
            c.get(&format!("/inventory/v1/stores/{STORE}/reservations/{id}"))
                .reference()
                .send()
                .status
                != 200
        })
        .collect();
    eprintln!("{} reservation pointers", pointers.len());
    assert!(
        stale.is_empty(),
        "{} of {} reservation pointers name no held or committed reservation: {:?}",
        stale.len(),
        pointers.len(),
        &stale[..stale.len().min(5)]
    );
}
