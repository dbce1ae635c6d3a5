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
//! further apart than the margin), and deletes the guard before the record: while the record
//! is still there nobody consults the guard, and once both are gone the next taker creates
//! afresh through the guard. A crash between the two deletes leaves a held record without a
//! guard, which expires and is taken over like any other. With less than the margin left it
//! releases instead (the record stays).
//!
//! Known crash window: if the creator dies between its `increment` and its `swap`, the record
//! is never created and the lock stays "held" for good. Recovery is manual: delete
//! `lock:k:gen` while `lock:k` is absent.
//!
//! Expiry compares `expiresAtMs` with each instance's wall clock, so hosts sharing a store
//! must keep their clocks close compared with the lease TTLs.

use serde::Deserialize;
use spin_sdk::wit::wasi::keyvalue::atomics::{self, Cas, CasError};
use spin_sdk::wit::wasi::keyvalue::store;

use crate::exports::storefront::cart::locks::LockError;
use crate::kv_store;
use crate::token;

/// Takes the lease `key` for `ttl_ms` under `token`; false when someone else holds it.
pub fn try_acquire(key: &str, ttl_ms: u32, token: &str) -> Result<bool, LockError> {
    let bucket = kv_store::open().map_err(store_error)?;
    let record_key = record_key(key);
    let cas = Cas::new(&bucket, &record_key).map_err(|e| failure("cas", &record_key, &e))?;
    let now = now_ms();
    let held = LeaseValue::held(
        token,
        now.saturating_add(u64::from(ttl_ms)),
        token::random_nonce(),
    );
    match cas.current().map_err(|e| failure("get", &record_key, &e))? {
        Some(raw) => {
            // An unreadable record cannot protect anyone: take it over like an expired one
            // (still by CAS, so concurrent takers exclude each other).
            if decode(&raw).is_ok_and(|value| value.is_held_at(now)) {
                return Ok(false);
            }
            swap_in(cas, &held, &record_key)
        }
        None => {
            let guard = guard_key(key);
            let ticket = atomics::increment(&bucket, &guard, 1)
                .map_err(|e| failure("increment", &guard, &e))?;
            if ticket != 1 {
                return Ok(false);
            }
            // Exclusive by the guard; this absent-key swap is the record's only upsert ever.
            swap_in(cas, &held, &record_key)
        }
    }
}

/// Releases the lease if `token` still holds it unexpired.
pub fn release(key: &str, token: &str) -> Result<bool, LockError> {
    let bucket = kv_store::open().map_err(store_error)?;
    let record_key = record_key(key);
    let cas = Cas::new(&bucket, &record_key).map_err(|e| failure("cas", &record_key, &e))?;
    let Some(raw) = cas.current().map_err(|e| failure("get", &record_key, &e))? else {
        return Ok(false);
    };
    match decode(&raw) {
        Ok(value) if value.is_held_by(token, now_ms()) => swap_in(
            cas,
            &LeaseValue::released(token::random_nonce()),
            &record_key,
        ),
        // Expired (anyone may take it now), taken by someone else, or unreadable.
        _ => Ok(false),
    }
}

/// Least time a lease must have left for `retire` to delete it (see the module doc).
const RETIRE_MARGIN_MS: u64 = 5_000;

/// Releases the lease if `token` holds it and removes its keys (see the module doc); true when
/// it was held.
pub fn retire(key: &str, token: &str) -> Result<bool, LockError> {
    let bucket = kv_store::open().map_err(store_error)?;
    let record_key = record_key(key);
    let Some(raw) = kv_store::get(&bucket, &record_key).map_err(store_error)? else {
        return Ok(false);
    };
    match decode(&raw) {
        Ok(value) if value.is_held_by(token, now_ms().saturating_add(RETIRE_MARGIN_MS)) => {
            kv_store::delete(&bucket, &guard_key(key)).map_err(store_error)?;
            kv_store::delete(&bucket, &record_key).map_err(store_error)?;
            Ok(true)
        }
        Ok(value) if value.is_held_by(token, now_ms()) => release(key, token),
        _ => Ok(false),
    }
}

/// Compare-and-swap `value` in; false when the record changed since it was read.
fn swap_in(cas: Cas, value: &LeaseValue, record_key: &str) -> Result<bool, LockError> {
    match atomics::swap(cas, &encode(value)) {
        Ok(()) => Ok(true),
        Err(CasError::CasFailed(_)) => Ok(false),
        Err(CasError::StoreError(e)) => Err(failure("swap", record_key, &e)),
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
