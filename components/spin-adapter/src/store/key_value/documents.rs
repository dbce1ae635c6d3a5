//! Versioned documents in the Spin key-value store `default`, one key per document.
//!
//! Key layout for a document key `k`:
//!
//! | key     | value                                              | written by                  |
//! |---------|----------------------------------------------------|-----------------------------|
//! | `k`     | `edoc1 {N}\n` followed by the body of version N    | `set` (creation) or `swap`  |
//! | `k:seq` | creation guard (8-byte LE i64)                     | `increment` only, once      |
//!
//! The head carries its body. On Spin's default store every key-value write is its own SQLite
//! transaction on disk, so a commit that wrote a body key, moved a head and later deleted the
//! superseded body cost three transactions; one value holding version and body costs one, and
//! a reader still can never see a torn document (one key is written atomically). The version
//! lives in the value, so it is still the ETag, strictly increasing (`expected + 1`, written
//! only by the one compare-and-swap that moved the head from `expected`), never reused, and no
//! value repeats (no ABA for the CAS).
//!
//! Creation: a `swap` on an absent key is an unconditional upsert in Spin, so the first write
//! is guarded by `increment(k:seq)`, which is atomic for absent keys: only the caller that
//! gets 1 creates. Known crash window: if that caller dies between its `increment` and its
//! write, the document can never be created (every later creator gets a ticket above 1 and
//! `conflict(0)`). Recovery is manual: delete `k:seq` while `k` is absent.
//!
//! Heads written by the previous layout (`{"v":N}` naming a body at `k:v{N}`) are still read,
//! and the first compare-and-swap on such a document moves it to this layout.

use serde::Deserialize;
use spin_sdk::wit::wasi::keyvalue::atomics::{self, Cas, CasError};
use spin_sdk::wit::wasi::keyvalue::store::Bucket;

use crate::exports::storefront::cart::documents::{Document, StoreError, SwapError};
use crate::kv_store;

/// What a head value starts with in this layout (never the start of the legacy JSON head).
const MAGIC: &[u8] = b"edoc1 ";

/// The head as stored.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Version and body in one value.
    Inline { version: u64, body: Vec<u8> },
    /// The previous layout: the body of `version` is at `k:v{version}`.
    Legacy { version: u64 },
}

impl Head {
    fn version(&self) -> u64 {
        match self {
            Head::Inline { version, .. } | Head::Legacy { version } => *version,
        }
    }
}

pub fn read_head(bucket: &Bucket, key: &str) -> Result<Option<Document>, StoreError> {
    let Some(raw) = kv_store::get(bucket, key)? else {
        return Ok(None);
    };
    match decode(&raw).map_err(|e| corrupt_head(key, &e))? {
        Head::Inline { version, body } => Ok(Some(Document { version, body })),
        Head::Legacy { version } => match kv_store::get(bucket, &legacy_body_key(key, version))? {
            Some(body) => Ok(Some(Document { version, body })),
            None => Err(StoreError::Unavailable(format!(
                "document {key}: head names version {version} but its body is missing"
            ))),
        },
    }
}

pub fn compare_and_swap(
    bucket: &Bucket,
    key: &str,
    expected: u64,
    body: &[u8],
) -> Result<u64, SwapError> {
    if expected == 0 {
        create(bucket, key, body)
    } else {
        advance(bucket, key, expected, body)
    }
}

/// First write (`expected == 0`): only the caller whose guard ticket is 1 may create the head.
fn create(bucket: &Bucket, key: &str, body: &[u8]) -> Result<u64, SwapError> {
    let value = encode(1, body).map_err(SwapError::Store)?;
    let guard = seq_key(key);
    let ticket = atomics::increment(bucket, &guard, 1)
        .map_err(|e| SwapError::Store(kv_store::unavailable("increment", &guard, &e)))?;
    if ticket != 1 {
        // Someone else created (or is creating) the document. Nothing was written.
        return Err(SwapError::Conflict(current_version(bucket, key)?));
    }
    // The guard makes this caller exclusive, but a head can still exist if `k:seq` was lost
    // (deleted by hand): never overwrite an existing document.
    if let Some(existing) = kv_store::get(bucket, key).map_err(SwapError::Store)? {
        let version = decode(&existing)
            .map_err(|e| SwapError::Store(corrupt_head(key, &e)))?
            .version();
        return Err(SwapError::Conflict(version));
    }
    kv_store::set(bucket, key, &value).map_err(SwapError::Store)?;
    Ok(1)
}

/// Later writes: move the head from `expected` to `expected + 1` by compare-and-swap.
fn advance(bucket: &Bucket, key: &str, expected: u64, body: &[u8]) -> Result<u64, SwapError> {
    let Some(next) = expected.checked_add(1) else {
        return Err(SwapError::Store(StoreError::Invalid(format!(
            "document {key}: no version after {expected}"
        ))));
    };
    let value = encode(next, body).map_err(SwapError::Store)?;
    let cas = Cas::new(bucket, key).map_err(|e| store_failure("cas", key, &e))?;
    let current = match cas.current().map_err(|e| store_failure("get", key, &e))? {
        Some(raw) => decode(&raw).map_err(|e| SwapError::Store(corrupt_head(key, &e)))?,
        None => return Err(SwapError::Conflict(0)),
    };
    if current.version() != expected {
        return Err(SwapError::Conflict(current.version()));
    }
    match atomics::swap(cas, &value) {
        Ok(()) => {
            if let Head::Legacy { version } = current {
                // Moved off the previous layout: its body is no longer named by anything.
                let _ = kv_store::delete(bucket, &legacy_body_key(key, version));
            }
            Ok(next)
        }
        Err(CasError::CasFailed(_)) => Err(SwapError::Conflict(current_version(bucket, key)?)),
        // The swap may have been applied before the failure surfaced.
        Err(CasError::StoreError(e)) => Err(store_failure("swap", key, &e)),
    }
}

/// The head's version for a conflict report, 0 when the document does not exist.
fn current_version(bucket: &Bucket, key: &str) -> Result<u64, SwapError> {
    match kv_store::get(bucket, key).map_err(SwapError::Store)? {
        None => Ok(0),
        Some(raw) => decode(&raw)
            .map(|head| head.version())
            .map_err(|e| SwapError::Store(corrupt_head(key, &e))),
    }
}

fn store_failure(
    op: &str,
    key: &str,
    error: &spin_sdk::wit::wasi::keyvalue::store::Error,
) -> SwapError {
    SwapError::Store(kv_store::unavailable(op, key, error))
}

fn corrupt_head(key: &str, error: &str) -> StoreError {
    StoreError::Unavailable(format!("document {key}: unreadable head: {error}"))
}

/// Key of a body in the previous layout.
fn legacy_body_key(key: &str, version: u64) -> String {
    format!("{key}:v{version}")
}

/// Key of the creation guard.
fn seq_key(key: &str) -> String {
    format!("{key}:seq")
}

/// The head value of `version` with `body`, refused if the store could not hold it.
fn encode(version: u64, body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut value = Vec::with_capacity(MAGIC.len() + 21 + body.len());
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(version.to_string().as_bytes());
    value.push(b'\n');
    value.extend_from_slice(body);
    kv_store::check_value(&value)?;
    Ok(value)
}

/// The legacy head value, `{"v": N}`.
#[derive(Deserialize)]
struct LegacyHead {
    v: u64,
}

fn decode(raw: &[u8]) -> Result<Head, String> {
    if let Some(rest) = raw.strip_prefix(MAGIC) {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("no end of version")?;
        let version = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|digits| digits.parse::<u64>().ok())
            .filter(|v| *v >= 1)
            .ok_or("bad version")?;
        return Ok(Head::Inline {
            version,
            body: rest[end + 1..].to_vec(),
        });
    }
    serde_json::from_slice::<LegacyHead>(raw)
        .map(|head| Head::Legacy { version: head.v })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        assert_eq!(legacy_body_key("cart:s1:u1", 7), "cart:s1:u1:v7");
        assert_eq!(seq_key("cart:s1:u1"), "cart:s1:u1:seq");
    }

    #[test]
    fn heads_carry_version_and_body_in_the_documented_format() {
        let value = encode(42, br#"{"lines":[]}"#).expect("fits");
        assert_eq!(value, b"edoc1 42\n{\"lines\":[]}".to_vec());
        assert_eq!(
            decode(&value),
            Ok(Head::Inline {
                version: 42,
                body: br#"{"lines":[]}"#.to_vec()
            })
        );
        // Bodies may hold any bytes, newlines included.
        let odd = encode(u64::MAX, b"a\nb\n\0").expect("fits");
        assert_eq!(
            decode(&odd),
            Ok(Head::Inline {
                version: u64::MAX,
                body: b"a\nb\n\0".to_vec()
            })
        );
    }

    #[test]
    fn legacy_heads_are_still_understood() {
        assert_eq!(decode(br#"{"v":3}"#), Ok(Head::Legacy { version: 3 }));
        assert_eq!(decode(br#"{ "v" : 9 }"#).map(|h| h.version()), Ok(9));
    }

    #[test]
    fn malformed_heads_are_errors() {
        for raw in [
            &b""[..],
            b"edoc1 ",
            b"edoc1 0\n{}",
            b"edoc1 x\n{}",
            b"edoc1 -1\n{}",
            br#"{"v":-1}"#,
            br#"{"version":1}"#,
            &5i64.to_le_bytes(),
        ] {
            assert!(decode(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_head_too_large_for_the_store_is_refused_before_writing() {
        let body = vec![b'x'; kv_store::MAX_VALUE_BYTES - MAGIC.len() - 2];
        assert!(encode(1, &body).is_ok());
        assert!(matches!(encode(10, &body), Err(StoreError::Invalid(_))));
    }
}
