//! The in-memory capabilities behind `CapabilityHost`: plain Rust, no wasm, so the semantics
//! are unit-tested directly and the host functions stay thin.
//!
//! Semantics are the ones `wit/cart.wit` documents:
//! - documents: one current version and body per key; versions unique and increasing (never
//!   reused), CAS on the head (`expected = 0`: must not exist);
//! - kv: plain values plus an atomic `increment` (8-byte little-endian i64, missing = 0);
//! - locks: leases with a TTL; only the holder's token releases, an expired lease is free;
//! - inventory: `available` = stock minus unexpired, uncommitted holds; `reserve` sets a
//!   reservation to an absolute quantity (idempotent), counting only *other* holds against
//!   stock and answering `insufficient-stock(n)` with n = units available to this reservation
//!   (its own hold included); `release` of an unknown id succeeds; `commit` is all-or-nothing
//!   and idempotent for already committed reservations;
//! - events: records appended per topic, in order;
//! - config: a map.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::lock;

/// The six capability interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interface {
    Documents,
    Kv,
    Locks,
    Inventory,
    Events,
    Config,
    IdentityKeys,
}

impl Interface {
    pub const ALL: [Interface; 7] = [
        Interface::Documents,
        Interface::Kv,
        Interface::Locks,
        Interface::Inventory,
        Interface::Events,
        Interface::Config,
        Interface::IdentityKeys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Interface::Documents => "documents",
            Interface::Kv => "kv",
            Interface::Locks => "locks",
            Interface::Inventory => "inventory",
            Interface::Events => "events",
            Interface::Config => "config",
            Interface::IdentityKeys => "identity-keys",
        }
    }
}

/// An injected failure. Each interface turns it into its own error type:
///
/// | fault | documents, kv | locks | inventory | events | config | identity-keys |
/// |---|---|---|---|---|---|---|
/// | `Unavailable` | `store-error.unavailable` | `unavailable` | `unavailable` | `retriable` | none | `unavailable` |
/// | `Rejected` | `store-error.invalid` | `invalid` | `rejected` | `rejected` | none | `rejected` |
/// | `PartialAck(n)` | as `Unavailable` | as `Unavailable` | as `Unavailable` | first n records acknowledged | none | as `Unavailable` |
/// | `Trap` | the call traps (the component fails) | | | | | |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Unavailable(String),
    Rejected(String),
    PartialAck(u32),
    Trap(String),
}

impl Fault {
    /// The message for interfaces whose error carries one.
    pub fn message(&self) -> String {
        match self {
            Fault::Unavailable(m) | Fault::Rejected(m) | Fault::Trap(m) => m.clone(),
            Fault::PartialAck(n) => format!("only {n} records acknowledged"),
        }
    }
}

#[derive(Debug, Clone)]
struct FaultRule {
    function: Option<String>,
    /// `None`: until cleared.
    remaining: Option<u32>,
    fault: Fault,
}

#[derive(Debug, Default)]
struct InterfaceControl {
    rules: Vec<FaultRule>,
    latency: Duration,
}

/// How a product's stock is held while in a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Reserve,
    Checkout,
}

/// A product to seed into the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSeed {
    pub store_id: String,
    pub product_id: String,
    pub title: String,
    pub unit_price_minor: i64,
    pub currency: String,
    pub stock: u32,
    pub policy: Policy,
    pub min_quantity: u32,
    pub max_quantity: Option<u32>,
    pub quantity_step: u32,
}

impl ProductSeed {
    /// A reservable product priced in EUR, quantities 1.. in steps of 1.
    pub fn new(
        store_id: &str,
        product_id: &str,
        title: &str,
        unit_price_minor: i64,
        stock: u32,
    ) -> Self {
        Self {
            store_id: store_id.to_string(),
            product_id: product_id.to_string(),
            title: title.to_string(),
            unit_price_minor,
            currency: "EUR".to_string(),
            stock,
            policy: Policy::Reserve,
            min_quantity: 1,
            max_quantity: None,
            quantity_step: 1,
        }
    }

    pub fn currency(mut self, currency: &str) -> Self {
        self.currency = currency.to_string();
        self
    }

    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub fn quantity_rules(mut self, min: u32, max: Option<u32>, step: u32) -> Self {
        self.min_quantity = min;
        self.max_quantity = max;
        self.quantity_step = step;
        self
    }
}

/// A product as `inventory.get-product` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductView {
    pub seed: ProductSeed,
    /// Stock minus unexpired, uncommitted holds.
    pub available: u32,
}

/// A reservation as the inventory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationView {
    pub store_id: String,
    pub reservation_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub expires_at_ms: u64,
    pub committed: bool,
    /// Past its expiry (and not committed): it no longer holds stock.
    pub expired: bool,
}

/// An inventory error (mirrors `inventory-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryFailure {
    ProductNotFound,
    InsufficientStock(u32),
    /// A newer writer set the reservation (its fence).
    StaleFence(u64),
    Rejected(String),
}

/// A document error (mirrors `swap-error` / `store-error.invalid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentFailure {
    Conflict(u64),
    Invalid(String),
}

/// One stored event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub key: String,
    pub value: String,
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub key: String,
    pub token: String,
    pub expires_at_ms: u64,
}

#[derive(Debug, Default, Clone)]
struct DocEntry {
    head: u64,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Reservation {
    product_id: String,
    quantity: u32,
    expires_at_ms: u64,
    committed: bool,
    /// The fence the hold was last set with (see `wit/cart.wit`, `reserve`).
    fence: u64,
}

#[derive(Default)]
struct Data {
    documents: BTreeMap<String, DocEntry>,
    kv: BTreeMap<String, Vec<u8>>,
    locks: BTreeMap<String, LeaseView>,
    products: BTreeMap<(String, String), ProductSeed>,
    /// (store, reservation id) -> reservation.
    reservations: BTreeMap<(String, String), Reservation>,
    events: BTreeMap<String, Vec<StoredEvent>>,
    config: BTreeMap<String, String>,
    /// URL -> body served by `identity-keys.fetch-key-set` (a JWKS the test controls).
    key_sets: BTreeMap<String, Vec<u8>>,
}

/// Longest key the documents, kv and locks interfaces accept.
const MAX_KEY_LEN: usize = 512;

/// The state shared by every request a `CapabilityHost` serves.
#[derive(Default)]
pub struct CapabilityState {
    data: Mutex<Data>,
    controls: Mutex<HashMap<Interface, InterfaceControl>>,
    calls: Mutex<BTreeMap<(Interface, &'static str), u64>>,
    clock_offset_ms: AtomicI64,
    tokens: AtomicU64,
    pauses: Mutex<Vec<(Interface, String, Arc<PausePoint>)>>,
    traced: Mutex<Vec<TracedCall>>,
    /// Variable name -> times the component asked for it (`config.get` and `get-many`).
    variables_read: Mutex<BTreeMap<String, u64>>,
}

/// An inventory or events call, with the `traceparent` the component had set for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedCall {
    pub interface: Interface,
    pub function: &'static str,
    pub traceparent: Option<String>,
}

/// A call held at the host's door until the test lets it through, so a test decides the order
/// of two requests' steps instead of the scheduler (see [`CapabilityState::pause_next_call`]).
pub struct PausePoint {
    reached: AtomicBool,
    arrived: tokio::sync::Notify,
    released: tokio::sync::Semaphore,
}

impl Default for PausePoint {
    fn default() -> Self {
        PausePoint {
            reached: AtomicBool::new(false),
            arrived: tokio::sync::Notify::new(),
            released: tokio::sync::Semaphore::new(0),
        }
    }
}

/// How long a test waits for a paused call to arrive before failing.
const PAUSE_ARRIVAL_LIMIT: Duration = Duration::from_secs(30);

impl PausePoint {
    /// Waits until a call has arrived at this point (and is held there). Panics after 30 s,
    /// so a test whose call never comes fails with a message instead of hanging.
    pub async fn arrived(&self) {
        let wait = async {
            loop {
                let notified = self.arrived.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.reached.load(Ordering::SeqCst) {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(PAUSE_ARRIVAL_LIMIT, wait)
            .await
            .is_err()
        {
            panic!("no call arrived at the pause point within {PAUSE_ARRIVAL_LIMIT:?}");
        }
    }

    pub fn has_arrived(&self) -> bool {
        self.reached.load(Ordering::SeqCst)
    }

    /// Lets the held call proceed.
    pub fn resume(&self) {
        self.released.add_permits(1);
    }

    /// Called by the host for the held call: announce, then wait for `resume`.
    pub(crate) async fn hold(&self) {
        self.reached.store(true, Ordering::SeqCst);
        self.arrived.notify_waiters();
        if let Ok(permit) = self.released.acquire().await {
            permit.forget();
        }
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("key must not be empty".into())
    } else if key.len() > MAX_KEY_LEN {
        Err(format!("key longer than {MAX_KEY_LEN} bytes"))
    } else {
        Ok(())
    }
}

impl CapabilityState {
    // ---- time -------------------------------------------------------------------------------

    /// The host's clock, in Unix milliseconds (real time plus [`Self::advance_clock`]): the
    /// capabilities' and the component's.
    pub fn now_ms(&self) -> u64 {
        (self.now_us() / 1000) as u64
    }

    /// The host's clock in Unix microseconds (the component's wall clock resolution).
    pub(crate) fn now_us(&self) -> i128 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i128);
        (real + i128::from(self.clock_offset_ms.load(Ordering::Relaxed)) * 1000).max(0)
    }

    /// Moves the clock forward: the capabilities' (leases, reservations) and the component's
    /// own wall clock (WASI `wall-clock`, which the host serves from [`Self::now_ms`]), so a
    /// test expires holds, leases, caches, breaker periods and abandoned carts without sleeping.
    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }

    // ---- faults, latency, counters ------------------------------------------------------------

    /// Holds the next call to `interface.function` (WIT name) before it does anything, until
    /// the returned point's `resume`. Pauses apply in the order they were asked for.
    pub fn pause_next_call(&self, interface: Interface, function: &str) -> Arc<PausePoint> {
        let point = Arc::new(PausePoint::default());
        lock(&self.pauses).push((interface, function.to_owned(), point.clone()));
        point
    }

    pub(crate) fn record_traced_call(
        &self,
        interface: Interface,
        function: &'static str,
        traceparent: Option<String>,
    ) {
        lock(&self.traced).push(TracedCall {
            interface,
            function,
            traceparent,
        });
    }

    /// Every inventory and events call so far, in order, with its trace context.
    pub fn traced_calls(&self) -> Vec<TracedCall> {
        lock(&self.traced).clone()
    }

    /// The pause waiting for this call, if any (taken: a pause holds one call).
    pub(crate) fn take_pause(
        &self,
        interface: Interface,
        function: &str,
    ) -> Option<Arc<PausePoint>> {
        let mut pauses = lock(&self.pauses);
        let at = pauses
            .iter()
            .position(|(i, f, _)| *i == interface && f == function)?;
        Some(pauses.remove(at).2)
    }

    /// The next `n` calls to `interface` fail with `fault`.
    pub fn fail_next(&self, interface: Interface, n: u32, fault: Fault) {
        self.add_rule(interface, None, Some(n), fault);
    }

    /// The next `n` calls to `interface.function` (WIT name, e.g. `"reserve"`) fail.
    pub fn fail_next_calls_of(&self, interface: Interface, function: &str, n: u32, fault: Fault) {
        self.add_rule(interface, Some(function.to_string()), Some(n), fault);
    }

    /// Every call to `interface` fails until [`Self::clear_faults`].
    pub fn fail_always(&self, interface: Interface, fault: Fault) {
        self.add_rule(interface, None, None, fault);
    }

    fn add_rule(
        &self,
        interface: Interface,
        function: Option<String>,
        remaining: Option<u32>,
        fault: Fault,
    ) {
        if remaining == Some(0) {
            return;
        }
        lock(&self.controls)
            .entry(interface)
            .or_default()
            .rules
            .push(FaultRule {
                function,
                remaining,
                fault,
            });
    }

    pub fn clear_faults(&self, interface: Interface) {
        if let Some(c) = lock(&self.controls).get_mut(&interface) {
            c.rules.clear();
        }
    }

    /// Clears every fault and latency.
    pub fn clear_all_faults(&self) {
        lock(&self.controls).clear();
    }

    /// Every call to `interface` takes at least `latency` (simulated round trip).
    pub fn set_latency(&self, interface: Interface, latency: Duration) {
        lock(&self.controls).entry(interface).or_default().latency = latency;
    }

    /// The latency every call to `interface` currently takes.
    pub fn latency(&self, interface: Interface) -> Duration {
        lock(&self.controls)
            .get(&interface)
            .map_or(Duration::ZERO, |c| c.latency)
    }

    /// Calls made to `interface` (all functions).
    pub fn calls(&self, interface: Interface) -> u64 {
        lock(&self.calls)
            .iter()
            .filter(|((i, _), _)| *i == interface)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls made to `interface.function` (WIT name).
    pub fn calls_of(&self, interface: Interface, function: &str) -> u64 {
        lock(&self.calls)
            .iter()
            .filter(|((i, f), _)| *i == interface && *f == function)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every counter as `"interface.function" -> calls`.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.calls)
            .iter()
            .map(|((i, f), n)| (format!("{}.{f}", i.name()), *n))
            .collect()
    }

    pub fn reset_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Counts the call and picks the fault to apply, if any; returns the latency to wait.
    pub(crate) fn enter(
        &self,
        interface: Interface,
        function: &'static str,
    ) -> (Duration, Option<Fault>) {
        *lock(&self.calls).entry((interface, function)).or_default() += 1;
        let mut controls = lock(&self.controls);
        let Some(control) = controls.get_mut(&interface) else {
            return (Duration::ZERO, None);
        };
        let latency = control.latency;
        let position = control
            .rules
            .iter()
            .position(|r| r.function.as_deref().is_none_or(|f| f == function));
        let fault = position.map(|i| {
            let rule = &mut control.rules[i];
            let fault = rule.fault.clone();
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
                if *n == 0 {
                    control.rules.remove(i);
                }
            }
            fault
        });
        (latency, fault)
    }

    // ---- documents ------------------------------------------------------------------------

    pub fn doc_read_head(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>, String> {
        check_key(key)?;
        let data = lock(&self.data);
        Ok(data
            .documents
            .get(key)
            .and_then(|d| (d.head != 0).then(|| (d.head, d.body.clone()))))
    }

    pub fn doc_compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        body: Vec<u8>,
    ) -> Result<u64, DocumentFailure> {
        check_key(key).map_err(DocumentFailure::Invalid)?;
        let mut data = lock(&self.data);
        let doc = data.documents.entry(key.to_string()).or_default();
        if doc.head != expected {
            return Err(DocumentFailure::Conflict(doc.head));
        }
        doc.head += 1;
        doc.body = body;
        Ok(doc.head)
    }

    /// The current version of a document (0: none) and its body.
    pub fn document(&self, key: &str) -> (u64, Vec<u8>) {
        lock(&self.data)
            .documents
            .get(key)
            .map(|d| (d.head, d.body.clone()))
            .unwrap_or_default()
    }

    /// Keys of every document.
    pub fn document_keys(&self) -> Vec<String> {
        lock(&self.data).documents.keys().cloned().collect()
    }

    // ---- kv -------------------------------------------------------------------------------------

    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.data).kv.get(key).cloned()
    }

    pub fn kv_set(&self, key: &str, value: impl Into<Vec<u8>>) {
        lock(&self.data).kv.insert(key.to_string(), value.into());
    }

    pub fn kv_delete(&self, key: &str) {
        lock(&self.data).kv.remove(key);
    }

    pub fn kv_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.data).kv.clone()
    }

    /// Up to `limit` keys starting with `prefix` (sorted, though the contract promises no order).
    pub fn kv_list_keys(&self, prefix: &str, limit: u32) -> Vec<String> {
        lock(&self.data)
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit as usize)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(crate) fn kv_checked_key(&self, key: &str) -> Result<(), String> {
        check_key(key)
    }

    pub fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        check_key(key)?;
        let mut data = lock(&self.data);
        let current = match data.kv.get(key) {
            None => 0,
            Some(v) => i64::from_le_bytes(
                <[u8; 8]>::try_from(v.as_slice())
                    .map_err(|_| format!("{key:?} holds a value that is not a counter"))?,
            ),
        };
        let next = current.wrapping_add(delta);
        data.kv.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    // ---- locks -----------------------------------------------------------------------------

    pub fn lock_try_acquire(&self, key: &str, ttl_ms: u32) -> Result<Option<LeaseView>, String> {
        check_key(key)?;
        let now = self.now_ms();
        let mut data = lock(&self.data);
        if data.locks.get(key).is_some_and(|l| l.expires_at_ms > now) {
            return Ok(None);
        }
        let n = self.tokens.fetch_add(1, Ordering::Relaxed) + 1;
        let lease = LeaseView {
            key: key.to_string(),
            token: format!("lease-{n}-{now}"),
            expires_at_ms: now + u64::from(ttl_ms),
        };
        data.locks.insert(key.to_string(), lease.clone());
        Ok(Some(lease))
    }

    pub fn lock_release(&self, key: &str, token: &str) -> Result<bool, String> {
        check_key(key)?;
        let now = self.now_ms();
        let mut data = lock(&self.data);
        match data.locks.get(key) {
            Some(l) if l.token == token => {
                let live = l.expires_at_ms > now;
                data.locks.remove(key);
                Ok(live)
            }
            _ => Ok(false),
        }
    }

    /// The unexpired lease on `key`, if any.
    pub fn lease(&self, key: &str) -> Option<LeaseView> {
        let now = self.now_ms();
        lock(&self.data)
            .locks
            .get(key)
            .filter(|l| l.expires_at_ms > now)
            .cloned()
    }

    // ---- inventory -----------------------------------------------------------------------------

    pub fn seed_product(&self, seed: ProductSeed) {
        lock(&self.data)
            .products
            .insert((seed.store_id.clone(), seed.product_id.clone()), seed);
    }

    pub fn set_stock(&self, store_id: &str, product_id: &str, stock: u32) {
        if let Some(p) = lock(&self.data)
            .products
            .get_mut(&(store_id.to_string(), product_id.to_string()))
        {
            p.stock = stock;
        }
    }

    fn held(data: &Data, store_id: &str, product_id: &str, except: Option<&str>, now: u64) -> u32 {
        data.reservations
            .iter()
            .filter(|((s, rid), r)| {
                s == store_id
                    && r.product_id == product_id
                    && !r.committed
                    && r.expires_at_ms > now
                    && except != Some(rid.as_str())
            })
            .map(|(_, r)| r.quantity)
            .sum()
    }

    pub fn product(&self, store_id: &str, product_id: &str) -> Option<ProductView> {
        let now = self.now_ms();
        let data = lock(&self.data);
        let seed = data
            .products
            .get(&(store_id.to_string(), product_id.to_string()))?
            .clone();
        let held = Self::held(&data, store_id, product_id, None, now);
        Some(ProductView {
            available: seed.stock.saturating_sub(held),
            seed,
        })
    }

    /// A hold planted by a test (fence 0: any writer's fenced reserve replaces it).
    pub fn inv_reserve(
        &self,
        store_id: &str,
        product_id: &str,
        reservation_id: &str,
        quantity: u32,
        ttl_ms: u64,
    ) -> Result<ReservationView, InventoryFailure> {
        self.inv_reserve_fenced(store_id, product_id, reservation_id, quantity, ttl_ms, 0)
    }

    /// `reserve` with a fencing token: a live hold set with a higher fence is left alone.
    pub fn inv_reserve_fenced(
        &self,
        store_id: &str,
        product_id: &str,
        reservation_id: &str,
        quantity: u32,
        ttl_ms: u64,
        fence: u64,
    ) -> Result<ReservationView, InventoryFailure> {
        let now = self.now_ms();
        let mut data = lock(&self.data);
        let product = data
            .products
            .get(&(store_id.to_string(), product_id.to_string()))
            .cloned()
            .ok_or(InventoryFailure::ProductNotFound)?;
        let key = (store_id.to_string(), reservation_id.to_string());
        if let Some(existing) = data.reservations.get(&key) {
            if existing.product_id != product_id {
                return Err(InventoryFailure::Rejected(format!(
                    "reservation {reservation_id:?} holds another product"
                )));
            }
            if existing.committed {
                return Err(InventoryFailure::Rejected(format!(
                    "reservation {reservation_id:?} is already committed"
                )));
            }
            if existing.expires_at_ms > now && fence < existing.fence {
                return Err(InventoryFailure::StaleFence(existing.fence));
            }
        }
        if quantity == 0 {
            data.reservations.remove(&key);
            return Ok(ReservationView {
                store_id: store_id.to_string(),
                reservation_id: reservation_id.to_string(),
                product_id: product_id.to_string(),
                quantity: 0,
                expires_at_ms: now,
                committed: false,
                expired: false,
            });
        }
        let step = product.quantity_step.max(1);
        if quantity < product.min_quantity
            || product.max_quantity.is_some_and(|m| quantity > m)
            || quantity.checked_rem(step) != Some(0)
        {
            return Err(InventoryFailure::Rejected(format!(
                "quantity {quantity} breaks the product's rules (min {}, max {:?}, step {step})",
                product.min_quantity, product.max_quantity
            )));
        }
        let others = Self::held(&data, store_id, product_id, Some(reservation_id), now);
        let available_here = product.stock.saturating_sub(others);
        if quantity > available_here {
            return Err(InventoryFailure::InsufficientStock(available_here));
        }
        let expires_at_ms = now.saturating_add(ttl_ms);
        data.reservations.insert(
            key,
            Reservation {
                product_id: product_id.to_string(),
                quantity,
                expires_at_ms,
                committed: false,
                fence,
            },
        );
        Ok(ReservationView {
            store_id: store_id.to_string(),
            reservation_id: reservation_id.to_string(),
            product_id: product_id.to_string(),
            quantity,
            expires_at_ms,
            committed: false,
            expired: false,
        })
    }

    pub fn inv_release(&self, store_id: &str, reservation_id: &str) {
        let mut data = lock(&self.data);
        let key = (store_id.to_string(), reservation_id.to_string());
        if data.reservations.get(&key).is_some_and(|r| !r.committed) {
            data.reservations.remove(&key);
        }
    }

    pub fn inv_commit(
        &self,
        store_id: &str,
        reservation_ids: &[String],
    ) -> Result<(), InventoryFailure> {
        let now = self.now_ms();
        let mut data = lock(&self.data);
        for rid in reservation_ids {
            let r = data
                .reservations
                .get(&(store_id.to_string(), rid.clone()))
                .ok_or_else(|| {
                    InventoryFailure::Rejected(format!("reservation {rid:?} is unknown"))
                })?;
            if !r.committed && r.expires_at_ms <= now {
                return Err(InventoryFailure::Rejected(format!(
                    "reservation {rid:?} has expired"
                )));
            }
        }
        for rid in reservation_ids {
            let key = (store_id.to_string(), rid.clone());
            let Some(r) = data.reservations.get_mut(&key) else {
                continue;
            };
            if r.committed {
                continue;
            }
            r.committed = true;
            let (product_id, quantity) = (r.product_id.clone(), r.quantity);
            if let Some(p) = data.products.get_mut(&(store_id.to_string(), product_id)) {
                p.stock = p.stock.saturating_sub(quantity);
            }
        }
        Ok(())
    }

    /// Every reservation of a store.
    pub fn reservations(&self, store_id: &str) -> Vec<ReservationView> {
        let now = self.now_ms();
        lock(&self.data)
            .reservations
            .iter()
            .filter(|((s, _), _)| s == store_id)
            .map(|((s, rid), r)| ReservationView {
                store_id: s.clone(),
                reservation_id: rid.clone(),
                product_id: r.product_id.clone(),
                quantity: r.quantity,
                expires_at_ms: r.expires_at_ms,
                committed: r.committed,
                expired: !r.committed && r.expires_at_ms <= now,
            })
            .collect()
    }

    /// Units of a product held by unexpired, uncommitted reservations.
    pub fn reserved_quantity(&self, store_id: &str, product_id: &str) -> u32 {
        let now = self.now_ms();
        Self::held(&lock(&self.data), store_id, product_id, None, now)
    }

    /// Live holds of a product (unexpired, uncommitted), by reservation id: what the reference
    /// inventory lists under `.../products/{productId}/reservations`.
    pub fn holds(&self, store_id: &str, product_id: &str) -> BTreeMap<String, u32> {
        self.reservations(store_id)
            .into_iter()
            .filter(|r| r.product_id == product_id && !r.committed && !r.expired)
            .map(|r| (r.reservation_id, r.quantity))
            .collect()
    }

    // ---- events ---------------------------------------------------------------------------------

    pub fn events_append(&self, topic: &str, records: impl IntoIterator<Item = StoredEvent>) {
        lock(&self.data)
            .events
            .entry(topic.to_string())
            .or_default()
            .extend(records);
    }

    /// Records published to `topic`, in order.
    pub fn events(&self, topic: &str) -> Vec<StoredEvent> {
        lock(&self.data)
            .events
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    pub fn event_topics(&self) -> Vec<String> {
        lock(&self.data).events.keys().cloned().collect()
    }

    // ---- snapshots ------------------------------------------------------------------------------

    /// Everything the capabilities hold, flattened into one sorted map, for "this request changed
    /// nothing" checks: `doc:{key}` (head version) and `doc:{key}@{version}` (each stored body),
    /// `kv:{key}`, `lock:{key}` (holder token and expiry), `hold:{store}/{reservation}` (product,
    /// quantity, expiry, committed), `stock:{store}/{product}` and `event:{topic}/{index}` (key
    /// and value). Config, counters and faults are settings, not state, and are left out.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let data = lock(&self.data);
        let mut out = BTreeMap::new();
        for (key, doc) in &data.documents {
            out.insert(format!("doc:{key}"), doc.head.to_string().into_bytes());
            out.insert(format!("doc:{key}@{}", doc.head), doc.body.clone());
        }
        for (key, value) in &data.kv {
            out.insert(format!("kv:{key}"), value.clone());
        }
        for (key, lease) in &data.locks {
            out.insert(
                format!("lock:{key}"),
                format!("{} until {}", lease.token, lease.expires_at_ms).into_bytes(),
            );
        }
        for ((store, rid), r) in &data.reservations {
            out.insert(
                format!("hold:{store}/{rid}"),
                format!(
                    "{} x{} until {} committed={}",
                    r.product_id, r.quantity, r.expires_at_ms, r.committed
                )
                .into_bytes(),
            );
        }
        for ((store, product), seed) in &data.products {
            out.insert(
                format!("stock:{store}/{product}"),
                seed.stock.to_string().into_bytes(),
            );
        }
        for (topic, records) in &data.events {
            for (i, record) in records.iter().enumerate() {
                out.insert(
                    format!("event:{topic}/{i}"),
                    format!("{} {}", record.key, record.value).into_bytes(),
                );
            }
        }
        out
    }

    // ---- identity keys ---------------------------------------------------------------------------

    /// Serves `body` at `url` for `identity-keys.fetch-key-set` (replacing what was there, as an
    /// identity provider rotating its keys would). Count fetches with
    /// `calls_of(Interface::IdentityKeys, "fetch-key-set")`.
    pub fn publish_key_set(&self, url: &str, body: impl Into<Vec<u8>>) {
        lock(&self.data)
            .key_sets
            .insert(url.to_string(), body.into());
    }

    /// What `url` serves, or none (the fetch then fails as a 404 would: `rejected`).
    pub fn key_set(&self, url: &str) -> Option<Vec<u8>> {
        lock(&self.data).key_sets.get(url).cloned()
    }

    // ---- config --------------------------------------------------------------------------------

    pub fn set_config(&self, name: &str, value: &str) {
        lock(&self.data)
            .config
            .insert(name.to_string(), value.to_string());
    }

    pub fn remove_config(&self, name: &str) {
        lock(&self.data).config.remove(name);
    }

    /// A variable's value, counted as read (see `variables_read`).
    pub fn config(&self, name: &str) -> Option<String> {
        *lock(&self.variables_read)
            .entry(name.to_owned())
            .or_insert(0) += 1;
        lock(&self.data).config.get(name).cloned()
    }

    /// Every variable the component asked for since the last `reset_variables_read`, with how
    /// often: on Spin each one is a host call of its own.
    pub fn variables_read(&self) -> BTreeMap<String, u64> {
        lock(&self.variables_read).clone()
    }

    pub fn reset_variables_read(&self) {
        lock(&self.variables_read).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_versions_are_unique_and_cas_guards_the_head() {
        let s = CapabilityState::default();
        assert_eq!(s.doc_compare_and_swap("c", 0, b"a".to_vec()), Ok(1));
        assert_eq!(
            s.doc_compare_and_swap("c", 0, b"x".to_vec()),
            Err(DocumentFailure::Conflict(1))
        );
        assert_eq!(s.doc_compare_and_swap("c", 1, b"b".to_vec()), Ok(2));
        assert_eq!(s.doc_read_head("c").unwrap(), Some((2, b"b".to_vec())));
        assert_eq!(
            s.doc_compare_and_swap("c", 2, b"c".to_vec()),
            Ok(3),
            "versions never reused"
        );
        assert!(matches!(
            s.doc_compare_and_swap("", 0, vec![]),
            Err(DocumentFailure::Invalid(_))
        ));
    }

    #[test]
    fn reservations_count_other_holds_and_are_absolute() {
        let s = CapabilityState::default();
        s.seed_product(ProductSeed::new("s", "p", "P", 100, 10));
        s.inv_reserve("s", "p", "a", 6, 60_000).unwrap();
        assert_eq!(s.product("s", "p").unwrap().available, 4);
        // Retrying the same absolute quantity does not double-reserve.
        s.inv_reserve("s", "p", "a", 6, 60_000).unwrap();
        assert_eq!(s.reserved_quantity("s", "p"), 6);
        // Another reservation sees 4; "a" may grow to 10 since only others count.
        assert_eq!(
            s.inv_reserve("s", "p", "b", 5, 60_000),
            Err(InventoryFailure::InsufficientStock(4))
        );
        s.inv_reserve("s", "p", "a", 10, 60_000).unwrap();
        assert_eq!(
            s.inv_reserve("s", "p", "b", 1, 60_000),
            Err(InventoryFailure::InsufficientStock(0))
        );
        // Expiry frees the hold.
        s.advance_clock(Duration::from_secs(61));
        assert_eq!(s.product("s", "p").unwrap().available, 10);
        s.inv_reserve("s", "p", "b", 3, 60_000).unwrap();
        // Commit is all-or-nothing: an expired reservation fails the whole batch.
        assert!(s.inv_commit("s", &["b".into(), "a".into()]).is_err());
        assert_eq!(s.product("s", "p").unwrap().seed.stock, 10);
        s.inv_commit("s", &["b".into()]).unwrap();
        s.inv_commit("s", &["b".into()]).unwrap();
        let p = s.product("s", "p").unwrap();
        assert_eq!((p.seed.stock, p.available), (7, 7));
        s.inv_release("s", "unknown");
    }

    #[test]
    fn leases_expire_and_need_the_token() {
        let s = CapabilityState::default();
        let lease = s.lock_try_acquire("k", 1000).unwrap().unwrap();
        assert!(s.lock_try_acquire("k", 1000).unwrap().is_none());
        assert!(!s.lock_release("k", "wrong").unwrap());
        assert!(s.lock_release("k", &lease.token).unwrap());
        let lease = s.lock_try_acquire("k", 1000).unwrap().unwrap();
        s.advance_clock(Duration::from_secs(2));
        let other = s.lock_try_acquire("k", 1000).unwrap().unwrap();
        assert_ne!(other.token, lease.token);
        assert!(!s.lock_release("k", &lease.token).unwrap());
    }

    #[test]
    fn faults_count_down_and_filter_by_function() {
        let s = CapabilityState::default();
        s.fail_next_calls_of(
            Interface::Inventory,
            "reserve",
            2,
            Fault::Unavailable("down".into()),
        );
        assert_eq!(s.enter(Interface::Inventory, "get-product").1, None);
        assert!(s.enter(Interface::Inventory, "reserve").1.is_some());
        assert!(s.enter(Interface::Inventory, "reserve").1.is_some());
        assert_eq!(s.enter(Interface::Inventory, "reserve").1, None);
        s.fail_always(Interface::Events, Fault::Rejected("no".into()));
        for _ in 0..3 {
            assert!(s.enter(Interface::Events, "publish").1.is_some());
        }
        s.clear_faults(Interface::Events);
        assert_eq!(s.enter(Interface::Events, "publish").1, None);
        assert_eq!(s.calls(Interface::Inventory), 4);
        assert_eq!(s.calls_of(Interface::Events, "publish"), 4);
    }
}
