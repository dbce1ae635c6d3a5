//! Guest bindings for the project's capability contract (`wit/cart.wit`, world `capabilities`).
//! Generated with spin-sdk's wit-bindgen so they share its runtime.

spin_sdk::wit_bindgen::generate!({
    world: "capabilities",
    path: "../../wit",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
});

pub use storefront::cart::{config, documents, events, identity_keys, inventory, kv, locks, trace};
