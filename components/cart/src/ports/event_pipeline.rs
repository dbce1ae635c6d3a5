//! Publishing a cart's outbox events through the `events` capability (Kafka REST on Spin):
//! one produce request per batch, timed and counted.

use crate::ports::bindings::events;
use crate::ports::metrics;
use crate::runtime::metric_registry as registry;
use crate::runtime::timing::{measure_timed, Phase};
use cart_domain::events::OutboxEntry;

/// Publishes `batch` in order, keyed by the cart (so one cart's events share a partition);
/// how many leading events were acknowledged.
pub fn publish(cart_key: &str, topic: &str, batch: &[OutboxEntry]) -> usize {
    let records: Vec<events::EventRecord> = batch
        .iter()
        .map_while(|e| {
            serde_json::to_string(&e.event)
                .ok()
                .map(|value| events::EventRecord {
                    key: cart_key.to_owned(),
                    value,
                })
        })
        .collect();
    // Timed for the per-dependency histogram (after the response, so not in Server-Timing)
    // and, with the same two clock reads, for the per-publish histogram.
    let (published, took_us) = measure_timed(Phase::Events, || events::publish(topic, &records));
    metrics::observe(&registry::PUBLISH_DURATION, "", took_us);
    metrics::observe(&registry::PUBLISH_BATCH, "", records.len() as u64);
    let acked = match published {
        Ok(n) => (n as usize).min(records.len()),
        Err(e) => {
            eprintln!(
                "{{\"level\":\"warn\",\"msg\":\"event publish failed\",\"cart\":\"{cart_key}\",\"error\":{}}}",
                serde_json::Value::String(format!("{e:?}"))
            );
            0
        }
    };
    metrics::add(
        "cart_outbox_events_failed_total",
        (records.len() - acked) as i64,
    );
    acked
}
