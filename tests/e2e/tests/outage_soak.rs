//! Benchmark-style soak, not part of the default run (`#[ignore]`): 2,000 changes to one cart
//! on real `spin up` while the event sink refuses every publish, then recovery.
//!
//!     CART_E2E_SKIP_SPIN_BUILD=1 cargo test -p cart-e2e --test outage_soak -- --ignored --nocapture
//!
//! Asserts what is not timing (every change 2xx, the stored cart under a stated size, every
//! event delivered in order after recovery) and prints the median latency of the first and the
//! last 100 changes for docs/benchmarks.md (a timed assertion would make the suite flaky).

use std::time::Instant;

use cart_e2e::api::{cart_events, put_product, records, relay_sweep, set_quantity, sink_fault};
use cart_e2e::kv_file::default_store_value_size;
use cart_e2e::{eventually, spin_cli, SpinUp};
use serde_json::json;

const ADMIN: &str = "e2e-admin-token";
const CHANGES: usize = 2_000;
const DOCUMENT_BOUND: usize = 40 * 1024;

fn median_ms(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

#[test]
#[ignore = "benchmark-style soak: run with --ignored"]
fn two_thousand_changes_during_a_sink_outage() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "outage-soak",
        &[("admin_token", ADMIN), ("inventory_timeout_ms", "60000")],
    );
    let c = up.client().clone();
    put_product(&c, "os", "p", 100, 1_000);
    sink_fault(&c, &json!({"mode": "unavailable"}));
    let mut latencies = Vec::with_capacity(CHANGES);
    let mut largest = 0;
    for i in 0..CHANGES {
        let started = Instant::now();
        let r = set_quantity(&c, "os", "outage-user", "p", 1 + (i % 7) as u32);
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let r = if r.status == 404 {
            // The first change: the line does not exist yet.
            cart_e2e::api::add(&c, "os", "outage-user", "p", 1)
        } else {
            r
        };
        assert!(r.status == 200, "change {i}: {} {}", r.status, r.body);
        if i % 250 == 249 {
            let size = default_store_value_size(up.state_dir(), "cart:os:outage-user")
                .expect("the cart document");
            largest = largest.max(size);
        }
    }
    let first = median_ms(&mut latencies[..100].to_vec());
    let last = median_ms(&mut latencies[CHANGES - 100..].to_vec());
    println!(
        "outage soak: {CHANGES} changes, median latency first 100 {first:.1} ms, last 100 \
         {last:.1} ms (ratio {:.2}); largest stored cart {largest} bytes",
        last / first
    );
    assert!(largest <= DOCUMENT_BOUND, "stored cart {largest} bytes");

    sink_fault(&c, &json!({"mode": "none"}));
    let started = Instant::now();
    let sequences = eventually(600, "the sweep delivers every event", || {
        relay_sweep(&c, ADMIN);
        let all = records(&c, "cart-events");
        let mut seen = std::collections::BTreeSet::new();
        let firsts: Vec<u64> = cart_events(&all, "os", "outage-user")
            .iter()
            .filter_map(|e| e["sequence"].as_u64())
            .filter(|s| seen.insert(*s))
            .collect();
        (firsts.len() >= CHANGES).then_some(firsts)
    });
    println!(
        "recovery: {} events delivered in {:.1} s",
        sequences.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        sequences,
        (1..=sequences.len() as u64).collect::<Vec<_>>(),
        "every event, in per-cart order"
    );
}
