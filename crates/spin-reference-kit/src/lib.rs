//! Support code shared by the reference components (`inventory`, `event-sink`).
//!
//! Only mechanics live here: the key-value CAS loop ([`kv`]), the RFC 9457 problem body
//! ([`problem`]) with the problems every component answers alike ([`common`]), and id
//! validation / path-segment decoding ([`ids`]). Error enums, routes, key layouts and id limits
//! stay in each component.

pub mod common;
pub mod ids;
pub mod kv;
pub mod problem;
