//! The wasmtime-based test host of the edge cart.
//!
//! Two hosts, one vocabulary:
//! - [`SpinApp`] loads `spin.toml` and runs the whole app like Spin 4.0.2 (routing, `spin-*`
//!   headers, key-value with Spin's CAS semantics, variables, outbound Redis and HTTP with
//!   service chaining, component dependencies), in process or on a loopback port;
//! - [`CapabilityHost`] runs the cart logic component alone over in-memory implementations of
//!   the project's `storefront:cart` interfaces, with injectable faults and latency.
//!
//! Tests drive both through [`Handle`] with the request builders in [`testing`].

pub mod allowed_hosts;
pub mod app;
pub mod capabilities;
pub mod deps;
pub mod engine;
pub mod guest_log;
pub mod host_state;
pub mod inflight;
pub mod kv;
pub mod manifest;
pub mod outbound;
pub mod redis_host;
pub mod redis_server;
pub mod resp;
pub mod routing;
pub mod server;
pub mod spin_bindings;
pub mod stats;
pub mod testing;
pub mod upstash;
pub mod variables;

pub use app::{AppOptions, ChainedRouteHeaders, LoadError, SpinApp};
pub use capabilities::{
    CapabilityHost, CapabilityOptions, CapabilityState, Fault, Interface, Policy, ProductSeed,
};
pub use deps::DependencyInstancing;
pub use guest_log::GuestOutput;
pub use kv::{KvCounts, KvStore};
pub use redis_server::RedisServer;
pub use server::ServerHandle;
pub use stats::AppStats;
pub use testing::{
    delete, ensure_fixtures, fixture_path, get, patch_json, post_json, put_json, request,
    target_dir, wasm_path, workspace_root, Handle, TestRequest, TestResponse,
};
