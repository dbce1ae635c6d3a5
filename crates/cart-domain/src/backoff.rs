//! Bounded exponential backoff with full jitter, for lock waits and CAS retries.

/// How long to wait before attempt `attempt` (0-based), given a random value in [0, 1).
/// Full jitter spreads competing requests apart so they do not retry in lockstep.
pub fn backoff_delay_ms(attempt: u32, base_ms: u64, cap_ms: u64, random_unit: f64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.min(20));
    let ceiling = exp.min(cap_ms).max(1);
    let jitter = (random_unit.clamp(0.0, 0.999_999) * ceiling as f64) as u64;
    jitter.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        // With the largest draw the delay is (just under) the ceiling: base doubling per
        // attempt, then the cap. A function that ignored the attempt would fail here.
        let top = |attempt| backoff_delay_ms(attempt, 5, 200, 0.999_999);
        assert_eq!(
            (0..8).map(top).collect::<Vec<_>>(),
            vec![4, 9, 19, 39, 79, 159, 199, 199]
        );
        assert_eq!(top(30), 199, "capped, no overflow");
        // The smallest draw waits the minimum, so retries spread over the whole range.
        assert_eq!(backoff_delay_ms(30, 5, 200, 0.0), 1);
        assert_eq!(backoff_delay_ms(3, 5, 200, 0.5), 20);
    }
}
