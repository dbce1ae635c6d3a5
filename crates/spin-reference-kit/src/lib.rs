//! Support code shared by the reference components (`inventory`, `event-sink`).
//!
//! Only mechanics live here: the key-value CAS loop ([`kv`]), the RFC 9457 problem body
//! ([`problem`]) with the problems every component answers alike ([`common`]), id
//! validation / path-segment decoding ([`ids`]), and who may call a route ([`access`]: the
//! `reference_token` bearer token and the demo reads). Error enums, routes, key layouts and id limits
//! stay in each component.

pub mod access;
pub mod common;
pub mod ids;
pub mod kv;
pub mod problem;
