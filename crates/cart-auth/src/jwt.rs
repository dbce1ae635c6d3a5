//! Compact JWS parsing and claim checks shared by [`crate::Verifier`] and
//! [`crate::GuestTokens`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::keys::HmacKey;
use crate::{validate_subject, Claims};

/// Longest bearer token accepted, in bytes (larger ones are [`AuthError::Malformed`]).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The allow-listed JWS algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC SHA-256 with `jwt_hs256_secret` (or the guest secret).
    Hs256,
    /// RSASSA-PKCS1-v1_5 SHA-256 with an RSA public key.
    Rs256,
    /// ECDSA P-256 SHA-256 with a P-256 public key.
    Es256,
}

impl Algorithm {
    /// The JOSE name, e.g. `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }

    /// Exact, case-sensitive match against the allow-list.
    fn from_header(alg: &str) -> Result<Algorithm, AuthError> {
        match alg {
            "HS256" => Ok(Algorithm::Hs256),
            "RS256" => Ok(Algorithm::Rs256),
            "ES256" => Ok(Algorithm::Es256),
            other => Err(AuthError::UnsupportedAlgorithm(printable(other))),
        }
    }
}

/// The header's `alg` as safe text for errors and logs: printable ASCII, at most 32 chars.
fn printable(alg: &str) -> String {
    alg.chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// A token split and decoded, signature not yet checked, claims not yet parsed.
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) signature: Vec<u8>,
    payload: Vec<u8>,
}

pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, AuthError> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header = decode_object(header_b64)?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => Algorithm::from_header(alg)?,
        _ => return Err(AuthError::Malformed),
    };
    // We implement no JWS extension, so any critical one must be refused (RFC 7515 §4.1.11);
    // that includes unencoded payloads (`b64: false`, RFC 7797).
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(AuthError::Malformed);
    }
    // Keys are never taken from the token (`jwk`, `jku`, `x5u`, `x5c` are ignored): only `kid`
    // is used, to pick among the configured keys.
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };
    let payload = b64(payload_b64)?;
    let signature = b64(signature_b64)?;
    if signature.is_empty() {
        return Err(AuthError::BadSignature);
    }
    let signing_len = header_b64.len() + 1 + payload_b64.len();
    Ok(Parsed {
        alg,
        kid,
        signing_input: &token.as_bytes()[..signing_len],
        signature,
        payload,
    })
}

fn b64(part: &str) -> Result<Vec<u8>, AuthError> {
    // Strict: no padding, URL-safe alphabet only, canonical trailing bits.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)
}

fn decode_object(part: &str) -> Result<Map<String, Value>, AuthError> {
    serde_json::from_slice::<Map<String, Value>>(&b64(part)?).map_err(|_| AuthError::Malformed)
}

/// Signs `claims` with HS256 and a `{"alg":"HS256","typ":"JWT"}` header.
pub(crate) fn encode_hs256(key: &HmacKey, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// What the claims must satisfy beyond the signature.
pub(crate) struct Policy<'a> {
    pub(crate) issuer: Option<&'a str>,
    pub(crate) audience: Option<&'a str>,
    pub(crate) leeway: u64,
}

/// Parses and checks the claims of a token whose signature has been verified.
pub(crate) fn claims(
    parsed: &Parsed<'_>,
    policy: &Policy<'_>,
    now: u64,
) -> Result<Claims, AuthError> {
    let claims: Map<String, Value> =
        serde_json::from_slice(&parsed.payload).map_err(|_| AuthError::Malformed)?;

    let expires_at = numeric_date(&claims, "exp")?.ok_or(AuthError::MissingExpiry)?;
    let not_before = numeric_date(&claims, "nbf")?;
    let issued_at = numeric_date(&claims, "iat")?;
    let issuer = optional_string(&claims, "iss")?;
    let audience = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(AuthError::Malformed))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(AuthError::Malformed),
    };
    let guest = match claims.get("guest") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(AuthError::Malformed),
    };

    // Expired once `now` reaches `exp + leeway` (RFC 7519 §4.1.4: valid only before `exp`).
    if now >= expires_at.saturating_add(policy.leeway) {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = not_before {
        if now.saturating_add(policy.leeway) < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    if let Some(expected) = policy.issuer {
        if issuer.as_deref() != Some(expected) {
            return Err(AuthError::WrongIssuer);
        }
    }
    if let Some(expected) = policy.audience {
        if !audience.iter().any(|aud| aud == expected) {
            return Err(AuthError::WrongAudience);
        }
    }
    let subject = match claims.get("sub") {
        None | Some(Value::Null) => return Err(AuthError::MissingSubject),
        Some(Value::String(sub)) => sub.clone(),
        Some(_) => return Err(AuthError::InvalidSubject),
    };
    if !validate_subject(&subject) {
        return Err(AuthError::InvalidSubject);
    }

    Ok(Claims {
        subject,
        issuer,
        audience,
        expires_at,
        not_before,
        issued_at,
        algorithm: parsed.alg,
        key_id: parsed.kid.clone(),
        guest,
    })
}

fn optional_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AuthError::Malformed),
    }
}

/// A NumericDate (RFC 7519 §2): non-negative seconds, fractions allowed and truncated.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs))
            } else {
                match n.as_f64() {
                    // `as` saturates, so an absurdly far date becomes u64::MAX.
                    Some(secs) if secs.is_finite() && secs >= 0.0 => Ok(Some(secs as u64)),
                    _ => Err(AuthError::Malformed),
                }
            }
        }
        Some(_) => Err(AuthError::Malformed),
    }
}
