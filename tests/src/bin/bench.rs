//! In-process benchmarks of the cart logic on the capability host, measured side by side in one
//! run and reported as ratios. Not a test: it never asserts a time. The figures that count are
//! taken on real `spin up` (`scripts/bench-spin.sh`); these isolate the cart logic's own cost,
//! with every capability in memory, and the seed anchor's injected latencies.
//!
//! ```text
//! cargo run -p cart-tests --release --bin bench [-- --seconds 3 --concurrency 16]
//! ```
//!
//! 1. Throughput: a hello-world component vs cart reads vs cart adds, each served by the
//!    capability host (in-memory capabilities, instant), with `--concurrency` requests in flight
//!    for `--seconds` each.
//! 2. Overhead: one request at a time, hello-world vs a cart read vs a cart add.
//! 3. Budget: capability calls per request, by interface and function, counted by the host.
//! 4. Seed anchor: the same cart with the seed's dependency latencies injected per call (lock
//!    3 ms, inventory 55, store 35, cache 8, events 12), against the essential round trips
//!    (lock + inventory + store write + 1 ms).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cart_tests::{
    ensure_fixtures, fixture_path, get, post_json, wasm_path, CapabilityHost, CapabilityOptions,
    GuestOutput, Handle, Interface, ProductSeed,
};
use serde_json::json;

struct Args {
    seconds: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 3,
        concurrency: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--seconds", Some(v)) => a.seconds = v,
            ("--concurrency", Some(v)) => a.concurrency = v as usize,
            _ => eprintln!("ignoring {flag}"),
        }
    }
    a
}

/// A component on the capability host, its output dropped (printing would be measured too).
fn host(wasm: &std::path::Path) -> Result<Arc<CapabilityHost>> {
    CapabilityHost::with_options(
        wasm,
        CapabilityOptions {
            guest_output: GuestOutput::Discard,
            ..CapabilityOptions::default()
        },
    )
}

/// The cart logic with the demo identity on and four bench products.
fn cart_host() -> Result<Arc<CapabilityHost>> {
    let host = host(&wasm_path("cart")?).context("cart component")?;
    host.set_config("allow_insecure_user_header", "true");
    // As spin.toml ships it (the test host's own default counts every request, for tests).
    host.set_config("metrics_sample_every", "64");
    for p in 0..4 {
        host.seed_product(ProductSeed::new(
            "bench",
            &format!("p{p}"),
            "Bench item",
            100,
            100_000_000,
        ));
    }
    Ok(host)
}

fn hello_host() -> Result<Arc<CapabilityHost>> {
    ensure_fixtures()?;
    host(&fixture_path("hello")).context("hello-world component")
}

/// Capability calls made since `before`, per `interface.function`, divided by `n` requests.
fn calls_since(
    host: &CapabilityHost,
    before: &BTreeMap<String, u64>,
    n: u64,
) -> (f64, Vec<String>) {
    let mut total = 0;
    let per_call: Vec<String> = host
        .call_counts()
        .into_iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(&k).copied().unwrap_or(0);
            total += d;
            (d > 0).then(|| format!("{k} {:.1}", d as f64 / n as f64))
        })
        .collect();
    (total as f64 / n as f64, per_call)
}

/// Requests per second with `concurrency` in flight for `seconds`; `make` builds request i.
async fn throughput<H, F>(host: Arc<H>, seconds: u64, concurrency: usize, make: F) -> (f64, u64)
where
    H: Handle + 'static,
    F: Fn(u64) -> cart_tests::TestRequest + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (host, make, done, errors) =
                (host.clone(), make.clone(), done.clone(), errors.clone());
            tokio::spawn(async move {
                let mut i = worker as u64 * 1_000_000;
                while Instant::now() < deadline {
                    match make(i).send(&*host).await {
                        Ok(r) if r.status() < 400 => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let rps = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rps, errors.load(Ordering::Relaxed))
}

/// Mean latency of `n` sequential requests, in milliseconds.
async fn latency<H: Handle, F: Fn(u64) -> cart_tests::TestRequest>(
    host: &H,
    n: u64,
    make: F,
) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let _ = make(i).send(host).await;
    }
    started.elapsed().as_secs_f64() * 1000.0 / n as f64
}

/// One mode's seed anchor: the mean add and the calls per add.
struct Anchor {
    add_ms: f64,
    calls: Vec<String>,
}

/// Adds with the seed's dependency latencies injected per call, one at a time (the anchor is
/// a latency, not a rate), on a cart host whose `lock_url` is `lock_url` (unset: line leases
/// on the default backend; `none`: optimistic mode).
async fn seed_anchor(lock_url: Option<&str>) -> Result<Anchor> {
    let host = cart_host()?;
    if let Some(url) = lock_url {
        host.set_config("lock_url", url);
    }
    // Warm the product cache and each shopper's cart, as a shopper's next add would find them
    // (one add per shopper below, so no measured add races the previous add's relay).
    let n = 5;
    for i in 0..n {
        add_request(format!("anchor{i}"), "p0").send(&*host).await?;
    }
    host.wait_idle().await;
    for (interface, ms) in [
        (Interface::Locks, 3),
        (Interface::Inventory, 55),
        (Interface::Documents, 35),
        (Interface::Kv, 8),
        (Interface::Events, 12),
    ] {
        host.set_latency(interface, Duration::from_millis(ms));
    }
    let calls_before = host.call_counts();
    let mut total_ms = 0.0;
    for i in 0..n {
        let started = Instant::now();
        let r = add_request(format!("anchor{i}"), "p0").send(&*host).await?;
        total_ms += started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(r.status() == 200, "anchor add failed: {}", r.text());
        // The next add starts once this one's after-response work is done (not timed).
        host.wait_idle().await;
    }
    let (_, calls) = calls_since(&host, &calls_before, n);
    Ok(Anchor {
        add_ms: total_ms / n as f64,
        calls,
    })
}

fn add_request(user: String, product: &str) -> cart_tests::TestRequest {
    post_json(
        "/v1/stores/bench/cart/items",
        &json!({"productId": product, "quantity": 1}),
    )
    .header("x-user-id", &user)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = args();
    let hello = hello_host()?;
    let cart = cart_host()?;
    for p in 0..3 {
        add_request("reader".into(), &format!("p{p}"))
            .send(&*cart)
            .await?;
    }
    cart.wait_idle().await;

    println!(
        "## Throughput ({} s each, {} in flight; cart logic over in-memory capabilities)\n",
        a.seconds, a.concurrency
    );
    let (hello_rps, _) = throughput(hello.clone(), a.seconds, a.concurrency, |_| get("/")).await;
    let (read_rps, read_err) = throughput(cart.clone(), a.seconds, a.concurrency, |_| {
        get("/v1/stores/bench/cart").header("x-user-id", "reader")
    })
    .await;
    cart.wait_idle().await;
    let (add_rps, add_err) = throughput(cart.clone(), a.seconds, a.concurrency, |i| {
        // One user per worker and request number: no lock or CAS contention between requests.
        add_request(format!("w{i}"), &format!("p{}", i % 4))
    })
    .await;
    cart.wait_idle().await;
    println!("| workload | RPS | ratio to hello-world | errors |\n|---|---|---|---|");
    println!("| hello-world | {hello_rps:.0} | 1.00 | 0 |");
    println!(
        "| GET cart (3 lines) | {read_rps:.0} | {:.2} | {read_err} |",
        read_rps / hello_rps
    );
    println!(
        "| POST add item | {add_rps:.0} | {:.2} | {add_err} |",
        add_rps / hello_rps
    );

    println!("\n## Overhead (one request at a time, 200 requests)\n");
    let hello_ms = latency(&*hello, 200, |_| get("/")).await;
    let read_ms = latency(&*cart, 200, |_| {
        get("/v1/stores/bench/cart").header("x-user-id", "reader")
    })
    .await;
    let add_ms = latency(&*cart, 200, |i| add_request(format!("seq{i}"), "p0")).await;
    cart.wait_idle().await;
    println!("| request | mean ms | ratio to hello-world |\n|---|---|---|");
    println!("| hello-world | {hello_ms:.3} | 1.00 |");
    println!("| GET cart | {read_ms:.3} | {:.2} |", read_ms / hello_ms);
    println!("| POST add item | {add_ms:.3} | {:.2} |", add_ms / hello_ms);

    println!("\n## Budget per request (capability calls, counted by the host)\n");
    let before = cart.call_counts();
    add_request("budget".into(), "p1").send(&*cart).await?;
    cart.wait_idle().await;
    let (total, calls) = calls_since(&cart, &before, 1);
    println!(
        "POST add item (incl. the relay after the response): {total:.0} capability calls: {}",
        calls.join(", ")
    );
    let before = cart.call_counts();
    get("/v1/stores/bench/cart")
        .header("x-user-id", "reader")
        .send(&*cart)
        .await?;
    cart.wait_idle().await;
    let (total, calls) = calls_since(&cart, &before, 1);
    println!(
        "GET cart: {total:.0} capability calls: {}",
        calls.join(", ")
    );

    println!("\n## Seed anchor (injected dependency latency per call)\n");
    let essential = 3.0 + 55.0 + 35.0 + 1.0;
    let leases = seed_anchor(None).await?;
    let optimistic = seed_anchor(Some("none")).await?;
    println!("| measure | ms |\n|---|---|");
    println!("| seed add-to-cart | 120 |");
    println!("| bar: lock + inventory + store write + 1 ms | {essential:.0} |");
    println!(
        "| our add-to-cart, line leases (response received) | {:.1} |",
        leases.add_ms
    );
    println!(
        "| our add-to-cart, optimistic (`lock_url = \"none\"`) | {:.1} |",
        optimistic.add_ms
    );
    println!(
        "| ratio to the bar (leases / optimistic) | {:.2} / {:.2} |",
        leases.add_ms / essential,
        optimistic.add_ms / essential
    );
    for (mode, anchor) in [("line leases", &leases), ("optimistic", &optimistic)] {
        println!(
            "\nCalls per add, {mode} (including the relay after the response): {}",
            anchor.calls.join(", ")
        );
    }
    Ok(())
}
