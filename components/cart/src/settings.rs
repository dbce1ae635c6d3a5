//! Deployment settings read through the `config` capability (Spin variables on Spin).
//! Every value has a safe default, and a malformed value falls back to it rather than failing
//! requests: a typo in a variable must not take the cart down.

use crate::bindings::config;
use cart_domain::Limits;
use std::cell::RefCell;
use std::collections::HashMap;

/// Every variable the cart reads. They are fetched together in one `config.get-many` call the
/// first time any is needed (one crossing to the adapter instead of one per variable).
const VARIABLES: &[&str] = &[
    "allow_insecure_user_header",
    "max_lines_per_cart",
    "max_quantity_per_line",
    "max_body_bytes",
    "max_header_bytes",
    "max_id_length",
    "idempotency_key_required",
    "reservation_ttl_seconds",
    "guest_reservation_ttl_seconds",
    "lock_ttl_ms",
    "lock_wait_ms",
    "events_topic",
    "admin_token",
    "product_cache_ttl_ms",
    "reservation_policy",
    "checkout_hold_seconds",
    "breaker_window_ms",
    "breaker_min_volume",
    "breaker_error_percent",
    "breaker_open_ms",
    "abandon_after_days",
    "guest_abandon_after_days",
    "jwt_hs256_secret",
    "jwt_public_key",
    "jwt_issuer",
    "jwt_audience",
    "jwt_leeway_seconds",
    "guest_token_secret",
    "guest_token_ttl_seconds",
];

thread_local! {
    /// An instance serves one request, so this cache lives exactly as long as the request.
    static VALUES: RefCell<Option<HashMap<&'static str, String>>> = const { RefCell::new(None) };
}

/// A variable's value (`None` when unset).
pub fn var(name: &str) -> Option<String> {
    VALUES.with(|cell| {
        let mut cell = cell.borrow_mut();
        let values = cell.get_or_insert_with(|| {
            let names: Vec<String> = VARIABLES.iter().map(|n| (*n).to_owned()).collect();
            VARIABLES
                .iter()
                .copied()
                .zip(config::get_many(&names))
                .filter_map(|(n, v)| v.map(|v| (n, v)))
                .collect()
        });
        match values.get(name) {
            Some(v) => Some(v.clone()),
            // Not in the list: ask for it on its own (and notice the omission in review).
            None if !VARIABLES.contains(&name) => config::get(name),
            None => None,
        }
    })
}

/// User ids of guest (anonymous) carts start with this.
pub const GUEST_PREFIX: &str = "guest-";

/// Settings that every request needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Local demo mode: trust `X-User-Id`. Off unless a variable turns it on.
    pub allow_insecure_user_header: bool,
    pub limits: Limits,
}

/// Settings only writes need.
#[derive(Debug, Clone, Copy)]
pub struct WriteSettings {
    /// POST without `Idempotency-Key` is a 400 when set.
    pub idempotency_key_required: bool,
    pub reservation_ttl_ms: u64,
    /// Guest (anonymous) carts hold stock for a shorter time.
    pub guest_reservation_ttl_ms: u64,
    pub lock_ttl_ms: u32,
    pub lock_wait_ms: u64,
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

impl Settings {
    pub fn load() -> Self {
        let defaults = Limits::default();
        Settings {
            allow_insecure_user_header: flag("allow_insecure_user_header"),
            limits: Limits {
                max_lines_per_cart: number("max_lines_per_cart", defaults.max_lines_per_cart),
                max_quantity_per_line: number(
                    "max_quantity_per_line",
                    defaults.max_quantity_per_line,
                ),
                max_body_bytes: number("max_body_bytes", defaults.max_body_bytes),
                max_header_bytes: number("max_header_bytes", defaults.max_header_bytes),
                // Never above the default: reservation ids embed two ids and must fit inventory.
                max_id_len: number("max_id_length", defaults.max_id_len)
                    .clamp(1, defaults.max_id_len),
            },
        }
    }
}

impl WriteSettings {
    /// The hold TTL for this shopper's cart.
    pub fn reservation_ttl_for(&self, user: &cart_domain::UserId) -> u64 {
        if user.as_str().starts_with(GUEST_PREFIX) {
            self.guest_reservation_ttl_ms
        } else {
            self.reservation_ttl_ms
        }
    }

    pub fn load() -> Self {
        WriteSettings {
            idempotency_key_required: flag("idempotency_key_required"),
            reservation_ttl_ms: number::<u64>("reservation_ttl_seconds", 900).saturating_mul(1000),
            guest_reservation_ttl_ms: number::<u64>("guest_reservation_ttl_seconds", 300)
                .saturating_mul(1000),
            lock_ttl_ms: number("lock_ttl_ms", 30_000),
            lock_wait_ms: number("lock_wait_ms", 5_000),
        }
    }
}
