//! Traces across services on real `spin up`: a trace id sent by a client appears on the
//! inventory request the change makes (seen on the wire through a recording proxy) and on the
//! change's event in the sink (the CloudEvents distributed-tracing extension).

use cart_e2e::api::{put_product, records};
use cart_e2e::loopback::RecordingProxy;
use cart_e2e::{eventually, spin_cli, SpinUp};
use serde_json::json;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn a_clients_trace_id_reaches_the_inventory_request_and_the_event() {
    let Some(spin) = spin_cli() else { return };
    let proxy = RecordingProxy::start();
    let base = proxy.url();
    let inventory_url = format!("{base}/inventory/v1");
    let up = SpinUp::start(
        spin,
        "tracing",
        &[
            ("inventory_timeout_ms", "60000"),
            ("inventory_url", inventory_url.as_str()),
            ("inventory_origin", base.as_str()),
        ],
    );
    proxy.forward_to(&up.base_url());
    let c = up.client().clone();
    put_product(&c, "tr", "kettle", 2599, 5);
    let added = c
        .post("/v1/stores/tr/cart/items")
        .user("tess")
        .header("traceparent", CLIENT_PARENT)
        .json(&json!({"productId": "kettle", "quantity": 1}))
        .send()
        .expect(200);
    assert_eq!(
        added.json()["lines"][0]["reservation"]["status"],
        "confirmed"
    );

    let sent = proxy.header_of_each("traceparent");
    let reserve = sent
        .iter()
        .find(|(line, _)| line.starts_with("PUT /inventory/v1/stores/tr/reservations/"))
        .unwrap_or_else(|| panic!("the add reserved through the proxy: {sent:?}"));
    let traceparent = reserve
        .1
        .clone()
        .expect("a traceparent header on the reserve");
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(TRACE_ID),
        "{traceparent}"
    );
    assert!(
        !traceparent.contains("b7ad6b7169203331"),
        "the cart's own span is the parent: {traceparent}"
    );

    let event = eventually(30, "the add's event in the sink", || {
        records(&c, "cart-events")
            .into_iter()
            .find(|r| r["key"] == "cart:tr:tess")
            .map(|r| r["value"].clone())
    });
    assert_eq!(event["type"], "cart.item.added");
    assert_eq!(event["traceparent"], traceparent.as_str());
}
