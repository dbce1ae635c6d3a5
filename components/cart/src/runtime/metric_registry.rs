//! Every series the cart counts, fixed at compile time: counter names, the operations, the
//! response statuses and the duration buckets. `/metrics` reads exactly these keys (never a
//! scan of the store), so a scrape costs the same however many carts, leases, idempotency
//! records or reference-service records the store holds; and `metrics::flush` writes nothing
//! else, so the `metrics:` keys stay bounded too.
//!
//! A series is stored under its stored name in the `metrics:shard:{i}` documents (see
//! `metrics`). Stored names keep the units they are counted in (`_ms`, `_us`); the exposition
//! shows Prometheus' base unit (seconds) under the family name.

/// How a stored counter is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// As counted.
    Count,
    /// Counted in milliseconds, shown in seconds.
    MillisAsSeconds,
    /// Counted in microseconds, shown in seconds.
    MicrosAsSeconds,
}

/// One counter series as callers name it (`metrics::inc(stored)`), and how it is shown.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    /// The stored series, labels included.
    pub stored: &'static str,
    /// The family it is shown in.
    pub family: &'static str,
    /// The labels it is shown with (`{...}`, or empty).
    pub labels: &'static str,
    pub help: &'static str,
    pub unit: Unit,
    /// Whether a request's count may be sampled away (`metrics_sample_every`). Incidents are
    /// not: a 0 there must mean none happened, and a request that has one already waited on a
    /// failing dependency or a busy line, so its write costs little.
    pub sampled: bool,
}

const fn counter(name: &'static str, help: &'static str) -> Counter {
    Counter {
        stored: name,
        family: name,
        labels: "",
        help,
        unit: Unit::Count,
        sampled: true,
    }
}

/// A counter of incidents: never sampled away (see [`Counter::sampled`]).
const fn incident(name: &'static str, help: &'static str) -> Counter {
    Counter {
        stored: name,
        family: name,
        labels: "",
        help,
        unit: Unit::Count,
        sampled: false,
    }
}

const fn millis(stored: &'static str, family: &'static str, help: &'static str) -> Counter {
    Counter {
        stored,
        family,
        labels: "",
        help,
        unit: Unit::MillisAsSeconds,
        sampled: true,
    }
}

const RESERVATIONS_HELP: &str =
    "Reservation attempts of cart lines, by result (confirmed, unconfirmed, expired, not_required, insufficient).";

const fn reservations(stored: &'static str, labels: &'static str) -> Counter {
    Counter {
        stored,
        family: "cart_inventory_reservations_total",
        labels,
        help: RESERVATIONS_HELP,
        unit: Unit::Count,
        sampled: true,
    }
}

const INCIDENTS_HELP: &str = "Overselling incidents (never sampled): source=checkout, the inventory refused to commit holds a checkout had just confirmed; source=sweep, a cart line shown confirmed and unexpired for more units than the inventory holds for it.";

const fn incidents(stored: &'static str, labels: &'static str) -> Counter {
    Counter {
        stored,
        family: "cart_overselling_incidents_total",
        labels,
        help: INCIDENTS_HELP,
        unit: Unit::Count,
        sampled: false,
    }
}

/// Every counter other than the per-operation series, grouped by family (a family's series
/// are adjacent, as the exposition format requires).
pub const COUNTERS: &[Counter] = &[
    counter("cart_lock_acquisitions_total", "Line leases taken."),
    counter(
        "cart_lock_contended_total",
        "Line leases taken after waiting for another holder.",
    ),
    counter(
        "cart_lock_attempts_total",
        "Attempts to take line leases, successful or not.",
    ),
    millis(
        "cart_lock_wait_ms_total",
        "cart_lock_wait_seconds_total",
        "Time requests spent waiting for line leases.",
    ),
    incident(
        "cart_lock_timeouts_total",
        "Requests that gave up waiting for a busy line (line-busy).",
    ),
    incident(
        "cart_lock_errors_total",
        "Failures of the lock backend (lock-unavailable).",
    ),
    counter(
        "cart_version_conflicts_total",
        "Compare-and-swap conflicts on cart heads (the change was re-applied to the newer version).",
    ),
    reservations(
        "cart_inventory_reservations_total{result=\"confirmed\"}",
        "{result=\"confirmed\"}",
    ),
    reservations(
        "cart_inventory_reservations_total{result=\"unconfirmed\"}",
        "{result=\"unconfirmed\"}",
    ),
    reservations(
        "cart_inventory_reservations_total{result=\"expired\"}",
        "{result=\"expired\"}",
    ),
    reservations(
        "cart_inventory_reservations_total{result=\"not_required\"}",
        "{result=\"not_required\"}",
    ),
    reservations(
        "cart_inventory_reservations_total{result=\"insufficient\"}",
        "{result=\"insufficient\"}",
    ),
    reservations(
        "cart_inventory_reservations_total{result=\"stale_fence\"}",
        "{result=\"stale_fence\"}",
    ),
    incident(
        "cart_inventory_timeouts_total",
        "Inventory calls that timed out (also counted in their result: a reservation that timed out is unconfirmed).",
    ),
    counter(
        "cart_inventory_short_circuits_total",
        "Inventory calls refused by the open circuit breaker.",
    ),
    incident(
        "cart_inventory_breaker_opened_total",
        "Times the inventory circuit breaker opened.",
    ),
    counter(
        "cart_cache_hits_total",
        "Product lookups answered from the cache (stale ones included).",
    ),
    counter(
        "cart_cache_misses_total",
        "Product lookups with no cached record.",
    ),
    counter(
        "cart_cache_refreshes_total",
        "Stale product records refreshed by the request holding the refresh lease.",
    ),
    counter(
        "cart_cache_stale_served_total",
        "Stale product records served while refreshing or while the inventory was unavailable.",
    ),
    counter(
        "cart_product_fetches_total",
        "Product records fetched from the inventory.",
    ),
    counter(
        "cart_cache_writes_total",
        "Product cache records written or deleted (divide by cart_product_fetches_total for the cache write amplification).",
    ),
    counter(
        "cart_outbox_events_committed_total",
        "Domain events committed to cart outboxes (sampled per event id, the same events as acked, so committed - acked is exact at 0).",
    ),
    counter(
        "cart_outbox_events_acked_total",
        "Domain events the event pipeline acknowledged, each counted once, when its relay removes it from the outbox (sampled per event id).",
    ),
    incident(
        "cart_outbox_events_failed_total",
        "Domain events a publish attempt did not get acknowledged (they stay pending and are retried).",
    ),
    incident(
        "cart_outbox_publish_failures_total",
        "Relay passes whose publish failed (the events stay pending).",
    ),
    counter(
        "cart_idempotency_replays_total",
        "Writes answered with a stored response for their Idempotency-Key.",
    ),
    counter(
        "cart_idempotency_in_flight_total",
        "Writes refused because their Idempotency-Key was in flight.",
    ),
    counter("cart_checkouts_total", "Completed checkouts."),
    incident(
        "cart_merge_lines_dropped_total",
        "Guest cart lines a merge could not take (line limit or another currency).",
    ),
    incident(
        "cart_checkouts_resumed_total",
        "Checkout requests that found an earlier attempt's intent and finished it.",
    ),
    counter(
        "cart_guest_merges_total",
        "Guest carts merged into a signed-in shopper's cart.",
    ),
    incident(
        "cart_abandoned_carts_expired_total",
        "Abandoned carts emptied (their holds released).",
    ),
    counter(
        "cart_orphan_reservations_released_total",
        "Holds without a cart line released by the admin sweep.",
    ),
    incidents(
        "cart_overselling_incidents_total{source=\"checkout\"}",
        "{source=\"checkout\"}",
    ),
    incidents(
        "cart_overselling_incidents_total{source=\"sweep\"}",
        "{source=\"sweep\"}",
    ),
];

/// Every operation name (`api::operation_name`, and `unread` for a request that could not be
/// read).
pub const OPERATIONS: [&str; 16] = [
    "health",
    "metrics",
    "admin_cache_invalidate",
    "admin_reservation_sweep",
    "admin_outbox_relay",
    "get_cart",
    "get_summary",
    "clear_cart",
    "add_item",
    "checkout",
    "merge_guest_cart",
    "issue_guest_token",
    "set_quantity",
    "remove_item",
    "unrouted",
    "unread",
];

/// Response statuses counted under their own label; any other is counted as `other`.
pub const STATUSES: [&str; 18] = [
    "200", "201", "204", "304", "400", "401", "403", "404", "405", "409", "412", "413", "415",
    "422", "428", "431", "500", "503",
];

/// The status label of a response.
pub fn status_label(status: u16) -> &'static str {
    let text = status.to_string();
    STATUSES
        .iter()
        .find(|s| **s == text)
        .copied()
        .unwrap_or("other")
}

/// Upper bounds (ms) of the request-level duration buckets: operations and per-request
/// dependency waits (stored per bucket, shown cumulative).
pub const DURATION_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

/// Upper bounds (µs) of the per-call duration buckets. Finer than the request buckets because
/// a cache read or an uncontended lease takes well under a millisecond, and they include the
/// seed's targets and alert lines as exact bounds (5 ms lock acquisition, 50 ms producer lag,
/// 100 ms reservation and lock hold, 200 ms reservation and lag alerts), so those quantiles
/// are not interpolated across a wide bucket.
pub const CALL_BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    5_000_000, 30_000_000,
];

/// Upper bounds of the events-per-publish buckets.
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 5, 10, 25, 50, 100, 250];

/// Upper bounds of the items-per-cart buckets (units, all lines together).
pub const ITEM_BUCKETS: [u64; 9] = [1, 2, 3, 5, 10, 20, 50, 100, 500];

/// Upper bounds of the value-per-cart buckets, in minor units of the cart's currency.
pub const VALUE_BUCKETS: [u64; 10] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000,
];

/// Currencies the value-per-cart histogram has its own series for; any other is `other`
/// (minor units of different currencies cannot be added up, and the label set stays fixed).
pub const CURRENCIES: [&str; 9] = [
    "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "other",
];

/// The currency label of an ISO 4217 code.
pub fn currency_label(code: &str) -> &'static str {
    CURRENCIES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("other")
}

/// `le` bound as stored (the number in the histogram's own unit) for bucket `i`, `+Inf` last.
pub fn stored_le(buckets: &[u64], i: usize) -> String {
    buckets
        .get(i)
        .map_or_else(|| "+Inf".to_owned(), u64::to_string)
}

/// One histogram family: how it is stored (`{stored}_raw{label,le}`, `{stored}_sum{label}`,
/// `{stored}_count{label}`, counted in `unit`) and shown (`family` in base units).
#[derive(Debug)]
pub struct HistogramDef {
    pub family: &'static str,
    pub stored: &'static str,
    pub help: &'static str,
    /// The one label, or "" for none.
    pub label: &'static str,
    /// Its values (`[""]` when there is no label).
    pub values: &'static [&'static str],
    pub buckets: &'static [u64],
    pub unit: Unit,
}

const NO_LABEL: [&str; 1] = [""];

/// What a request waited on, as `timing::Phase` names them (lock service, inventory, cart
/// store, event pipeline).
pub const DEPENDENCIES: [&str; 4] = ["lock", "inventory", "store", "events"];

pub const OPERATION_DURATION: HistogramDef = HistogramDef {
    family: "cart_operation_duration_seconds",
    stored: "cart_operation_duration_ms",
    help: "Time from reading a request to sending its response, per operation.",
    label: "operation",
    values: &OPERATIONS,
    buckets: &DURATION_BUCKETS_MS,
    unit: Unit::MillisAsSeconds,
};
pub const DEPENDENCY_DURATION: HistogramDef = HistogramDef {
    family: "cart_dependency_duration_seconds",
    stored: "cart_dependency_duration_ms",
    help: "Time one request spent waiting on a dependency (lock service, inventory, cart store, event pipeline), for each request that used it.",
    label: "dependency",
    values: &DEPENDENCIES,
    buckets: &DURATION_BUCKETS_MS,
    unit: Unit::MillisAsSeconds,
};
pub const RESERVATION_DURATION: HistogramDef = HistogramDef {
    family: "cart_inventory_reservation_duration_seconds",
    stored: "cart_inventory_reservation_us",
    help: "Duration of one reservation call to the inventory (a reserve of one line, whatever its answer; breaker short-circuits included).",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const LOCK_ACQUIRE_DURATION: HistogramDef = HistogramDef {
    family: "cart_lock_acquire_duration_seconds",
    stored: "cart_lock_acquire_us",
    help: "Time to take one line lease, waiting included (taken, timed out or failed).",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const LOCK_HOLD_DURATION: HistogramDef = HistogramDef {
    family: "cart_lock_hold_duration_seconds",
    stored: "cart_lock_hold_us",
    help: "Time a line lease was held, from taking it to releasing it.",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const PUBLISH_DURATION: HistogramDef = HistogramDef {
    family: "cart_events_publish_duration_seconds",
    stored: "cart_events_publish_us",
    help: "Duration of one produce request to the event pipeline (one batch of a cart's outbox), acknowledged or not.",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const PUBLISH_BATCH: HistogramDef = HistogramDef {
    family: "cart_events_publish_batch_size",
    stored: "cart_events_publish_batch",
    help: "Events per produce request to the event pipeline.",
    label: "",
    values: &NO_LABEL,
    buckets: &BATCH_BUCKETS,
    unit: Unit::Count,
};
pub const OUTBOX_LAG: HistogramDef = HistogramDef {
    family: "cart_outbox_lag_seconds",
    stored: "cart_outbox_lag_us",
    help: "Per event, time from its commit to the cart outbox to the event pipeline's acknowledgement (sampled per event).",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const CACHE_READ_DURATION: HistogramDef = HistogramDef {
    family: "cart_cache_read_duration_seconds",
    stored: "cart_cache_read_us",
    help: "Duration of one product cache read from the key-value store.",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const CACHE_WRITE_DURATION: HistogramDef = HistogramDef {
    family: "cart_cache_write_duration_seconds",
    stored: "cart_cache_write_us",
    help:
        "Duration of one product cache write (a record stored or deleted) to the key-value store.",
    label: "",
    values: &NO_LABEL,
    buckets: &CALL_BUCKETS_US,
    unit: Unit::MicrosAsSeconds,
};
pub const CART_ITEMS: HistogramDef = HistogramDef {
    family: "cart_checkout_items",
    stored: "cart_checkout_items",
    help:
        "Units per checked-out cart (all lines together), one observation per completed checkout.",
    label: "",
    values: &NO_LABEL,
    buckets: &ITEM_BUCKETS,
    unit: Unit::Count,
};
pub const CART_VALUE: HistogramDef = HistogramDef {
    family: "cart_checkout_value_minor_units",
    stored: "cart_checkout_value",
    help: "Subtotal per checked-out cart in minor units of its currency (other = any currency not listed), one observation per completed checkout.",
    label: "currency",
    values: &CURRENCIES,
    buckets: &VALUE_BUCKETS,
    unit: Unit::Count,
};

/// Every histogram family, in exposition order.
pub const HISTOGRAMS: [&HistogramDef; 12] = [
    &OPERATION_DURATION,
    &DEPENDENCY_DURATION,
    &RESERVATION_DURATION,
    &LOCK_ACQUIRE_DURATION,
    &LOCK_HOLD_DURATION,
    &PUBLISH_DURATION,
    &PUBLISH_BATCH,
    &OUTBOX_LAG,
    &CACHE_READ_DURATION,
    &CACHE_WRITE_DURATION,
    &CART_ITEMS,
    &CART_VALUE,
];

impl HistogramDef {
    fn labels(&self, value: &str) -> String {
        if self.label.is_empty() {
            String::new()
        } else {
            format!("{}=\"{value}\"", self.label)
        }
    }

    fn braced(inner: &str) -> String {
        if inner.is_empty() {
            String::new()
        } else {
            format!("{{{inner}}}")
        }
    }

    /// Stored series of bucket `le` (a stored bound, or `+Inf`).
    pub fn raw_bucket(&self, value: &str, le: &str) -> String {
        let labels = self.labels(value);
        let sep = if labels.is_empty() { "" } else { "," };
        format!("{}_raw{{{labels}{sep}le=\"{le}\"}}", self.stored)
    }

    pub fn sum(&self, value: &str) -> String {
        format!("{}_sum{}", self.stored, Self::braced(&self.labels(value)))
    }

    pub fn count(&self, value: &str) -> String {
        format!("{}_count{}", self.stored, Self::braced(&self.labels(value)))
    }

    /// The stored `le` of the bucket `amount` falls in.
    pub fn bucket_of(&self, amount: u64) -> String {
        let i = self
            .buckets
            .iter()
            .position(|le| amount <= *le)
            .unwrap_or(self.buckets.len());
        stored_le(self.buckets, i)
    }

    /// Whether `series` is one of this family's stored series.
    fn owns(&self, series: &str) -> bool {
        self.values.iter().any(|v| {
            series == self.sum(v)
                || series == self.count(v)
                || (0..=self.buckets.len())
                    .any(|i| series == self.raw_bucket(v, &stored_le(self.buckets, i)))
        })
    }
}

/// Stored per-operation counters (`{operation="…"}` and more labels appended).
pub const RESPONSES: &str = "cart_http_responses_total";
pub const RESPONSES_HELP: &str = "Responses per operation and HTTP status.";
/// Writes to the key-value store (documents compare-and-swap, key-value set, delete and
/// increment) a request made, its after-response work included, per operation. Lease writes
/// (counted by the lock metrics, and not store writes with a Redis lock backend) and the
/// sampled metrics flush itself are not included.
pub const STORE_WRITES: &str = "cart_store_writes_total";
pub const STORE_WRITES_HELP: &str = "Writes to the key-value store (document compare-and-swap, set, delete, increment) made by requests, after-response work included, per operation; lease writes and the metrics flush excluded.";

pub fn responses(operation: &str, status: &str) -> String {
    format!("{RESPONSES}{{operation=\"{operation}\",status=\"{status}\"}}")
}

pub fn store_writes(operation: &str) -> String {
    format!("{STORE_WRITES}{{operation=\"{operation}\"}}")
}

/// Whether `series` is one the registry lists (only those are written and read).
/// Whether `series` counts incidents, which are never sampled away.
pub fn is_incident(series: &str) -> bool {
    COUNTERS.iter().any(|c| c.stored == series && !c.sampled)
}

pub fn is_registered(series: &str) -> bool {
    if COUNTERS.iter().any(|c| c.stored == series) {
        return true;
    }
    if let Some((name, labels)) = series.split_once("{operation=\"") {
        let Some((operation, rest)) = labels.split_once('"') else {
            return false;
        };
        if OPERATIONS.contains(&operation) {
            match name {
                STORE_WRITES if rest == "}" => return true,
                RESPONSES => {
                    let status = rest
                        .strip_prefix(",status=\"")
                        .and_then(|r| r.strip_suffix("\"}"));
                    if status.is_some_and(|s| s == "other" || STATUSES.contains(&s)) {
                        return true;
                    }
                }
                _ => {}
            }
        }
    }
    HISTOGRAMS
        .iter()
        .any(|h| series.starts_with(h.stored) && h.owns(series))
}
/// How many series the shards can hold at most (a shard document never grows beyond them):
/// every counter, per operation its statuses and store writes, and every histogram series.
#[cfg(test)]
pub fn max_series() -> usize {
    COUNTERS.len()
        + OPERATIONS.len() * (STATUSES.len() + 2)
        + HISTOGRAMS
            .iter()
            .map(|h| h.values.len() * (h.buckets.len() + 3))
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_are_the_counters_marked_unsampled_and_only_those() {
        for series in [
            "cart_inventory_breaker_opened_total",
            "cart_lock_timeouts_total",
            "cart_overselling_incidents_total{source=\"checkout\"}",
            "cart_overselling_incidents_total{source=\"sweep\"}",
        ] {
            assert!(is_incident(series), "{series}");
        }
        for series in [
            "cart_lock_acquisitions_total",
            "cart_inventory_short_circuits_total",
            "cart_cache_hits_total",
            "not_a_series",
        ] {
            assert!(!is_incident(series), "{series}");
        }
    }

    #[test]
    fn operation_series_are_registered_and_nothing_else() {
        for op in OPERATIONS {
            for status in STATUSES.iter().copied().chain(["other"]) {
                assert!(is_registered(&responses(op, status)));
            }
            assert!(is_registered(&store_writes(op)));
        }
        for h in HISTOGRAMS {
            for v in h.values {
                assert!(is_registered(&h.sum(v)), "{}", h.sum(v));
                assert!(is_registered(&h.count(v)));
                for i in 0..=h.buckets.len() {
                    let raw = h.raw_bucket(v, &stored_le(h.buckets, i));
                    assert!(is_registered(&raw), "{raw}");
                }
            }
        }
        for c in COUNTERS {
            assert!(is_registered(c.stored));
        }
        for unknown in [
            "cart_made_up_total",
            &OPERATION_DURATION.sum("no_such_op"),
            &OPERATION_DURATION.raw_bucket("add_item", "3"),
            &RESERVATION_DURATION.raw_bucket("", "3"),
            "cart_inventory_reservation_us_raw{result=\"x\",le=\"250\"}",
            &CART_VALUE.sum("XYZ"),
            &store_writes("nope"),
            &responses("add_item", "299"),
            "cart_operation_duration_ms_sum{operation=\"add_item\",x=\"1\"}",
            "cart_inventory_reservations_total{result=\"other\"}",
        ] {
            assert!(!is_registered(unknown), "{unknown}");
        }
    }

    #[test]
    fn families_are_adjacent_and_named_for_prometheus() {
        let mut seen: Vec<&str> = Vec::new();
        for c in COUNTERS {
            if seen.last() != Some(&c.family) {
                assert!(!seen.contains(&c.family), "{} is split", c.family);
                seen.push(c.family);
            }
            assert!(c.family.ends_with("_total"), "{}", c.family);
            assert!(
                !c.family.split('_').any(|w| w == "ms"),
                "{}: base units only",
                c.family
            );
        }
        for h in HISTOGRAMS {
            assert!(h.buckets.windows(2).all(|w| w[0] < w[1]), "{}", h.family);
            assert!(!h.family.ends_with("_total"), "{}", h.family);
            assert!(!h.family.split('_').any(|w| w == "ms" || w == "us"));
            assert_eq!(
                h.family.ends_with("_seconds"),
                h.unit != Unit::Count,
                "{}: durations in seconds",
                h.family
            );
            assert_eq!(h.label.is_empty(), h.values == [""], "{}", h.family);
            assert!(!seen.contains(&h.family), "{} is also a counter", h.family);
        }
        assert!(max_series() < 1_000, "{}", max_series());
    }
}
