//! The Spin key-value store "default", through `wasi:keyvalue` only, with compare-and-swap
//! updates of JSON documents.
//!
//! Two hazards of the real host shape this module (see shared/SPIN-FACTS.md):
//! - `swap` on a key that was absent when the `Cas` was taken is an unconditional upsert, so two
//!   first-time creators would both "win". Creation therefore needs a ticket: the caller whose
//!   `increment` of `{key}#new` returns 1 creates; everyone else waits for the key to appear.
//!   If the creator dies between its increment and its swap (a host crash in that instant), the
//!   key stays uncreatable and its creators get 503 `contention`; a failed swap hands the ticket
//!   back. Keys created this way are never deleted, so the ticket never needs resetting.
//! - CAS compares whole values, so every document carries a `revision` bumped on each write;
//!   a value can never come back byte-identical (no ABA).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spin_sdk::wit::wasi::keyvalue::{atomics, store};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Attempts before a CAS update gives up with [`KvError::Contention`]. Real Spin needed at most
/// 4 tries at 16-way concurrency; 100 concurrent reservers on one product need more (inventory),
/// while the event sink only CAS-updates its topic index, and rarely.
pub const MAX_ATTEMPTS: u32 = 24;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The store failed or refused the operation.
    Store(String),
    /// A stored value is not what this service writes.
    Corrupt { key: String, reason: String },
    /// Every attempt lost the compare-and-swap race (or waited for a creator that never wrote).
    Contention { key: String },
}

impl From<store::Error> for KvError {
    fn from(e: store::Error) -> Self {
        KvError::Store(format!("{e:?}"))
    }
}

/// What an edit decided to do with the document it was shown.
pub enum Edit<T, R> {
    /// Leave the stored value as it is and answer `R` (no write: saves a round trip).
    Keep(R),
    /// Store `T` (with the next revision) and answer `R` once the swap succeeded.
    Write(T, R),
}

/// The stored envelope: the document plus its revision, in one flat JSON object.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    revision: u64,
    #[serde(flatten)]
    doc: T,
}

pub struct Kv {
    bucket: store::Bucket,
}

impl Kv {
    pub fn open() -> Result<Self, KvError> {
        Ok(Self {
            bucket: store::open("default")?,
        })
    }

    pub fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.bucket.get(key)?)
    }

    pub fn set_raw(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        Ok(self.bucket.set(key, value)?)
    }

    /// Deletes `key` (a missing key is fine).
    pub fn delete_raw(&self, key: &str) -> Result<(), KvError> {
        Ok(self.bucket.delete(key)?)
    }

    /// Atomically adds `delta` (a missing key counts as 0). Never `set` a key used with this.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        Ok(atomics::increment(&self.bucket, key, delta)?)
    }

    /// Reads a document written by [`Kv::update`], without its revision.
    pub fn get_doc<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError> {
        self.get_raw(key)?
            .map(|bytes| decode::<T>(key, &bytes).map(|(_, doc)| doc))
            .transpose()
    }

    /// Read-modify-write of one document under compare-and-swap, retried on conflict.
    ///
    /// `edit` sees the current document (`None` when absent) and may run several times, so it
    /// must not have side effects beyond its return value. An `Err` from `edit` ends the update
    /// with nothing written.
    pub fn update<T, R, E>(
        &self,
        key: &str,
        mut edit: impl FnMut(Option<T>) -> Result<Edit<T, R>, E>,
    ) -> Result<R, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<KvError>,
    {
        let ticket_key = format!("{key}#new");
        let mut may_create = false;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(backoff_ms(attempt, jitter())));
            }
            let cas = atomics::Cas::new(&self.bucket, key).map_err(KvError::from)?;
            let (revision, current) = match cas.current().map_err(KvError::from)? {
                Some(bytes) => {
                    let (revision, doc) = decode::<T>(key, &bytes)?;
                    (Some(revision), Some(doc))
                }
                None => (None, None),
            };
            let (doc, answer) = match edit(current)? {
                Edit::Keep(answer) => return Ok(answer),
                Edit::Write(doc, answer) => (doc, answer),
            };
            if revision.is_none() && !may_create {
                // Absent key: this swap would be an unconditional upsert. Only the ticket
                // holder may do it; others retry until the creator's write is visible.
                if self.increment(&ticket_key, 1)? != 1 {
                    continue;
                }
                may_create = true;
            }
            let next = Stored {
                revision: revision.unwrap_or(0) + 1,
                doc,
            };
            let bytes = serde_json::to_vec(&next).map_err(|e| KvError::Corrupt {
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
            match atomics::swap(cas, &bytes) {
                Ok(()) => return Ok(answer),
                Err(atomics::CasError::CasFailed(_)) => continue,
                Err(atomics::CasError::StoreError(e)) => {
                    if may_create && revision.is_none() {
                        // Hand the ticket back so the key does not stay uncreatable forever
                        // because of one transient failure.
                        let _ = self.bucket.delete(&ticket_key);
                    }
                    return Err(KvError::from(e).into());
                }
            }
        }
        Err(KvError::Contention {
            key: key.to_owned(),
        }
        .into())
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<(u64, T), KvError> {
    serde_json::from_slice::<Stored<T>>(bytes)
        .map(|s| (s.revision, s.doc))
        .map_err(|e| KvError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })
}

/// Milliseconds to wait before retry `attempt` (>= 1): 1 ms plus jitter growing to 8 ms, so
/// colliding writers spread out instead of colliding again in lock-step.
pub fn backoff_ms(attempt: u32, jitter: u64) -> u64 {
    let cap = 1u64 << attempt.min(3);
    1 + jitter % cap
}

/// A random number from std's per-process random keys (no extra crate needed on wasip2).
fn jitter() -> u64 {
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_small_jittered_and_bounded() {
        assert_eq!(backoff_ms(1, 0), 1);
        assert_eq!(backoff_ms(1, 1), 2);
        assert!((1..=8).contains(&backoff_ms(20, u64::MAX)));
        let spread: std::collections::HashSet<u64> = (0..64).map(|j| backoff_ms(5, j)).collect();
        assert_eq!(spread.len(), 8);
    }

    #[test]
    fn envelope_is_flat_and_carries_revision() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Doc {
            a: u32,
        }
        let bytes = serde_json::to_vec(&Stored {
            revision: 3,
            doc: Doc { a: 1 },
        })
        .unwrap();
        assert_eq!(bytes, br#"{"revision":3,"a":1}"#);
        assert_eq!(decode::<Doc>("k", &bytes).unwrap(), (3, Doc { a: 1 }));
        assert!(matches!(
            decode::<Doc>("k", b"{"),
            Err(KvError::Corrupt { .. })
        ));
    }
}
