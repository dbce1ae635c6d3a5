//! The count of store writes one request makes, for `cart_store_writes_total{operation}`.
//! `bindings` adds to it on every document compare-and-swap and key-value set, delete and
//! increment; `metrics` takes it once the request's work is done. A thread-local add (an
//! instance serves one request): no host call. Its own module so that neither `bindings` nor
//! `metrics` imports the other.

use std::cell::Cell;

thread_local! {
    static WRITES: Cell<i64> = const { Cell::new(0) };
}

/// Counts one write.
pub fn count() {
    WRITES.with(|w| w.set(w.get() + 1));
}

/// The writes counted so far, resetting the count.
pub fn take() -> i64 {
    WRITES.with(|w| w.replace(0))
}
