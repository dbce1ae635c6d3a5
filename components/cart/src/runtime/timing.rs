//! Per-request latency breakdown for `Server-Timing` and the operation log line. An instance
//! serves exactly one request, so a thread-local accumulator is per request.

use std::cell::RefCell;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Lock,
    Inventory,
    Store,
    Events,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Lock => "lock",
            Phase::Inventory => "inventory",
            Phase::Store => "store",
            Phase::Events => "events",
        }
    }
}

const PHASES: [Phase; 4] = [Phase::Lock, Phase::Inventory, Phase::Store, Phase::Events];

thread_local! {
    static SPENT_US: RefCell<[u64; 4]> = const { RefCell::new([0; 4]) };
}

/// Runs `f`, adding its duration to `phase`.
pub fn measure<T>(phase: Phase, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let spent = start.elapsed().as_micros() as u64;
    SPENT_US.with(|s| s.borrow_mut()[phase as usize] += spent);
    out
}

/// `measure`, also returning the duration in microseconds (the same two clock reads), for a
/// per-call histogram.
pub fn measure_timed<T>(phase: Phase, f: impl FnOnce() -> T) -> (T, u64) {
    let start = Instant::now();
    let out = f();
    let spent = start.elapsed().as_micros() as u64;
    SPENT_US.with(|s| s.borrow_mut()[phase as usize] += spent);
    (out, spent)
}

/// The phases this request waited on, with the microseconds spent in each.
pub fn spent() -> Vec<(&'static str, u64)> {
    let spent = SPENT_US.with(|s| *s.borrow());
    PHASES
        .iter()
        .filter(|p| spent[**p as usize] > 0)
        .map(|p| (p.name(), spent[*p as usize]))
        .collect()
}

/// `Server-Timing` value: each phase and the total, in milliseconds.
pub fn server_timing(total_us: u64) -> String {
    let spent = SPENT_US.with(|s| *s.borrow());
    let mut parts: Vec<String> = PHASES
        .iter()
        .filter(|p| spent[**p as usize] > 0)
        .map(|p| format!("{};dur={:.3}", p.name(), spent[*p as usize] as f64 / 1000.0))
        .collect();
    parts.push(format!("total;dur={:.3}", total_us as f64 / 1000.0));
    parts.join(", ")
}
