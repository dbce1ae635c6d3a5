//! `CapabilityHost`: hosts the cart logic component (world `cart-logic`) over in-memory
//! implementations of the project's capability interfaces, with fault and latency
//! injection and call counters, and state shared across requests.
//!
//! The component gets WASI and `wasi:http` like a Spin component, but every outbound HTTP
//! request is refused: the cart logic must reach the world only through its capabilities.

mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use state::{
    CapabilityState, DocumentFailure, Fault, Interface, InventoryFailure, LeaseView, PausePoint,
    Policy, ProductSeed, ProductView, ReservationView, StoredEvent, TracedCall,
};

use crate::guest_log::{wasi_builder, GuestLog, GuestOutput};
use crate::inflight::InFlight;
use crate::outbound::{full_body, DenyAllOutbound};
use crate::routing::{append_spin_headers, Routes};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "storefront:cart/capabilities",
        imports: { default: async | trappable },
    });
}

use bindings::storefront::cart::{
    config, documents, events, identity_keys, inventory, kv, locks, trace,
};

/// Options for [`CapabilityHost::with_options`].
#[derive(Debug, Clone)]
pub struct CapabilityOptions {
    /// Routes the component is mounted at, for the `spin-*` headers it sees (as in
    /// `spin.toml`). Requests matching none get 404, like Spin.
    pub routes: Vec<String>,
    pub guest_output: GuestOutput,
}

impl Default for CapabilityOptions {
    fn default() -> Self {
        Self {
            routes: vec!["/...".to_string()],
            guest_output: GuestOutput::Capture,
        }
    }
}

/// Store data of one request.
pub struct CapStoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: DenyAllOutbound,
    state: Arc<CapabilityState>,
    /// The `traceparent` this instance's component set (`trace.set-context`).
    trace: Option<String>,
}

impl WasiView for CapStoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CapStoreData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The component's wall clock is the host's clock ([`CapabilityState::now_ms`]), so
/// [`CapabilityState::advance_clock`] moves the cart's notion of time together with the
/// capabilities' (hold and lease expiry, cache TTLs, breaker periods, abandoned carts).
struct HostClock(Arc<CapabilityState>);

impl wasmtime_wasi::HostWallClock for HostClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        Duration::from_micros(u64::try_from(self.0.now_us()).unwrap_or(0))
    }
}

/// The view the capability host functions run against.
pub struct CapView<'a> {
    state: &'a CapabilityState,
    trace: &'a mut Option<String>,
}

struct CapHost;

impl HasData for CapHost {
    type Data<'a> = CapView<'a>;
}

fn cap_view(d: &mut CapStoreData) -> CapView<'_> {
    CapView {
        state: &d.state,
        trace: &mut d.trace,
    }
}

impl CapView<'_> {
    /// Counts the call, waits the injected latency and returns the injected fault, if any
    /// (a `Trap` fault fails the call, which fails the component).
    async fn enter(
        &self,
        interface: Interface,
        function: &'static str,
    ) -> wasmtime::Result<Option<Fault>> {
        if let Some(pause) = self.state.take_pause(interface, function) {
            pause.hold().await;
        }
        if matches!(interface, Interface::Inventory | Interface::Events) {
            // What a real host would send as the `traceparent` header of this call.
            self.state
                .record_traced_call(interface, function, self.trace.clone());
        }
        let (latency, fault) = self.state.enter(interface, function);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(Fault::Trap(m)) => Err(wasmtime::format_err!(
                "injected trap in {}.{function}: {m}",
                interface.name()
            )),
            other => Ok(other),
        }
    }
}

fn store_error(f: Fault) -> documents::StoreError {
    match f {
        Fault::Rejected(m) => documents::StoreError::Invalid(m),
        other => documents::StoreError::Unavailable(other.message()),
    }
}

impl documents::Host for CapView<'_> {
    async fn read_head(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<documents::Document>, documents::StoreError>> {
        if let Some(f) = self.enter(Interface::Documents, "read-head").await? {
            return Ok(Err(store_error(f)));
        }
        Ok(self
            .state
            .doc_read_head(&key)
            .map(|d| d.map(|(version, body)| documents::Document { version, body }))
            .map_err(documents::StoreError::Invalid))
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: u64,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<u64, documents::SwapError>> {
        if let Some(f) = self.enter(Interface::Documents, "compare-and-swap").await? {
            return Ok(Err(documents::SwapError::Store(store_error(f))));
        }
        Ok(self
            .state
            .doc_compare_and_swap(&key, expected, body)
            .map_err(|e| match e {
                DocumentFailure::Conflict(v) => documents::SwapError::Conflict(v),
                DocumentFailure::Invalid(m) => {
                    documents::SwapError::Store(documents::StoreError::Invalid(m))
                }
            }))
    }
}

impl kv::Host for CapView<'_> {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "get").await? {
            return Ok(Err(store_error(f)));
        }
        Ok(self
            .state
            .kv_checked_key(&key)
            .map(|()| self.state.kv_get(&key))
            .map_err(kv::StoreError::Invalid))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "set").await? {
            return Ok(Err(store_error(f)));
        }
        Ok(self
            .state
            .kv_checked_key(&key)
            .map(|()| self.state.kv_set(&key, value))
            .map_err(kv::StoreError::Invalid))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "delete").await? {
            return Ok(Err(store_error(f)));
        }
        Ok(self
            .state
            .kv_checked_key(&key)
            .map(|()| self.state.kv_delete(&key))
            .map_err(kv::StoreError::Invalid))
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "list-keys").await? {
            return Ok(Err(store_error(f)));
        }
        Ok(Ok(self.state.kv_list_keys(&prefix, limit)))
    }

    async fn get_many(
        &mut self,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Vec<u8>>>, kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "get-many").await? {
            return Ok(Err(store_error(f)));
        }
        let mut values = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Err(e) = self.state.kv_checked_key(key) {
                return Ok(Err(kv::StoreError::Invalid(e)));
            }
            values.push(self.state.kv_get(key));
        }
        Ok(Ok(values))
    }

    async fn increment_many(
        &mut self,
        deltas: Vec<(String, i64)>,
    ) -> wasmtime::Result<Result<(), kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "increment-many").await? {
            return Ok(Err(store_error(f)));
        }
        for (key, delta) in deltas {
            if let Err(e) = self.state.kv_increment(&key, delta) {
                return Ok(Err(kv::StoreError::Invalid(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, kv::StoreError>> {
        if let Some(f) = self.enter(Interface::Kv, "increment").await? {
            return Ok(Err(store_error(f)));
        }
        Ok(self
            .state
            .kv_increment(&key, delta)
            .map_err(kv::StoreError::Invalid))
    }
}

fn lock_error(f: Fault) -> locks::LockError {
    match f {
        Fault::Rejected(m) => locks::LockError::Invalid(m),
        other => locks::LockError::Unavailable(other.message()),
    }
}

impl locks::Host for CapView<'_> {
    async fn try_acquire(
        &mut self,
        key: String,
        ttl_ms: u32,
    ) -> wasmtime::Result<Result<Option<locks::Lease>, locks::LockError>> {
        if let Some(f) = self.enter(Interface::Locks, "try-acquire").await? {
            return Ok(Err(lock_error(f)));
        }
        Ok(self
            .state
            .lock_try_acquire(&key, ttl_ms)
            .map(|l| {
                l.map(|l| locks::Lease {
                    key: l.key,
                    token: l.token,
                    ttl_ms,
                })
            })
            .map_err(locks::LockError::Invalid))
    }

    async fn release(
        &mut self,
        lease: locks::Lease,
    ) -> wasmtime::Result<Result<bool, locks::LockError>> {
        if let Some(f) = self.enter(Interface::Locks, "release").await? {
            return Ok(Err(lock_error(f)));
        }
        Ok(self
            .state
            .lock_release(&lease.key, &lease.token)
            .map_err(locks::LockError::Invalid))
    }

    /// Leases here are entries removed on release, like Redis keys: retiring is releasing.
    async fn retire(
        &mut self,
        lease: locks::Lease,
    ) -> wasmtime::Result<Result<bool, locks::LockError>> {
        if let Some(f) = self.enter(Interface::Locks, "retire").await? {
            return Ok(Err(lock_error(f)));
        }
        Ok(self
            .state
            .lock_release(&lease.key, &lease.token)
            .map_err(locks::LockError::Invalid))
    }
}

fn inventory_error(f: InventoryFailure) -> inventory::InventoryError {
    match f {
        InventoryFailure::ProductNotFound => inventory::InventoryError::ProductNotFound,
        InventoryFailure::InsufficientStock(n) => inventory::InventoryError::InsufficientStock(n),
        InventoryFailure::StaleFence(n) => inventory::InventoryError::StaleFence(n),
        InventoryFailure::Rejected(m) => inventory::InventoryError::Rejected(m),
    }
}

fn inventory_fault(f: Fault) -> inventory::InventoryError {
    match f {
        Fault::Rejected(m) => inventory::InventoryError::Rejected(m),
        other => inventory::InventoryError::Unavailable(other.message()),
    }
}

impl inventory::Host for CapView<'_> {
    async fn get_product(
        &mut self,
        store_id: String,
        product_id: String,
    ) -> wasmtime::Result<Result<inventory::Product, inventory::InventoryError>> {
        if let Some(f) = self.enter(Interface::Inventory, "get-product").await? {
            return Ok(Err(inventory_fault(f)));
        }
        let Some(p) = self.state.product(&store_id, &product_id) else {
            return Ok(Err(inventory::InventoryError::ProductNotFound));
        };
        let s = p.seed;
        Ok(Ok(inventory::Product {
            store_id: s.store_id,
            product_id: s.product_id,
            title: s.title,
            unit_price: inventory::Money {
                amount_minor: s.unit_price_minor,
                currency: s.currency,
            },
            available: p.available,
            policy: match s.policy {
                Policy::Reserve => inventory::ReservationPolicy::Reserve,
                Policy::Checkout => inventory::ReservationPolicy::Checkout,
            },
            min_quantity: s.min_quantity,
            max_quantity: s.max_quantity,
            quantity_step: s.quantity_step,
        }))
    }

    async fn reserve(
        &mut self,
        store_id: String,
        product_id: String,
        reservation_id: String,
        quantity: u32,
        ttl_ms: u64,
        fence: u64,
    ) -> wasmtime::Result<Result<inventory::Reservation, inventory::InventoryError>> {
        if let Some(f) = self.enter(Interface::Inventory, "reserve").await? {
            return Ok(Err(inventory_fault(f)));
        }
        Ok(self
            .state
            .inv_reserve_fenced(
                &store_id,
                &product_id,
                &reservation_id,
                quantity,
                ttl_ms,
                fence,
            )
            .map(|r| inventory::Reservation {
                reservation_id: r.reservation_id,
                product_id: r.product_id,
                quantity: r.quantity,
                expires_at_ms: r.expires_at_ms,
            })
            .map_err(inventory_error))
    }

    async fn release(
        &mut self,
        store_id: String,
        reservation_id: String,
    ) -> wasmtime::Result<Result<(), inventory::InventoryError>> {
        if let Some(f) = self.enter(Interface::Inventory, "release").await? {
            return Ok(Err(inventory_fault(f)));
        }
        self.state.inv_release(&store_id, &reservation_id);
        Ok(Ok(()))
    }

    async fn list_reservations(
        &mut self,
        store_id: String,
    ) -> wasmtime::Result<Result<Vec<inventory::Reservation>, inventory::InventoryError>> {
        if let Some(f) = self
            .enter(Interface::Inventory, "list-reservations")
            .await?
        {
            return Ok(Err(inventory_fault(f)));
        }
        Ok(Ok(self
            .state
            .reservations(&store_id)
            .into_iter()
            .filter(|r| !r.committed && !r.expired)
            .map(|r| inventory::Reservation {
                reservation_id: r.reservation_id,
                product_id: r.product_id,
                quantity: r.quantity,
                expires_at_ms: r.expires_at_ms,
            })
            .collect()))
    }

    async fn commit(
        &mut self,
        store_id: String,
        reservation_ids: Vec<String>,
    ) -> wasmtime::Result<Result<(), inventory::InventoryError>> {
        if let Some(f) = self.enter(Interface::Inventory, "commit").await? {
            return Ok(Err(inventory_fault(f)));
        }
        Ok(self
            .state
            .inv_commit(&store_id, &reservation_ids)
            .map_err(inventory_error))
    }
}

impl events::Host for CapView<'_> {
    async fn publish(
        &mut self,
        topic: String,
        records: Vec<events::EventRecord>,
    ) -> wasmtime::Result<Result<u32, events::PublishError>> {
        let records: Vec<StoredEvent> = records
            .into_iter()
            .map(|r| StoredEvent {
                key: r.key,
                value: r.value,
            })
            .collect();
        match self.enter(Interface::Events, "publish").await? {
            None => {
                let n = records.len() as u32;
                self.state.events_append(&topic, records);
                Ok(Ok(n))
            }
            Some(Fault::PartialAck(n)) => {
                let n = n.min(records.len() as u32);
                self.state
                    .events_append(&topic, records.into_iter().take(n as usize));
                Ok(Ok(n))
            }
            Some(Fault::Rejected(m)) => Ok(Err(events::PublishError::Rejected(m))),
            Some(other) => Ok(Err(events::PublishError::Retriable(other.message()))),
        }
    }
}

impl trace::Host for CapView<'_> {
    async fn set_context(
        &mut self,
        traceparent: String,
        _tracestate: Option<String>,
    ) -> wasmtime::Result<()> {
        *self.trace = Some(traceparent);
        Ok(())
    }
}

impl identity_keys::Host for CapView<'_> {
    async fn fetch_key_set(
        &mut self,
        url: String,
    ) -> wasmtime::Result<Result<Vec<u8>, identity_keys::FetchError>> {
        match self.enter(Interface::IdentityKeys, "fetch-key-set").await? {
            None => {}
            Some(Fault::Rejected(m)) => return Ok(Err(identity_keys::FetchError::Rejected(m))),
            Some(other) => return Ok(Err(identity_keys::FetchError::Unavailable(other.message()))),
        }
        Ok(self
            .state
            .key_set(&url)
            .ok_or_else(|| identity_keys::FetchError::Rejected(format!("{url} answered 404"))))
    }
}

impl config::Host for CapView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        if self.enter(Interface::Config, "get").await?.is_some() {
            return Ok(None);
        }
        Ok(self.state.config(&name))
    }

    async fn get_many(&mut self, names: Vec<String>) -> wasmtime::Result<Vec<Option<String>>> {
        if self.enter(Interface::Config, "get-many").await?.is_some() {
            return Ok(vec![None; names.len()]);
        }
        Ok(names.iter().map(|n| self.state.config(n)).collect())
    }
}

/// The cart logic component over in-memory capabilities.
pub struct CapabilityHost {
    pre: ProxyPre<CapStoreData>,
    state: Arc<CapabilityState>,
    routes: Routes,
    log: GuestLog,
    options: CapabilityOptions,
    inflight: Arc<InFlight>,
    /// Requests handled so far (for soak figures).
    served: std::sync::atomic::AtomicU64,
}

impl Deref for CapabilityHost {
    type Target = CapabilityState;

    /// The capabilities, so tests write `host.seed_product(...)`, `host.fail_next(...)`.
    fn deref(&self) -> &CapabilityState {
        &self.state
    }
}

const IN_PROCESS_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl CapabilityHost {
    /// Loads the component, mounted at `/...`.
    pub fn new(wasm_path: impl AsRef<Path>) -> Result<Arc<CapabilityHost>> {
        Self::with_options(wasm_path, CapabilityOptions::default())
    }

    pub fn with_options(
        wasm_path: impl AsRef<Path>,
        options: CapabilityOptions,
    ) -> Result<Arc<CapabilityHost>> {
        let path = wasm_path.as_ref();
        let component = crate::engine::load_component(path)?;
        let mut linker: Linker<CapStoreData> = Linker::new(crate::engine::engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        bindings::Capabilities::add_to_linker::<_, CapHost>(&mut linker, cap_view)
            .map_err(anyhow::Error::from)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} imports something the capability host does not provide",
                    path.display()
                )
            })?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not export wasi:http/incoming-handler@0.2",
                    path.display()
                )
            })?;
        let routes = Routes::new(&options.routes);
        Ok(Arc::new(CapabilityHost {
            pre,
            state: Arc::new(CapabilityState::default()),
            routes,
            log: GuestLog::default(),
            options,
            inflight: Arc::default(),
            served: Default::default(),
        }))
    }

    /// The shared capability state (also reachable through `Deref`).
    /// How many requests this host has been sent.
    pub fn requests_served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn state(&self) -> &Arc<CapabilityState> {
        &self.state
    }

    /// Waits until no component instance is running: the work a component does after its
    /// response (the cart's outbox relay and metric flush) is finished.
    pub async fn wait_idle(&self) {
        self.inflight.wait_idle().await;
    }

    /// Component instances running now (a paused request's included).
    pub fn instances_running(&self) -> usize {
        self.inflight.count()
    }

    /// Component stdout/stderr captured so far.
    pub fn guest_output(&self) -> String {
        self.log.contents()
    }

    /// Handles one request in process and collects the body. Returns when the response is
    /// complete; work the component does after it continues (see [`Self::wait_idle`]). A
    /// component failure before the response starts is a 500 with an empty body, as on Spin.
    pub async fn handle(&self, req: http::Request<Bytes>) -> Result<http::Response<Bytes>> {
        let resp = self.dispatch(req.map(full_body), IN_PROCESS_CLIENT).await;
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| anyhow!("response body failed mid-stream: {e}"))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, bytes))
    }

    pub(crate) async fn dispatch<B>(
        &self,
        req: http::Request<B>,
        client: SocketAddr,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let empty = |status: u16| {
            let mut r = http::Response::new(crate::outbound::empty_body());
            *r.status_mut() = http::StatusCode::from_u16(status)
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            r
        };
        let Some(route) = self.routes.route(req.uri().path()) else {
            return empty(404);
        };
        let (mut parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        append_spin_headers(
            &mut parts.headers,
            "http",
            &host,
            &path_and_query,
            &route,
            client,
        );
        if let Ok(uri) = http::Uri::builder()
            .scheme("http")
            .authority(host.as_str())
            .path_and_query(path_and_query.as_str())
            .build()
        {
            parts.uri = uri;
        }
        match self.run(http::Request::from_parts(parts, body)).await {
            Ok(resp) => resp,
            Err(e) => {
                if self.options.guest_output == GuestOutput::Capture {
                    self.log
                        .append_host_line(&format!("[capability-host] component failed: {e:?}\n"));
                }
                empty(500)
            }
        }
    }

    async fn run<B>(&self, req: http::Request<B>) -> Result<http::Response<HyperOutgoingBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let data = CapStoreData {
            wasi: wasi_builder(self.options.guest_output, &self.log)
                .wall_clock(HostClock(self.state.clone()))
                .build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: DenyAllOutbound,
            state: self.state.clone(),
            trace: None,
        };
        let mut store = Store::new(crate::engine::engine(), data);
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(anyhow::Error::from)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(anyhow::Error::from)?;
        let pre = self.pre.clone();
        let running = self.inflight.start();
        let task = tokio::spawn(async move {
            let _running = running;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
        });
        match rx.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(anyhow!("component answered with error code {code:?}")),
            Err(_) => {
                match task.await.context("component task panicked")? {
                    Ok(()) => Err(anyhow!("component returned without producing a response")),
                    Err(e) => Err(anyhow::Error::from(e)
                        .context("component failed before producing a response")),
                }
            }
        }
    }

    /// Serves the component on `addr` until the handle is dropped.
    pub fn serve(self: Arc<Self>, addr: SocketAddr) -> Result<crate::server::ServerHandle> {
        crate::server::serve(self, addr)
    }
}

impl crate::server::ServeTarget for CapabilityHost {
    fn serve_request(
        self: Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
        client: SocketAddr,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = http::Response<HyperOutgoingBody>> + Send>,
    > {
        Box::pin(async move { self.dispatch(req, client).await })
    }
}
