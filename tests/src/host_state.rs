//! Per-request store data for Spin components, and the linkers that expose host interfaces
//! to them.
//!
//! A request's `Store` holds the main component and its dependencies (Spin composes them into
//! one component). They share WASI and the resource table but not their capabilities: the main
//! component's imports see its own manifest configuration; a dependency's imports see the same
//! configuration when `dependencies_inherit_configuration = true` and Spin's deny-all answers
//! otherwise. Two linkers with two sets of accessor functions give each side its own view.

use std::sync::Arc;

use wasmtime::component::{Instance, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings as http_bindings;
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allowed_hosts::AllowedHosts;
use crate::kv::{KvAccess, KvHost, KvView};
use crate::outbound::OutboundHooks;
use crate::redis_host::{RedisAccess, RedisHost, RedisView};
use crate::spin_bindings::fermyon::spin as spin_if;
use crate::spin_bindings::wasi::keyvalue as kv_if;
use crate::variables::{ComponentVariables, VariablesHost, VariablesView};

/// The configuration one side (main component or its dependencies) runs with.
pub struct Capabilities {
    pub component_id: String,
    pub kv: KvAccess,
    pub variables: ComponentVariables,
    pub redis: RedisAccess,
    pub allowed_hosts: Arc<AllowedHosts>,
    /// Spin's deny-all adapter applies (a dependency that does not inherit configuration).
    pub deny_all: bool,
}

/// One side's live state: its capabilities and its outbound-HTTP hooks.
pub struct Side {
    pub caps: Arc<Capabilities>,
    pub hooks: OutboundHooks,
}

/// The `T` of `Store<T>` for a Spin component request.
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub main: Side,
    pub dep: Side,
    /// Dependency instances of this request, in the order the forwarding functions index them.
    pub dep_instances: Vec<Instance>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.main.hooks,
        }
    }
}

/// Which side a linker is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    Dependency,
}

fn main_http(s: &mut HostState) -> WasiHttpCtxView<'_> {
    s.http()
}

fn dep_http(s: &mut HostState) -> WasiHttpCtxView<'_> {
    WasiHttpCtxView {
        ctx: &mut s.http,
        table: &mut s.table,
        hooks: &mut s.dep.hooks,
    }
}

fn main_kv(s: &mut HostState) -> KvView<'_> {
    KvView {
        access: &s.main.caps.kv,
        table: &mut s.table,
    }
}

fn dep_kv(s: &mut HostState) -> KvView<'_> {
    KvView {
        access: &s.dep.caps.kv,
        table: &mut s.table,
    }
}

fn main_vars(s: &mut HostState) -> VariablesView<'_> {
    VariablesView {
        vars: &s.main.caps.variables,
    }
}

fn dep_vars(s: &mut HostState) -> VariablesView<'_> {
    VariablesView {
        vars: &s.dep.caps.variables,
    }
}

fn main_redis(s: &mut HostState) -> RedisView<'_> {
    RedisView {
        access: &s.main.caps.redis,
        table: &mut s.table,
    }
}

fn dep_redis(s: &mut HostState) -> RedisView<'_> {
    RedisView {
        access: &s.dep.caps.redis,
        table: &mut s.table,
    }
}

type HttpGetter = fn(&mut HostState) -> WasiHttpCtxView<'_>;
type KvGetter = fn(&mut HostState) -> KvView<'_>;
type VarsGetter = fn(&mut HostState) -> VariablesView<'_>;
type RedisGetter = fn(&mut HostState) -> RedisView<'_>;

/// A linker with WASI, `wasi:http` and the Spin interfaces, wired to `role`'s side.
pub fn spin_linker(role: Role) -> anyhow::Result<Linker<HostState>> {
    let mut l = Linker::new(crate::engine::engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
    let (http, kv, vars, redis): (HttpGetter, KvGetter, VarsGetter, RedisGetter) = match role {
        Role::Main => (main_http, main_kv, main_vars, main_redis),
        Role::Dependency => (dep_http, dep_kv, dep_vars, dep_redis),
    };
    let http_options = http_bindings::LinkOptions::default();
    http_bindings::http::outgoing_handler::add_to_linker::<_, WasiHttp>(&mut l, http)?;
    http_bindings::http::types::add_to_linker::<_, WasiHttp>(&mut l, &http_options.into(), http)?;
    kv_if::store::add_to_linker::<_, KvHost>(&mut l, kv)?;
    kv_if::atomics::add_to_linker::<_, KvHost>(&mut l, kv)?;
    kv_if::batch::add_to_linker::<_, KvHost>(&mut l, kv)?;
    spin_if::variables::add_to_linker::<_, VariablesHost>(&mut l, vars)?;
    spin_if::redis::add_to_linker::<_, RedisHost>(&mut l, redis)?;
    Ok(l)
}
