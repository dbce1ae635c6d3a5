//! Concurrency on real `spin up`, per line-lock backend: the embedded key-value lease (default)
//! and a real `redis-server` switched on by variables alone (`lock_url` + `lock_origin`, no
//! manifest edit). Every request is a real parallel HTTP request to Spin.

use std::collections::BTreeMap;

use cart_e2e::api::{add, cart, cart_path, holds, line_quantities, put_product};
use cart_e2e::redis::RedisServer;
use cart_e2e::upstash::UpstashServer;
use cart_e2e::{in_parallel, spin_cli, Client, SpinUp};
use serde_json::json;

/// Variables for these tests: waits and timeouts long enough that a loaded 2-core machine never
/// turns contention into `line-busy` or a slow reservation into an `unconfirmed` line, so the
/// figures below are exact.
const PATIENT: [(&str, &str); 2] = [
    ("lock_wait_ms", "120000"),
    ("inventory_timeout_ms", "60000"),
];

fn start(label: &str, extra: &[(&str, &str)]) -> Option<SpinUp> {
    let spin = spin_cli()?;
    let mut vars = PATIENT.to_vec();
    vars.extend_from_slice(extra);
    Some(SpinUp::start(spin, label, &vars))
}

/// 100 shoppers' adds at once (10 users × 10 adds of one unit) against a stock of 10: exactly 10
/// units are held, every hold equals its cart line, the rest are refused as insufficient stock.
fn hundred_adds_against_stock_ten(c: &Client) {
    put_product(c, "c", "flash", 999, 10);
    let results = in_parallel(100, |i| add(c, "c", &format!("u{}", i % 10), "flash", 1));
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for r in &results {
        *by_status.entry(r.status).or_default() += 1;
        match r.status {
            200 => {}
            409 => assert_eq!(r.problem_slug(), "insufficient-stock", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(by_status.get(&200), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&90), "{by_status:?}");

    let held = holds(c, "c", "flash");
    assert_eq!(held.values().sum::<u64>(), 10, "{held:?}");
    let mut in_carts = 0;
    for u in 0..10 {
        let user = format!("u{u}");
        let view = cart(c, "c", &user);
        let quantity = line_quantities(&view).get("flash").copied().unwrap_or(0);
        in_carts += quantity;
        let hold_id = view["lines"][0]["reservation"]["id"]
            .as_str()
            .map(str::to_owned);
        match hold_id {
            Some(id) => assert_eq!(held.get(&id).copied(), Some(quantity), "{user}: {view}"),
            None => assert_eq!(quantity, 0, "{user}: {view}"),
        }
    }
    assert_eq!(in_carts, 10, "units in carts equal units held");
    let flash = cart_e2e::api::product(c, "c", "flash");
    assert_eq!(flash["available"], 0, "{flash}");
}

/// 50 adds of different products to one cart at once: no line is lost to a concurrent write.
fn fifty_lines_in_one_cart(c: &Client) {
    for p in 0..50 {
        put_product(c, "m", &format!("p{p}"), 100 + p, 5);
    }
    let results = in_parallel(50, |p| add(c, "m", "max", &format!("p{p}"), 1));
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let view = cart(c, "m", "max");
    let lines = line_quantities(&view);
    assert_eq!(lines.len(), 50, "{view}");
    assert!(lines.values().all(|&q| q == 1), "{lines:?}");
    for p in 0..50 {
        let held = holds(c, "m", &format!("p{p}"));
        assert_eq!(held.values().sum::<u64>(), 1, "p{p}: {held:?}");
    }
}

/// One Idempotency-Key sent 20 times at once: applied exactly once; every other answer is a
/// replay of the same response (`Idempotent-Replayed: true`) or `idempotency-key-in-use` while
/// the first is still in flight; a later retry replays it.
fn one_idempotency_key_twenty_times(c: &Client) {
    put_product(c, "i", "tea", 450, 50);
    let send = || {
        c.post(&format!("{}/items", cart_path("i")))
            .user("ida")
            .header("Idempotency-Key", "k-20-at-once")
            .json(&json!({"productId": "tea", "quantity": 3}))
            .send()
    };
    let results = in_parallel(20, |_| send());
    let applied: Vec<_> = results
        .iter()
        .filter(|r| r.status == 200 && r.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(applied.len(), 1, "exactly one request was applied");
    let original = applied[0].json();
    for r in &results {
        match (r.status, r.header("idempotent-replayed")) {
            (200, None) => {}
            (200, Some("true")) => assert_eq!(r.json(), original, "a replay is the same answer"),
            (409, None) => assert_eq!(r.problem_slug(), "idempotency-key-in-use", "{}", r.body),
            (status, replayed) => panic!("unexpected {status} (replayed {replayed:?}): {}", r.body),
        }
    }
    let retry = send().expect(200);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), original);
    let view = cart(c, "i", "ida");
    assert_eq!(line_quantities(&view), [("tea".to_owned(), 3)].into());
    assert_eq!(holds(c, "i", "tea").values().sum::<u64>(), 3);
}

fn all_cases(c: &Client) {
    hundred_adds_against_stock_ten(c);
    fifty_lines_in_one_cart(c);
    one_idempotency_key_twenty_times(c);
}

#[test]
fn concurrent_shoppers_with_key_value_line_locks() {
    let Some(up) = start("conc-kv", &[]) else {
        return;
    };
    all_cases(up.client());
}

#[test]
fn concurrent_shoppers_with_redis_line_locks_switched_by_variables() {
    if spin_cli().is_none() {
        return;
    }
    let redis = RedisServer::start();
    let url = redis.url();
    let Some(up) = start("conc-redis", &[("lock_url", &url), ("lock_origin", &url)]) else {
        return;
    };
    all_cases(up.client());
    // The line leases really went through Redis: it counted SET NX commands.
    let stats = redis.command(&["INFO", "commandstats"]).unwrap_or_default();
    let sets = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        sets >= 150,
        "every add took its line lease in Redis: {stats}"
    );
}

#[test]
fn concurrent_shoppers_with_upstash_rest_line_locks_switched_by_variables() {
    if spin_cli().is_none() {
        return;
    }
    let redis = RedisServer::start();
    let upstash = UpstashServer::start(redis.port, "e2e-upstash-token");
    let url = upstash.url();
    let vars = [
        ("lock_url", url.as_str()),
        ("lock_origin", url.as_str()),
        ("lock_token", "e2e-upstash-token"),
    ];
    let Some(up) = start("conc-upstash", &vars) else {
        return;
    };
    all_cases(up.client());
    assert!(
        upstash.commands() >= 150,
        "every add took its line lease through the REST endpoint: {}",
        upstash.commands()
    );
}
