//! The HTTP edge: reads requests, routes them, resolves the caller, runs operations and turns
//! their results and errors into responses. The only layer that knows HTTP.

pub mod admin;
pub mod api;
pub mod http_io;
pub mod idempotency;
pub mod identity;
pub mod problem;
pub mod problem_details;
pub mod routes;
pub mod trace;
