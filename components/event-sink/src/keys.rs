//! The key layout in the shared store "default". Every key starts with `evt:`; topic ids
//! cannot contain `:`, so a topic's keys never collide with another topic's or with these
//! service keys (`evt:topics` and `evt:faults` are single-segment, topic keys have two).

/// CAS'd sorted list of every topic ever produced to.
pub const TOPICS: &str = "evt:topics";

/// Plain JSON fault switch (see `faults`).
pub const FAULTS: &str = "evt:faults";

/// Increment-only counter: the number of offsets handed out for the topic (next offset).
pub fn next_offset(topic: &str) -> String {
    format!("evt:{topic}:next")
}

/// One stored record. Zero-padded so keys sort in offset order.
pub fn record(topic: &str, offset: u64) -> String {
    format!("evt:{topic}:{offset:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(next_offset("cart-events"), "evt:cart-events:next");
        assert_eq!(record("t", 42), "evt:t:00000000000000000042");
        assert_eq!(record("t", u64::MAX).len(), "evt:t:".len() + 20);
    }
}
