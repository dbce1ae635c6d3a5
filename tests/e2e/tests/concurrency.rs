//! Concurrency on real `spin up`, per line-lock backend: the embedded key-value lease (default),
//! a real `redis-server` and an Upstash-compatible REST endpoint, switched on by variables alone
//! (`lock_url` + `lock_origin`, no manifest edit). Every request is a real parallel HTTP request
//! to Spin. Also per backend: a lease left by a holder that died blocks only its own line, and
//! only until its TTL.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cart_e2e::api::{add, cart, cart_path, holds, line_quantities, put_product};
use cart_e2e::kv_file::{default_store_keys, write_default_store};
use cart_e2e::redis::RedisServer;
use cart_e2e::upstash::UpstashServer;
use cart_e2e::{eventually, in_parallel, spin_cli, Client, SpinUp};
use serde_json::json;

/// Variables for these tests: waits and timeouts long enough that a loaded 2-core machine never
/// turns contention into `line-busy`, a slow lock command into `lock-unavailable` or a slow
/// reservation into an `unconfirmed` line, so the figures below are exact.
const PATIENT: [(&str, &str); 3] = [
    ("lock_wait_ms", "120000"),
    ("lock_timeout_ms", "60000"),
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
    let by_status = cart_e2e::api::tally_stock_race(&results);
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

/// The cases every lock backend runs. `fifty_lines_in_one_cart` runs in its own test below,
/// ignored while the bug it exposes is open.
fn all_cases(c: &Client) {
    hundred_adds_against_stock_ten(c);
    one_idempotency_key_twenty_times(c);
}

#[test]
fn concurrent_shoppers_with_key_value_line_locks() {
    let Some(up) = start("conc-kv", &[]) else {
        return;
    };
    all_cases(up.client());
    // The line leases really were key-value records (the optimistic test asserts none).
    let keys = default_store_keys(up.state_dir(), "lock:line:");
    assert!(!keys.is_empty(), "no key-value line lease was taken");
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
        sets >= 100,
        "each of the 100 adds took its line lease in Redis: {stats}"
    );
}

/// Optimistic mode: `lock_url = none`, no line leases at all (fenced reservations and the
/// compare-and-swap keep holds equal to lines), switched by a variable alone.
#[test]
fn concurrent_shoppers_without_line_leases() {
    let Some(up) = start("conc-none", &[("lock_url", "none")]) else {
        return;
    };
    all_cases(up.client());
    fifty_lines_in_one_cart(up.client());
    // Not one line lease was taken: the key-value lease records of line leases do not exist.
    let keys = default_store_keys(up.state_dir(), "lock:line:");
    assert!(keys.is_empty(), "line leases in optimistic mode: {keys:?}");
}

const UPSTASH_TOKEN: &str = "e2e-upstash-token";

/// A real redis-server behind an Upstash-compatible REST endpoint.
fn upstash_endpoint() -> (RedisServer, UpstashServer) {
    let redis = RedisServer::start();
    let upstash = UpstashServer::start(redis.port, UPSTASH_TOKEN);
    (redis, upstash)
}

/// The variables that put the line locks on the REST endpoint at `url`.
fn upstash_lock_vars(url: &str) -> [(&str, &str); 3] {
    [
        ("lock_url", url),
        ("lock_origin", url),
        ("lock_token", UPSTASH_TOKEN),
    ]
}

#[test]
fn concurrent_shoppers_with_upstash_rest_line_locks_switched_by_variables() {
    if spin_cli().is_none() {
        return;
    }
    let (_redis, upstash) = upstash_endpoint();
    let url = upstash.url();
    let vars = upstash_lock_vars(&url);
    let Some(up) = start("conc-upstash", &vars) else {
        return;
    };
    all_cases(up.client());
    assert!(
        upstash.commands() >= 100,
        "each of the 100 adds took its line lease through the REST endpoint: {}",
        upstash.commands()
    );
}

/// Shoppers' devices reading one cart while others change its lines: every read answers 200
/// (a read never fails because the cart moved on under it), and every change answers 200 or,
/// under this much contention, the retriable 409 `cart-conflict`; never a 5xx.
#[test]
fn cart_reads_during_concurrent_changes_to_the_cart_never_fail() {
    let Some(up) = start("read-race", &[]) else {
        return;
    };
    let c = up.client();
    const LINES: usize = 30;
    for p in 0..LINES {
        put_product(c, "r", &format!("p{p}"), 100, 50);
        add(c, "r", "rita", &format!("p{p}"), 1).expect(200);
    }
    let results = in_parallel(2 * LINES, |i| {
        if i < LINES {
            (2..10u32)
                .map(|q| cart_e2e::api::set_quantity(c, "r", "rita", &format!("p{i}"), q))
                .map(|r| ("change", r))
                .collect::<Vec<_>>()
        } else {
            (0..50)
                .map(|_| ("read", c.get(&cart_path("r")).user("rita").send()))
                .collect()
        }
    });
    let mut failures = Vec::new();
    for (kind, r) in results.iter().flatten() {
        let fine = match (*kind, r.status) {
            (_, 200) => true,
            ("change", 409) => r.problem_slug() == "cart-conflict",
            _ => false,
        };
        if !fine {
            failures.push(format!("{kind} {}: {}", r.status, r.body));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

/// 50 parallel adds of different products to one cart, on each lock backend: every add
/// answers 200 and no line is lost.
#[test]
fn fifty_concurrent_adds_to_one_cart_keep_every_line_on_each_lock_backend() {
    if spin_cli().is_none() {
        return;
    }
    if let Some(up) = start("fifty-kv", &[]) {
        fifty_lines_in_one_cart(up.client());
    }
    let redis = RedisServer::start();
    let url = redis.url();
    if let Some(up) = start("fifty-redis", &[("lock_url", &url), ("lock_origin", &url)]) {
        fifty_lines_in_one_cart(up.client());
    }
    let upstash = UpstashServer::start(redis.port, "e2e-upstash-token");
    let url = upstash.url();
    let vars = [
        ("lock_url", url.as_str()),
        ("lock_origin", url.as_str()),
        ("lock_token", "e2e-upstash-token"),
    ];
    if let Some(up) = start("fifty-upstash", &vars) {
        fifty_lines_in_one_cart(up.client());
    }
}

// ---- A dead lease holder, per backend -------------------------------------------------------
//
// A request that took a line's lease and died (a crashed instance, a killed host) leaves the
// lease behind until its TTL. Meanwhile that line answers `line-busy` with `Retry-After`, every
// other line of the cart works, and after the TTL the line works again. The lease is planted
// from outside under the app's lock key layout (`line:{store}:{user}:{product}`, see
// components/cart/src/ports/lock_keys.rs; `cart-lock:` prefix in Redis, `lock:` records in key-value,
// see components/spin-adapter/src/locks/). It is planted with a long TTL, so the `line-busy`
// answer is certain however slowly a loaded machine gets to it, and shortened to a few seconds
// once that has been seen, so the expiry is the lease's own TTL running out.

const DEAD_STORE: &str = "dl";
const DEAD_USER: &str = "dora";
/// The line whose lease the dead holder left.
const HELD: &str = "held";
/// Another line of the same cart.
const FREE: &str = "free";
/// The planted lease's TTL, until the busy answer has been seen.
const PLANTED_TTL_MS: u64 = 600_000;
/// Its TTL afterwards: the line must come free by itself after this.
const SHORTENED_TTL_MS: u64 = 3_000;

/// Waits for a busy line 200 ms, so a held lease answers quickly; lock commands and the
/// inventory never time out.
const SHORT_WAIT: [(&str, &str); 3] = [
    ("lock_wait_ms", "200"),
    ("lock_timeout_ms", "60000"),
    ("inventory_timeout_ms", "60000"),
];

fn start_short_wait(label: &str, extra: &[(&str, &str)]) -> Option<SpinUp> {
    let spin = spin_cli()?;
    let mut vars = SHORT_WAIT.to_vec();
    vars.extend_from_slice(extra);
    Some(SpinUp::start(spin, label, &vars))
}

fn stock_dead_holder_store(c: &Client) {
    put_product(c, DEAD_STORE, HELD, 700, 10);
    put_product(c, DEAD_STORE, FREE, 800, 10);
}

/// With the planted lease live: the held line answers 409 `line-busy` with `Retry-After`, and
/// changes nothing; another line of the same cart answers 200.
fn held_line_busy_other_line_free(c: &Client) {
    let r = add(c, DEAD_STORE, DEAD_USER, HELD, 1);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.problem_slug(), "line-busy", "{}", r.body);
    let retry_after = r
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "Retry-After in whole seconds: {:?}",
        r.headers
    );
    add(c, DEAD_STORE, DEAD_USER, FREE, 2).expect(200);
    let view = cart(c, DEAD_STORE, DEAD_USER);
    assert_eq!(
        line_quantities(&view),
        [(FREE.to_owned(), 2)].into(),
        "only the free line changed: {view}"
    );
    assert!(holds(c, DEAD_STORE, HELD).is_empty());
}

/// After the planted lease's TTL the held line takes adds again (until then it answers
/// `line-busy`, which changes nothing); both lines and their holds are as asked.
fn held_line_free_after_the_ttl(c: &Client) {
    eventually(120, "the dead holder's lease to expire", || {
        let r = add(c, DEAD_STORE, DEAD_USER, HELD, 1);
        match r.status {
            200 => Some(()),
            409 if r.problem_slug() == "line-busy" => None,
            other => panic!("unexpected {other}: {}", r.body),
        }
    });
    let view = cart(c, DEAD_STORE, DEAD_USER);
    assert_eq!(
        line_quantities(&view),
        [(HELD.to_owned(), 1), (FREE.to_owned(), 2)].into(),
        "{view}"
    );
    assert_eq!(holds(c, DEAD_STORE, HELD).values().sum::<u64>(), 1);
    assert_eq!(holds(c, DEAD_STORE, FREE).values().sum::<u64>(), 2);
}

/// The held line's lease key without a backend's prefix.
fn held_lock_key() -> String {
    format!("line:{DEAD_STORE}:{DEAD_USER}:{HELD}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes the key-value lease record of a holder that will never release it, expiring `ttl_ms`
/// from now, with its creation guard (the adapter's layout: `lock:k` is a JSON record,
/// `lock:k:gen` an 8-byte little-endian counter).
fn plant_kv_lease(state_dir: &Path, ttl_ms: u64, nonce: &str) {
    let key = format!("lock:{}", held_lock_key());
    let record = json!({
        "token": "dead-holder",
        "expiresAtMs": now_ms() + ttl_ms,
        "nonce": nonce,
    });
    write_default_store(
        state_dir,
        &[
            (&key, record.to_string().into_bytes()),
            (&format!("{key}:gen"), 1i64.to_le_bytes().to_vec()),
        ],
    );
}

/// Key-value leases live in Spin's SQLite store, which only Spin writes while it runs: the
/// lease is planted (and later shortened) between a stop and a restart on the same state
/// directory, as if the holder had died with the host.
#[test]
fn dead_holder_blocks_only_its_line_until_its_ttl_with_key_value_line_locks() {
    let Some(up) = start_short_wait("dead-kv", &[]) else {
        return;
    };
    let spin = spin_cli().expect("checked by start");
    stock_dead_holder_store(up.client());
    let up = up.restart_after(spin, &SHORT_WAIT, |dir| {
        plant_kv_lease(dir, PLANTED_TTL_MS, "planted")
    });
    held_line_busy_other_line_free(up.client());
    let up = up.restart_after(spin, &SHORT_WAIT, |dir| {
        plant_kv_lease(dir, SHORTENED_TTL_MS, "shortened")
    });
    held_line_free_after_the_ttl(up.client());
}

/// Redis leases are planted in the `redis-server` the app uses, while it runs; Redis expires
/// them itself.
fn dead_holder_in_redis(redis: &RedisServer, up: &SpinUp) {
    let key = format!("cart-lock:{}", held_lock_key());
    let planted = PLANTED_TTL_MS.to_string();
    let reply = redis.command(&["SET", &key, "dead-holder", "PX", &planted]);
    assert_eq!(reply.as_deref(), Some("+OK\r\n"));
    held_line_busy_other_line_free(up.client());
    let shortened = SHORTENED_TTL_MS.to_string();
    let reply = redis.command(&["PEXPIRE", &key, &shortened]);
    assert_eq!(
        reply.as_deref(),
        Some(":1\r\n"),
        "the planted lease was still there"
    );
    held_line_free_after_the_ttl(up.client());
    // The new holder releases its own lease after its response (the shopper does not wait
    // for it): then nothing is left under the key.
    eventually(
        30,
        "the new holder's lease released after its response",
        || (redis.command(&["EXISTS", &key]).as_deref() == Some(":0\r\n")).then_some(()),
    );
}

#[test]
fn dead_holder_blocks_only_its_line_until_its_ttl_with_redis_line_locks() {
    if spin_cli().is_none() {
        return;
    }
    let redis = RedisServer::start();
    let url = redis.url();
    let vars = [("lock_url", url.as_str()), ("lock_origin", url.as_str())];
    let Some(up) = start_short_wait("dead-redis", &vars) else {
        return;
    };
    stock_dead_holder_store(up.client());
    dead_holder_in_redis(&redis, &up);
}

#[test]
fn dead_holder_blocks_only_its_line_until_its_ttl_with_upstash_rest_line_locks() {
    if spin_cli().is_none() {
        return;
    }
    let (redis, upstash) = upstash_endpoint();
    let url = upstash.url();
    let vars = upstash_lock_vars(&url);
    let Some(up) = start_short_wait("dead-upstash", &vars) else {
        return;
    };
    stock_dead_holder_store(up.client());
    let before = upstash.commands();
    dead_holder_in_redis(&redis, &up);
    assert!(
        upstash.commands() > before,
        "the leases went through the REST endpoint"
    );
}
