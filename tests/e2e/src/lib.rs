//! The end-to-end suite's harness: real `spin up` of the app in `spin.toml` (built by
//! `spin build`), a blocking HTTP client, the public API helpers, a real `redis-server` and
//! loopback peers for the app's outbound calls.
//! Tests know nothing of the app's internals: they see what a storefront or an operator sees.

pub mod api;
pub mod http;
pub mod kv_file;
pub mod loopback;
pub mod prom;
pub mod redis;
pub mod spin;
pub mod upstash;

pub use http::{Client, Response};
pub use spin::{spin_cli, SpinUp};

/// Runs `f` on `n` threads at once (all released together) and returns the results in index
/// order: how the suite makes many truly parallel requests.
pub fn in_parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let f = &f;
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a parallel request thread panicked"))
            .collect()
    })
}

/// Polls `check` every 100 ms until it returns `Some`, failing with `what` after `secs` seconds.
/// For effects that happen after a response (the outbox relay), never as a timing assertion.
pub fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
