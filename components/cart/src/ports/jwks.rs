//! The identity provider's signing keys, published at `jwt_jwks_url`.
//!
//! * Cached in key-value under [`CACHE_KEY`] (`{url, freshUntilMs, keys}`) for
//!   `jwt_jwks_ttl_seconds` (default [`DEFAULT_TTL_SECONDS`]). A cached set of another URL
//!   counts as absent, so changing the variable takes effect at once.
//! * Fetched through `identity-keys.fetch-key-set` when the cache is absent or stale, and once
//!   more when a token names a `kid` the cached set does not have (the provider rotated keys).
//! * Every fetch first takes the lease [`crate::ports::lock_keys::jwks_refresh`] for
//!   [`REFRESH_INTERVAL_MS`] and never gives it back: the lease *is* the budget of one fetch a
//!   minute per store, whatever asks for it. Tokens with made-up `kid`s therefore cost the
//!   provider at most one request a minute, and requests that find the cache stale together do
//!   not stampede: one holds the lease and fetches, the others go on with the cached set.
//! * Only a body that is a JWKS with at least one usable key is stored, so a broken answer
//!   never replaces working keys; a failed fetch stores nothing.
//! * A stale set keeps verifying while the refresh is throttled or failing: an identity
//!   provider outage must not sign every shopper out. With no set at all (a cold store and the
//!   provider down) tokens that need it get 503 `identity-keys-unavailable` with `Retry-After`:
//!   the token may be perfectly valid, so a 401 would wrongly tell the client to sign in again.

use crate::ports::bindings::identity_keys::{self, FetchError};
use crate::ports::bindings::{kv, locks};
use crate::runtime::clock::now_ms;
use cart_auth::{Verifier, VerifierConfig};
use serde::{Deserialize, Serialize};

/// The one key-value record of the cache (see docs/keys.md).
pub const CACHE_KEY: &str = "jwks:keyset";
/// At most one fetch per this many milliseconds per store.
pub const REFRESH_INTERVAL_MS: u32 = 60_000;
/// How long a fetched set is fresh when `jwt_jwks_ttl_seconds` is unset.
pub const DEFAULT_TTL_SECONDS: u64 = 600;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cached {
    url: String,
    fresh_until_ms: u64,
    /// The JWKS text as fetched.
    keys: String,
}

/// The key set a request verifies with.
pub struct KeySet {
    /// The JWKS text.
    pub keys: String,
    /// Fetched by this request: a second fetch for an unknown `kid` would be pointless.
    fetched_now: bool,
}

enum Fetch {
    Fetched(String),
    /// Another request fetched (or tried to) within the last minute.
    Throttled,
    Failed(String),
}

fn ttl_ms() -> u64 {
    crate::ports::settings::var("jwt_jwks_ttl_seconds")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .unwrap_or(DEFAULT_TTL_SECONDS)
        .saturating_mul(1000)
}

fn read(url: &str) -> Option<Cached> {
    kv::get(CACHE_KEY)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<Cached>(&bytes).ok())
        .filter(|cached| cached.url == url)
}

fn warn(message: &str) {
    let line = serde_json::json!({"level": "warn", "msg": message});
    eprintln!("{line}");
}

fn fetch(url: &str) -> Fetch {
    match locks::try_acquire(
        &crate::ports::lock_keys::jwks_refresh(),
        REFRESH_INTERVAL_MS,
    ) {
        // Deliberately never released: it expires after the minute it stands for.
        Ok(Some(_lease)) => {}
        Ok(None) => return Fetch::Throttled,
        // Without the lease there is no rate limit, so do not fetch.
        Err(e) => return Fetch::Failed(format!("the refresh lease is unavailable: {e:?}")),
    }
    let body = match identity_keys::fetch_key_set(url) {
        Ok(body) => body,
        Err(FetchError::Unavailable(why) | FetchError::Rejected(why)) => return Fetch::Failed(why),
    };
    let Ok(keys) = String::from_utf8(body) else {
        return Fetch::Failed("the key set is not UTF-8 text".into());
    };
    let check = Verifier::new(&VerifierConfig {
        key_set: Some(keys.clone()),
        ..VerifierConfig::default()
    });
    if let Err(e) = check {
        return Fetch::Failed(format!("the key set is not usable: {e}"));
    }
    let cached = Cached {
        url: url.to_owned(),
        fresh_until_ms: now_ms().saturating_add(ttl_ms()),
        keys,
    };
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        // A failed write only costs the next request a fetch (after the minute).
        let _ = kv::set(CACHE_KEY, &bytes);
    }
    Fetch::Fetched(cached.keys)
}

/// Why there is no key set to verify with.
#[derive(Debug, Clone)]
pub enum KeysUnavailable {
    /// The fetch failed and nothing is cached; why.
    FetchFailed(String),
    /// Another request is fetching (its lease stands) and nothing is cached.
    Fetching,
}

impl KeysUnavailable {
    fn from_fetch(fetch: Fetch) -> Self {
        match fetch {
            Fetch::Failed(why) => KeysUnavailable::FetchFailed(why),
            _ => KeysUnavailable::Fetching,
        }
    }

    /// When a retry can succeed: after the refresh interval when the fetch failed, shortly
    /// when another request is fetching.
    pub fn retry_after_seconds(&self) -> u64 {
        match self {
            KeysUnavailable::FetchFailed(_) => u64::from(REFRESH_INTERVAL_MS / 1000),
            KeysUnavailable::Fetching => 5,
        }
    }
}

impl std::fmt::Display for KeysUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeysUnavailable::FetchFailed(why) => write!(
                f,
                "the identity provider's key set (jwt_jwks_url) could not be fetched: {why}"
            ),
            KeysUnavailable::Fetching => f.write_str(
                "the identity provider's key set (jwt_jwks_url) is being fetched; retry shortly",
            ),
        }
    }
}

impl std::error::Error for KeysUnavailable {}

/// The key set to verify with: the cached one while fresh, else a fresh fetch, else the stale
/// one; 503 when there is none.
pub fn current(url: &str) -> Result<KeySet, KeysUnavailable> {
    let cached = read(url);
    if let Some(fresh) = cached.as_ref().filter(|c| c.fresh_until_ms > now_ms()) {
        return Ok(KeySet {
            keys: fresh.keys.clone(),
            fetched_now: false,
        });
    }
    match fetch(url) {
        Fetch::Fetched(keys) => Ok(KeySet {
            keys,
            fetched_now: true,
        }),
        other => {
            if let Fetch::Failed(why) = &other {
                warn(&format!("jwt_jwks_url refresh failed: {why}"));
            }
            match cached {
                Some(stale) => Ok(KeySet {
                    keys: stale.keys,
                    fetched_now: false,
                }),
                None => Err(KeysUnavailable::from_fetch(other)),
            }
        }
    }
}

/// After a token named a `kid` that `set` lacks: a fresh set when this request may fetch one
/// (it has not fetched yet and no other fetch happened within the minute), else none.
pub fn refresh_for_unknown_kid(url: &str, set: &KeySet) -> Option<String> {
    if set.fetched_now {
        return None;
    }
    match fetch(url) {
        Fetch::Fetched(keys) => Some(keys),
        Fetch::Failed(why) => {
            warn(&format!("jwt_jwks_url refresh failed: {why}"));
            None
        }
        Fetch::Throttled => None,
    }
}
