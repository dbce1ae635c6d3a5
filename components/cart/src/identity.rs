//! Who is calling. For now only the documented local demo mode: when the
//! `allow_insecure_user_header` variable is on, `X-User-Id` is trusted. With it off, every cart
//! request is 401 until verified tokens exist. A caller only ever reaches `cart:{store}:{self}`,
//! so one user can never name another's cart.

use crate::http_io::HttpRequest;
use crate::settings::Settings;
use cart_domain::{Problem, ProblemKind, UserId};

pub fn caller(request: &HttpRequest, settings: &Settings) -> Result<UserId, Problem> {
    if !settings.allow_insecure_user_header {
        return Err(Problem::new(
            ProblemKind::Unauthenticated,
            "no accepted credentials: this deployment requires a bearer token",
        ));
    }
    eprintln!(
        "{{\"level\":\"warn\",\"msg\":\"insecure X-User-Id identity mode is on; never use it in production\"}}"
    );
    let raw = request.header("x-user-id")?.ok_or_else(|| {
        Problem::new(
            ProblemKind::Unauthenticated,
            "send X-User-Id (local demo mode) to identify the shopper",
        )
    })?;
    UserId::parse_with_max(raw.trim(), settings.limits.max_id_len)
        .map_err(|e| Problem::new(ProblemKind::Unauthenticated, format!("X-User-Id {e}")))
}
