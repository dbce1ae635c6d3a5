//! The wasmtime-based capability host of the edge cart.
//!
//! [`CapabilityHost`] runs a component of the `cart-logic` shape (the cart logic, or the
//! `cap_probe` fixture) alone over in-memory implementations of the project's `storefront:cart`
//! interfaces (`wit/cart.wit`), with fault and latency injection, call counters and a clock
//! tests move forward, in process ([`CapabilityHost::handle`]) or on a loopback port
//! ([`CapabilityHost::serve`]). Tests drive it through [`Handle`] with the request builders in
//! [`testing`].
//!
//! How the whole app behaves on Spin (manifest, key-value, variables, Redis, service chaining,
//! composition with the adapter) is tested on real `spin up` by `tests/e2e` (crate `cart-e2e`).

pub mod capabilities;
pub mod engine;
pub mod guest_log;
pub mod inflight;
pub mod outbound;
pub mod routing;
pub mod server;
pub mod testing;

pub use capabilities::{
    CapabilityHost, CapabilityOptions, CapabilityState, Fault, Interface, PausePoint, Policy,
    ProductSeed, TracedCall,
};
pub use guest_log::GuestOutput;
pub use server::ServerHandle;
pub use testing::{
    delete, ensure_fixtures, fixture_path, get, patch_json, post_json, put_json, request,
    target_dir, wasm_path, workspace_root, Handle, TestRequest, TestResponse,
};
