//! The cart's capabilities in cart terms: the only code that calls the generated
//! `storefront:cart` bindings (documents, kv, locks, inventory, events, config, trace,
//! identity keys).

pub mod bindings;
pub mod breaker;
pub mod cart_repo;
pub mod event_pipeline;
pub mod idempotency_store;
pub mod inventory_port;
pub mod jwks;
pub mod line_lock;
pub mod lock_keys;
pub mod metrics;
pub mod outbox;
pub mod product_cache;
pub mod record_reads;
pub mod settings;
pub mod trace;
