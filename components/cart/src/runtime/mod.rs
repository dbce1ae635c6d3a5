//! Per-instance facilities with no capability behind them: time and jitter, work deferred
//! until after the response, the request's timing breakdown, the operation log line, the
//! store-write tally and the fixed metric registry. Depends on nothing else in the crate.

pub mod clock;
pub mod deferred;
pub mod metric_registry;
pub mod oplog;
pub mod store_writes;
pub mod timing;
