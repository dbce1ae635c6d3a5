//! Stock holds on real `spin up`: holds lapse in the reference inventory when the cart is idle
//! past `reservation_ttl_seconds`, a cart read takes them again, and the admin sweep releases a
//! hold that no cart line owns (an orphan) while keeping every hold that a line owns.

use std::collections::BTreeMap;

use cart_e2e::api::{add, cart, holds, line_statuses, product, put_product};
use cart_e2e::{eventually, spin_cli, Client, SpinUp};
use serde_json::{json, Value};

const ADMIN: &str = "e2e-admin-token";
const STORE: &str = "hx";
const USER: &str = "hilde";

/// Patient everywhere but in the hold TTL, so only expiry makes a hold go away.
const PATIENT: [(&str, &str); 3] = [
    ("inventory_timeout_ms", "60000"),
    ("lock_wait_ms", "120000"),
    ("admin_token", ADMIN),
];

/// Each line's hold as the cart names it: reservation id → quantity, by product.
fn line_holds(view: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    view["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let product = l["productId"].as_str().unwrap_or_default().to_owned();
            let id = l["reservation"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let quantity = l["quantity"].as_u64().unwrap_or(0);
            (product, [(id, quantity)].into())
        })
        .collect()
}

/// Reads the cart until every line is confirmed and the inventory holds exactly the lines
/// (a read re-confirms a few lines at a time; with short holds, a hold may lapse again between
/// the read and the look at the inventory, so the pair is retried).
fn read_until_holds_equal_lines(c: &Client) -> Value {
    eventually(
        60,
        "a read re-confirms every line and holds equal lines",
        || {
            let view = cart(c, STORE, USER);
            if !line_statuses(&view).values().all(|s| s == "confirmed") {
                return None;
            }
            let want = line_holds(&view);
            want.iter()
                .all(|(p, ids)| &holds(c, STORE, p) == ids)
                .then_some(view)
        },
    )
}

#[test]
fn holds_lapse_after_their_ttl_a_read_retakes_them_and_orphans_are_swept() {
    let Some(spin) = spin_cli() else { return };
    let mut short = PATIENT.to_vec();
    short.push(("reservation_ttl_seconds", "1"));
    let up = SpinUp::start(spin, "holds", &short);
    let c = up.client().clone();
    put_product(&c, STORE, "a", 400, 10);
    put_product(&c, STORE, "b", 600, 10);
    add(&c, STORE, USER, "a", 2).expect(200);
    let r = add(&c, STORE, USER, "b", 1).expect(200);
    assert!(line_statuses(&r.json()).values().all(|s| s == "confirmed"));

    // Nobody touches the cart: the holds lapse and the stock is free again.
    eventually(60, "the holds to lapse in the inventory", || {
        (holds(&c, STORE, "a").is_empty() && holds(&c, STORE, "b").is_empty()).then_some(())
    });
    assert_eq!(product(&c, STORE, "a")["available"], 10);
    assert_eq!(product(&c, STORE, "b")["available"], 10);

    // The shopper comes back: reading the cart takes the holds again.
    let view = read_until_holds_equal_lines(&c);
    assert_eq!(line_holds(&view).len(), 2, "{view}");

    // Holds of the usual length from here on, so the real holds outlive the sweep.
    let up = up.restart(spin, &PATIENT);
    let c = up.client().clone();
    let view = read_until_holds_equal_lines(&c);
    let real = line_holds(&view);

    // A hold shaped like the cart's ids (`{user}~{product}~{epoch}`) for a user without that
    // line, as a crash between a release and a commit would leave it.
    let orphan = "ghost~a~0";
    c.put(&format!(
        "/inventory/v1/stores/{STORE}/reservations/{orphan}"
    ))
    .reference()
    .json(&json!({"productId": "a", "quantity": 3, "ttlMs": 600000}))
    .send()
    .expect(200);
    assert_eq!(holds(&c, STORE, "a").get(orphan), Some(&3));

    let report = c
        .post(&format!("/admin/reservations/sweep?storeId={STORE}"))
        .bearer(ADMIN)
        .send()
        .expect(200)
        .json();
    assert_eq!(report["released"], 1, "{report}");
    assert_eq!(report["examined"], 3, "{report}");
    for (p, ids) in &real {
        assert_eq!(&holds(&c, STORE, p), ids, "{p} keeps its line's hold");
    }
    assert_eq!(product(&c, STORE, "a")["available"], 8);
}
