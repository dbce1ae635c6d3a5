//! Operator endpoints need `Authorization: Bearer <admin_token>`. With no `admin_token`
//! configured they are disabled (403): never open by default.

use crate::http_io::HttpRequest;
use cart_domain::{Problem, ProblemKind};

/// Compares without an early exit, so response timing does not reveal a prefix of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn authorize(request: &HttpRequest) -> Result<(), Problem> {
    let expected = crate::settings::var("admin_token").unwrap_or_default();
    if expected.trim().is_empty() {
        return Err(Problem::new(
            ProblemKind::Forbidden,
            "admin endpoints are disabled: set the admin_token variable",
        ));
    }
    let presented = request
        .header("authorization")?
        .and_then(cart_auth::bearer_token)
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::Unauthenticated,
                "admin endpoints need Authorization: Bearer <admin token>",
            )
        })?;
    if !constant_time_eq(presented.as_bytes(), expected.trim().as_bytes()) {
        return Err(Problem::new(
            ProblemKind::Forbidden,
            "that token does not grant admin access",
        ));
    }
    Ok(())
}
