//! Safe defaults on real `spin up`, as a stranger and as an operator see them:
//!
//! * the reference inventory's and event sink's write, admin and listing routes refuse callers
//!   without the `reference_token` (401) or with another token (403) and change nothing, while
//!   the cart's own calls (through the adapter) carry the token and keep working;
//! * demo reads (one product, a topic's records) are open only with `reference_demo_reads`;
//! * an empty `reference_token` fails closed: every protected route is 403 and the cart degrades
//!   (lines `unconfirmed`, events pending) instead of calling anything unauthenticated;
//! * `/metrics` is valid Prometheus text (`promtool check metrics`) behind `metrics_token`.

use cart_e2e::api::{add, cart_events, cart_path, line_statuses, metric, put_product, records};
use cart_e2e::prom::promtool_check;
use cart_e2e::{eventually, spin_cli, Client, Response, SpinUp};
use serde_json::{json, Value};

const STRANGER: &str = "not-the-reference-token";

/// A request to a protected reference route: method, path, JSON body and content type.
struct Protected {
    method: &'static str,
    path: String,
    body: Option<(Value, &'static str)>,
    /// Produce routes answer in the Kafka REST dialect, the rest with problems.
    kafka: bool,
}

fn protected_routes(store: &str, product: &str, hold: &str) -> Vec<Protected> {
    let inv = format!("/inventory/v1/stores/{store}");
    let json_body = |v: Value| Some((v, "application/json"));
    let route = |method, path: String, body| Protected {
        method,
        path,
        body,
        kafka: false,
    };
    let record = json!({"records": [{"key": "forged", "value": {"type": "cart.checked_out"}}]});
    vec![
        route(
            "PUT",
            format!("{inv}/products/{product}"),
            json_body(
                json!({"title": "Free", "unitPrice": {"amount": 1, "currency": "EUR"}, "stock": 9999}),
            ),
        ),
        route(
            "GET",
            format!("{inv}/products/{product}/reservations"),
            None,
        ),
        route("GET", format!("{inv}/reservations"), None),
        route("GET", format!("{inv}/reservations/{hold}"), None),
        route(
            "PUT",
            format!("{inv}/reservations/{hold}"),
            json_body(json!({"productId": product, "quantity": 9, "ttlMs": 60000})),
        ),
        route("DELETE", format!("{inv}/reservations/{hold}"), None),
        route(
            "POST",
            format!("{inv}/reservations/commit"),
            json_body(json!({"reservationIds": [hold]})),
        ),
        route("POST", format!("{inv}/reservations/sweep"), None),
        Protected {
            method: "POST",
            path: "/events/topics/cart-events".into(),
            body: Some((record, "application/vnd.kafka.json.v2+json")),
            kafka: true,
        },
        Protected {
            method: "POST",
            path: "/events/kafka/v3/clusters/local/topics/cart-events/records".into(),
            body: Some((
                json!({"key": {"type": "JSON", "data": "forged"}, "value": {"type": "JSON", "data": {}}}),
                "application/json",
            )),
            kafka: true,
        },
        route("GET", "/events/topics".into(), None),
        route("GET", "/events/admin/faults".into(), None),
        route(
            "PUT",
            "/events/admin/faults".into(),
            json_body(json!({"mode": "unavailable"})),
        ),
    ]
}

fn send(c: &Client, route: &Protected, token: Option<&str>) -> Response {
    let mut req = c.request(route.method, &route.path);
    if let Some(token) = token {
        req = req.bearer(token);
    }
    if let Some((body, content_type)) = &route.body {
        req = req.json(body).header("Content-Type", content_type);
    }
    req.send()
}

/// Asserts a refusal: the status, and the problem slug or Kafka error code of the route's
/// dialect.
fn assert_refused(r: &Response, route: &Protected, status: u16) {
    let what = format!("{} {}", route.method, route.path);
    assert_eq!(r.status, status, "{what}: {}", r.body);
    if route.kafka {
        let code = if status == 401 { 40101 } else { 40301 };
        assert_eq!(r.json()["error_code"], code, "{what}: {}", r.body);
    } else {
        let slug = if status == 401 {
            "unauthenticated"
        } else {
            "forbidden"
        };
        assert_eq!(r.problem_slug(), slug, "{what}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
    }
    if status == 401 {
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
    }
}

/// Everything a refused request could have changed, as the operator reads it.
fn operator_view(c: &Client, store: &str, product: &str) -> Value {
    let get = |path: &str| c.get(path).reference().send().expect(200).json();
    json!({
        "product": get(&format!("/inventory/v1/stores/{store}/products/{product}")),
        "holds": get(&format!("/inventory/v1/stores/{store}/reservations")),
        "records": get("/events/topics/cart-events/records?limit=10000"),
        "topics": get("/events/topics"),
        "faults": get("/events/admin/faults"),
    })
}

/// The local defaults: strangers are refused on every protected route and change nothing; the
/// cart's own calls carry the demo token (holds confirmed, events delivered); demo reads open.
#[test]
fn reference_services_refuse_strangers_and_change_nothing() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(spin, "ref-auth", &[("inventory_timeout_ms", "60000")]);
    let c = up.client().clone();
    put_product(&c, "ra", "lamp", 3500, 10);
    let view = add(&c, "ra", "ann", "lamp", 2).expect(200).json();
    assert_eq!(line_statuses(&view)["lamp"], "confirmed", "{view}");
    let hold = view["lines"][0]["reservation"]["id"]
        .as_str()
        .expect("a hold id")
        .to_owned();
    eventually(60, "ann's event in the sink", || {
        (!cart_events(&records(&c, "cart-events"), "ra", "ann").is_empty()).then_some(())
    });

    let before = operator_view(&c, "ra", "lamp");
    let anonymous = c.clone().with_reference_token("");
    for route in protected_routes("ra", "lamp", &hold) {
        assert_refused(&send(&anonymous, &route, None), &route, 401);
        assert_refused(&send(&anonymous, &route, Some(STRANGER)), &route, 403);
    }
    assert_eq!(
        operator_view(&c, "ra", "lamp"),
        before,
        "a refused request changed nothing"
    );
    assert_eq!(before["product"]["reserved"], 2);

    // Demo reads stay open in the local demo mode.
    let product = anonymous
        .get("/inventory/v1/stores/ra/products/lamp")
        .send()
        .expect(200);
    assert_eq!(product.json()["unitPrice"]["amount"], 3500);
    anonymous
        .get("/events/topics/cart-events/records")
        .send()
        .expect(200);
}

/// A production-shaped run: its own `reference_token`, demo reads off, a `metrics_token`. Demo
/// reads now need the token; the cart still reaches the reference services with the variable
/// it is given (holds confirmed, events delivered); `/metrics` needs its token and passes
/// `promtool check metrics`.
#[test]
fn production_shaped_tokens_close_the_demo_reads_and_guard_metrics() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "prod-shaped",
        &[
            ("reference_token", "e2e-reference-token-of-this-deployment"),
            ("reference_demo_reads", "false"),
            ("metrics_token", "e2e-metrics-token"),
            ("metrics_sample_every", "1"),
            ("inventory_timeout_ms", "60000"),
        ],
    );
    let c = up.client().clone();
    let anonymous = c.clone().with_reference_token("");
    put_product(&c, "ps", "desk", 19900, 3);
    for path in [
        "/inventory/v1/stores/ps/products/desk",
        "/events/topics/cart-events/records",
    ] {
        let r = anonymous.get(path).send().expect(401);
        assert_eq!(r.problem_slug(), "unauthenticated", "{path}");
        let r = anonymous.get(path).bearer(STRANGER).send().expect(403);
        assert_eq!(r.problem_slug(), "forbidden", "{path}");
        // The demo token of the shipped manifest is just another wrong token here.
        let demo = cart_e2e::spin::manifest_default("reference_token").expect("a demo token");
        anonymous.get(path).bearer(&demo).send().expect(403);
    }

    // The cart's own calls carry this deployment's token.
    let view = add(&c, "ps", "bo", "desk", 1).expect(200).json();
    assert_eq!(line_statuses(&view)["desk"], "confirmed", "{view}");
    add(&c, "ps", "bo", "desk", 5).expect(409);
    c.get("/v1/stores/ps/cart/nowhere")
        .user("bo")
        .send()
        .expect(404);
    eventually(60, "bo's event in the sink", || {
        (!cart_events(&records(&c, "cart-events"), "ps", "bo").is_empty()).then_some(())
    });
    assert_eq!(
        cart_e2e::api::product(&c, "ps", "desk")["reserved"],
        1,
        "the hold is in the inventory"
    );

    // Metrics: the token, then valid Prometheus text.
    let r = c.get("/metrics").send().expect(401);
    assert_eq!(r.problem_slug(), "unauthenticated");
    c.get("/metrics").bearer(STRANGER).send().expect(403);
    let text = eventually(30, "the add counted in /metrics", || {
        let text = c
            .get("/metrics")
            .bearer("e2e-metrics-token")
            .send()
            .expect(200)
            .body;
        let adds = metric(
            &text,
            "cart_operation_duration_seconds_count{operation=\"add_item\"}",
        );
        (adds >= Some(2.0)).then_some(text)
    });
    assert!(
        text.contains("# HELP cart_operation_duration_seconds ")
            && text.contains("# TYPE cart_operation_duration_seconds histogram"),
        "{text}"
    );
    promtool_check(&text);
}

/// `reference_token = ""` fails closed: every protected route is 403 whatever is sent, and the
/// cart, which then has no token to send, degrades rather than calling anything open: its line
/// is `unconfirmed` (no hold taken) and its events stay pending.
#[test]
fn an_empty_reference_token_fails_closed() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "ref-empty",
        &[
            ("reference_token", ""),
            ("inventory_timeout_ms", "60000"),
            // Exact outbox counts (the shipped manifest samples 1 in 16).
            ("metrics_sample_every", "1"),
        ],
    );
    let c = up.client().clone();
    for route in protected_routes("demo", "ceramic-mug", "x") {
        for token in [None, Some(STRANGER), Some("")] {
            assert_refused(&send(&c, &route, token), &route, 403);
        }
    }
    // The demo catalog can still be read (demo reads are on), so the cart can price the line,
    // but it cannot hold stock.
    let r = add(&c, "demo", "eve", "ceramic-mug", 1).expect(200);
    assert_eq!(line_statuses(&r.json())["ceramic-mug"], "unconfirmed");
    let mug = c
        .get("/inventory/v1/stores/demo/products/ceramic-mug")
        .send()
        .expect(200)
        .json();
    assert_eq!(mug["reserved"], 0, "{mug}");
    let pending = eventually(30, "the events wait in the outbox", || {
        let text = c.get("/metrics").send().expect(200).body;
        metric(&text, "cart_outbox_pending_events").filter(|n| *n >= 1.0)
    });
    assert!(pending >= 1.0);
    let records = c
        .get("/events/topics/cart-events/records")
        .send()
        .expect(200)
        .json();
    assert!(
        cart_events(
            records["records"].as_array().unwrap_or(&vec![]),
            "demo",
            "eve"
        )
        .is_empty(),
        "nothing was delivered unauthenticated"
    );
    c.get(&cart_path("demo")).user("eve").send().expect(200);
}
