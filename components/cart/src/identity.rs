//! Who is calling.
//!
//! * `Authorization: Bearer <JWT>`: verified in the cart logic (cart-auth): a user token signed
//!   with `jwt_hs256_secret` or the `jwt_public_key` (RS256/ES256), or a guest token this
//!   service issued with `guest_token_secret`. `sub` is the user id; guest ids start with
//!   `guest-`, which user tokens may never use.
//! * The local demo mode (`allow_insecure_user_header = "true"`) also trusts `X-User-Id` when
//!   no bearer token is sent, and logs a warning on every request while it is on.
//!
//! A caller only ever reaches `cart:{store}:{self}`, so one user can never name another's cart.

use crate::http_io::HttpRequest;
use crate::settings::Settings;
use cart_auth::{bearer_token, AuthError, GuestTokens, Verifier, VerifierConfig};
use cart_domain::{Problem, ProblemKind, UserId};

fn var(name: &str) -> Option<String> {
    crate::settings::var(name).filter(|v| !v.trim().is_empty())
}

fn now_unix() -> u64 {
    crate::clock::now_ms() / 1000
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

/// The guest-token issuer, when `guest_token_secret` is set (at least 32 bytes).
pub fn guest_tokens() -> Result<Option<GuestTokens>, Problem> {
    match var("guest_token_secret") {
        None => Ok(None),
        Some(secret) => GuestTokens::new(&secret)
            .map(Some)
            .map_err(|e| misconfigured(format!("guest_token_secret: {e}"))),
    }
}

fn user_verifier() -> Result<Verifier, Problem> {
    Verifier::new(&VerifierConfig {
        hs256_secret: var("jwt_hs256_secret"),
        public_key: var("jwt_public_key"),
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
    let verifier = user_verifier()?;
    let user_result = if verifier.is_configured() {
        verifier.verify(token, now)
    } else {
        Err(AuthError::NoKeyConfigured)
    };
    let claims = match user_result {
        Ok(claims) => claims,
        Err(user_error) => match guest_tokens()? {
            Some(guests) => match guests.verify(token, now) {
                Ok(claims) => claims,
                // Report why the token failed as a user token unless it was meant as a guest.
                Err(guest_error) => {
                    let meant_as_guest = matches!(
                        user_error,
                        AuthError::GuestTokenRefused | AuthError::NoKeyConfigured
                    );
                    return Err(auth_problem(if meant_as_guest {
                        &guest_error
                    } else {
                        &user_error
                    }));
                }
            },
            None => return Err(auth_problem(&user_error)),
        },
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
    eprintln!(
        "{{\"level\":\"warn\",\"msg\":\"insecure X-User-Id identity mode is on; never use it in production\"}}"
    );
    let raw = request.header("x-user-id")?.ok_or_else(|| {
        unauthenticated(
            "send Authorization: Bearer <token> (or X-User-Id in local demo mode)",
            "token-missing",
        )
    })?;
    let user = UserId::parse_with_max(raw.trim(), settings.limits.max_id_len)
        .map_err(|e| unauthenticated(format!("X-User-Id {e}"), "invalid-user-header"))?;
    let guest = user.as_str().starts_with(cart_auth::GUEST_SUBJECT_PREFIX);
    Ok((user, guest))
}
