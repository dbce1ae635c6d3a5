//! Domain events as CloudEvents 1.0 (JSON format), carried in the cart document's outbox.
//!
//! Each event has a per-cart `sequence` that only grows (it survives clears), so consumers can
//! order one cart's events and de-duplicate redeliveries by `id` (which embeds the sequence).

use crate::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event types the cart emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ItemAdded,
    ItemUpdated,
    ItemRemoved,
    Cleared,
    CheckedOut,
    ReservationUnconfirmed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ItemAdded => "cart.item.added",
            EventType::ItemUpdated => "cart.item.updated",
            EventType::ItemRemoved => "cart.item.removed",
            EventType::Cleared => "cart.cleared",
            EventType::CheckedOut => "cart.checked_out",
            EventType::ReservationUnconfirmed => "cart.reservation.unconfirmed",
        }
    }
}

/// One CloudEvent. `sequence` and `partitionkey` are CloudEvents extension attributes
/// (the sequence and partitioning extensions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub time: String,
    pub datacontenttype: String,
    pub sequence: u64,
    pub partitionkey: String,
    /// The W3C trace context of the request that caused the event (CloudEvents
    /// distributed-tracing extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    pub data: Value,
}

/// An outbox entry: the event plus when it was committed (for the outbox-lag metric).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub committed_at_ms: u64,
    pub event: CloudEvent,
}

/// Builds events for one cart; the caller passes the cart's last used sequence.
pub struct EventFactory<'a> {
    pub store_id: &'a str,
    pub user_id: &'a str,
    pub cart_key: &'a str,
    pub now_ms: u64,
}

impl EventFactory<'_> {
    pub fn event(&self, sequence: u64, event_type: EventType, data: Value) -> OutboxEntry {
        OutboxEntry {
            committed_at_ms: self.now_ms,
            event: CloudEvent {
                specversion: "1.0".into(),
                id: format!("{}:{sequence}", self.cart_key),
                source: format!("/edge-cart/stores/{}", self.store_id),
                event_type: event_type.as_str().into(),
                subject: format!("carts/{}", self.user_id),
                time: rfc3339(self.now_ms),
                datacontenttype: "application/json".into(),
                sequence,
                partitionkey: self.cart_key.into(),
                traceparent: None,
                tracestate: None,
                data,
            },
        }
    }
}

/// The `data` of line events.
pub fn line_data(
    store_id: &str,
    user_id: &str,
    product_id: &str,
    previous_quantity: u32,
    quantity: u32,
    unit_price: Option<&Money>,
    reservation_status: Option<&str>,
) -> Value {
    serde_json::json!({
        "storeId": store_id,
        "userId": user_id,
        "productId": product_id,
        "previousQuantity": previous_quantity,
        "quantity": quantity,
        "unitPrice": unit_price,
        "reservationStatus": reservation_status,
    })
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC (`2026-11-25T11:53:09.123Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn events_carry_sequence_and_unique_ids() {
        let f = EventFactory {
            store_id: "demo",
            user_id: "alice",
            cart_key: "cart:demo:alice",
            now_ms: 0,
        };
        let a = f.event(1, EventType::ItemAdded, Value::Null);
        let b = f.event(2, EventType::ItemAdded, Value::Null);
        assert_ne!(a.event.id, b.event.id);
        assert_eq!(a.event.event_type, "cart.item.added");
        assert_eq!(a.event.specversion, "1.0");
        let json = serde_json::to_value(&a.event).unwrap();
        assert_eq!(json["type"], "cart.item.added");
        assert_eq!(json["sequence"], 1);
    }
}
