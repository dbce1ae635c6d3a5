//! Deployment settings read through the `config` capability (Spin variables on Spin).
//! Every value has a safe default, and a malformed value falls back to it rather than failing
//! requests: a typo in a variable must not take the cart down.

use crate::ports::bindings::config;
use cart_domain::Limits;
use std::cell::RefCell;
use std::collections::HashMap;

/// Every variable the cart reads, in groups that are needed together. A group is fetched in
/// one `config.get-many` call the first time one of its variables is needed, so a request reads
/// only the groups its route uses. On Spin every variable in a group is still its own host
/// call, and an expensive one: Spin's environment-variable provider runs each lookup in
/// `tokio::task::block_in_place`, which hands the worker thread's core to another thread (on
/// Spin 4.0.2 the first reads of a request cost ~24 µs each, later ones ~7 µs). So the groups
/// follow what a route needs rather than topics, counted from Spin's `spin_variables.get`
/// spans: `/healthz` reads 2 variables (was 7), a signed-in shopper's cart read 10 (was 13):
/// a request without a body never reads the body limit, and a read never reads the line limits.
const GROUPS: &[&[&str]] = &[
    // Every request, before it is routed: how many header bytes are accepted.
    &["max_header_bytes"],
    // Requests that carry a body, and line changes: the body limit and the line limits.
    &[
        "max_body_bytes",
        "max_lines_per_cart",
        "max_quantity_per_line",
    ],
    // Every cart operation: the demo identity switch and the id length (`Settings`).
    &["allow_insecure_user_header", "max_id_length"],
    // Every request, after the response: metrics sampling.
    &["metrics_sample_every"],
    // Carts that are read or written: abandonment and hold lifetimes (a read re-confirms
    // lapsed holds), for signed-in shoppers and for guests apart, since a read needs only the
    // pair of its caller's kind.
    &["abandon_after_days", "reservation_ttl_seconds"],
    &["guest_abandon_after_days", "guest_reservation_ttl_seconds"],
    // Whether identities are verified: read by every request that authenticates, since a
    // configured key turns the demo `X-User-Id` header off.
    &["jwt_hs256_secret", "jwt_public_key", "jwt_jwks_url"],
    // Bearer tokens and guest tokens.
    &[
        "jwt_issuer",
        "jwt_audience",
        "jwt_leeway_seconds",
        "jwt_jwks_ttl_seconds",
        "guest_token_secret",
        "guest_token_ttl_seconds",
    ],
    // Writes: idempotency and leases.
    &[
        "idempotency_key_required",
        "lock_url",
        "lock_ttl_ms",
        "lock_wait_ms",
        "reservation_policy",
        "checkout_hold_seconds",
    ],
    // Calls to the inventory: product cache and circuit breaker.
    &[
        "product_cache_ttl_ms",
        "breaker_window_ms",
        "breaker_min_volume",
        "breaker_error_percent",
        "breaker_open_ms",
    ],
    // Operator endpoints.
    &["admin_token"],
    // The outbox relay (after every write).
    &["events_topic"],
    // Scrapes.
    &["metrics_token"],
];

thread_local! {
    /// An instance serves one request, so this cache lives exactly as long as the request.
    /// `None` for a variable that was fetched and is unset.
    static VALUES: RefCell<HashMap<&'static str, Option<String>>> = RefCell::new(HashMap::new());
}

/// A variable's value (`None` when unset).
pub fn var(name: &str) -> Option<String> {
    VALUES.with(|cell| {
        let mut values = cell.borrow_mut();
        if let Some(value) = values.get(name) {
            return value.clone();
        }
        let Some(group) = GROUPS.iter().find(|g| g.contains(&name)) else {
            // Not in any group: ask for it on its own (and notice the omission in review).
            return config::get(name);
        };
        let names: Vec<String> = group.iter().map(|n| (*n).to_owned()).collect();
        for (n, v) in group.iter().copied().zip(config::get_many(&names)) {
            values.insert(n, v);
        }
        values.get(name).cloned().flatten()
    })
}

/// User ids of guest (anonymous) carts start with this.
pub const GUEST_PREFIX: &str = "guest-";

/// How many bytes of request headers are accepted: every request needs this, before it is
/// routed.
pub fn max_header_bytes() -> usize {
    number("max_header_bytes", Limits::default().max_header_bytes)
}

/// How many bytes of request body are accepted: read only when a body arrives, so a request
/// without one (every GET) does not pay for the variable.
pub fn max_body_bytes() -> usize {
    number("max_body_bytes", Limits::default().max_body_bytes)
}

/// Settings that every cart operation needs (`/healthz` and `/metrics` do without). The body
/// and line limits are read when an operation first asks for them (`limits`): a cart read
/// does not need them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Local demo mode: trust `X-User-Id`. Off unless a variable turns it on.
    pub allow_insecure_user_header: bool,
    /// The longest store, user or product id accepted.
    pub max_id_len: usize,
}

/// Settings only writes need.
#[derive(Debug, Clone, Copy)]
pub struct WriteSettings {
    /// POST without `Idempotency-Key` is a 400 when set.
    pub idempotency_key_required: bool,
    pub lock_ttl_ms: u32,
    pub lock_wait_ms: u64,
    /// Whether changes to one line are serialized by a line lease (`lock_url` not `none`).
    /// Without leases (optimistic mode) fenced reservations and the compare-and-swap alone keep
    /// holds and lines together, at the price of more retries on a contended line.
    pub line_leases: bool,
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> T {
    var(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn flag(name: &str) -> bool {
    var(name)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// The local demo mode (`allow_insecure_user_header`): `X-User-Id` may be trusted (unless a JWT
/// key is configured) and the shipped demo guest-token secret is honoured.
pub fn demo_identity_mode() -> bool {
    flag("allow_insecure_user_header")
}

impl Settings {
    pub fn load() -> Self {
        let defaults = Limits::default();
        Settings {
            allow_insecure_user_header: demo_identity_mode(),
            // Never above the default: reservation ids embed two ids and must fit inventory.
            max_id_len: number("max_id_length", defaults.max_id_len).clamp(1, defaults.max_id_len),
        }
    }

    /// Every request and line limit (the body and line limits are read on the first call of
    /// a request; the values are cached for the rest of it).
    pub fn limits(&self) -> Limits {
        let defaults = Limits::default();
        Limits {
            max_lines_per_cart: number("max_lines_per_cart", defaults.max_lines_per_cart),
            max_quantity_per_line: number("max_quantity_per_line", defaults.max_quantity_per_line),
            max_body_bytes: max_body_bytes(),
            max_header_bytes: max_header_bytes(),
            max_id_len: self.max_id_len,
        }
    }
}

/// How long a hold of this shopper's cart lasts without activity (guests' holds are shorter).
/// Only the caller's kind is read: a signed-in shopper's request does not read the guests'
/// setting.
pub fn reservation_ttl_ms(user: &cart_domain::UserId) -> u64 {
    let (name, default_seconds) = if user.as_str().starts_with(GUEST_PREFIX) {
        ("guest_reservation_ttl_seconds", 300)
    } else {
        ("reservation_ttl_seconds", 900)
    };
    number::<u64>(name, default_seconds).saturating_mul(1000)
}

/// How long this shopper's cart may stay unchanged before it is emptied as abandoned (guests'
/// carts sooner); read like [`reservation_ttl_ms`].
pub fn abandon_after_ms(user: &cart_domain::UserId) -> u64 {
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    let (name, default_days) = if user.as_str().starts_with(GUEST_PREFIX) {
        ("guest_abandon_after_days", 30)
    } else {
        ("abandon_after_days", 90)
    };
    number::<u64>(name, default_days).saturating_mul(DAY_MS)
}

impl WriteSettings {
    pub fn load() -> Self {
        WriteSettings {
            idempotency_key_required: flag("idempotency_key_required"),
            lock_ttl_ms: number("lock_ttl_ms", 30_000),
            lock_wait_ms: number("lock_wait_ms", 5_000),
            line_leases: !var("lock_url").is_some_and(|v| v.trim().eq_ignore_ascii_case("none")),
        }
    }
}
