//! Circuit breaker rules for calls to the inventory, with no I/O.
//!
//! Instances are per request, so the state is shared through key-value: outcome counters per
//! time bucket (incremented atomically) and a small state record (`closed` is its absence).
//! These functions decide from those values what a request may do.

use serde::{Deserialize, Serialize};

/// Tunables (Spin variables `breaker_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Outcomes counted over this rolling window…
    pub window_ms: u64,
    /// …in buckets of this size (the window is a whole number of buckets).
    pub bucket_ms: u64,
    /// No opening below this many calls in the window.
    pub min_volume: u64,
    /// Open at or above this error percentage.
    pub error_percent: u64,
    /// Stay open this long before letting one probe through (half-open).
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window_ms: 30_000,
            bucket_ms: 5_000,
            min_volume: 10,
            error_percent: 50,
            open_ms: 30_000,
        }
    }
}

/// The shared state record. Absent means closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenState {
    pub opened_at_ms: u64,
}

/// The breaker as a request sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    Open,
    /// Open long enough: one probe may go through.
    HalfOpen,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half_open",
        }
    }

    /// Numeric value for the `cart_inventory_breaker_state` gauge.
    pub fn gauge(self) -> u8 {
        match self {
            Phase::Closed => 0,
            Phase::HalfOpen => 1,
            Phase::Open => 2,
        }
    }
}

pub fn phase(state: Option<OpenState>, now_ms: u64, config: &BreakerConfig) -> Phase {
    match state {
        None => Phase::Closed,
        Some(s) if now_ms.saturating_sub(s.opened_at_ms) >= config.open_ms => Phase::HalfOpen,
        Some(_) => Phase::Open,
    }
}

/// The bucket a moment falls in.
pub fn bucket_of(now_ms: u64, config: &BreakerConfig) -> u64 {
    now_ms / config.bucket_ms.max(1)
}

/// The buckets that make up the window ending at `now_ms`, newest first.
pub fn window_buckets(now_ms: u64, config: &BreakerConfig) -> Vec<u64> {
    let newest = bucket_of(now_ms, config);
    let count = (config.window_ms / config.bucket_ms.max(1)).max(1);
    (0..count).filter_map(|i| newest.checked_sub(i)).collect()
}

/// How many counter slots the shared store keeps: one per bucket of the window, plus one, so
/// the bucket being counted never reuses the slot of a bucket still in the window. Slots are
/// reused round-robin (`bucket % slots`), so the breaker's keys stay a fixed set however long
/// the service runs.
pub fn ring_slots(config: &BreakerConfig) -> u64 {
    (config.window_ms / config.bucket_ms.max(1)).max(1) + 1
}

/// The slot counting `bucket`.
pub fn slot_of(bucket: u64, config: &BreakerConfig) -> u64 {
    bucket % ring_slots(config)
}

/// Whether these window totals trip the breaker.
pub fn should_open(successes: u64, failures: u64, config: &BreakerConfig) -> bool {
    let total = successes + failures;
    total >= config.min_volume && failures * 100 >= config.error_percent * total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_volume_and_error_rate() {
        let c = BreakerConfig::default();
        assert!(!should_open(0, 9, &c), "below minimum volume");
        assert!(should_open(5, 5, &c), "50% of 10");
        assert!(!should_open(6, 4, &c));
        assert!(should_open(0, 10, &c));
    }

    #[test]
    fn half_opens_after_the_open_period() {
        let c = BreakerConfig::default();
        let s = Some(OpenState {
            opened_at_ms: 1_000,
        });
        assert_eq!(phase(None, 5_000, &c), Phase::Closed);
        assert_eq!(phase(s, 1_000 + c.open_ms - 1, &c), Phase::Open);
        assert_eq!(phase(s, 1_000 + c.open_ms, &c), Phase::HalfOpen);
    }

    #[test]
    fn the_window_never_shares_a_slot_with_the_bucket_being_counted() {
        let c = BreakerConfig::default();
        assert_eq!(ring_slots(&c), 7);
        for now in [0, 4_999, 60_000, 1_234_567_890] {
            let window = window_buckets(now, &c);
            let mut slots: Vec<u64> = window.iter().map(|b| slot_of(*b, &c)).collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), window.len(), "distinct slots at {now}");
        }
    }

    #[test]
    fn window_covers_whole_buckets() {
        let c = BreakerConfig::default();
        let b = window_buckets(60_000, &c);
        assert_eq!(b.len(), 6);
        assert_eq!(b[0], 12);
        assert_eq!(b[5], 7);
    }
}
