//! Operator endpoints need `Authorization: Bearer <admin_token>`. With no `admin_token`
//! configured they are disabled (403): never open by default.
//!
//! `/metrics` is open unless `metrics_token` is set; then it needs
//! `Authorization: Bearer <metrics_token>` (a scraper's credential, separate from the admin one).

use crate::edge::http_io::HttpRequest;
use crate::edge::problem_details::{Problem, ProblemKind};

/// Compares without an early exit, so response timing does not reveal a prefix of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The configured token named `variable`, if set.
fn configured(variable: &str) -> Option<String> {
    crate::ports::settings::var(variable)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// What a route's token is called in its problems.
struct Guarded {
    missing: &'static str,
    wrong: &'static str,
}

const ADMIN: Guarded = Guarded {
    missing: "admin endpoints need Authorization: Bearer <admin token>",
    wrong: "that token does not grant admin access",
};

const METRICS: Guarded = Guarded {
    missing: "/metrics needs Authorization: Bearer <metrics token> (metrics_token is set)",
    wrong: "that token does not grant access to /metrics",
};

/// Checks that the request carries `Authorization: Bearer <expected>`: 401 without a bearer
/// token, 403 with another one.
fn check_bearer(request: &HttpRequest, expected: &str, guarded: &Guarded) -> Result<(), Problem> {
    let presented = request
        .header("authorization")?
        .and_then(cart_auth::bearer_token)
        .ok_or_else(|| Problem::new(ProblemKind::Unauthenticated, guarded.missing))?;
    if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return Err(Problem::new(ProblemKind::Forbidden, guarded.wrong));
    }
    Ok(())
}

pub fn authorize(request: &HttpRequest) -> Result<(), Problem> {
    let expected = configured("admin_token").ok_or_else(|| {
        Problem::new(
            ProblemKind::Forbidden,
            "admin endpoints are disabled: set the admin_token variable",
        )
    })?;
    check_bearer(request, &expected, &ADMIN)
}

/// `/metrics`: open without `metrics_token`, otherwise only with it.
pub fn authorize_metrics(request: &HttpRequest) -> Result<(), Problem> {
    match configured("metrics_token") {
        None => Ok(()),
        Some(expected) => check_bearer(request, &expected, &METRICS),
    }
}
