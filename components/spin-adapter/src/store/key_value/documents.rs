//! Versioned documents in the Spin key-value store `default`.
//!
//! Key layout for a document key `k`:
//!
//! | key        | value                                         | written by                 |
//! |------------|-----------------------------------------------|----------------------------|
//! | `k`        | head, JSON `{"v": N}`                         | `set` (creation) or `swap` |
//! | `k:v{N}`   | the body of version N, never changed once set | `set`                      |
//! | `k:seq`    | version allocator (8-byte LE i64)             | `increment` only           |
//!
//! Every attempt allocates its version with `increment(k:seq, 1)` first, so versions are unique,
//! never reused and increasing: a head value is never repeated (no ABA for the CAS), a loser
//! never overwrites a winner's body, and a version number is a safe ETag.
//!
//! Known crash window: the caller that allocates version 1 is the only one allowed to create
//! the head (a `swap` on an absent key is an unconditional upsert in Spin, so creation is
//! guarded by the atomic `increment` instead). If that caller dies between its `increment` and
//! its head write, the document can never be created: every later creator allocates N > 1 and
//! gets `conflict(0)`. Recovery is manual: delete `k:seq` while `k` is absent.

use serde::Deserialize;
use spin_sdk::wit::wasi::keyvalue::atomics::{self, Cas, CasError};
use spin_sdk::wit::wasi::keyvalue::store::Bucket;

use crate::exports::storefront::cart::documents::{Document, StoreError, SwapError};
use crate::kv_store;

/// How many times a reader follows a head that moved between reading it and reading its body.
const READ_HEAD_ATTEMPTS: u32 = 8;

/// The head and its body. They are two reads, so between them the head can move on and the
/// version it named be pruned (a commit prunes the version before its predecessor: two commits
/// in that window suffice). A missing body under a head that moved is that race: read again.
/// A missing body under a head that did not move is damage.
pub fn read_head(bucket: &Bucket, key: &str) -> Result<Option<Document>, StoreError> {
    let Some(mut version) = head_version(bucket, key)? else {
        return Ok(None);
    };
    for _ in 0..READ_HEAD_ATTEMPTS {
        if let Some(body) = kv_store::get(bucket, &body_key(key, version))? {
            return Ok(Some(Document { version, body }));
        }
        match head_version(bucket, key)? {
            Some(now) if now != version => version = now,
            _ => {
                // Bodies are written before the head names them and prune never deletes the
                // head's body, so a missing body under an unmoved head is damage.
                return Err(StoreError::Unavailable(format!(
                    "document {key}: head names version {version} but its body is missing"
                )));
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "document {key}: the head moved {READ_HEAD_ATTEMPTS} times while it was being read"
    )))
}

pub fn read_version(
    bucket: &Bucket,
    key: &str,
    version: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    kv_store::get(bucket, &body_key(key, version))
}

pub fn compare_and_swap(
    bucket: &Bucket,
    key: &str,
    expected: u64,
    body: &[u8],
) -> Result<u64, SwapError> {
    let version = allocate_version(bucket, key).map_err(SwapError::Store)?;
    if expected == 0 {
        create(bucket, key, version, body)
    } else {
        advance(bucket, key, expected, version, body)
    }
}

/// Deletes the given versions (already filtered to non-zero, distinct) older than the head.
pub fn prune(bucket: &Bucket, key: &str, versions: &[u64]) -> Result<u32, StoreError> {
    let Some(head) = head_version(bucket, key)? else {
        // Without a head every body is either an orphan or the in-flight creation of
        // version 1; leave them rather than race the creator.
        return Ok(0);
    };
    let mut deleted = 0;
    for version in versions.iter().filter(|v| **v < head) {
        kv_store::delete(bucket, &body_key(key, *version))?;
        deleted += 1;
    }
    Ok(deleted)
}

/// First write (`expected == 0`): only the caller that allocated version 1 may create the head.
fn create(bucket: &Bucket, key: &str, version: u64, body: &[u8]) -> Result<u64, SwapError> {
    if version != 1 {
        // Someone else created (or is creating) the document. Nothing was written yet.
        return Err(SwapError::Conflict(current_version(bucket, key)?));
    }
    // The allocator guarantees exclusivity, but a head can still exist if `k:seq` was lost
    // (e.g. deleted by hand): never overwrite an existing document.
    if let Some(existing) = head_version(bucket, key).map_err(SwapError::Store)? {
        return Err(SwapError::Conflict(existing));
    }
    kv_store::set(bucket, &body_key(key, version), body).map_err(SwapError::Store)?;
    // Exclusive by the allocator, so a plain write is safe (an absent-key swap would be an
    // upsert anyway). On failure the body stays: the write may have happened after all.
    kv_store::set(bucket, key, &encode_head(version)).map_err(SwapError::Store)?;
    Ok(version)
}

/// Later writes: move the head from `expected` to `version` by compare-and-swap.
fn advance(
    bucket: &Bucket,
    key: &str,
    expected: u64,
    version: u64,
    body: &[u8],
) -> Result<u64, SwapError> {
    let cas = Cas::new(bucket, key).map_err(|e| store_failure("cas", key, &e))?;
    let current = match cas.current().map_err(|e| store_failure("get", key, &e))? {
        Some(raw) => decode_head(&raw).map_err(|e| SwapError::Store(corrupt_head(key, &e)))?,
        None => 0,
    };
    if current != expected {
        // Checked before the body is written, so a stale writer costs no write and no delete.
        return Err(SwapError::Conflict(current));
    }
    if version <= current {
        // Only possible if `k:seq` was reset: writing would overwrite an existing immutable
        // body and move the head backwards, reusing ETags.
        return Err(SwapError::Store(StoreError::Unavailable(format!(
            "document {key}: version allocator at {version} is behind the head at {current}"
        ))));
    }
    let body_key = body_key(key, version);
    kv_store::set(bucket, &body_key, body).map_err(SwapError::Store)?;
    match atomics::swap(cas, &encode_head(version)) {
        Ok(()) => Ok(version),
        Err(CasError::CasFailed(_)) => {
            // Lost the race: the orphan body can never become a head (its version is burnt).
            // Best effort: a leftover orphan is harmless.
            let _ = kv_store::delete(bucket, &body_key);
            Err(SwapError::Conflict(current_version(bucket, key)?))
        }
        // The swap may have been applied before the failure surfaced, so the body stays.
        Err(CasError::StoreError(e)) => Err(store_failure("swap", key, &e)),
    }
}

/// Allocates a fresh version (>= 1) for `key`.
fn allocate_version(bucket: &Bucket, key: &str) -> Result<u64, StoreError> {
    let seq = seq_key(key);
    let next = atomics::increment(bucket, &seq, 1)
        .map_err(|e| kv_store::unavailable("increment", &seq, &e))?;
    u64::try_from(next)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| StoreError::Unavailable(format!("version allocator {seq} is at {next}")))
}

/// The head's version, none when the document does not exist.
fn head_version(bucket: &Bucket, key: &str) -> Result<Option<u64>, StoreError> {
    match kv_store::get(bucket, key)? {
        Some(raw) => decode_head(&raw)
            .map(Some)
            .map_err(|e| corrupt_head(key, &e)),
        None => Ok(None),
    }
}

/// The head's version for a conflict report, 0 when the document does not exist.
fn current_version(bucket: &Bucket, key: &str) -> Result<u64, SwapError> {
    Ok(head_version(bucket, key)
        .map_err(SwapError::Store)?
        .unwrap_or(0))
}

fn store_failure(
    op: &str,
    key: &str,
    error: &spin_sdk::wit::wasi::keyvalue::store::Error,
) -> SwapError {
    SwapError::Store(kv_store::unavailable(op, key, error))
}

fn corrupt_head(key: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Unavailable(format!("document {key}: unreadable head: {error}"))
}

/// Key of the body of `version`.
fn body_key(key: &str, version: u64) -> String {
    format!("{key}:v{version}")
}

/// Key of the version allocator.
fn seq_key(key: &str) -> String {
    format!("{key}:seq")
}

/// The head value, `{"v": N}`.
#[derive(Deserialize)]
struct Head {
    v: u64,
}

fn encode_head(version: u64) -> Vec<u8> {
    format!("{{\"v\":{version}}}").into_bytes()
}

fn decode_head(raw: &[u8]) -> Result<u64, serde_json::Error> {
    serde_json::from_slice::<Head>(raw).map(|head| head.v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        assert_eq!(body_key("cart:s1:u1", 7), "cart:s1:u1:v7");
        assert_eq!(seq_key("cart:s1:u1"), "cart:s1:u1:seq");
    }

    #[test]
    fn head_round_trips_and_matches_the_documented_format() {
        assert_eq!(encode_head(42), br#"{"v":42}"#.to_vec());
        assert_eq!(decode_head(&encode_head(u64::MAX)).ok(), Some(u64::MAX));
        assert_eq!(decode_head(br#"{ "v" : 3 }"#).ok(), Some(3));
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert!(decode_head(b"").is_err());
        assert!(decode_head(br#"{"v":-1}"#).is_err());
        assert!(decode_head(br#"{"version":1}"#).is_err());
        assert!(decode_head(&5i64.to_le_bytes()).is_err());
    }
}
