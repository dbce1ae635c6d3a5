//! Wall-clock time in Unix epoch milliseconds (wasip2 provides `SystemTime`).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    // A clock before 1970 is a host misconfiguration; treating it as 0 keeps holds counting
    // rather than failing requests.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
