//! Metrics shared by all instances: each series is a key-value counter `metrics:{series}`
//! (the key is the Prometheus series with its labels). Updates are buffered during the request
//! and flushed after the response is sent, so counting never delays a shopper.

use crate::bindings::kv;
use std::cell::RefCell;
use std::collections::BTreeMap;

const PREFIX: &str = "metrics:";

/// Upper bounds (ms) of the `cart_operation_duration_ms` histogram buckets.
const DURATION_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

thread_local! {
    static PENDING: RefCell<BTreeMap<String, i64>> = const { RefCell::new(BTreeMap::new()) };
}

/// Adds `delta` to a series (buffered until `flush`).
pub fn add(series: &str, delta: i64) {
    if delta != 0 {
        PENDING.with(|p| *p.borrow_mut().entry(series.to_owned()).or_insert(0) += delta);
    }
}

pub fn inc(series: &str) {
    add(series, 1);
}

/// Records one operation's duration in the histogram.
pub fn observe_operation(operation: &str, status: u16, duration_us: u64) {
    let ms = duration_us.div_ceil(1000);
    for le in DURATION_BUCKETS_MS {
        if ms <= le {
            inc(&format!(
                "cart_operation_duration_ms_bucket{{operation=\"{operation}\",le=\"{le}\"}}"
            ));
        }
    }
    inc(&format!(
        "cart_operation_duration_ms_bucket{{operation=\"{operation}\",le=\"+Inf\"}}"
    ));
    add(
        &format!("cart_operation_duration_ms_sum{{operation=\"{operation}\"}}"),
        ms as i64,
    );
    inc(&format!(
        "cart_operation_duration_ms_count{{operation=\"{operation}\"}}"
    ));
    inc(&format!(
        "cart_http_responses_total{{operation=\"{operation}\",status=\"{status}\"}}"
    ));
}

/// Writes the buffered updates. Failures lose counts, never requests.
pub fn flush() {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if pending.is_empty() {
        return;
    }
    let deltas: Vec<(String, i64)> = pending
        .into_iter()
        .map(|(series, delta)| (format!("{PREFIX}{series}"), delta))
        .collect();
    let _ = kv::increment_many(&deltas);
}

fn decode(bytes: &[u8]) -> Option<i64> {
    // `increment` stores an 8-byte little-endian i64.
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

fn metric_type(name: &str) -> &'static str {
    if name.ends_with("_total") {
        "counter"
    } else if name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count") {
        "histogram"
    } else {
        "gauge"
    }
}

fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The Prometheus text exposition of every stored series, plus live gauges.
pub fn render(extra_gauges: &[(&str, i64)]) -> Result<String, String> {
    let keys = kv::list_keys(PREFIX, 10_000).map_err(|e| format!("{e:?}"))?;
    let mut series: BTreeMap<String, i64> = BTreeMap::new();
    for key in keys {
        if let Ok(Some(bytes)) = kv::get(&key) {
            if let (Some(name), Some(value)) = (key.strip_prefix(PREFIX), decode(&bytes)) {
                series.insert(name.to_owned(), value);
            }
        }
    }
    for (name, value) in extra_gauges {
        series.insert((*name).to_owned(), *value);
    }
    let mut out = String::new();
    let mut last_family = String::new();
    for (name, value) in &series {
        let bare = name.split('{').next().unwrap_or(name);
        let fam = family(bare);
        if fam != last_family {
            out.push_str(&format!("# TYPE {fam} {}\n", metric_type(bare)));
            last_family = fam.to_owned();
        }
        out.push_str(&format!("{name} {value}\n"));
    }
    Ok(out)
}
