//! Scale-out on real `spin up`: two cart instances of the shipped `spin.toml` on one shared Redis
//! store (`store_url`, locks following it), with the reference services as their own app
//! (`deploy/services/spin.toml`) that both instances reach by `inventory_url`/`events_url`, and
//! the shipped `deploy/runtime-config.toml`.
//! Requests alternate between the instances; every figure is exact.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cart_e2e::api::{
    add, cart, cart_events, cart_path, holds, line_quantities, metric, metrics, product,
    put_product, records, sequences, set_quantity,
};
use cart_e2e::redis::RedisServer;
use cart_e2e::spin::workspace_root;
use cart_e2e::upstash::UpstashServer;
use cart_e2e::{eventually, in_parallel, spin_cli, Client, SpinUp};
use serde_json::Value;

/// Waits and timeouts long enough that contention on a loaded 2-core machine never turns into
/// `line-busy` or an `unconfirmed` line (as in concurrency.rs), so the figures are exact.
const PATIENT: [(&str, &str); 2] = [
    ("lock_wait_ms", "120000"),
    ("inventory_timeout_ms", "60000"),
];

/// The services app and two cart instances sharing one store.
struct Fleet {
    services: SpinUp,
    carts: [SpinUp; 2],
}

impl Fleet {
    /// `store` are the store variables (`store_url`, `store_origin`, maybe `store_token`).
    fn start(spin: &std::path::Path, label: &str, store: &[(&str, &str)]) -> Fleet {
        let manifest = workspace_root().join("deploy/services/spin.toml");
        let services = SpinUp::start_app(spin, &format!("{label}-services"), &manifest);
        let base = services.base_url();
        let inventory_url = format!("{base}/inventory/v1");
        let events_url = format!("{base}/events");
        let mut vars: Vec<(&str, &str)> = PATIENT.to_vec();
        vars.extend_from_slice(store);
        vars.extend_from_slice(&[
            ("inventory_url", &inventory_url),
            ("inventory_origin", &base),
            ("events_url", &events_url),
            ("events_origin", &base),
            // The suite reads exact outbox counts (the shipped manifest samples 1 in 16).
            ("metrics_sample_every", "1"),
        ]);
        // As deployed: the shipped runtime config (`default` per instance, in memory).
        let runtime_config = workspace_root().join("deploy/runtime-config.toml");
        let args = [
            "--runtime-config-file",
            runtime_config.to_str().expect("a UTF-8 path"),
        ];
        let carts = [
            SpinUp::start_with_args(spin, &format!("{label}-a"), &args, &vars),
            SpinUp::start_with_args(spin, &format!("{label}-b"), &args, &vars),
        ];
        Fleet { services, carts }
    }

    /// The instance for request `i`: they alternate.
    fn cart(&self, i: usize) -> &Client {
        self.carts[i % 2].client()
    }

    /// The reference services (inventory and event sink).
    fn services(&self) -> &Client {
        self.services.client()
    }
}

/// 100 adds at once (10 users × 10 adds of one unit, each user's adds split over both
/// instances) against a stock of 10: exactly 10 held, 10 units in carts, each hold equal to its
/// cart line, 90 refused as insufficient stock; the shared counters add up over both.
fn hundred_adds_against_stock_ten(f: &Fleet) {
    let inv = f.services();
    put_product(inv, "c", "flash", 999, 10);
    let results = in_parallel(100, |i| {
        add(f.cart(i / 10), "c", &format!("u{}", i % 10), "flash", 1)
    });
    let by_status = cart_e2e::api::tally_stock_race(&results);
    assert_eq!(by_status.get(&200), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&90), "{by_status:?}");

    let held = holds(inv, "c", "flash");
    assert_eq!(held.values().sum::<u64>(), 10, "{held:?}");
    let mut in_carts = 0;
    for u in 0..10 {
        let user = format!("u{u}");
        // Read back through the instance that did not serve the user's first add.
        let view = cart(f.cart(u + 1), "c", &user);
        let quantity = line_quantities(&view).get("flash").copied().unwrap_or(0);
        in_carts += quantity;
        match view["lines"][0]["reservation"]["id"].as_str() {
            Some(id) => assert_eq!(held.get(id).copied(), Some(quantity), "{user}: {view}"),
            None => assert_eq!(quantity, 0, "{user}: {view}"),
        }
    }
    assert_eq!(in_carts, 10, "units in carts equal units held");
    assert_eq!(product(inv, "c", "flash")["available"], 0);

    // Both instances count into the same counters, and either one reports the totals: the 10
    // committed events (one per successful add, split over both instances), all acknowledged by
    // the sink, none pending (sampling is off here; with it on, both series count the same
    // sampled events, see `metrics::add_for_event`); the pending gauge is read back with
    // `kv.get` of two counters.
    for c in [f.cart(0), f.cart(1)] {
        eventually(60, "the shared outbox counters", || {
            let text = metrics(c);
            let committed = metric(&text, "cart_outbox_events_committed_total");
            let acked = metric(&text, "cart_outbox_events_acked_total");
            let pending = metric(&text, "cart_outbox_pending_events");
            (committed == Some(10.0) && acked == Some(10.0) && pending == Some(0.0)).then_some(())
        });
    }
}

/// 40 adds of different products to one cart at once, alternating instances: 40 lines, none
/// lost to a concurrent write on the other instance, one unit held for each.
fn forty_lines_in_one_cart(f: &Fleet) {
    let inv = f.services();
    for p in 0..40 {
        put_product(inv, "m", &format!("p{p}"), 100 + p, 5);
    }
    let results = in_parallel(40, |p| add(f.cart(p), "m", "max", &format!("p{p}"), 1));
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for i in 0..2 {
        let view = cart(f.cart(i), "m", "max");
        let lines = line_quantities(&view);
        assert_eq!(lines.len(), 40, "{view}");
        assert!(lines.values().all(|&q| q == 1), "{lines:?}");
    }
    for p in 0..40 {
        let held = holds(inv, "m", &format!("p{p}"));
        assert_eq!(held.values().sum::<u64>(), 1, "p{p}: {held:?}");
    }
}

/// A cart written through one instance reads back identically through the other: same body,
/// same ETag, `If-None-Match` answered 304 there, and `If-Match` with that ETag accepted there.
fn one_cart_reads_the_same_through_either_instance(f: &Fleet) {
    put_product(f.services(), "e", "mug", 1250, 20);
    add(f.cart(0), "e", "eve", "mug", 2).expect(200);
    let path = cart_path("e");
    let through_a = f.cart(0).get(&path).user("eve").send().expect(200);
    let through_b = f.cart(1).get(&path).user("eve").send().expect(200);
    let etag = through_a.header("etag").expect("an ETag").to_owned();
    assert_eq!(through_b.header("etag"), Some(etag.as_str()));
    assert_eq!(through_a.json(), through_b.json());
    f.cart(1)
        .get(&path)
        .user("eve")
        .header("If-None-Match", &etag)
        .send()
        .expect(304);

    f.cart(1)
        .patch(&format!("{path}/items/mug"))
        .user("eve")
        .header("If-Match", &etag)
        .json(&serde_json::json!({"quantity": 3}))
        .send()
        .expect(200);
    let after_b = f.cart(1).get(&path).user("eve").send().expect(200);
    let after_a = f.cart(0).get(&path).user("eve").send().expect(200);
    assert_ne!(
        after_a.header("etag"),
        Some(etag.as_str()),
        "the write moved the version"
    );
    assert_eq!(after_a.header("etag"), after_b.header("etag"));
    assert_eq!(after_a.json(), after_b.json());
    assert_eq!(
        line_quantities(&after_a.json()),
        [("mug".to_owned(), 3)].into()
    );
    // The stale ETag is refused by the instance that did not write.
    f.cart(0)
        .patch(&format!("{path}/items/mug"))
        .user("eve")
        .header("If-Match", &etag)
        .json(&serde_json::json!({"quantity": 1}))
        .send()
        .expect(412);
}

/// Changes to one cart alternate between the instances (each relays after its own response):
/// the sink gets every event, each id once after de-duplication, in order, numbered 1..=n.
fn events_of_a_cart_changed_through_both_arrive_in_order(f: &Fleet) {
    let inv = f.services();
    put_product(inv, "ev", "a", 100, 1000);
    put_product(inv, "ev", "b", 250, 1000);
    let items = cart_path("ev");
    let change = |step: usize, c: &Client| match step {
        0 => add(c, "ev", "olga", "a", 2),
        1 => add(c, "ev", "olga", "b", 1),
        2 => set_quantity(c, "ev", "olga", "a", 5),
        3 => add(c, "ev", "olga", "a", 1),
        4 => c.delete(&format!("{items}/items/b")).user("olga").send(),
        _ => c.post(&format!("{items}/checkout")).user("olga").send(),
    };
    let want = 6;
    for step in 0..want {
        change(step, f.cart(step)).expect(200);
    }
    let events = eventually(60, "every event of the cart in the sink", || {
        let all = cart_events(&records(inv, "cart-events"), "ev", "olga");
        let firsts = first_arrivals(&all);
        (firsts.len() >= want).then_some((all, firsts))
    });
    let (all, firsts) = events;
    assert_eq!(
        sequences(&firsts),
        (1..=want as u64).collect::<Vec<u64>>(),
        "{firsts:?}"
    );
    let types: Vec<&str> = firsts
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        types,
        [
            "cart.item.added",
            "cart.item.added",
            "cart.item.updated",
            "cart.item.added",
            "cart.item.removed",
            "cart.checked_out"
        ]
    );
    // A repeat (at-least-once) carries the same id and sequence as its first arrival.
    let by_id: BTreeMap<&str, u64> = firsts
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or(""),
                e["sequence"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for e in &all {
        let id = e["id"].as_str().unwrap_or("");
        assert_eq!(by_id.get(id).copied(), e["sequence"].as_u64(), "{e}");
    }
}

/// The cart's events once each, in order of first arrival.
fn first_arrivals(events: &[Value]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    events
        .iter()
        .filter(|e| seen.insert(e["id"].as_str().unwrap_or_default().to_owned()))
        .cloned()
        .collect()
}

fn all_cases(f: &Fleet) {
    hundred_adds_against_stock_ten(f);
    forty_lines_in_one_cart(f);
    one_cart_reads_the_same_through_either_instance(f);
    events_of_a_cart_changed_through_both_arrive_in_order(f);
}

/// Every command Redis runs, as `MONITOR` prints them, collected in the background.
struct Monitor {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(redis: &RedisServer) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", redis.port)).expect("connect to redis");
        stream.write_all(b"MONITOR\r\n").expect("send MONITOR");
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .expect("a read timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut all) = sink.lock() {
                    all.push(line);
                }
            }
        });
        Monitor { lines }
    }

    fn saw(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .map(|all| all.iter().any(|l| l.contains(needle)))
            .unwrap_or(false)
    }
}

/// What the store and the locks left in Redis: the cart documents and the leases went there.
fn assert_state_in_redis(redis: &RedisServer, monitor: &Monitor) {
    let exists = redis
        .command(&["EXISTS", "ec:doc:{cart:e:eve}", "ec:doc:{cart:m:max}"])
        .unwrap_or_default();
    assert!(exists.starts_with(":2"), "cart heads in Redis: {exists}");
    // Line leases are taken in Redis (SET … NX PX) although no lock variable was set.
    eventually(10, "a line lease taken in Redis", || {
        monitor.saw("\"cart-lock:line:c:u").then_some(())
    });
    eventually(10, "a compare-and-swap script in Redis", || {
        monitor.saw("\"EVAL\"").then_some(())
    });
}

/// Two instances on one `redis-server` through Spin's outbound Redis (`store_url=redis://…`);
/// the line locks follow the store without any lock variable.
#[test]
fn two_instances_share_one_redis_store_and_its_locks() {
    let Some(spin) = spin_cli() else { return };
    let redis = RedisServer::start();
    let monitor = Monitor::start(&redis);
    let url = redis.url();
    let fleet = Fleet::start(
        spin,
        "scale-redis",
        &[("store_url", &url), ("store_origin", &url)],
    );
    all_cases(&fleet);
    assert_state_in_redis(&redis, &monitor);
}

/// The same through an Upstash-compatible REST endpoint in front of the `redis-server`
/// (`store_url=http://…` with `store_token`); locks follow it over REST too.
#[test]
fn two_instances_share_one_upstash_rest_store() {
    let Some(spin) = spin_cli() else { return };
    let redis = RedisServer::start();
    let monitor = Monitor::start(&redis);
    let upstash = UpstashServer::start(redis.port, "e2e-store-token");
    let url = upstash.url();
    let fleet = Fleet::start(
        spin,
        "scale-upstash",
        &[
            ("store_url", &url),
            ("store_origin", &url),
            ("store_token", "e2e-store-token"),
            // Each command is an HTTP exchange; under 100 concurrent adds on 2 cores one can
            // take longer than the 1 s default, which would turn into a 503.
            ("store_timeout_ms", "60000"),
        ],
    );
    all_cases(&fleet);
    assert_state_in_redis(&redis, &monitor);
    assert!(upstash.commands() > 0);
}
