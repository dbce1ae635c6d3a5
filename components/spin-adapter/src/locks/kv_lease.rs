//! Leases in the `default` key-value store, moved by compare-and-swap.
//!
//! Layout for lock key `k`:
//!
//! | key          | value                                                    | written by        |
//! |--------------|----------------------------------------------------------|-------------------|
//! | `lock:k`     | JSON `{"token","expiresAtMs","nonce"}`                   | `swap` only       |
//! | `lock:k:gen` | creation guard (8-byte LE i64)                           | `increment` only  |
//!
//! A `swap` on an absent key is an unconditional upsert in Spin, so CAS only excludes once the
//! record exists. Hence the record, once created, is never deleted: release writes a released
//! value (`token` empty, `expiresAtMs` 0) by CAS, and an expired or released record is taken
//! over by CAS. Creation (the only absent-key write) is guarded by `increment(lock:k:gen)`,
//! which is atomic for absent keys: only the caller that gets 1 creates; everyone else sees
//! "held" and retries later, by which time the record exists. Each value carries a fresh nonce
//! (and held values a fresh token), so a value never repeats and CAS has no ABA.
//!
//! Retiring (`retire`) removes both keys, so leases on keys that are rarely taken twice do not
//! pile up. It deletes only a lease its caller holds with at least `RETIRE_MARGIN_MS` left, so
//! nobody else can take the record over between the check and the deletes (short of clocks
//! further apart than the margin), and deletes the guard before the record: a crash between
//! the two deletes leaves a held record without a guard, which expires and is taken over like
//! any other. With less than the margin left it releases instead (the record stays).
//!
//! Between a retire's two deletes the guard is gone while the record is still there. A taker
//! that saw the record absent *before* the retiring holder created it can reach the guard
//! then, get 1 and (were it to write at once) upsert a record that the retire's second delete
//! removes: a guard with no record, refusing every taker for good (a real-Spin suite hit it
//! under load). So a taker that gets 1 looks at the record again first: present means a
//! retire is under way, and it deletes the guard it just made (restoring what the retire left)
//! and reports the key busy; absent means any retire of the record it saw has finished, and
//! only the holder of this 1 can create. `tests::*` drive these interleavings on an in-memory
//! store with Spin's semantics.
//!
//! Known crash window: if the creator dies between its `increment` and its `swap` (or a taker
//! that must give the guard back fails to delete it), the record is never created and the
//! lock stays "held" for good. Recovery is manual: delete `lock:k:gen` while `lock:k` is
//! absent (docs/runbooks.md, "Known crash windows").
//!
//! Expiry compares `expiresAtMs` with each instance's wall clock, so hosts sharing a store
//! must keep their clocks close compared with the lease TTLs.

use serde::Deserialize;
use spin_sdk::wit::wasi::keyvalue::atomics::{self, Cas, CasError};
use spin_sdk::wit::wasi::keyvalue::store::{self, Bucket};

use crate::exports::storefront::cart::locks::LockError;
use crate::kv_store;
use crate::token;

/// Takes the lease `key` for `ttl_ms` under `token`; false when someone else holds it.
pub fn try_acquire(key: &str, ttl_ms: u32, token: &str) -> Result<bool, LockError> {
    let store = SpinStore::open()?;
    let now = now_ms();
    let held = LeaseValue::held(
        token,
        now.saturating_add(u64::from(ttl_ms)),
        token::random_nonce(),
    );
    try_acquire_in(&store, key, &held, now)
}

/// Releases the lease if `token` still holds it unexpired.
pub fn release(key: &str, token: &str) -> Result<bool, LockError> {
    release_in(
        &SpinStore::open()?,
        key,
        token,
        now_ms(),
        &token::random_nonce,
    )
}

/// Releases the lease if `token` holds it and removes its keys (see the module doc); true when
/// it was held.
pub fn retire(key: &str, token: &str) -> Result<bool, LockError> {
    retire_in(
        &SpinStore::open()?,
        key,
        token,
        now_ms(),
        &token::random_nonce,
    )
}

/// The key-value operations a lease needs, with Spin's semantics: `snapshot` reads a key for a
/// later `swap`, which replaces the value only if it is still the one read, and is an
/// unconditional upsert when the key was absent; `increment` is atomic and counts an absent
/// key from 0. The protocol below runs on Spin's store ([`SpinStore`]) and, in the tests, on an
/// in-memory one that can interleave other takers between any two calls.
trait LeaseStore {
    type Snapshot;
    fn snapshot(&self, key: &str) -> Result<(Self::Snapshot, Option<Vec<u8>>), LockError>;
    fn swap(&self, snapshot: Self::Snapshot, key: &str, value: &[u8]) -> Result<bool, LockError>;
    fn increment(&self, key: &str) -> Result<i64, LockError>;
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LockError>;
    fn delete(&self, key: &str) -> Result<(), LockError>;
}

fn try_acquire_in<S: LeaseStore>(
    store: &S,
    key: &str,
    held: &LeaseValue,
    now: u64,
) -> Result<bool, LockError> {
    let record_key = record_key(key);
    let (cas, current) = store.snapshot(&record_key)?;
    if let Some(raw) = current {
        // An unreadable record cannot protect anyone: take it over like an expired one
        // (still by CAS, so concurrent takers exclude each other).
        if decode(&raw).is_ok_and(|value| value.is_held_at(now)) {
            return Ok(false);
        }
        return store.swap(cas, &record_key, &encode(held));
    }
    let guard = guard_key(key);
    if store.increment(&guard)? != 1 {
        return Ok(false);
    }
    // The guard is this caller's. Look at the record again (see the module doc): the look
    // above may predate another taker's whole creation, and that taker may be retiring now.
    let (cas, current) = store.snapshot(&record_key)?;
    if current.is_some() {
        store.delete(&guard)?;
        return Ok(false);
    }
    // Exclusive by the guard; this absent-key swap is the record's only upsert.
    store.swap(cas, &record_key, &encode(held))
}

/// `nonce` makes the released value unique (see the module doc).
fn release_in<S: LeaseStore>(
    store: &S,
    key: &str,
    token: &str,
    now: u64,
    nonce: &dyn Fn() -> String,
) -> Result<bool, LockError> {
    let record_key = record_key(key);
    let (cas, current) = store.snapshot(&record_key)?;
    let Some(raw) = current else {
        return Ok(false);
    };
    match decode(&raw) {
        Ok(value) if value.is_held_by(token, now) => {
            store.swap(cas, &record_key, &encode(&LeaseValue::released(nonce())))
        }
        // Expired (anyone may take it now), taken by someone else, or unreadable.
        _ => Ok(false),
    }
}

/// Least time a lease must have left for `retire` to delete it (see the module doc).
const RETIRE_MARGIN_MS: u64 = 5_000;

fn retire_in<S: LeaseStore>(
    store: &S,
    key: &str,
    token: &str,
    now: u64,
    nonce: &dyn Fn() -> String,
) -> Result<bool, LockError> {
    let record_key = record_key(key);
    let Some(raw) = store.get(&record_key)? else {
        return Ok(false);
    };
    match decode(&raw) {
        Ok(value) if value.is_held_by(token, now.saturating_add(RETIRE_MARGIN_MS)) => {
            store.delete(&guard_key(key))?;
            store.delete(&record_key)?;
            Ok(true)
        }
        Ok(value) if value.is_held_by(token, now) => release_in(store, key, token, now, nonce),
        _ => Ok(false),
    }
}

/// Spin's `default` key-value store (`wasi:keyvalue` with its atomics).
struct SpinStore {
    bucket: std::rc::Rc<Bucket>,
}

impl SpinStore {
    fn open() -> Result<Self, LockError> {
        Ok(SpinStore {
            bucket: kv_store::open().map_err(store_error)?,
        })
    }
}

impl LeaseStore for SpinStore {
    type Snapshot = Cas;

    fn snapshot(&self, key: &str) -> Result<(Cas, Option<Vec<u8>>), LockError> {
        let cas = Cas::new(&self.bucket, key).map_err(|e| failure("cas", key, &e))?;
        let current = cas.current().map_err(|e| failure("get", key, &e))?;
        Ok((cas, current))
    }

    fn swap(&self, cas: Cas, key: &str, value: &[u8]) -> Result<bool, LockError> {
        match atomics::swap(cas, value) {
            Ok(()) => Ok(true),
            Err(CasError::CasFailed(_)) => Ok(false),
            Err(CasError::StoreError(e)) => Err(failure("swap", key, &e)),
        }
    }

    fn increment(&self, key: &str) -> Result<i64, LockError> {
        atomics::increment(&self.bucket, key, 1).map_err(|e| failure("increment", key, &e))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LockError> {
        kv_store::get(&self.bucket, key).map_err(store_error)
    }

    fn delete(&self, key: &str) -> Result<(), LockError> {
        kv_store::delete(&self.bucket, key).map_err(store_error)
    }
}

fn record_key(key: &str) -> String {
    format!("lock:{key}")
}

fn guard_key(key: &str) -> String {
    format!("lock:{key}:gen")
}

/// The stored lease record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseValue {
    /// Holder's token; empty once released.
    token: String,
    /// Unix epoch milliseconds after which the lease is free.
    expires_at_ms: u64,
    /// Makes every written value unique (released values included), ruling out ABA.
    nonce: String,
}

impl LeaseValue {
    fn held(token: &str, expires_at_ms: u64, nonce: String) -> Self {
        LeaseValue {
            token: token.to_owned(),
            expires_at_ms,
            nonce,
        }
    }

    fn released(nonce: String) -> Self {
        LeaseValue {
            token: String::new(),
            expires_at_ms: 0,
            nonce,
        }
    }

    fn is_held_at(&self, now_ms: u64) -> bool {
        !self.token.is_empty() && self.expires_at_ms > now_ms
    }

    fn is_held_by(&self, token: &str, now_ms: u64) -> bool {
        self.is_held_at(now_ms) && self.token == token
    }
}

fn encode(value: &LeaseValue) -> Vec<u8> {
    serde_json::json!({
        "token": value.token,
        "expiresAtMs": value.expires_at_ms,
        "nonce": value.nonce,
    })
    .to_string()
    .into_bytes()
}

fn decode(raw: &[u8]) -> Result<LeaseValue, serde_json::Error> {
    serde_json::from_slice(raw)
}

/// Wall-clock Unix epoch milliseconds (0 if the clock reads before 1970, so nothing looks held
/// for longer than it should).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn failure(op: &str, key: &str, error: &store::Error) -> LockError {
    store_error(kv_store::unavailable(op, key, error))
}

fn store_error(error: crate::exports::storefront::cart::documents::StoreError) -> LockError {
    use crate::exports::storefront::cart::documents::StoreError;
    match error {
        StoreError::Unavailable(text) => LockError::Unavailable(text),
        StoreError::Invalid(text) => LockError::Invalid(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Other takers' steps, run by the store at a chosen point of this caller's calls.
    type Step = Box<dyn FnOnce(&MemStore)>;

    /// Spin's key-value semantics in memory (see [`LeaseStore`]), with one hook that runs other
    /// takers' steps just before this caller's next `increment`.
    #[derive(Default)]
    struct MemStore {
        values: RefCell<BTreeMap<String, Vec<u8>>>,
        before_increment: RefCell<Option<Step>>,
    }

    impl LeaseStore for MemStore {
        type Snapshot = Option<Vec<u8>>;

        fn snapshot(&self, key: &str) -> Result<(Self::Snapshot, Option<Vec<u8>>), LockError> {
            let value = self.values.borrow().get(key).cloned();
            Ok((value.clone(), value))
        }

        fn swap(&self, seen: Self::Snapshot, key: &str, value: &[u8]) -> Result<bool, LockError> {
            let mut values = self.values.borrow_mut();
            // An absent key at the snapshot makes the swap an unconditional upsert, as on Spin.
            if seen.is_some() && values.get(key) != seen.as_ref() {
                return Ok(false);
            }
            values.insert(key.to_owned(), value.to_vec());
            Ok(true)
        }

        fn increment(&self, key: &str) -> Result<i64, LockError> {
            let hook = self.before_increment.borrow_mut().take();
            if let Some(others) = hook {
                others(self);
            }
            let mut values = self.values.borrow_mut();
            let next = values
                .get(key)
                .and_then(|raw| <[u8; 8]>::try_from(raw.as_slice()).ok())
                .map_or(0, i64::from_le_bytes)
                + 1;
            values.insert(key.to_owned(), next.to_le_bytes().to_vec());
            Ok(next)
        }

        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LockError> {
            Ok(self.values.borrow().get(key).cloned())
        }

        fn delete(&self, key: &str) -> Result<(), LockError> {
            self.values.borrow_mut().remove(key);
            Ok(())
        }
    }

    const NOW: u64 = 1_000_000;

    fn lease(token: &str) -> LeaseValue {
        LeaseValue::held(token, NOW + 30_000, format!("n-{token}"))
    }

    /// Holder J creates the lease and retires it (its check passes: it holds it with time to
    /// spare) up to the first of its two deletes, the guard, as `retire_in` does; returns the
    /// second delete, for the test to run when it chooses.
    fn j_takes_and_starts_retiring(store: &MemStore) -> impl FnOnce(&MemStore) {
        assert!(try_acquire_in(store, "k", &lease("j"), NOW).expect("j takes"));
        let raw = store
            .get(&record_key("k"))
            .expect("read")
            .expect("j's record");
        assert!(decode(&raw)
            .expect("a lease")
            .is_held_by("j", NOW + RETIRE_MARGIN_MS));
        store.delete(&guard_key("k")).expect("delete the guard");
        |store: &MemStore| store.delete(&record_key("k")).expect("delete the record")
    }

    /// The interleaving a real-Spin suite hit: taker K sees the record absent, holder J then
    /// creates it and starts retiring (guard deleted), K takes the fresh guard, and J's second
    /// delete comes last. Before the fix K wrote its record there and J deleted it, leaving a
    /// guard without a record: every later taker was refused for good.
    #[test]
    fn a_taker_that_looked_before_a_retire_never_leaves_the_key_stuck() {
        let store = MemStore::default();
        let finish_retire: std::rc::Rc<RefCell<Option<Step>>> = Default::default();
        let pending = finish_retire.clone();
        *store.before_increment.borrow_mut() = Some(Box::new(move |store: &MemStore| {
            *pending.borrow_mut() = Some(Box::new(j_takes_and_starts_retiring(store)));
        }));
        // K's look predates J's creation; K's increment comes after J deleted the guard.
        let k_took = try_acquire_in(&store, "k", &lease("k"), NOW).expect("k tries");
        let finish = finish_retire.borrow_mut().take().expect("j ran");
        finish(&store);
        assert!(
            store.values.borrow().is_empty(),
            "no guard left without a record: {:?}",
            store.values.borrow().keys().collect::<Vec<_>>()
        );
        assert!(
            !k_took,
            "the record was there (being retired) when k looked again"
        );
        assert!(
            try_acquire_in(&store, "k", &lease("n"), NOW).expect("n tries"),
            "a newcomer takes the key"
        );
    }

    /// The same race with J's second delete before K looks again: K creates, and holds.
    #[test]
    fn a_taker_after_a_finished_retire_creates_the_lease() {
        let store = MemStore::default();
        *store.before_increment.borrow_mut() = Some(Box::new(|store: &MemStore| {
            let finish = j_takes_and_starts_retiring(store);
            finish(store);
        }));
        assert!(try_acquire_in(&store, "k", &lease("k"), NOW).expect("k tries"));
        let raw = store
            .get(&record_key("k"))
            .expect("read")
            .expect("k's record");
        assert!(decode(&raw).expect("a lease").is_held_by("k", NOW));
        assert!(!try_acquire_in(&store, "k", &lease("n"), NOW).expect("n tries"));
    }

    /// One holder at a time through creation, release, takeover and retire.
    #[test]
    fn the_protocol_keeps_one_holder_and_retire_leaves_nothing() {
        let store = MemStore::default();
        assert!(try_acquire_in(&store, "k", &lease("a"), NOW).expect("a"));
        assert!(!try_acquire_in(&store, "k", &lease("b"), NOW).expect("b"));
        let nonce = || "released".to_owned();
        assert!(!release_in(&store, "k", "b", NOW, &nonce).expect("b releases"));
        assert!(release_in(&store, "k", "a", NOW, &nonce).expect("a releases"));
        assert!(try_acquire_in(&store, "k", &lease("b"), NOW).expect("b again"));
        assert!(!retire_in(&store, "k", "a", NOW, &nonce).expect("a retires"));
        assert!(retire_in(&store, "k", "b", NOW, &nonce).expect("b retires"));
        assert!(store.values.borrow().is_empty());
        assert!(try_acquire_in(&store, "k", &lease("c"), NOW).expect("c"));
    }

    #[test]
    fn key_layout() {
        assert_eq!(record_key("s:u:p"), "lock:s:u:p");
        assert_eq!(guard_key("s:u:p"), "lock:s:u:p:gen");
    }

    #[test]
    fn values_round_trip_in_the_documented_shape() {
        let value = LeaseValue::held("abc", 1_700_000_000_123, "00ff".into());
        let raw = encode(&value);
        let json: serde_json::Value = serde_json::from_slice(&raw).expect("valid JSON");
        assert_eq!(
            json,
            serde_json::json!({"token": "abc", "expiresAtMs": 1_700_000_000_123u64, "nonce": "00ff"})
        );
        assert_eq!(decode(&raw).ok(), Some(value));
    }

    #[test]
    fn a_lease_is_held_until_it_expires() {
        let value = LeaseValue::held("t1", 1000, "n".into());
        assert!(value.is_held_at(999));
        assert!(!value.is_held_at(1000));
        assert!(value.is_held_by("t1", 999));
        assert!(!value.is_held_by("t2", 999));
        assert!(!value.is_held_by("t1", 1000));
    }

    #[test]
    fn a_released_lease_is_held_by_nobody() {
        let value = LeaseValue::released("n".into());
        assert!(!value.is_held_at(0));
        assert!(!value.is_held_by("", 0));
        assert!(decode(&encode(&value)).is_ok_and(|v| v == value));
    }

    #[test]
    fn released_values_differ_by_nonce() {
        assert_ne!(
            encode(&LeaseValue::released("a".into())),
            encode(&LeaseValue::released("b".into()))
        );
    }

    #[test]
    fn unreadable_records_are_errors() {
        assert!(decode(b"").is_err());
        assert!(decode(&1i64.to_le_bytes()).is_err());
        assert!(decode(br#"{"token":"t"}"#).is_err());
    }
}
