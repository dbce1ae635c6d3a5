//! The seed's metrics on real `spin up`: after a shopper session and the operator's jobs, one
//! scrape of `/metrics`, parsed (not searched as text), holds every metric family issue 13
//! lists, each with `# HELP` and the right `# TYPE`, histograms with their `_bucket` (up to
//! `+Inf`), `_sum` and `_count`; `promtool check metrics` passes on it; and
//! `scripts/check-observability.sh` finds every family the alert rules and the dashboard use in
//! this live scrape.

use cart_e2e::api::{add, cart_path, item_path, put_product, set_quantity};
use cart_e2e::prom::{check_observability_against, promtool_check, Exposition};
use cart_e2e::{eventually, spin_cli, SpinUp};
use serde_json::json;

const ADMIN: &str = "e2e-metrics-admin";

/// Issue 13's list, as the service names it: (family, TYPE).
const SEED_FAMILIES: &[(&str, &str)] = &[
    // Histograms: user-facing operation duration, inventory reservation, lock acquisition and
    // hold, event publish duration and batch size, outbox lag, cache read and write, and the
    // per-request dependency waits.
    ("cart_operation_duration_seconds", "histogram"),
    ("cart_inventory_reservation_duration_seconds", "histogram"),
    ("cart_lock_acquire_duration_seconds", "histogram"),
    ("cart_lock_hold_duration_seconds", "histogram"),
    ("cart_events_publish_duration_seconds", "histogram"),
    ("cart_events_publish_batch_size", "histogram"),
    ("cart_outbox_lag_seconds", "histogram"),
    ("cart_cache_read_duration_seconds", "histogram"),
    ("cart_cache_write_duration_seconds", "histogram"),
    ("cart_dependency_duration_seconds", "histogram"),
    // Counters: reservation results and timeouts, lock contention and timeouts, version
    // conflicts, cache hits/misses/stale serves (and writes, for the amplification), store
    // writes per operation, events committed/acknowledged/failed, overselling incidents.
    ("cart_inventory_reservations_total", "counter"),
    ("cart_inventory_timeouts_total", "counter"),
    ("cart_lock_contended_total", "counter"),
    ("cart_lock_timeouts_total", "counter"),
    ("cart_version_conflicts_total", "counter"),
    ("cart_cache_hits_total", "counter"),
    ("cart_cache_misses_total", "counter"),
    ("cart_cache_stale_served_total", "counter"),
    ("cart_cache_writes_total", "counter"),
    ("cart_product_fetches_total", "counter"),
    ("cart_store_writes_total", "counter"),
    ("cart_outbox_events_committed_total", "counter"),
    ("cart_outbox_events_acked_total", "counter"),
    ("cart_outbox_events_failed_total", "counter"),
    ("cart_overselling_incidents_total", "counter"),
    ("cart_http_responses_total", "counter"),
    // Gauges: breaker state, pending events.
    ("cart_inventory_breaker_state", "gauge"),
    ("cart_outbox_pending_events", "gauge"),
    // Business: items and value per cart.
    ("cart_checkout_items", "histogram"),
    ("cart_checkout_value_minor_units", "histogram"),
];

/// Every histogram family the scrape shows is whole: per label set, cumulative buckets ending
/// at `+Inf`, which equals `_count`, and a `_sum`.
fn assert_histograms_whole(scrape: &Exposition) {
    for (name, family) in &scrape.families {
        if family.kind.as_deref() != Some("histogram") {
            continue;
        }
        let bucket = format!("{name}_bucket");
        let count = format!("{name}_count");
        let sum = format!("{name}_sum");
        let counts: Vec<_> = family.series(&count).collect();
        assert!(!counts.is_empty(), "{name}: no _count");
        for c in counts {
            let mut buckets: Vec<(f64, f64)> = family
                .series(&bucket)
                .filter(|b| {
                    let mut labels = b.labels.clone();
                    labels.remove("le");
                    labels == c.labels
                })
                .map(|b| {
                    let le = b.labels.get("le").map(String::as_str).unwrap_or("");
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::NAN)
                    };
                    (bound, b.value)
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.last().is_some_and(|b| b.0.is_infinite()),
                "{name} {:?}: no +Inf bucket",
                c.labels
            );
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{name} {:?}: buckets not cumulative: {buckets:?}",
                c.labels
            );
            assert_eq!(buckets.last().map(|b| b.1), Some(c.value), "{name}");
            assert!(
                family.series(&sum).any(|s| s.labels == c.labels),
                "{name} {:?}: no _sum",
                c.labels
            );
        }
    }
}

/// A shopper session and the operator's jobs, then one scrape with every family of the list.
#[test]
fn a_live_scrape_exports_every_seed_metric_and_passes_promtool() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "seed-metrics",
        &[
            ("admin_token", ADMIN),
            // Every request counted, so each family is there after one session.
            ("metrics_sample_every", "1"),
            ("inventory_timeout_ms", "60000"),
        ],
    );
    let c = up.client().clone();
    put_product(&c, "ms", "lamp", 4_500, 20);
    put_product(&c, "ms", "desk", 19_900, 5);

    // Shopper: adds (cache miss and write, reservation, line lease taken and held), a change,
    // reads (cache hit), a removal, checkout (items and value per cart), then a clear.
    add(&c, "ms", "ann", "lamp", 2).expect(200);
    add(&c, "ms", "ann", "desk", 1).expect(200);
    set_quantity(&c, "ms", "ann", "lamp", 3).expect(200);
    c.get(&cart_path("ms")).user("ann").send().expect(200);
    c.get(&format!("{}/summary", cart_path("ms")))
        .user("ann")
        .send()
        .expect(200);
    add(&c, "ms", "ann", "desk", 1).expect(200);
    c.delete(&item_path("ms", "desk"))
        .user("ann")
        .send()
        .expect(200);
    c.post(&format!("{}/checkout", cart_path("ms")))
        .user("ann")
        .send()
        .expect(200);
    add(&c, "ms", "bob", "lamp", 1).expect(200);
    c.delete(&cart_path("ms")).user("bob").send().expect(200);

    // Operator: the orphan sweep (overselling check), a cache invalidation, an outbox sweep.
    c.post("/admin/reservations/sweep?storeId=ms")
        .bearer(ADMIN)
        .send()
        .expect(200);
    c.post("/admin/cache/invalidate")
        .bearer(ADMIN)
        .json(&json!({"storeId": "ms", "productId": "desk"}))
        .send()
        .expect(204);
    c.post("/admin/outbox/relay?force=true")
        .bearer(ADMIN)
        .send()
        .expect(200);

    // The relay publishes after each response: wait until the events are acknowledged and
    // every family is in one scrape.
    let (text, scrape) = eventually(60, "every seed metric family in one scrape", || {
        let text = c.get("/metrics").send().expect(200).body;
        let scrape = Exposition::parse(&text).expect("the exposition parses");
        let all_there = SEED_FAMILIES
            .iter()
            .all(|(name, _)| scrape.family(name).is_some_and(|f| !f.samples.is_empty()));
        let drained = scrape.value("cart_outbox_pending_events", &[]) == Some(0.0);
        (all_there && drained).then_some((text, scrape))
    });

    for (name, kind) in SEED_FAMILIES {
        let family = scrape.family(name).expect("checked above");
        assert_eq!(family.kind.as_deref(), Some(*kind), "{name} TYPE");
        assert!(
            family.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{name} has no HELP"
        );
    }
    assert_histograms_whole(&scrape);

    // Label values from fixed sets, and what the session must have counted.
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert!(
        value(
            "cart_inventory_reservations_total",
            &[("result", "confirmed")]
        ) >= 3.0
    );
    assert_eq!(value("cart_checkout_items_count", &[]), 1.0);
    assert_eq!(value("cart_checkout_items_sum", &[]), 3.0, "3 lamps");
    assert_eq!(
        value(
            "cart_checkout_value_minor_units_sum",
            &[("currency", "EUR")]
        ),
        13_500.0
    );
    for source in ["checkout", "sweep"] {
        assert_eq!(
            value("cart_overselling_incidents_total", &[("source", source)]),
            0.0
        );
    }
    assert!(value("cart_store_writes_total", &[("operation", "add_item")]) >= 4.0);
    assert!(
        value("cart_cache_writes_total", &[]) >= 3.0,
        "2 fills, 1 invalidation"
    );
    let committed = value("cart_outbox_events_committed_total", &[]);
    assert!(committed >= 1.0);
    assert_eq!(value("cart_outbox_events_acked_total", &[]), committed);
    assert_eq!(value("cart_outbox_lag_seconds_count", &[]), committed);
    assert_eq!(value("cart_inventory_breaker_state", &[]), 0.0);
    for (name, family) in &scrape.families {
        for sample in &family.samples {
            for (label, v) in &sample.labels {
                assert!(
                    !v.contains("ann") && !v.contains("bob") && !v.contains("lamp") && v != "ms",
                    "{name}: label {label}={v} carries an id"
                );
            }
        }
    }

    promtool_check(&text);
    check_observability_against(&text, up.state_dir());
}
