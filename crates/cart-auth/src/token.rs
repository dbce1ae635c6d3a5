//! A compact JWS taken apart by `jsonwebtoken`, and the claim rules shared by
//! [`crate::Verifier`] and [`crate::GuestTokens`].
//!
//! jsonwebtoken decodes the header and the claims (strict base64url, JSON) and checks
//! signatures; its own claim validation is not used, because it reads the system clock and the
//! cart passes `now` in (so tests and the capability host control time), and because the rules
//! here are stricter in places (`exp` always required, expiry at `exp + leeway` exactly).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
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

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// The allow-list: everything else jsonwebtoken knows (HS384, PS256, EdDSA, ...) is refused.
    fn allowed(alg: jsonwebtoken::Algorithm) -> Result<Algorithm, AuthError> {
        match alg {
            jsonwebtoken::Algorithm::HS256 => Ok(Algorithm::Hs256),
            jsonwebtoken::Algorithm::RS256 => Ok(Algorithm::Rs256),
            jsonwebtoken::Algorithm::ES256 => Ok(Algorithm::Es256),
            other => Err(AuthError::UnsupportedAlgorithm(format!("{other:?}"))),
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

/// Why jsonwebtoken could not read the header: an `alg` it does not know (`none`, a typo) is
/// reported as such, anything else is malformed.
fn header_refusal(token: &str) -> AuthError {
    let alg = token
        .split('.')
        .next()
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|header| match header.get("alg") {
            Some(Value::String(alg)) => Some(alg.clone()),
            _ => None,
        });
    match alg {
        Some(alg)
            if serde_json::from_value::<jsonwebtoken::Algorithm>(Value::String(alg.clone()))
                .is_err() =>
        {
            AuthError::UnsupportedAlgorithm(printable(&alg))
        }
        _ => AuthError::Malformed,
    }
}

/// A token whose header and claims decoded; signature not yet checked, claims not yet judged.
pub(crate) struct Token<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub(crate) message: &'a str,
    /// The signature part, still base64url.
    pub(crate) signature: &'a str,
    claims: RawClaims,
}

/// The claims this crate reads. A claim of the wrong JSON type fails the whole token
/// ([`AuthError::Malformed`]), except `sub`, whose problems are [`AuthError::InvalidSubject`].
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    guest: Option<bool>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// A NumericDate (RFC 7519 §2): non-negative seconds, fractions allowed and truncated.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(secs) = number.as_u64() {
        return Ok(Some(secs));
    }
    match number.as_f64() {
        // `as` saturates, so an absurdly far date becomes u64::MAX.
        Some(secs) if secs.is_finite() && secs >= 0.0 => Ok(Some(secs as u64)),
        _ => Err(D::Error::custom("not a NumericDate")),
    }
}

fn decode_header(token: &str) -> Result<(Algorithm, jsonwebtoken::Header), AuthError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| header_refusal(token))?;
    Ok((Algorithm::allowed(header.alg)?, header))
}

pub(crate) fn header_algorithm(token: &str) -> Result<Algorithm, AuthError> {
    decode_header(token.trim()).map(|(alg, _)| alg)
}

pub(crate) fn parse(token: &str) -> Result<Token<'_>, AuthError> {
    let token = token.trim();
    let (alg, header) = decode_header(token)?;
    // We implement no JWS extension, so any critical one must be refused (RFC 7515 §4.1.11);
    // that includes unencoded payloads (`b64`, RFC 7797). Keys are never taken from the token
    // (`jwk`, `jku`, `x5u`, `x5c` are ignored): only `kid` is used, to pick among the
    // configured keys.
    if header.crit.is_some() || header.extras.contains_key("b64") {
        return Err(AuthError::Malformed);
    }
    // The claims are decoded before the signature is checked, so a token whose payload is not
    // base64url JSON is malformed whatever its signature.
    // Read as an object first: serde would also fill the struct from a JSON array.
    let object = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
        .map_err(|_| AuthError::Malformed)?
        .claims;
    let claims: RawClaims =
        serde_json::from_value(Value::Object(object)).map_err(|_| AuthError::Malformed)?;
    let (message, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
    Ok(Token {
        alg,
        kid: header.kid,
        message,
        signature,
        claims,
    })
}

/// Signs `claims` with HS256 and a `{"typ":"JWT","alg":"HS256"}` header.
pub(crate) fn encode_hs256(key: &HmacKey, claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    // Cannot fail: a JSON value always serialises and HMAC takes a key of any length.
    jsonwebtoken::encode(&header, claims, &key.encoding())
        .expect("HS256 signing of a JSON value cannot fail")
}

/// What the claims must satisfy beyond the signature.
pub(crate) struct Policy<'a> {
    pub(crate) issuer: Option<&'a str>,
    pub(crate) audience: Option<&'a str>,
    pub(crate) leeway: u64,
}

/// Checks the claims of a token whose signature has been verified.
pub(crate) fn claims(token: Token<'_>, policy: &Policy<'_>, now: u64) -> Result<Claims, AuthError> {
    let raw = token.claims;
    let expires_at = raw.exp.ok_or(AuthError::MissingExpiry)?;
    // Expired once `now` reaches `exp + leeway` (RFC 7519 §4.1.4: valid only before `exp`).
    if now >= expires_at.saturating_add(policy.leeway) {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = raw.nbf {
        if now.saturating_add(policy.leeway) < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    if let Some(expected) = policy.issuer {
        if raw.iss.as_deref() != Some(expected) {
            return Err(AuthError::WrongIssuer);
        }
    }
    let audience = match raw.aud {
        None => Vec::new(),
        Some(Audience::One(aud)) => vec![aud],
        Some(Audience::Many(list)) => list,
    };
    if let Some(expected) = policy.audience {
        if !audience.iter().any(|aud| aud == expected) {
            return Err(AuthError::WrongAudience);
        }
    }
    let subject = match raw.sub {
        None | Some(Value::Null) => return Err(AuthError::MissingSubject),
        Some(Value::String(sub)) => sub,
        Some(_) => return Err(AuthError::InvalidSubject),
    };
    if !validate_subject(&subject) {
        return Err(AuthError::InvalidSubject);
    }
    Ok(Claims {
        subject,
        issuer: raw.iss,
        audience,
        expires_at,
        not_before: raw.nbf,
        issued_at: raw.iat,
        algorithm: token.alg,
        key_id: token.kid,
        guest: raw.guest.unwrap_or(false),
    })
}
