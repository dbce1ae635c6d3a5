//! Inventory down on real `spin up`: the cart keeps working with `unconfirmed` lines and the
//! breaker opens; after a restart with the inventory back and the open period over, reads
//! re-confirm every line and the holds equal the cart again.

use cart_e2e::api::{
    add, cart, holds, line_quantities, line_statuses, metric, metrics, put_product, set_quantity,
};
use cart_e2e::{eventually, spin_cli, SpinUp};

/// Breaker settings small enough to open within the test, product records cached long enough
/// to outlive the outage (a cart can only add a product it can price).
const BREAKER: [(&str, &str); 4] = [
    ("breaker_min_volume", "5"),
    ("breaker_open_ms", "2000"),
    ("product_cache_ttl_ms", "600000"),
    ("inventory_timeout_ms", "60000"),
];

#[test]
fn adds_degrade_to_unconfirmed_while_inventory_is_down_and_reconfirm_after() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(spin, "inv-down", &BREAKER);
    let c = up.client().clone();
    for i in 0..10 {
        put_product(&c, "d", &format!("p{i}"), 500, 50);
        add(&c, "d", "una", &format!("p{i}"), 1).expect(200);
    }
    assert!(line_statuses(&cart(&c, "d", "una"))
        .values()
        .all(|s| s == "confirmed"));
    assert_eq!(
        metric(&metrics(&c), "cart_inventory_breaker_state"),
        Some(0.0)
    );

    // Inventory at a service-chaining host that names no component: every call fails at once.
    let mut down = BREAKER.to_vec();
    down.push(("inventory_url", "http://gone.spin.internal/inventory/v1"));
    let up = up.restart(spin, &down);
    let c = up.client().clone();
    for round in 2..=3 {
        for i in 0..10 {
            let r = set_quantity(&c, "d", "una", &format!("p{i}"), round).expect(200);
            let status = &line_statuses(&r.json())[&format!("p{i}")];
            assert_eq!(status, "unconfirmed", "round {round}, p{i}");
        }
    }
    // A new shopper's add of a known product succeeds too, unconfirmed.
    let r = add(&c, "d", "vic", "p0", 2).expect(200);
    assert_eq!(line_statuses(&r.json())["p0"], "unconfirmed");
    let text = metrics(&c);
    assert_eq!(
        metric(&text, "cart_inventory_breaker_state"),
        Some(2.0),
        "{text}"
    );

    // Inventory back; the open period (2 s) passes while Spin restarts. Each read re-confirms a
    // few lines, so a handful of reads confirms them all.
    let up = up.restart(spin, &BREAKER);
    let c = up.client().clone();
    let view = eventually(60, "every line of una re-confirmed by reads", || {
        let view = cart(&c, "d", "una");
        line_statuses(&view)
            .values()
            .all(|s| s == "confirmed")
            .then_some(view)
    });
    assert!(line_quantities(&view).values().all(|&q| q == 3), "{view}");
    for i in 0..10 {
        let product = format!("p{i}");
        let want = if i == 0 { 5 } else { 3 };
        if i == 0 {
            eventually(60, "vic's line re-confirmed by a read", || {
                let v = cart(&c, "d", "vic");
                (line_statuses(&v)["p0"] == "confirmed").then_some(())
            });
        }
        let held = holds(&c, "d", &product);
        assert_eq!(held.values().sum::<u64>(), want, "{product}: {held:?}");
    }
    assert_eq!(
        metric(&metrics(&c), "cart_inventory_breaker_state"),
        Some(0.0)
    );
}
