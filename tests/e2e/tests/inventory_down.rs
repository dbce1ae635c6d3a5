//! Inventory down on real `spin up`: the cart keeps working with `unconfirmed` lines and the
//! breaker opens; after a restart with the inventory back and the open period over, reads
//! re-confirm every line and the holds equal the cart again. And an inventory that hangs instead
//! of failing: each call ends at `inventory_timeout_ms` until the breaker opens, after which it
//! is not called at all.

use cart_e2e::api::{
    add, cart, holds, line_quantities, line_statuses, metric, metrics, put_product, set_quantity,
};
use cart_e2e::loopback::HungServer;
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
    // Opened: open (2), or half-open (1) when a loaded machine took longer than the 2 s open
    // period for these requests; never closed, since every probe fails.
    let text = metrics(&c);
    let state = metric(&text, "cart_inventory_breaker_state");
    assert!(matches!(state, Some(s) if s == 1.0 || s == 2.0), "{text}");

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

/// An inventory that accepts connections and never answers. Warm-up adds on the real inventory
/// fill the product cache (kept for 10 minutes); then, restarted on the same state directory with
/// the inventory at the hung port, 16 quantity changes of the existing lines all answer 200
/// with `unconfirmed` lines, and the breaker opens. The breaker counts the warm-up's
/// successful calls in its window, so the calls that reach the hung port before it opens are at
/// most max(breaker_min_volume, warm-up successes): at least half the window's calls must fail
/// and there must be `breaker_min_volume` of them. That bound holds however many more requests
/// follow: 16 more changes add no connection.
#[test]
fn a_hung_inventory_opens_the_breaker_and_stops_being_called() {
    let Some(spin) = spin_cli() else { return };
    const MIN_VOLUME: u64 = 3;
    // No half-open probe during the test: the open period outlasts it.
    let breaker = [
        ("breaker_min_volume", "3"),
        ("breaker_open_ms", "600000"),
        ("product_cache_ttl_ms", "600000"),
    ];
    let mut warm = breaker.to_vec();
    warm.push(("inventory_timeout_ms", "60000"));
    let up = SpinUp::start(spin, "inv-hung", &warm);
    let c = up.client().clone();
    let products = ["h0", "h1"];
    for p in products {
        put_product(&c, "hg", p, 900, 50);
        add(&c, "hg", "hana", p, 1).expect(200);
    }
    assert!(line_statuses(&cart(&c, "hg", "hana"))
        .values()
        .all(|s| s == "confirmed"));
    // Each warm-up add called the inventory at most twice: a product lookup and a reservation.
    let warm_up_successes = 2 * products.len() as u64;
    let bound = MIN_VOLUME.max(warm_up_successes);

    let hung = HungServer::start();
    let inventory_url = format!("{}/inventory/v1", hung.url());
    let origin = hung.url();
    let mut down = breaker.to_vec();
    down.extend([
        ("inventory_timeout_ms", "200"),
        ("inventory_url", inventory_url.as_str()),
        ("inventory_origin", origin.as_str()),
    ]);
    let up = up.restart(spin, &down);
    let c = up.client().clone();
    let change_every_line = |round: u32| {
        for i in 0..16u32 {
            let product = products[i as usize % products.len()];
            let quantity = 2 + round * 8 + i / 2;
            let r = set_quantity(&c, "hg", "hana", product, quantity).expect(200);
            let view = r.json();
            assert_eq!(
                line_statuses(&view)[product],
                "unconfirmed",
                "round {round}, change {i}: {view}"
            );
            assert_eq!(line_quantities(&view)[product], u64::from(quantity));
        }
    };
    change_every_line(0);
    let text = metrics(&c);
    assert_eq!(
        metric(&text, "cart_inventory_breaker_state"),
        Some(2.0),
        "the breaker is open: {text}"
    );
    eventually(30, "the hung port to have been called", || {
        (hung.accepted() >= 1).then_some(())
    });
    assert!(
        hung.accepted() <= bound,
        "{} connections for 16 requests; at most {bound} before the breaker opens",
        hung.accepted()
    );

    change_every_line(1);
    assert!(
        hung.accepted() <= bound,
        "{} connections after 32 requests; the open breaker calls nobody (bound {bound})",
        hung.accepted()
    );
    assert_eq!(
        metric(&metrics(&c), "cart_inventory_breaker_state"),
        Some(2.0)
    );
}
