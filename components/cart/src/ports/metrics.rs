//! Metrics shared by all instances, kept in [`SHARDS`] small documents `metrics:shard:{i}`
//! (each a JSON map from Prometheus series, labels included, to a count). Updates are
//! buffered during the request and flushed after the response is sent, so counting never
//! delays a shopper. A flush merges the request's counts into one shard by compare-and-swap:
//! one store write for however many series the request touched (they used to be one
//! `increment` each, and on Spin's default store every increment is a disk transaction). The
//! shards only spread concurrent flushes apart; a scrape adds them up.
//!
//! Spin gives every request a fresh instance, so counts must leave the instance through the
//! store, and on Spin's default store every write is a disk transaction that costs more than
//! the rest of a cart read. So counts are *sampled*: each request's counts are flushed with
//! probability 1/N (`metrics_sample_every`, N = 1 counts every request), multiplied by N. That
//! is the Horvitz–Thompson estimator: every stored counter stays an unbiased estimate of the
//! true count, with a relative error of about 1/sqrt(count/N). The outbox series (events
//! committed and acknowledged, which the pending-events gauge subtracts) are sampled per event
//! instead (see `add_for_event`), so their difference stays exact at zero.
//!
//! Which series exist is fixed by `metric_registry`: `flush` writes only registered series and
//! `/metrics` reads exactly the shard documents, so a scrape never scans the store and costs
//! the same whatever the store holds.

use crate::ports::bindings::uncounted_documents::{self as documents, SwapError};
use crate::runtime::metric_registry::{self as registry, Unit};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How many shard documents the counts are spread over.
pub const SHARDS: u64 = 16;
/// Compare-and-swap attempts of one flush (each on another shard) before its counts are
/// dropped (logged): enough that only a store failing for good loses counts.
const FLUSH_ATTEMPTS: u32 = 32;

fn shard_key(shard: u64) -> String {
    format!("metrics:shard:{shard}")
}

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

/// Adds `delta` to a series (buffered until `flush`; sampled, unless the registry marks it an
/// incident).
pub fn add(series: &str, delta: i64) {
    if registry::is_incident(series) {
        buffer(&EXACT, series, delta);
    } else {
        buffer(&PENDING, series, delta);
    }
}

/// Adds `amount` to an outbox series on behalf of one event. The outbox series are subtracted
/// from each other (pending = committed - acknowledged), so they are sampled per *event*, not
/// per request: an event is in the sample when a hash of its id falls in 1/N, on every series
/// and in every instance. Committed and acknowledged then count the same sampled events, so the
/// pending estimate is exactly 0 whenever nothing is pending, and N times the sampled pending
/// events otherwise; a request writes these series only when one of its events is sampled.
pub fn add_for_event(series: &str, event_id: &str, amount: i64) {
    let every = sample_every();
    if event_in_sample(event_id, every) {
        buffer(
            &EXACT,
            series,
            amount.saturating_mul(i64::from(every.max(1))),
        );
    }
}

/// Whether an event is in the per-event sample of 1 in `every` (FNV-1a of its id, so the same
/// answer in every instance and on every series).
fn event_in_sample(event_id: &str, every: u32) -> bool {
    if every <= 1 {
        return true;
    }
    let hash = event_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % u64::from(every) == 0
}

/// `metrics_sample_every` (1 = count every request).
fn sample_every() -> u32 {
    crate::ports::settings::var("metrics_sample_every")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

pub fn inc(series: &str) {
    add(series, 1);
}

/// Records one operation's duration and its response status. Only the one bucket the duration
/// falls in is counted (plus sum and count): 4 counter updates per request.
pub fn observe_operation(operation: &str, status: u16, duration_us: u64) {
    observe(
        &registry::OPERATION_DURATION,
        operation,
        duration_us.div_ceil(1000),
    );
    inc(&registry::responses(
        operation,
        registry::status_label(status),
    ));
}

/// Records one request's wait on a dependency in its histogram.
pub fn observe_dependency(dependency: &str, duration_us: u64) {
    observe(
        &registry::DEPENDENCY_DURATION,
        dependency,
        duration_us.div_ceil(1000),
    );
}

/// Counts one observation of `amount` (in the histogram's stored unit) for the label `value`
/// (`""` for a family without a label): its one bucket, the sum and the count (`render` makes
/// the buckets cumulative). Sampled with the request.
pub fn observe(h: &registry::HistogramDef, value: &str, amount: u64) {
    inc(&h.raw_bucket(value, &h.bucket_of(amount)));
    add(&h.sum(value), i64::try_from(amount).unwrap_or(i64::MAX));
    inc(&h.count(value));
}

/// `observe` for one event, sampled per event like the outbox counters (see `add_for_event`).
pub fn observe_for_event(h: &registry::HistogramDef, event_id: &str, amount: u64) {
    add_for_event(&h.raw_bucket("", &h.bucket_of(amount)), event_id, 1);
    add_for_event(
        &h.sum(""),
        event_id,
        i64::try_from(amount).unwrap_or(i64::MAX),
    );
    add_for_event(&h.count(""), event_id, 1);
}

/// Moves this request's store writes into `cart_store_writes_total{operation}` (sampled with
/// the request); called once, after the after-response work, before `flush`.
pub fn observe_store_writes(operation: &str) {
    let writes = crate::runtime::store_writes::take();
    add(&registry::store_writes(operation), writes);
}

/// How much one request's sampled counts stand for: `Some(n)` when they were sampled in with
/// probability 1/n, `None` when sampled out.
fn sample_weight(sample_every: u32, draw: f64) -> Option<i64> {
    if sample_every <= 1 {
        return Some(1);
    }
    (draw * f64::from(sample_every) < 1.0).then_some(i64::from(sample_every))
}

/// Keeps registered series; an unregistered one (a name added without registering it) is
/// dropped with a warning rather than written where no scrape would ever read it.
fn registered(series: String) -> Option<String> {
    if registry::is_registered(&series) {
        return Some(series);
    }
    eprintln!(
        "{{\"level\":\"warn\",\"msg\":\"unregistered metric series dropped (add it to metric_registry)\",\"series\":{}}}",
        serde_json::Value::String(series)
    );
    None
}

/// Writes the buffered updates: the exact ones always, the sampled ones one time in N,
/// weighted. Failures lose counts, never requests.
pub fn flush() {
    let sampled = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let exact = EXACT.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let mut deltas: BTreeMap<String, i64> = exact
        .into_iter()
        .filter_map(|(series, delta)| Some((registered(series)?, delta)))
        .collect();
    if !sampled.is_empty() {
        if let Some(weight) = sample_weight(sample_every(), crate::runtime::clock::random_unit()) {
            for (series, delta) in sampled {
                if let Some(series) = registered(series) {
                    *deltas.entry(series).or_insert(0) += delta.saturating_mul(weight);
                }
            }
        }
    }
    deltas.retain(|_, delta| *delta != 0);
    if !deltas.is_empty() {
        merge_into_a_shard(&deltas);
    }
}

/// Adds `deltas` to one shard by compare-and-swap, trying another shard after a conflict.
fn merge_into_a_shard(deltas: &BTreeMap<String, i64>) {
    let first = crate::runtime::clock::random_u64() % SHARDS;
    for attempt in 0..FLUSH_ATTEMPTS {
        let key = shard_key((first + u64::from(attempt)) % SHARDS);
        let (version, mut counts) = match read_shard(&key) {
            Ok(shard) => shard,
            Err(_) => continue,
        };
        for (series, delta) in deltas {
            let count = counts.entry(series.clone()).or_insert(0);
            *count = count.saturating_add(*delta);
        }
        let Ok(body) = serde_json::to_vec(&counts) else {
            return;
        };
        match documents::compare_and_swap(&key, version, &body) {
            Ok(_) => return,
            Err(SwapError::Conflict(_)) => {
                crate::runtime::clock::sleep_ms(cart_domain::backoff::backoff_delay_ms(
                    attempt.min(4),
                    1,
                    20,
                    crate::runtime::clock::random_unit(),
                ));
            }
            Err(SwapError::Store(_)) => {}
        }
    }
    eprintln!(
        "{{\"level\":\"warn\",\"msg\":\"metric counts dropped: no shard could be updated\",\"series\":{}}}",
        deltas.len()
    );
}

/// A shard's version (0 when never written) and counts.
fn read_shard(key: &str) -> Result<(u64, BTreeMap<String, i64>), String> {
    match documents::read_head(key).map_err(|e| format!("{e:?}"))? {
        None => Ok((0, BTreeMap::new())),
        Some(doc) => {
            let counts = serde_json::from_slice(&doc.body)
                .map_err(|e| format!("shard {key} unreadable: {e}"))?;
            Ok((doc.version, counts))
        }
    }
}

/// The stored counters of one scrape, read key by key from the registry.
pub struct Scrape {
    values: BTreeMap<String, i64>,
}

impl Scrape {
    /// Reads the shard documents and adds them up, keeping only registered series: exactly
    /// [`SHARDS`] reads, whatever else the store holds.
    pub fn read() -> Result<Scrape, String> {
        let mut values: BTreeMap<String, i64> = BTreeMap::new();
        for shard in 0..SHARDS {
            let (_, counts) = read_shard(&shard_key(shard))?;
            for (series, count) in counts {
                if registry::is_registered(&series) {
                    let total = values.entry(series).or_insert(0);
                    *total = total.saturating_add(count);
                }
            }
        }
        Ok(Scrape { values })
    }

    /// A stored series' value (0 when never written).
    pub fn value(&self, series: &str) -> i64 {
        self.values.get(series).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition (version 0.0.4): every family with `# HELP` and `# TYPE`,
    /// its series adjacent, then the live gauges (`(name, help, value)`). Every counter of the
    /// fixed list is shown, 0 until counted, so a rate over it exists from the first scrape
    /// (an absent series would hide the first increments from `rate`); histograms and the
    /// per-operation counters are shown once they have counts.
    pub fn render(&self, gauges: &[(&str, &str, i64)]) -> String {
        let mut out = String::new();
        let mut family = "";
        for counter in registry::COUNTERS {
            let value = self.value(counter.stored);
            if counter.family != family {
                family = counter.family;
                header(&mut out, family, counter.help, "counter");
            }
            let _ = writeln!(
                out,
                "{}{} {}",
                counter.family,
                counter.labels,
                shown(counter.unit, value)
            );
        }
        for h in registry::HISTOGRAMS {
            self.render_histogram(&mut out, h);
        }
        self.render_per_operation(&mut out);
        for (name, help, value) in gauges {
            header(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }

    fn render_per_operation(&self, out: &mut String) {
        let statuses = registry::OPERATIONS.iter().flat_map(|op| {
            registry::STATUSES
                .iter()
                .copied()
                .chain(["other"])
                .map(move |status| registry::responses(op, status))
        });
        self.render_counted(out, registry::RESPONSES, registry::RESPONSES_HELP, statuses);
        let writes = registry::OPERATIONS
            .iter()
            .map(|op| registry::store_writes(op));
        self.render_counted(
            out,
            registry::STORE_WRITES,
            registry::STORE_WRITES_HELP,
            writes,
        );
    }

    /// A counter family of per-operation series, showing only the series counted so far (and
    /// nothing, not even the header, before the first).
    fn render_counted(
        &self,
        out: &mut String,
        family: &str,
        help: &str,
        candidates: impl Iterator<Item = String>,
    ) {
        let counted: Vec<String> = candidates
            .filter(|series| self.values.contains_key(series))
            .collect();
        if counted.is_empty() {
            return;
        }
        header(out, family, help, "counter");
        for series in &counted {
            let _ = writeln!(out, "{series} {}", self.value(series));
        }
    }

    /// Renders one histogram family (buckets made cumulative, the count equal to the `+Inf`
    /// bucket, bounds and sum in the family's base unit) for the label values it has counts
    /// for.
    fn render_histogram(&self, out: &mut String, h: &registry::HistogramDef) {
        let counted: Vec<&'static str> = h
            .values
            .iter()
            .copied()
            .filter(|v| self.values.contains_key(&h.count(v)))
            .collect();
        if counted.is_empty() {
            return;
        }
        let family = h.family;
        header(out, family, h.help, "histogram");
        for value in &counted {
            let label = if h.label.is_empty() {
                String::new()
            } else {
                format!("{}=\"{value}\"", h.label)
            };
            let sep = if label.is_empty() { "" } else { "," };
            let mut running = 0;
            for i in 0..=h.buckets.len() {
                running += self.value(&h.raw_bucket(value, &registry::stored_le(h.buckets, i)));
                let bound = h.buckets.get(i).map_or_else(
                    || "+Inf".to_owned(),
                    |b| shown(h.unit, i64::try_from(*b).unwrap_or(i64::MAX)),
                );
                let _ = writeln!(
                    out,
                    "{family}_bucket{{{label}{sep}le=\"{bound}\"}} {running}"
                );
            }
            let braced = if label.is_empty() {
                String::new()
            } else {
                format!("{{{label}}}")
            };
            let sum = shown(h.unit, self.value(&h.sum(value)));
            let _ = writeln!(out, "{family}_sum{braced} {sum}");
            let _ = writeln!(out, "{family}_count{braced} {running}");
        }
    }
}

fn header(out: &mut String, family: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {family} {help}");
    let _ = writeln!(out, "# TYPE {family} {kind}");
}

/// An integer count of 10^-`digits` seconds as seconds, without float noise (`1500` ms →
/// `1.5`, `250` µs → `0.00025`).
fn scaled_seconds(value: i64, digits: u32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let value = value.unsigned_abs();
    let scale = 10u64.pow(digits);
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{frac:0width$}", width = digits as usize);
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Milliseconds as seconds (`1500` → `1.5`).
fn seconds(ms: i64) -> String {
    scaled_seconds(ms, 3)
}

fn shown(unit: Unit, value: i64) -> String {
    match unit {
        Unit::Count => value.to_string(),
        Unit::MillisAsSeconds => seconds(value),
        Unit::MicrosAsSeconds => scaled_seconds(value, 6),
    }
}

#[cfg(test)]
mod tests {
    use super::{event_in_sample, sample_weight, seconds};

    #[test]
    fn events_are_sampled_by_id_about_one_in_n_and_all_when_unsampled() {
        let ids: Vec<String> = (0..16_000).map(|i| format!("cart:s:u#{i}")).collect();
        assert!(ids.iter().all(|id| event_in_sample(id, 1)));
        let kept = ids.iter().filter(|id| event_in_sample(id, 16)).count();
        assert!(
            (800..1200).contains(&kept),
            "{kept} of 16000 kept at 1 in 16"
        );
    }

    #[test]
    fn milliseconds_are_shown_as_exact_seconds() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(10), "0.01");
        assert_eq!(seconds(250), "0.25");
        assert_eq!(seconds(1500), "1.5");
        assert_eq!(seconds(5000), "5");
        assert_eq!(seconds(-20), "-0.02");
        assert_eq!(super::scaled_seconds(250, 6), "0.00025");
        assert_eq!(super::scaled_seconds(5_000_000, 6), "5");
        assert_eq!(super::scaled_seconds(200_000, 6), "0.2");
    }

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
