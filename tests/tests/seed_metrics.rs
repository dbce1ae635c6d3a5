//! The seed's metrics as the cart counts them: store writes per operation match the writes the
//! host saw, overselling incidents are counted exactly (never sampled away) from checkout and
//! from the sweep, per-call histograms see injected latency and the injectable clock, and the
//! metrics cost no extra store write per request.

mod support;

use std::time::Duration;

use cart_tests::{Fault, Interface};
use serde_json::Value;
use support::*;

/// Store writes the host saw since `reset_calls`: document compare-and-swap and key-value
/// set, delete, increment.
fn host_writes(host: &cart_tests::CapabilityHost) -> u64 {
    host.calls_of(Interface::Documents, "compare-and-swap")
        + ["set", "delete", "increment", "increment-many"]
            .iter()
            .map(|f| host.calls_of(Interface::Kv, f))
            .sum::<u64>()
}

/// Every sample of a histogram family's `_bucket` series, by its `le`, for the one label set
/// `labels` (`""` for a family without labels).
fn buckets(text: &str, family: &str, labels: &str) -> Vec<(String, f64)> {
    let prefix = format!("{family}_bucket{{{labels}");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let rest = rest.strip_prefix(',').unwrap_or(rest);
            let (le, value) = rest.strip_prefix("le=\"")?.split_once("\"} ")?;
            Some((le.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn cumulative(text: &str, family: &str, le: &str) -> f64 {
    buckets(text, family, "")
        .into_iter()
        .find(|(l, _)| l == le)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {family} bucket le={le}:\n{text}"))
}

/// `cart_store_writes_total{operation}` counts exactly the store writes the request made (its
/// after-response work included), and nothing else: the host's own count of document and
/// key-value writes during one add, less the one write of the metrics flush itself. So the
/// metrics add one write per flushed request, no more, however many series it touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_writes_per_operation_match_the_writes_the_host_saw() {
    let host = cart_host_with(&[("metrics_sample_every", "1")]);
    put_product(&host, "s", "p", 250, 10);
    add(&host, "s", "warm", "p", 1).await; // the product is cached, the breaker settled
    let before = metric(
        &metrics(&host).await,
        "cart_store_writes_total{operation=\"add_item\"}",
    )
    .unwrap_or(0.0);
    host.wait_idle().await;
    host.reset_calls();
    let r = add(&host, "s", "u", "p", 2).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    host.wait_idle().await;
    let seen = host_writes(&host);
    let after = metric(
        &metrics(&host).await,
        "cart_store_writes_total{operation=\"add_item\"}",
    )
    .expect("store writes of add_item");
    assert!(seen >= 2, "an add writes the cart and its metrics: {seen}");
    assert_eq!(
        after - before,
        (seen - 1) as f64,
        "the add's writes less the metrics flush: {:?}",
        host.call_counts()
    );
}

/// A sampled-out request writes nothing for its metrics: with 1-in-a-million sampling an add
/// makes exactly the writes its own work needs (the count the test above checks), so every
/// series added for the seed's metrics rides on the one sampled flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_out_request_writes_nothing_for_its_metrics() {
    let unsampled = cart_host_with(&[("metrics_sample_every", "1")]);
    let sampled = cart_host_with(&[("metrics_sample_every", "1000000")]);
    let mut writes = Vec::new();
    for host in [&unsampled, &sampled] {
        put_product(host, "s", "p", 250, 10);
        add(host, "s", "warm", "p", 1).await;
        host.wait_idle().await;
        host.reset_calls();
        add(host, "s", "u", "p", 2).await;
        host.wait_idle().await;
        writes.push(host_writes(host));
    }
    assert_eq!(
        writes[0],
        writes[1] + 1,
        "one flush write when sampled in, none when sampled out: {writes:?}"
    );
}

/// An inventory that refuses to commit the holds a checkout has just confirmed is an
/// overselling incident, counted exactly even when the request's other counts are sampled
/// out (1 in a million here); nothing is sold and the shopper gets 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_of_fresh_holds_is_an_overselling_incident_never_sampled() {
    let host = cart_host_with(&[("metrics_sample_every", "1000000")]);
    put_product(&host, "s", "p", 250, 10);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    let text = metrics(&host).await;
    assert_eq!(
        metric(
            &text,
            "cart_overselling_incidents_total{source=\"checkout\"}"
        ),
        Some(0.0),
        "shown at 0 before any incident:\n{text}"
    );
    host.fail_next_calls_of(
        Interface::Inventory,
        "commit",
        1,
        Fault::Rejected("stock was lowered below these holds".into()),
    );
    let r = checkout(&host, "s", "u").await;
    assert_eq!(r.status(), 409, "{}", r.text());
    let text = metrics(&host).await;
    assert_eq!(
        metric(
            &text,
            "cart_overselling_incidents_total{source=\"checkout\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(host.guest_output().contains("overselling incident"));
    // The retry commits (holds are still there): a sale, not another incident.
    let r = checkout(&host, "s", "u").await;
    assert_eq!(r.status(), 200, "{}", r.text());
    let text = metrics(&host).await;
    assert_eq!(
        metric(
            &text,
            "cart_overselling_incidents_total{source=\"checkout\"}"
        ),
        Some(1.0)
    );
}

/// A line the cart shows confirmed for more units than the inventory holds for it is found by
/// the sweep: reported, logged and counted (exactly); a line whose hold matches is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_counts_lines_promising_more_than_is_held() {
    let host = cart_host_with(&[("metrics_sample_every", "1000000")]);
    put_product(&host, "s", "p", 250, 10);
    put_product(&host, "s", "q", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 3).await.status(), 200);
    assert_eq!(add(&host, "s", "u", "q", 1).await.status(), 200);
    host.wait_idle().await;
    let holds = reservations(&host, "s", "p");
    let (id, held) = holds.iter().next().expect("the line's hold");
    assert_eq!(*held, 3);
    // The inventory loses units of the hold behind the cart's back (a newer fence wins).
    host.inv_reserve_fenced("s", "p", id, 1, 600_000, u64::MAX)
        .expect("shrink the hold");
    let r = admin_post(&host, "/admin/reservations/sweep?storeId=s").await;
    assert_eq!(r.status(), 200, "{}", r.text());
    let report: Value = r.json();
    assert_eq!(report["oversellingIncidents"], 1, "{report}");
    assert_eq!(
        report["released"], 0,
        "both holds have their line: {report}"
    );
    let text = metrics(&host).await;
    assert_eq!(
        metric(&text, "cart_overselling_incidents_total{source=\"sweep\"}"),
        Some(1.0),
        "{text}"
    );
}

/// One reservation call is one observation of `cart_inventory_reservation_duration_seconds`,
/// and an inventory answering after 150 ms (injected) lands above the 100 ms bucket: the
/// per-call histogram the seed's reservation alert reads. (A lower bound only: the host
/// sleeps at least that long.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reservation_call_lands_in_its_bucket() {
    let host = cart_host_with(&[("metrics_sample_every", "1")]);
    put_product(&host, "s", "p", 250, 10);
    host.set_latency(Interface::Inventory, Duration::from_millis(150));
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    host.set_latency(Interface::Inventory, Duration::ZERO);
    let text = metrics(&host).await;
    let family = "cart_inventory_reservation_duration_seconds";
    assert_eq!(cumulative(&text, family, "+Inf"), 1.0, "{text}");
    assert_eq!(cumulative(&text, family, "0.1"), 0.0, "{text}");
    assert_eq!(metric(&text, &format!("{family}_count")), Some(1.0));
}

/// Outbox lag is per event, commit to acknowledgement, on the (injectable) wall clock: events
/// held back by a sink outage for 10 s (moved on by the clock; real time only adds to it) land
/// above the 5 s bucket, within the 30 s one, when a sweep delivers them; publish duration and
/// batch size are counted per produce request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_lag_is_measured_per_event_from_commit_to_acknowledgement() {
    let host = cart_host_with(&[("metrics_sample_every", "1")]);
    put_product(&host, "s", "p", 250, 10);
    host.fail_always(Interface::Events, Fault::Unavailable("sink down".into()));
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    host.wait_idle().await;
    host.clear_all_faults();
    host.advance_clock(Duration::from_secs(10));
    let r = admin_post(&host, "/admin/outbox/relay?force=true").await;
    assert_eq!(r.status(), 200, "{}", r.text());
    let text = metrics(&host).await;
    let lag = "cart_outbox_lag_seconds";
    let acked = metric(&text, "cart_outbox_events_acked_total").expect("acked");
    assert!(acked >= 1.0, "{text}");
    assert_eq!(cumulative(&text, lag, "+Inf"), acked, "{text}");
    assert_eq!(cumulative(&text, lag, "5"), 0.0, "{text}");
    assert_eq!(cumulative(&text, lag, "30"), acked, "{text}");
    // Two produce requests: the failed one after the add and the sweep's.
    let publishes = metric(&text, "cart_events_publish_duration_seconds_count").expect("publish");
    assert!(publishes >= 2.0, "{text}");
    assert_eq!(
        metric(&text, "cart_events_publish_batch_size_count"),
        Some(publishes)
    );
    assert!(metric(&text, "cart_outbox_events_failed_total") >= Some(1.0));
}

/// Incident counters (here the breaker opening and the inventory failures behind it) are
/// written by the request they happen in even when its other counts are sampled out (1 in a
/// million here): a 0 on those series must mean nothing happened, whatever the sample rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_are_counted_exactly_under_sampling() {
    let host = cart_host_with(&[
        ("breaker_min_volume", "2"),
        ("metrics_sample_every", "1000000"),
    ]);
    for p in ["a", "b"] {
        put_product(&host, "s", p, 100, 100);
        assert_eq!(add(&host, "s", "u", p, 1).await.status(), 200);
    }
    host.wait_idle().await;
    let text = metrics(&host).await;
    assert_eq!(
        metric(&text, "cart_inventory_breaker_opened_total"),
        Some(0.0),
        "shown at 0 before any incident:\n{text}"
    );
    host.fail_always(
        Interface::Inventory,
        Fault::Unavailable("inventory request timed out after 1500 ms".into()),
    );
    for i in 0..8 {
        let r = set_qty(&host, "s", "u", ["a", "b"][i % 2], 2 + (i as i64 % 2)).await;
        assert_eq!(r.status(), 200, "{}", r.text());
        host.wait_idle().await;
    }
    let text = metrics(&host).await;
    assert_eq!(
        metric(&text, "cart_inventory_breaker_opened_total"),
        Some(1.0),
        "{text}"
    );
    let timeouts = metric(&text, "cart_inventory_timeouts_total").unwrap_or(0.0);
    assert!(
        (2.0..=8.0).contains(&timeouts),
        "every timed-out call before the breaker opened is counted, none weighted: {timeouts}\n{text}"
    );
    assert_eq!(
        metric(
            &text,
            "cart_http_responses_total{operation=\"set_quantity\",status=\"200\"}"
        ),
        None,
        "the request counts themselves stay sampled (out, at 1 in a million)"
    );
}
