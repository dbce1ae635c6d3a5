//! Who may call a reference service.
//!
//! The reference inventory and event sink are routed publicly (`/inventory/...`, `/events/...`)
//! next to the cart, so every route that writes, administers or lists needs
//! `Authorization: Bearer <reference_token>` (the Spin variable, which the cart's adapter also
//! sends). Reading one product and a topic's records are *demo reads*: open without a token
//! only while `reference_demo_reads` is true (the local `spin.toml` sets it), protected
//! otherwise. Fail closed: an empty or unreadable `reference_token` refuses every protected
//! route (403), and an unset or malformed `reference_demo_reads` means no demo reads.
//!
//! [`Policy::check`] is pure (unit-tested natively); [`authorize`] reads the variables it needs
//! and the `Authorization` header.

use crate::problem::Problem;

/// How a route may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writes, admin and listing routes: always the reference token.
    Protected,
    /// Reading one record (a product, a topic's records): open in demo mode.
    DemoRead,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `reference_token` is configured: the protected routes are off.
    NotConfigured,
    /// No bearer token was sent (401).
    MissingToken,
    /// A token was sent but it is not the reference token (403).
    WrongToken,
}

impl Denied {
    pub fn status(self) -> u16 {
        match self {
            Denied::MissingToken => 401,
            Denied::NotConfigured | Denied::WrongToken => 403,
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Denied::NotConfigured => {
                "this route is disabled: set the reference_token variable (the cart sends it too)"
            }
            Denied::MissingToken => "this route needs Authorization: Bearer <reference_token>",
            Denied::WrongToken => "that token does not grant access to this reference service",
        }
    }

    /// The problem document (401 `unauthenticated` or 403 `forbidden`).
    pub fn problem(self) -> Problem {
        match self {
            Denied::MissingToken => Problem::new(
                401,
                "unauthenticated",
                "Authentication is required",
                self.detail().into(),
            ),
            Denied::NotConfigured | Denied::WrongToken => {
                Problem::new(403, "forbidden", "Not allowed", self.detail().into())
            }
        }
    }

    /// The Kafka REST `error_code` (Confluent's 40101 authentication, 40301 authorization).
    pub fn kafka_error_code(self) -> u32 {
        match self {
            Denied::MissingToken => 40101,
            Denied::NotConfigured | Denied::WrongToken => 40301,
        }
    }

    /// The `WWW-Authenticate` challenge a 401 carries.
    pub fn challenge(self) -> Option<&'static str> {
        (self == Denied::MissingToken).then_some("Bearer")
    }
}

/// The deployment's rules: the reference token and whether demo reads are open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    token: Option<String>,
    demo_reads: bool,
}

impl Policy {
    /// `token`: `None` or blank means not configured.
    pub fn new(token: Option<&str>, demo_reads: bool) -> Policy {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        Policy {
            token: token.map(str::to_owned),
            demo_reads,
        }
    }

    /// Decides one request. `authorization` is the raw `Authorization` header, if any.
    pub fn check(&self, access: Access, authorization: Option<&str>) -> Result<(), Denied> {
        if access == Access::DemoRead && self.demo_reads {
            return Ok(());
        }
        let expected = self.token.as_deref().ok_or(Denied::NotConfigured)?;
        let presented = authorization
            .and_then(bearer_token)
            .ok_or(Denied::MissingToken)?;
        if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Denied::WrongToken)
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares without an early exit, so response timing does not reveal a prefix of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// Decides a request on Spin: reads `reference_demo_reads` (demo reads only) and
/// `reference_token` (only when a token is needed), so an open demo read costs one variable.
pub fn authorize(access: Access, authorization: Option<&str>) -> Result<(), Denied> {
    let demo_reads = access == Access::DemoRead
        && variable("reference_demo_reads").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        });
    if demo_reads {
        return Ok(());
    }
    Policy::new(variable("reference_token").as_deref(), false).check(access, authorization)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "ref-token-123";

    #[test]
    fn protected_routes_need_the_reference_token() {
        let policy = Policy::new(Some(TOKEN), true);
        let check = |auth| policy.check(Access::Protected, auth);
        assert_eq!(check(Some("Bearer ref-token-123")), Ok(()));
        assert_eq!(check(Some("bearer  ref-token-123 ")), Ok(()));
        assert_eq!(check(None), Err(Denied::MissingToken));
        assert_eq!(check(Some("Basic cmVmOng=")), Err(Denied::MissingToken));
        assert_eq!(check(Some("Bearer ")), Err(Denied::MissingToken));
        assert_eq!(check(Some("Bearer ref-token-12")), Err(Denied::WrongToken));
        assert_eq!(
            check(Some("Bearer ref-token-1234")),
            Err(Denied::WrongToken)
        );
    }

    #[test]
    fn an_empty_token_fails_closed() {
        for token in [None, Some(""), Some("  ")] {
            let policy = Policy::new(token, false);
            for auth in [
                None,
                Some("Bearer "),
                Some("Bearer anything"),
                Some("Bearer  "),
            ] {
                for access in [Access::Protected, Access::DemoRead] {
                    assert_eq!(
                        policy.check(access, auth),
                        Err(Denied::NotConfigured),
                        "{token:?} {auth:?} {access:?}"
                    );
                }
            }
            assert_eq!(Denied::NotConfigured.status(), 403);
        }
    }

    #[test]
    fn demo_reads_are_open_only_in_demo_mode() {
        assert_eq!(
            Policy::new(Some(TOKEN), true).check(Access::DemoRead, None),
            Ok(())
        );
        let strict = Policy::new(Some(TOKEN), false);
        assert_eq!(
            strict.check(Access::DemoRead, None),
            Err(Denied::MissingToken)
        );
        assert_eq!(
            strict.check(Access::DemoRead, Some("Bearer ref-token-123")),
            Ok(())
        );
        // Demo mode never opens a protected route.
        assert_eq!(
            Policy::new(Some(TOKEN), true).check(Access::Protected, None),
            Err(Denied::MissingToken)
        );
    }

    #[test]
    fn refusals_are_401_or_403_problems() {
        let p = Denied::MissingToken.problem();
        assert_eq!((p.status, p.slug), (401, "unauthenticated"));
        assert_eq!(Denied::MissingToken.challenge(), Some("Bearer"));
        for d in [Denied::NotConfigured, Denied::WrongToken] {
            let p = d.problem();
            assert_eq!((p.status, p.slug), (403, "forbidden"));
            assert_eq!(d.challenge(), None);
            assert_eq!(d.kafka_error_code(), 40301);
        }
        assert!(Denied::NotConfigured.detail().contains("reference_token"));
    }
}
