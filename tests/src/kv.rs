//! In-memory key-value stores and the host side of `wasi:keyvalue@0.2.0-draft2`.
//!
//! Semantics follow Spin 4's default (SQLite) store, hazards included, because the app ships to
//! it: a `cas` snapshots the value when `current()` is called; `swap` then updates only if the
//! value is still that snapshot (whole-value comparison, so ABA passes), and fails with
//! `cas-failed` carrying a fresh `cas` already primed with the new value. A `cas` whose key was
//! absent, or whose `current()` was never called, swaps as an unconditional upsert.
//! `increment` is atomic, treats a missing key as 0 and stores an 8-byte little-endian i64.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::engine::lock;
use crate::spin_bindings::wasi::keyvalue::{atomics, batch, store};

/// One key-value store (one label). Cloning shares the store.
#[derive(Clone, Default)]
pub struct KvStore {
    inner: Arc<KvInner>,
}

#[derive(Default)]
struct KvInner {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    gets: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    exists: AtomicU64,
    list_keys: AtomicU64,
    cas_opens: AtomicU64,
    cas_reads: AtomicU64,
    cas_swaps: AtomicU64,
    cas_conflicts: AtomicU64,
    increments: AtomicU64,
    batch_gets: AtomicU64,
    batch_sets: AtomicU64,
    batch_deletes: AtomicU64,
}

/// How many operations guests performed on a store (host-side reads and seeds not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvCounts {
    pub gets: u64,
    pub sets: u64,
    pub deletes: u64,
    pub exists: u64,
    pub list_keys: u64,
    /// `cas::new` calls.
    pub cas_opens: u64,
    /// `cas.current()` calls.
    pub cas_reads: u64,
    /// `swap` calls, successful or not.
    pub cas_swaps: u64,
    /// `swap` calls that failed with `cas-failed`.
    pub cas_conflicts: u64,
    pub increments: u64,
    /// Batch calls (one per call, not per key).
    pub batch_gets: u64,
    pub batch_sets: u64,
    pub batch_deletes: u64,
}

impl KvCounts {
    /// Every store round trip a guest made: the per-request budget the benchmarks count.
    pub fn total(&self) -> u64 {
        self.gets
            + self.sets
            + self.deletes
            + self.exists
            + self.list_keys
            + self.cas_opens
            + self.cas_reads
            + self.cas_swaps
            + self.increments
            + self.batch_gets
            + self.batch_sets
            + self.batch_deletes
    }

    /// Reads: `get`, `exists`, `cas.current` and batch gets.
    pub fn reads(&self) -> u64 {
        self.gets + self.exists + self.cas_reads + self.batch_gets
    }

    /// Writes: `set`, `delete`, swaps, increments and batch writes.
    pub fn writes(&self) -> u64 {
        self.sets
            + self.deletes
            + self.cas_swaps
            + self.increments
            + self.batch_sets
            + self.batch_deletes
    }

    /// The difference `self - earlier`, for counting the operations of one request.
    pub fn since(&self, earlier: &KvCounts) -> KvCounts {
        KvCounts {
            gets: self.gets - earlier.gets,
            sets: self.sets - earlier.sets,
            deletes: self.deletes - earlier.deletes,
            exists: self.exists - earlier.exists,
            list_keys: self.list_keys - earlier.list_keys,
            cas_opens: self.cas_opens - earlier.cas_opens,
            cas_reads: self.cas_reads - earlier.cas_reads,
            cas_swaps: self.cas_swaps - earlier.cas_swaps,
            cas_conflicts: self.cas_conflicts - earlier.cas_conflicts,
            increments: self.increments - earlier.increments,
            batch_gets: self.batch_gets - earlier.batch_gets,
            batch_sets: self.batch_sets - earlier.batch_sets,
            batch_deletes: self.batch_deletes - earlier.batch_deletes,
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl KvStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every key and value.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.inner.data).clone()
    }

    /// Reads a value without counting it as a guest operation.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.inner.data).get(key).cloned()
    }

    /// Writes a value without counting it (for seeding test data).
    pub fn insert(&self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        lock(&self.inner.data).insert(key.into(), value.into());
    }

    /// Removes a key without counting it.
    pub fn remove(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.inner.data).remove(key)
    }

    /// The value of a key written by `increment` (8-byte little-endian i64).
    pub fn counter(&self, key: &str) -> Option<i64> {
        self.get(key)
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_le_bytes)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner.data).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Operation counts since the store was created (or counters were reset).
    pub fn counters(&self) -> KvCounts {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KvCounts {
            gets: get(&c.gets),
            sets: get(&c.sets),
            deletes: get(&c.deletes),
            exists: get(&c.exists),
            list_keys: get(&c.list_keys),
            cas_opens: get(&c.cas_opens),
            cas_reads: get(&c.cas_reads),
            cas_swaps: get(&c.cas_swaps),
            cas_conflicts: get(&c.cas_conflicts),
            increments: get(&c.increments),
            batch_gets: get(&c.batch_gets),
            batch_sets: get(&c.batch_sets),
            batch_deletes: get(&c.batch_deletes),
        }
    }

    pub fn reset_counters(&self) {
        let c = &self.inner.counters;
        for a in [
            &c.gets,
            &c.sets,
            &c.deletes,
            &c.exists,
            &c.list_keys,
            &c.cas_opens,
            &c.cas_reads,
            &c.cas_swaps,
            &c.cas_conflicts,
            &c.increments,
            &c.batch_gets,
            &c.batch_sets,
            &c.batch_deletes,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// Spin's `increment`: atomic, missing key = 0, stored as 8-byte little-endian.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, store::Error> {
        bump(&self.inner.counters.increments);
        let mut data = lock(&self.inner.data);
        let current = match data.get(key) {
            None => 0,
            Some(v) => match <[u8; 8]>::try_from(v.as_slice()) {
                Ok(bytes) => i64::from_le_bytes(bytes),
                // Spin's SQLite store panics here ("incorrect length"); an error is the closest
                // behaviour that does not take the host down.
                Err(_) => {
                    return Err(store::Error::Other(format!(
                        "value of {key:?} is not an 8-byte counter written by increment"
                    )))
                }
            },
        };
        let next = current.wrapping_add(delta);
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    /// Spin's `swap`: conditional on the snapshot when there is one, an upsert otherwise.
    fn swap(&self, key: &str, snapshot: &Option<Vec<u8>>, value: Vec<u8>) -> SwapOutcome {
        bump(&self.inner.counters.cas_swaps);
        let mut data = lock(&self.inner.data);
        match snapshot {
            Some(old) if data.get(key) != Some(old) => {
                bump(&self.inner.counters.cas_conflicts);
                SwapOutcome::Conflict(data.get(key).cloned())
            }
            _ => {
                data.insert(key.to_string(), value);
                SwapOutcome::Swapped
            }
        }
    }
}

enum SwapOutcome {
    Swapped,
    /// The value changed; carries the value now stored, to prime the replacement `cas`.
    Conflict(Option<Vec<u8>>),
}

/// The stores of an app by label. `default` always exists, as in Spin.
#[derive(Clone)]
pub struct KvStores {
    stores: BTreeMap<String, KvStore>,
}

impl KvStores {
    pub fn new(default: KvStore, extra: impl IntoIterator<Item = (String, KvStore)>) -> Self {
        let mut stores = BTreeMap::from([("default".to_string(), default)]);
        stores.extend(extra);
        Self { stores }
    }

    pub fn get(&self, label: &str) -> Option<&KvStore> {
        self.stores.get(label)
    }

    pub fn is_defined(&self, label: &str) -> bool {
        self.stores.contains_key(label)
    }
}

/// What one component may open: its `key_value_stores` (or nothing, for a dependency that does
/// not inherit configuration).
#[derive(Clone)]
pub struct KvAccess {
    pub allowed: BTreeSet<String>,
    pub stores: Arc<KvStores>,
}

/// The guest's `bucket` resource.
pub struct BucketHandle {
    store: KvStore,
}

/// The guest's `cas` resource.
pub struct CasHandle {
    store: KvStore,
    key: String,
    /// Set by `current()`; `None` means "absent or never read", which makes `swap` an upsert.
    snapshot: Option<Vec<u8>>,
}

/// The host view for `wasi:keyvalue`, borrowed from the store data.
pub struct KvView<'a> {
    pub access: &'a KvAccess,
    pub table: &'a mut ResourceTable,
}

/// `HasData` marker binding `wasi:keyvalue` to [`KvView`].
pub struct KvHost;

impl HasData for KvHost {
    type Data<'a> = KvView<'a>;
}

fn other(e: impl std::fmt::Display) -> store::Error {
    store::Error::Other(e.to_string())
}

impl KvView<'_> {
    fn bucket(&self, bucket: &Resource<BucketHandle>) -> Result<KvStore, store::Error> {
        self.table
            .get(bucket)
            .map(|b| b.store.clone())
            .map_err(other)
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<BucketHandle>, store::Error> {
        // Spin checks the component's `key_value_stores` first, then whether the store exists.
        if !self.access.allowed.contains(&identifier) {
            return Err(store::Error::AccessDenied);
        }
        let store = self
            .access
            .stores
            .get(&identifier)
            .cloned()
            .ok_or(store::Error::NoSuchStore)?;
        self.table.push(BucketHandle { store }).map_err(other)
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.gets);
        Ok(store.get(&key))
    }

    async fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.sets);
        store.insert(key, value);
        Ok(())
    }

    async fn delete(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.deletes);
        store.remove(&key);
        Ok(())
    }

    async fn exists(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<bool, store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.exists);
        let exists = lock(&store.inner.data).contains_key(&key);
        Ok(exists)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.list_keys);
        // Spin returns every key in one page and refuses cursors.
        if cursor.is_some() {
            return Err(store::Error::Other(
                "list_keys: cursor not supported".to_string(),
            ));
        }
        let keys = lock(&store.inner.data).keys().cloned().collect();
        Ok(store::KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> Result<i64, store::Error> {
        self.bucket(&bucket)?.increment(&key, delta)
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> Result<(), atomics::CasError> {
        let handle = self
            .table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(other(e)))?;
        match handle.store.swap(&handle.key, &handle.snapshot, value) {
            SwapOutcome::Swapped => Ok(()),
            SwapOutcome::Conflict(now) => {
                // Like Spin: hand back a new cas for the same key, already primed with the
                // current value, so the guest can retry without another `current()` round trip.
                let retry = CasHandle {
                    store: handle.store,
                    key: handle.key,
                    snapshot: now,
                };
                let res = self
                    .table
                    .push(retry)
                    .map_err(|e| atomics::CasError::StoreError(other(e)))?;
                Err(atomics::CasError::CasFailed(res))
            }
        }
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<Resource<CasHandle>, store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.cas_opens);
        // No read here: Spin's store reads only in `current()`.
        self.table
            .push(CasHandle {
                store,
                key,
                snapshot: None,
            })
            .map_err(other)
    }

    async fn current(&mut self, cas: Resource<CasHandle>) -> Result<Option<Vec<u8>>, store::Error> {
        let handle = self.table.get_mut(&cas).map_err(other)?;
        bump(&handle.store.inner.counters.cas_reads);
        let value = handle.store.get(&handle.key);
        handle.snapshot.clone_from(&value);
        Ok(value)
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.batch_gets);
        let data = lock(&store.inner.data);
        // Spin's SQLite store returns only the keys that exist.
        Ok(keys
            .into_iter()
            .filter_map(|k| data.get(&k).cloned().map(|v| (k, Some(v))))
            .collect())
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.batch_sets);
        lock(&store.inner.data).extend(key_values);
        Ok(())
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        bump(&store.inner.counters.batch_deletes);
        let mut data = lock(&store.inner.data);
        for k in keys {
            data.remove(&k);
        }
        Ok(())
    }
}
