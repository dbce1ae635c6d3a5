//! Cart operations: each change decided against the current cart version and committed by one
//! compare-and-swap (`commit`), with the leases, holds and events it needs. Knows no HTTP.

pub mod checkout;
pub mod clear;
pub mod commit;
pub mod error;
pub mod holds;
pub mod lifecycle;
pub mod line_change;
pub mod merge;
pub mod orphan_sweep;
pub mod relay;
