//! Metrics shared by all instances: each series is a key-value counter `metrics:{series}`
//! (the key is the Prometheus series with its labels). Updates are buffered during the request
//! and flushed after the response is sent, so counting never delays a shopper.
//!
//! Spin gives every request a fresh instance, so counts must leave the instance through the
//! store, and on Spin's default store every write is a disk transaction that costs more than
//! the rest of a cart read. So counts are *sampled*: each request's counts are flushed with
//! probability 1/N (`metrics_sample_every`, N = 1 counts every request), multiplied by N. That
//! is the Horvitz–Thompson estimator: every stored counter stays an unbiased estimate of the
//! true count, with a relative error of about 1/sqrt(count/N). The few *exact* series (outbox
//! events committed and acknowledged, which the pending-events gauge subtracts) are never
//! sampled; only requests that change a cart record them, and those write anyway.

use crate::bindings::kv;
use std::cell::RefCell;
use std::collections::BTreeMap;

const PREFIX: &str = "metrics:";

/// Upper bounds (ms) of the `cart_operation_duration_ms` histogram buckets.
const DURATION_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

thread_local! {
    /// Sampled series of this request.
    static PENDING: RefCell<BTreeMap<String, i64>> = const { RefCell::new(BTreeMap::new()) };
    /// Series of this request that are always written as they are.
    static EXACT: RefCell<BTreeMap<String, i64>> = const { RefCell::new(BTreeMap::new()) };
}

fn buffer(
    cell: &'static std::thread::LocalKey<RefCell<BTreeMap<String, i64>>>,
    series: &str,
    delta: i64,
) {
    if delta != 0 {
        cell.with(|p| *p.borrow_mut().entry(series.to_owned()).or_insert(0) += delta);
    }
}

/// Adds `delta` to a series (buffered until `flush`, sampled).
pub fn add(series: &str, delta: i64) {
    buffer(&PENDING, series, delta);
}

/// Adds `delta` to a series that is read back exactly: never sampled.
pub fn add_exact(series: &str, delta: i64) {
    buffer(&EXACT, series, delta);
}

pub fn inc(series: &str) {
    add(series, 1);
}

/// Records one operation's duration in the histogram. Only the one bucket the duration falls
/// in is counted (plus sum and count); `render` makes the buckets cumulative, as Prometheus
/// expects. That is 4 counter updates per request instead of one per bucket.
pub fn observe_operation(operation: &str, status: u16, duration_us: u64) {
    let ms = duration_us.div_ceil(1000);
    let le = DURATION_BUCKETS_MS
        .iter()
        .find(|le| ms <= **le)
        .map_or_else(|| "+Inf".to_owned(), |le| le.to_string());
    inc(&format!(
        "{RAW_BUCKET}{{operation=\"{operation}\",le=\"{le}\"}}"
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

/// Stored name of the per-bucket (non-cumulative) duration counts.
const RAW_BUCKET: &str = "cart_operation_duration_ms_raw";

/// Turns per-bucket counts into Prometheus' cumulative `_bucket` series.
fn cumulative_buckets(series: &mut BTreeMap<String, i64>) {
    let raw: Vec<(String, i64)> = series
        .iter()
        .filter(|(k, _)| k.starts_with(RAW_BUCKET))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let mut per_operation: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (key, value) in raw {
        series.remove(&key);
        // key: cart_operation_duration_ms_raw{operation="x",le="5"}
        let Some((op, le)) = key
            .split_once("operation=\"")
            .and_then(|(_, rest)| rest.split_once("\",le=\""))
            .map(|(op, rest)| (op.to_owned(), rest.trim_end_matches("\"}").to_owned()))
        else {
            continue;
        };
        *per_operation.entry(op).or_default().entry(le).or_default() += value;
    }
    for (op, counts) in per_operation {
        let mut running = 0;
        let bounds = DURATION_BUCKETS_MS
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("+Inf".to_owned()));
        for le in bounds {
            running += counts.get(&le).copied().unwrap_or(0);
            series.insert(
                format!("cart_operation_duration_ms_bucket{{operation=\"{op}\",le=\"{le}\"}}"),
                running,
            );
        }
    }
}

/// How much one request's sampled counts stand for: `Some(n)` when they were sampled in with
/// probability 1/n, `None` when sampled out.
fn sample_weight(sample_every: u32, draw: f64) -> Option<i64> {
    if sample_every <= 1 {
        return Some(1);
    }
    (draw * f64::from(sample_every) < 1.0).then_some(i64::from(sample_every))
}

/// Writes the buffered updates: the exact ones always, the sampled ones one time in N,
/// weighted. Failures lose counts, never requests.
pub fn flush() {
    let sampled = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let exact = EXACT.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let mut deltas: Vec<(String, i64)> = exact
        .into_iter()
        .map(|(series, delta)| (format!("{PREFIX}{series}"), delta))
        .collect();
    if !sampled.is_empty() {
        let sample_every = crate::settings::var("metrics_sample_every")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1);
        if let Some(weight) = sample_weight(sample_every, crate::clock::random_unit()) {
            deltas.extend(sampled.into_iter().map(|(series, delta)| {
                (format!("{PREFIX}{series}"), delta.saturating_mul(weight))
            }));
        }
    }
    if !deltas.is_empty() {
        let _ = kv::increment_many(&deltas);
    }
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

/// Orders series by family and labels, with `le` compared as a number (`+Inf` last).
fn sort_key(name: &str) -> (String, u64) {
    let bare = name.split('{').next().unwrap_or(name);
    match name.split_once(",le=\"") {
        Some((labels, le)) => {
            let le = le.trim_end_matches("\"}");
            let bound = if le == "+Inf" {
                u64::MAX
            } else {
                le.parse().unwrap_or(u64::MAX)
            };
            (format!("{}{}", family(bare), &labels[bare.len()..]), bound)
        }
        None => (format!("{}{}", family(bare), &name[bare.len()..]), 0),
    }
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
    cumulative_buckets(&mut series);
    for (name, value) in extra_gauges {
        series.insert((*name).to_owned(), *value);
    }
    // Histogram buckets must come in increasing `le` order, which is not string order.
    let mut ordered: Vec<(&String, &i64)> = series.iter().collect();
    ordered.sort_by_key(|(name, _)| sort_key(name));
    let mut out = String::new();
    let mut last_family = String::new();
    for (name, value) in ordered {
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

#[cfg(test)]
mod tests {
    use super::sample_weight;

    #[test]
    fn unsampled_deployments_count_every_request_once() {
        for draw in [0.0, 0.5, 0.999] {
            assert_eq!(sample_weight(1, draw), Some(1));
            assert_eq!(sample_weight(0, draw), Some(1));
        }
    }

    #[test]
    fn a_sampled_request_is_kept_one_time_in_n_and_stands_for_n() {
        assert_eq!(sample_weight(16, 0.0), Some(16));
        assert_eq!(sample_weight(16, 0.0624), Some(16));
        assert_eq!(sample_weight(16, 0.0626), None);
        assert_eq!(sample_weight(16, 0.99), None);
        // Over evenly spread draws the weighted total equals the number of requests.
        let n = 16_000;
        let total: i64 = (0..n)
            .filter_map(|i| sample_weight(16, f64::from(i) / f64::from(n)))
            .sum();
        assert_eq!(total, i64::from(n));
    }
}
