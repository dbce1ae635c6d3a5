//! The key of every lease the cart takes, by lock family, in one place.
//!
//! All families share one lock namespace (one Redis keyspace, one `lock:` prefix in key-value),
//! so a key is `{family}:{part}:{part}…` with a prefix of its own per family and a fixed number
//! of parts. Ids never contain `:` (`cart_domain::ids`), so the first segment of a key names
//! its family and the segment count is fixed within it: no crafted store, user or product id
//! can make one family's key equal another's (a line `breaker-probe:inventory:x` would need a
//! store id `breaker-probe`, giving `line:breaker-probe:inventory:x`).
//!
//! The locks contract is unchanged: keys stay opaque strings to every backend.

use cart_domain::{StoreId, UserId};

/// A kind of lease; each has its own key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFamily {
    /// One cart line: `line:{store}:{user}:{product}`.
    Line,
    /// A write in flight under an `Idempotency-Key`: `idem:{user}:{hash}`.
    Idempotency,
    /// The inventory circuit breaker's half-open probe: `breaker-probe:inventory`.
    BreakerProbe,
    /// One product record's cache refresh: `product-refresh:{store}:{product}`.
    ProductRefresh,
    /// The `jwt_jwks_url` key set's refresh, held for its whole minute: `jwks-refresh:keyset`.
    JwksRefresh,
}

impl LockFamily {
    #[cfg(test)]
    pub const ALL: [LockFamily; 5] = [
        LockFamily::Line,
        LockFamily::Idempotency,
        LockFamily::BreakerProbe,
        LockFamily::ProductRefresh,
        LockFamily::JwksRefresh,
    ];

    /// The first segment of every key of this family.
    pub const fn prefix(self) -> &'static str {
        match self {
            LockFamily::Line => "line",
            LockFamily::Idempotency => "idem",
            LockFamily::BreakerProbe => "breaker-probe",
            LockFamily::ProductRefresh => "product-refresh",
            LockFamily::JwksRefresh => "jwks-refresh",
        }
    }

    fn key(self, parts: &[&str]) -> String {
        let mut key = self.prefix().to_owned();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }
}

/// The lease of one cart line.
pub fn line(store: &StoreId, user: &UserId, product: &str) -> String {
    LockFamily::Line.key(&[store.as_str(), user.as_str(), product])
}

/// The in-flight lease of an idempotent write (`hash` is the scoped key hash, hex).
pub fn idempotency(user: &UserId, hash: &str) -> String {
    LockFamily::Idempotency.key(&[user.as_str(), hash])
}

/// The inventory breaker's probe lease.
pub fn breaker_probe() -> String {
    LockFamily::BreakerProbe.key(&["inventory"])
}

/// The refresh lease of one cached product record.
pub fn product_refresh(store: &str, product: &str) -> String {
    LockFamily::ProductRefresh.key(&[store, product])
}

/// The rate-limit lease of the `jwt_jwks_url` key set's refresh (one per store).
pub fn jwks_refresh() -> String {
    LockFamily::JwksRefresh.key(&["keyset"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn first_segment(key: &str) -> &str {
        key.split(':').next().unwrap_or(key)
    }

    #[test]
    fn prefixes_are_distinct_and_free_of_the_separator() {
        for (i, a) in LockFamily::ALL.iter().enumerate() {
            assert!(!a.prefix().contains(':'), "{a:?}");
            for b in &LockFamily::ALL[i + 1..] {
                assert_ne!(a.prefix(), b.prefix(), "{a:?} {b:?}");
            }
        }
    }

    /// Ids chosen to spell other families' keys: every key still starts with its own family,
    /// and no two keys of different families are equal.
    #[test]
    fn crafted_ids_never_make_two_families_share_a_key() {
        let id = |s: &str| s.to_owned();
        let words = [
            id("breaker"),
            id("breaker-probe"),
            id("inventory"),
            id("probe"),
            id("product-refresh"),
            id("jwks-refresh"),
            id("keyset"),
            id("relay"),
            id("cart"),
            id("idem"),
            id("line"),
            id("s"),
            id("u"),
            id("p"),
        ];
        let mut seen: BTreeMap<String, LockFamily> = BTreeMap::new();
        let mut record = |family: LockFamily, key: String| {
            assert_eq!(first_segment(&key), family.prefix(), "{key}");
            if let Some(other) = seen.insert(key.clone(), family) {
                assert_eq!(other, family, "{key} is a key of {other:?} and {family:?}");
            }
        };
        record(LockFamily::BreakerProbe, breaker_probe());
        record(LockFamily::JwksRefresh, jwks_refresh());
        for a in &words {
            for b in &words {
                let (store, user) = (StoreId::parse(a).unwrap(), UserId::parse(b).unwrap());
                record(LockFamily::Idempotency, idempotency(&user, a));
                record(LockFamily::ProductRefresh, product_refresh(a, b));
                for c in &words {
                    record(LockFamily::Line, line(&store, &user, c));
                }
            }
        }
    }

    #[test]
    fn layout() {
        let (s, u) = (StoreId::parse("s").unwrap(), UserId::parse("u").unwrap());
        assert_eq!(line(&s, &u, "p"), "line:s:u:p");
        assert_eq!(idempotency(&u, "ab12"), "idem:u:ab12");
        assert_eq!(breaker_probe(), "breaker-probe:inventory");
        assert_eq!(product_refresh("s", "p"), "product-refresh:s:p");
        assert_eq!(jwks_refresh(), "jwks-refresh:keyset");
    }
}
