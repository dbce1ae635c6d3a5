//! Every series the cart counts, fixed at compile time: counter names, the operations, the
//! response statuses and the duration buckets. `/metrics` reads exactly these keys (never a
//! scan of the store), so a scrape costs the same however many carts, leases, idempotency
//! records or reference-service records the store holds; and `metrics::flush` writes nothing
//! else, so the `metrics:` keys stay bounded too.
//!
//! A series is stored as a key-value counter `metrics:{stored name}`. Stored names keep the
//! units they are counted in (milliseconds); the exposition shows Prometheus' base unit
//! (seconds) under its own family name.

/// How a stored counter is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// As counted.
    Count,
    /// Counted in milliseconds, shown in seconds.
    MillisAsSeconds,
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
}

const fn counter(name: &'static str, help: &'static str) -> Counter {
    Counter {
        stored: name,
        family: name,
        labels: "",
        help,
        unit: Unit::Count,
    }
}

const fn millis(stored: &'static str, family: &'static str, help: &'static str) -> Counter {
    Counter {
        stored,
        family,
        labels: "",
        help,
        unit: Unit::MillisAsSeconds,
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
    counter(
        "cart_lock_timeouts_total",
        "Requests that gave up waiting for a busy line (line-busy).",
    ),
    counter(
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
    counter(
        "cart_inventory_short_circuits_total",
        "Inventory calls refused by the open circuit breaker.",
    ),
    counter(
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
        "cart_outbox_events_committed_total",
        "Domain events committed to cart outboxes (exact, never sampled).",
    ),
    counter(
        "cart_outbox_events_acked_total",
        "Domain events acknowledged by the event pipeline (exact, never sampled).",
    ),
    millis(
        "cart_outbox_lag_ms_total",
        "cart_outbox_lag_seconds_total",
        "Sum of commit-to-acknowledgement times of acknowledged events (divide by cart_outbox_events_acked_total for the mean lag).",
    ),
    counter(
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
    counter(
        "cart_merge_lines_dropped_total",
        "Guest cart lines a merge could not take (line limit or another currency).",
    ),
    counter(
        "cart_checkouts_resumed_total",
        "Checkout requests that found an earlier attempt's intent and finished it.",
    ),
    counter(
        "cart_guest_merges_total",
        "Guest carts merged into a signed-in shopper's cart.",
    ),
    counter(
        "cart_abandoned_carts_expired_total",
        "Abandoned carts emptied (their holds released).",
    ),
    counter(
        "cart_orphan_reservations_released_total",
        "Holds without a cart line released by the admin sweep.",
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

/// Upper bounds (ms) of the operation duration buckets (stored per bucket, shown cumulative).
pub const DURATION_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

/// The `le` label of each stored bucket, `+Inf` last.
pub const BUCKET_LABELS: [&str; 11] = [
    "1", "2", "5", "10", "25", "50", "100", "250", "1000", "5000", "+Inf",
];

/// Stored per-operation series (`{operation="…"}` and more labels appended).
pub const RAW_BUCKET: &str = "cart_operation_duration_ms_raw";
pub const DURATION_SUM: &str = "cart_operation_duration_ms_sum";
pub const DURATION_COUNT: &str = "cart_operation_duration_ms_count";
pub const RESPONSES: &str = "cart_http_responses_total";

pub const DURATION_FAMILY: &str = "cart_operation_duration_seconds";
pub const DURATION_HELP: &str =
    "Time from reading a request to sending its response, per operation.";
pub const RESPONSES_HELP: &str = "Responses per operation and HTTP status.";

pub fn raw_bucket(operation: &str, le: &str) -> String {
    format!("{RAW_BUCKET}{{operation=\"{operation}\",le=\"{le}\"}}")
}

pub fn duration_sum(operation: &str) -> String {
    format!("{DURATION_SUM}{{operation=\"{operation}\"}}")
}

pub fn duration_count(operation: &str) -> String {
    format!("{DURATION_COUNT}{{operation=\"{operation}\"}}")
}

pub fn responses(operation: &str, status: &str) -> String {
    format!("{RESPONSES}{{operation=\"{operation}\",status=\"{status}\"}}")
}

/// What a request waited on, as `timing::Phase` names them (lock service, inventory, cart
/// store, event pipeline).
pub const DEPENDENCIES: [&str; 4] = ["lock", "inventory", "store", "events"];

/// Stored per-dependency series (`{dependency="…"}` and more labels appended).
pub const DEP_RAW_BUCKET: &str = "cart_dependency_duration_ms_raw";
pub const DEP_SUM: &str = "cart_dependency_duration_ms_sum";
pub const DEP_COUNT: &str = "cart_dependency_duration_ms_count";
pub const DEP_FAMILY: &str = "cart_dependency_duration_seconds";
pub const DEP_HELP: &str =
    "Time one request spent waiting on a dependency (lock service, inventory, cart store, event pipeline), for each request that used it.";

pub fn dep_raw_bucket(dependency: &str, le: &str) -> String {
    format!("{DEP_RAW_BUCKET}{{dependency=\"{dependency}\",le=\"{le}\"}}")
}

pub fn dep_sum(dependency: &str) -> String {
    format!("{DEP_SUM}{{dependency=\"{dependency}\"}}")
}

pub fn dep_count(dependency: &str) -> String {
    format!("{DEP_COUNT}{{dependency=\"{dependency}\"}}")
}

/// Whether `series` is a registered per-dependency series.
fn is_dependency_series(series: &str) -> bool {
    let Some((name, labels)) = series.split_once("{dependency=\"") else {
        return false;
    };
    let Some((dependency, rest)) = labels.split_once('"') else {
        return false;
    };
    if !DEPENDENCIES.contains(&dependency) {
        return false;
    }
    match name {
        DEP_SUM | DEP_COUNT => rest == "}",
        DEP_RAW_BUCKET => rest
            .strip_prefix(",le=\"")
            .and_then(|r| r.strip_suffix("\"}"))
            .is_some_and(|le| BUCKET_LABELS.contains(&le)),
        _ => false,
    }
}

/// Whether `series` is one the registry lists (only those are written and read).
pub fn is_registered(series: &str) -> bool {
    if COUNTERS.iter().any(|c| c.stored == series) || is_dependency_series(series) {
        return true;
    }
    let Some((name, labels)) = series.split_once("{operation=\"") else {
        return false;
    };
    let Some((operation, rest)) = labels.split_once('"') else {
        return false;
    };
    if !OPERATIONS.contains(&operation) {
        return false;
    }
    let label = |prefix: &str| {
        rest.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("\"}"))
            .map(str::to_owned)
    };
    match name {
        DURATION_SUM | DURATION_COUNT => rest == "}",
        RAW_BUCKET => label(",le=\"").is_some_and(|le| BUCKET_LABELS.contains(&le.as_str())),
        RESPONSES => {
            label(",status=\"").is_some_and(|s| s == "other" || STATUSES.contains(&s.as_str()))
        }
        _ => false,
    }
}

/// How many keys a scrape reads at most: every counter, and per operation its count, sum,
/// buckets and statuses.
#[cfg(test)]
pub const fn max_scrape_reads() -> usize {
    COUNTERS.len()
        + OPERATIONS.len() * (2 + BUCKET_LABELS.len() + STATUSES.len() + 1)
        + DEPENDENCIES.len() * (2 + BUCKET_LABELS.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cart_domain::ProblemKind;

    /// Every problem kind; the `match` stops compiling when a kind is added and not listed.
    fn every_problem_kind() -> Vec<ProblemKind> {
        use ProblemKind::*;
        let all = vec![
            InvalidBody,
            InvalidId,
            InvalidHeader,
            UnsupportedMediaType,
            BodyTooLarge,
            HeadersTooLarge,
            InvalidQuantity,
            QuantityLimitExceeded,
            TooManyLines,
            CurrencyMismatch,
            UnknownProduct,
            Unauthenticated,
            Forbidden,
            NotFound,
            LineNotFound,
            MethodNotAllowed,
            InsufficientStock,
            PreconditionFailed,
            PreconditionRequired,
            LineBusy,
            CartConflict,
            CartEmpty,
            InvalidGuestToken,
            InventoryUnavailable,
            StoreUnavailable,
            LockUnavailable,
            IdentityKeysUnavailable,
            IdempotencyKeyRequired,
            IdempotencyKeyInUse,
            IdempotencyKeyReused,
            Internal,
        ];
        for kind in &all {
            match kind {
                InvalidBody
                | InvalidId
                | InvalidHeader
                | UnsupportedMediaType
                | BodyTooLarge
                | HeadersTooLarge
                | InvalidQuantity
                | QuantityLimitExceeded
                | TooManyLines
                | CurrencyMismatch
                | UnknownProduct
                | Unauthenticated
                | Forbidden
                | NotFound
                | LineNotFound
                | MethodNotAllowed
                | InsufficientStock
                | PreconditionFailed
                | PreconditionRequired
                | LineBusy
                | CartConflict
                | CartEmpty
                | InvalidGuestToken
                | InventoryUnavailable
                | StoreUnavailable
                | LockUnavailable
                | IdentityKeysUnavailable
                | IdempotencyKeyRequired
                | IdempotencyKeyInUse
                | IdempotencyKeyReused
                | Internal => {}
            }
        }
        all
    }

    #[test]
    fn every_status_the_cart_answers_has_its_own_label() {
        for kind in every_problem_kind() {
            assert_ne!(status_label(kind.status()), "other", "{kind:?}");
        }
        for status in [200, 201, 204, 304] {
            assert_eq!(status_label(status), status.to_string());
        }
        assert_eq!(status_label(418), "other");
    }

    #[test]
    fn operation_series_are_registered_and_nothing_else() {
        for op in OPERATIONS {
            assert!(is_registered(&duration_sum(op)));
            assert!(is_registered(&duration_count(op)));
            for le in BUCKET_LABELS {
                assert!(is_registered(&raw_bucket(op, le)));
            }
            for status in STATUSES.iter().copied().chain(["other"]) {
                assert!(is_registered(&responses(op, status)));
            }
        }
        for c in COUNTERS {
            assert!(is_registered(c.stored));
        }
        for unknown in [
            "cart_made_up_total",
            &duration_sum("no_such_op"),
            &raw_bucket("add_item", "3"),
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
        assert_eq!(BUCKET_LABELS.len(), DURATION_BUCKETS_MS.len() + 1);
        for (label, ms) in BUCKET_LABELS.iter().zip(DURATION_BUCKETS_MS) {
            assert_eq!(*label, ms.to_string());
        }
        assert!(max_scrape_reads() < 700, "{}", max_scrape_reads());
    }
}
