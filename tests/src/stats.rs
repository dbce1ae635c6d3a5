//! Counters an app keeps for tests and benchmarks: how many instances, hops, outbound requests
//! and cross-component calls a request costs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::engine::lock;

/// A snapshot of an app's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppStats {
    /// Component id -> requests it handled (from outside and by service chaining).
    pub requests: BTreeMap<String, u64>,
    /// Component id (or dependency path / name) -> instances created: Spin creates fresh
    /// instances for every request and every hop.
    pub instantiations: BTreeMap<String, u64>,
    /// Host -> outbound HTTP requests sent or dispatched (service chaining included).
    pub outbound: BTreeMap<String, u64>,
    /// Host -> outbound requests refused by `allowed_outbound_hosts`.
    pub outbound_denied: BTreeMap<String, u64>,
    /// `interface#function` -> calls forwarded from a dependent to its dependency.
    pub dependency_calls: BTreeMap<String, u64>,
}

impl AppStats {
    pub fn dependency_calls_total(&self) -> u64 {
        self.dependency_calls.values().sum()
    }

    pub fn outbound_total(&self) -> u64 {
        self.outbound.values().sum()
    }

    pub fn requests_total(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Counter differences `self - earlier`, dropping zeroes: the cost of what ran in between.
    pub fn since(&self, earlier: &AppStats) -> AppStats {
        fn diff(
            now: &BTreeMap<String, u64>,
            then: &BTreeMap<String, u64>,
        ) -> BTreeMap<String, u64> {
            now.iter()
                .filter_map(|(k, v)| {
                    let d = v - then.get(k).copied().unwrap_or(0);
                    (d > 0).then(|| (k.clone(), d))
                })
                .collect()
        }
        AppStats {
            requests: diff(&self.requests, &earlier.requests),
            instantiations: diff(&self.instantiations, &earlier.instantiations),
            outbound: diff(&self.outbound, &earlier.outbound),
            outbound_denied: diff(&self.outbound_denied, &earlier.outbound_denied),
            dependency_calls: diff(&self.dependency_calls, &earlier.dependency_calls),
        }
    }
}

/// The live counters.
#[derive(Default)]
pub struct Stats {
    data: Mutex<AppStats>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(v) => *v += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

impl Stats {
    pub fn snapshot(&self) -> AppStats {
        lock(&self.data).clone()
    }

    pub fn reset(&self) {
        *lock(&self.data) = AppStats::default();
    }

    pub fn record_request(&self, component: &str) {
        bump(&mut lock(&self.data).requests, component);
    }

    pub fn record_instantiation(&self, component: &str) {
        bump(&mut lock(&self.data).instantiations, component);
    }

    pub fn record_outbound(&self, host: &str) {
        bump(&mut lock(&self.data).outbound, host);
    }

    pub fn record_denied(&self, host: &str) {
        bump(&mut lock(&self.data).outbound_denied, host);
    }

    pub fn record_dependency_call(&self, function: &str) {
        bump(&mut lock(&self.data).dependency_calls, function);
    }
}
