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
        assert!(backoff_delay_ms(0, 5, 200, 0.999) <= 5);
        assert!(backoff_delay_ms(3, 5, 200, 0.999) <= 40);
        assert!(backoff_delay_ms(30, 5, 200, 0.999) <= 200);
        assert!(backoff_delay_ms(30, 5, 200, 0.0) >= 1);
    }
}
