//! `storefront:cart/identity-keys`: fetches the identity provider's JSON Web Key Set.
//!
//! `GET {url}` with `Accept: application/json`, bounded by [`TIMEOUT_MS`] and
//! [`MAX_KEY_SET_BYTES`]. Caching, rate limiting and key checks are the cart logic's; this is the
//! Spin half only. The origin must be in the cart component's `allowed_outbound_hosts` (the
//! `jwt_jwks_origin` variable in `spin.toml`), else Spin denies the request (`rejected`).
//!
//! Failures: timeouts, transport errors, 5xx, 408 and 429 → `unavailable` (worth retrying later);
//! a bad or denied URL, another non-2xx status or an oversized body → `rejected`.

use crate::exports::storefront::cart::identity_keys::{FetchError, Guest};
use crate::http_util::{self, HttpError, Method, OutboundRequest};

/// A key set is a few keys (a few KiB); anything much larger is not one.
const MAX_KEY_SET_BYTES: usize = 64 * 1024;
/// The cart waits for this fetch (only on a cold cache or a refresh), so it stays short.
const TIMEOUT_MS: u64 = 3_000;

impl Guest for crate::Adapter {
    fn fetch_key_set(url: String) -> Result<Vec<u8>, FetchError> {
        let request = OutboundRequest {
            method: Method::Get,
            url: &url,
            headers: vec![("accept", "application/json".to_owned())],
            body: Vec::new(),
            timeout_ms: TIMEOUT_MS,
        };
        let response = http_util::send(&request).map_err(|e| match e {
            HttpError::BadUrl(_) | HttpError::Denied | HttpError::TooLarge => {
                FetchError::Rejected(e.to_string())
            }
            HttpError::Timeout | HttpError::Transport(_) => FetchError::Unavailable(e.to_string()),
        })?;
        match response.status {
            200..=299 if response.body.len() > MAX_KEY_SET_BYTES => Err(FetchError::Rejected(
                format!("key set larger than {MAX_KEY_SET_BYTES} bytes"),
            )),
            200..=299 => Ok(response.body),
            408 | 429 | 500..=599 => Err(FetchError::Unavailable(format!(
                "the key set URL answered {}",
                response.status
            ))),
            status => Err(FetchError::Rejected(format!(
                "the key set URL answered {status}"
            ))),
        }
    }
}
