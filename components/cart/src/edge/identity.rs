//! Who is calling.
//!
//! * `Authorization: Bearer <JWT>`: verified in the cart logic (cart-auth): a user token signed
//!   with `jwt_hs256_secret`, the `jwt_public_key` (RS256/ES256) or a key of the identity
//!   provider's key set at `jwt_jwks_url` (see [`crate::ports::jwks`]: fetched only for RS256/ES256
//!   tokens, so guest tokens never wait for it), or a guest token this service issued with
//!   `guest_token_secret`. `sub` is the user id; guest ids start with
//!   `guest-`, which user tokens may never use.
//! * The local demo mode (`allow_insecure_user_header = "true"`) also trusts `X-User-Id` when
//!   no bearer token is sent, and logs a warning on every request while it is on. A deployment
//!   that configures a JWT key or secret verifies identities, so there `X-User-Id` is refused
//!   (401 `user-header-refused`) even with the demo switch on: a half-migrated configuration
//!   fails closed instead of letting anyone name any user.
//! * The `guest_token_secret` that `spin.toml` ships ([`DEMO_GUEST_TOKEN_SECRET`]) is public,
//!   so anyone could mint a guest's token with it: it is honoured only in demo mode. Outside it,
//!   issuing and verifying guest tokens with that value is refused (`guest-secret-is-demo`).
//!
//! A caller only ever reaches `cart:{store}:{self}`, so one user can never name another's cart.

use crate::edge::http_io::HttpRequest;
use crate::edge::problem_details::{Problem, ProblemKind};
use crate::ports::settings::Settings;
use cart_auth::{bearer_token, Algorithm, AuthError, GuestTokens, Verifier, VerifierConfig};
use cart_domain::UserId;

fn var(name: &str) -> Option<String> {
    crate::ports::settings::var(name).filter(|v| !v.trim().is_empty())
}

fn now_unix() -> u64 {
    crate::runtime::clock::now_ms() / 1000
}

fn unauthenticated(detail: impl Into<String>, code: &str) -> Problem {
    Problem::new(ProblemKind::Unauthenticated, detail).with("code", code)
}

fn misconfigured(detail: String) -> Problem {
    Problem::new(
        ProblemKind::Internal,
        format!("identity is misconfigured: {detail}"),
    )
}

/// The `guest_token_secret` the shipped `spin.toml` sets for local demos. It is published with
/// the code, so it only counts as a secret in demo mode.
pub const DEMO_GUEST_TOKEN_SECRET: &str = "local-demo-guest-secret-change-me-0001";

/// Why guest tokens cannot be issued or verified here.
enum GuestsUnavailable {
    /// `guest_token_secret` is empty: guest carts are off.
    Disabled,
    /// `guest_token_secret` is the public demo value and demo mode is off. Carries a verifier
    /// with that secret, only to recognise its tokens and say why they are refused.
    DemoSecret(GuestTokens),
    /// The secret is set but unusable (too short).
    Misconfigured(Problem),
}

impl GuestsUnavailable {
    /// The problem for a caller that asked for a guest token or sent one to be merged.
    fn problem(self) -> Problem {
        match self {
            GuestsUnavailable::Disabled => Problem::new(
                ProblemKind::Forbidden,
                "guest carts are disabled: set the guest_token_secret variable (32+ bytes)",
            )
            .with("code", "guest-carts-disabled"),
            GuestsUnavailable::DemoSecret(_) => {
                Problem::new(ProblemKind::Forbidden, DEMO_SECRET_REFUSED)
                    .with("code", "guest-secret-is-demo")
            }
            GuestsUnavailable::Misconfigured(problem) => problem,
        }
    }
}

const DEMO_SECRET_REFUSED: &str =
    "guest tokens are refused: guest_token_secret is the public demo value \
     shipped in spin.toml, which is only accepted in demo mode (allow_insecure_user_header=true); \
     set a secret of your own (32+ bytes), or an empty one to disable guest carts";

fn guests() -> Result<GuestTokens, GuestsUnavailable> {
    let secret = var("guest_token_secret").ok_or(GuestsUnavailable::Disabled)?;
    let tokens = GuestTokens::new(&secret).map_err(|e| {
        GuestsUnavailable::Misconfigured(misconfigured(format!("guest_token_secret: {e}")))
    })?;
    if secret == DEMO_GUEST_TOKEN_SECRET && !crate::ports::settings::demo_identity_mode() {
        return Err(GuestsUnavailable::DemoSecret(tokens));
    }
    Ok(tokens)
}

/// The guest-token issuer and verifier, or the problem that says why there is none.
pub fn guest_tokens() -> Result<GuestTokens, Problem> {
    guests().map_err(GuestsUnavailable::problem)
}

/// Whether a JWT key or secret is configured: then identities are verified, never asserted.
fn verification_configured() -> bool {
    var("jwt_hs256_secret").is_some()
        || var("jwt_public_key").is_some()
        || var("jwt_jwks_url").is_some()
}

/// `key_set`: the `jwt_jwks_url` key set, when the token needs it.
fn user_verifier(key_set: Option<String>) -> Result<Verifier, Problem> {
    Verifier::new(&VerifierConfig {
        hs256_secret: var("jwt_hs256_secret"),
        public_key: var("jwt_public_key"),
        key_set,
        issuer: var("jwt_issuer"),
        audience: var("jwt_audience"),
        leeway_seconds: var("jwt_leeway_seconds")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(cart_auth::DEFAULT_LEEWAY_SECONDS),
    })
    .map_err(|e| misconfigured(e.to_string()))
}

fn auth_problem(e: &AuthError) -> Problem {
    unauthenticated(format!("the bearer token was refused: {e}"), e.code())
}

/// Verifies a bearer token: a user token first, then a guest token.
fn verify_bearer(token: &str) -> Result<(UserId, bool), Problem> {
    let now = now_unix();
    let jwks_url = var("jwt_jwks_url");
    // Only deployments with a key set URL look at the header first, to load the set for the
    // tokens that can use it.
    let algorithm = jwks_url.as_ref().map(|_| cart_auth::token_algorithm(token));
    let key_set = match (&jwks_url, &algorithm) {
        (Some(url), Some(Ok(alg))) if *alg != Algorithm::Hs256 => {
            Some(crate::ports::jwks::current(url)?)
        }
        _ => None,
    };
    let verifier = user_verifier(key_set.as_ref().map(|set| set.keys.clone()))?;
    let mut user_result = if verifier.is_configured() {
        verifier.verify(token, now)
    } else if let Some(algorithm) = algorithm {
        // Only an HS256 (or unreadable) token gets here: the key set was not loaded for it,
        // and it holds public keys only, so this is what verifying with it would say.
        Err(algorithm.err().unwrap_or(AuthError::KeyTypeMismatch))
    } else {
        Err(AuthError::NoKeyConfigured)
    };
    if let (Err(AuthError::UnknownKeyId), Some(url), Some(set)) =
        (&user_result, &jwks_url, &key_set)
    {
        // The provider may have rotated its keys since the set was cached.
        if let Some(keys) = crate::ports::jwks::refresh_for_unknown_kid(url, set) {
            user_result = user_verifier(Some(keys))?.verify(token, now);
        }
    }
    let claims = match user_result {
        Ok(claims) => claims,
        Err(user_error) => {
            // Report why the token failed as a user token unless it was meant as a guest.
            let meant_as_guest = matches!(
                user_error,
                AuthError::GuestTokenRefused | AuthError::NoKeyConfigured
            );
            match guests() {
                Ok(guests) => match guests.verify(token, now) {
                    Ok(claims) => claims,
                    Err(guest_error) => {
                        return Err(auth_problem(if meant_as_guest {
                            &guest_error
                        } else {
                            &user_error
                        }));
                    }
                },
                // A guest token signed with the public demo secret (or one meant as a guest's):
                // say why it is refused rather than how it failed as a user token.
                Err(GuestsUnavailable::DemoSecret(demo))
                    if meant_as_guest || demo.verify(token, now).is_ok() =>
                {
                    return Err(unauthenticated(DEMO_SECRET_REFUSED, "guest-secret-is-demo"));
                }
                Err(GuestsUnavailable::Misconfigured(problem)) => return Err(problem),
                Err(GuestsUnavailable::Disabled | GuestsUnavailable::DemoSecret(_)) => {
                    return Err(auth_problem(&user_error))
                }
            }
        }
    };
    let user = UserId::parse(&claims.subject)
        .map_err(|e| unauthenticated(format!("the token subject {e}"), "token-invalid-subject"))?;
    Ok((user, claims.guest))
}

/// The caller and whether they are a guest.
pub fn caller_kind(request: &HttpRequest, settings: &Settings) -> Result<(UserId, bool), Problem> {
    if let Some(header) = request.header("authorization")? {
        let token = bearer_token(header).ok_or_else(|| {
            unauthenticated("Authorization must be `Bearer <token>`", "token-malformed")
        })?;
        return verify_bearer(token);
    }
    if !settings.allow_insecure_user_header {
        return Err(unauthenticated(
            "send Authorization: Bearer <token>",
            "token-missing",
        ));
    }
    let raw = request.header("x-user-id")?;
    if verification_configured() {
        return Err(match raw {
            Some(_) => unauthenticated(
                "X-User-Id is refused: this deployment verifies bearer tokens \
                 (jwt_hs256_secret, jwt_public_key or jwt_jwks_url is set), which turns the demo identity \
                 header off even with allow_insecure_user_header=true; send \
                 Authorization: Bearer <token>",
                "user-header-refused",
            ),
            None => unauthenticated("send Authorization: Bearer <token>", "token-missing"),
        });
    }
    let raw = raw.ok_or_else(|| {
        unauthenticated(
            "send Authorization: Bearer <token> (or X-User-Id in local demo mode)",
            "token-missing",
        )
    })?;
    crate::runtime::oplog::note_insecure_identity();
    let user = UserId::parse_with_max(raw.trim(), settings.max_id_len)
        .map_err(|e| unauthenticated(format!("X-User-Id {e}"), "invalid-user-header"))?;
    let guest = user.as_str().starts_with(cart_auth::GUEST_SUBJECT_PREFIX);
    Ok((user, guest))
}

#[cfg(test)]
mod tests {
    /// The value recognised as the public demo secret is the one the local manifest ships.
    #[test]
    fn the_demo_guest_secret_is_the_one_spin_toml_ships() {
        let manifest = include_str!("../../../../spin.toml");
        let line = format!(
            "guest_token_secret = {{ default = \"{}\"",
            super::DEMO_GUEST_TOKEN_SECRET
        );
        assert!(
            manifest.contains(&line),
            "spin.toml does not contain {line}"
        );
    }
}
