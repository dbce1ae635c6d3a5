//! Spin capability adapter.
//!
//! Exports the `storefront:cart` capability interfaces (world `adapter-exports` in
//! `wit/cart.wit`) and implements them with what Spin offers: key-value (`wasi:keyvalue`
//! store and atomics), outbound Redis, outbound HTTP and variables. The cart logic component
//! imports these interfaces; Spin satisfies them with this component through
//! `[component.cart.dependencies]`, and `dependencies_inherit_configuration = true` lends it the
//! cart component's key-value stores, outbound hosts and variables.
//!
//! `documents` and `kv` are served by the store `store_url` names (Spin key-value by default,
//! or a Redis shared by many instances; see [`store`]); `locks` by the backend `lock_url`
//! names, which follows the store when unset.
//! `identity-keys` fetches the identity provider's key set (`jwt_jwks_url`) over outbound HTTP.

mod backend_url;
mod base64;
mod config;
mod documents;
mod events_client;
mod http_util;
mod identity_keys;
mod inventory_client;
mod kv;
mod kv_store;
mod locks;
mod redis_conn;
mod store;
mod token;
mod trace;
mod upstash_rest;
mod urls;

spin_sdk::wit_bindgen::generate!({
    world: "adapter-exports",
    path: "../../wit",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    generate_all,
});

/// The exported component: each interface is implemented in its own module.
struct Adapter;

export!(Adapter);
