//! Errors: why a token was refused ([`AuthError`]) and why a configuration was refused
//! ([`ConfigError`]). Each has a stable short `code()` for logs and problem types, and a human
//! `Display` that never echoes token or key material.

use std::fmt;

/// Why a bearer token was refused. Every variant means "not authenticated" (HTTP 401), except
/// [`AuthError::NoKeyConfigured`], which is a deployment fault (the caller decides: 500 or 503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Not a compact JWS: wrong number of parts, bad base64url, bad JSON, non-numeric dates,
    /// unsupported `crit` header, oversized token.
    Malformed,
    /// The header's `alg` is not on the allow-list (HS256, RS256, ES256); includes `none`.
    UnsupportedAlgorithm(String),
    /// The `alg` is allowed but no key of its type is configured (an HS256 token when only an
    /// RSA/EC public key is configured, an RS256 token when only an HS256 secret is, ...).
    KeyTypeMismatch,
    /// The signature does not verify with the configured key(s).
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// The token has no `exp` claim.
    MissingExpiry,
    /// `iss` is missing or differs from the configured issuer (or is the guest issuer).
    WrongIssuer,
    /// The configured audience is not in `aud`.
    WrongAudience,
    /// The token has no `sub` claim.
    MissingSubject,
    /// `sub` is not a valid id (ASCII letters, digits, `.`, `_`, `-`; 1..=64; not only dots),
    /// or is a guest subject where a user subject is required (or the reverse).
    InvalidSubject,
    /// The token names a `kid` that no configured key has.
    UnknownKeyId,
    /// None of `jwt_hs256_secret`, `jwt_public_key` and `jwt_jwks_url` is configured.
    NoKeyConfigured,
    /// A guest token was presented where a user token is required.
    GuestTokenRefused,
    /// A token that is not a guest token was presented to guest verification.
    NotGuestToken,
}

impl AuthError {
    /// Stable short code, e.g. `"token-expired"`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed => "token-malformed",
            AuthError::UnsupportedAlgorithm(_) => "token-algorithm-unsupported",
            AuthError::KeyTypeMismatch => "token-key-type-mismatch",
            AuthError::BadSignature => "token-bad-signature",
            AuthError::Expired => "token-expired",
            AuthError::NotYetValid => "token-not-yet-valid",
            AuthError::MissingExpiry => "token-missing-exp",
            AuthError::WrongIssuer => "token-wrong-issuer",
            AuthError::WrongAudience => "token-wrong-audience",
            AuthError::MissingSubject => "token-missing-sub",
            AuthError::InvalidSubject => "token-invalid-sub",
            AuthError::UnknownKeyId => "token-unknown-kid",
            AuthError::NoKeyConfigured => "auth-not-configured",
            AuthError::GuestTokenRefused => "token-guest-not-accepted",
            AuthError::NotGuestToken => "token-not-guest",
        }
    }

    /// True for every variant that is the caller's fault (answer 401); false for
    /// [`AuthError::NoKeyConfigured`], a server-side configuration fault.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AuthError::NoKeyConfigured)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Malformed => write!(f, "the bearer token is not a well-formed JWT"),
            AuthError::UnsupportedAlgorithm(alg) => write!(
                f,
                "the token algorithm {alg:?} is not accepted; allowed are HS256, RS256 and ES256"
            ),
            AuthError::KeyTypeMismatch => write!(
                f,
                "the token algorithm does not match the type of the configured verification key"
            ),
            AuthError::BadSignature => write!(f, "the token signature is invalid"),
            AuthError::Expired => write!(f, "the token has expired"),
            AuthError::NotYetValid => write!(f, "the token is not valid yet (nbf)"),
            AuthError::MissingExpiry => write!(f, "the token has no expiry (exp)"),
            AuthError::WrongIssuer => write!(f, "the token issuer (iss) is not accepted"),
            AuthError::WrongAudience => {
                write!(f, "the token audience (aud) does not include this service")
            }
            AuthError::MissingSubject => write!(f, "the token has no subject (sub)"),
            AuthError::InvalidSubject => write!(
                f,
                "the token subject (sub) is not a valid id: 1 to 64 ASCII letters, digits, '.', '_' or '-', not only dots"
            ),
            AuthError::UnknownKeyId => write!(f, "the token key id (kid) is not known"),
            AuthError::NoKeyConfigured => write!(
                f,
                "token verification is not configured (set jwt_hs256_secret, jwt_public_key or jwt_jwks_url)"
            ),
            AuthError::GuestTokenRefused => {
                write!(f, "a guest token cannot be used where a user token is required")
            }
            AuthError::NotGuestToken => write!(f, "the token is not a guest token"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Why a [`crate::VerifierConfig`] or a guest secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// An HMAC secret shorter than [`crate::MIN_SECRET_BYTES`] (RFC 7518 §3.2).
    WeakSecret { min_bytes: usize },
    /// The public key could not be parsed; the text says why (never contains key material).
    InvalidPublicKey(String),
    /// The public key parsed but is not allowed (private key, other curve, short RSA, `oct`...).
    UnsupportedKey(String),
}

impl ConfigError {
    /// Stable short code, e.g. `"auth-config-weak-secret"`.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::WeakSecret { .. } => "auth-config-weak-secret",
            ConfigError::InvalidPublicKey(_) => "auth-config-invalid-public-key",
            ConfigError::UnsupportedKey(_) => "auth-config-unsupported-key",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::WeakSecret { min_bytes } => {
                write!(f, "the HMAC secret must be at least {min_bytes} bytes long")
            }
            ConfigError::InvalidPublicKey(why) => write!(f, "invalid jwt_public_key: {why}"),
            ConfigError::UnsupportedKey(why) => write!(f, "unsupported jwt_public_key: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}
