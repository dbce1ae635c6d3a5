//! Bearer-token verification for the cart (DESIGN §3: "the caller's identity comes from a
//! verified bearer token (JWT, HS256 secret or RS256/ES256 public key from Spin variables; `sub`
//! is the user id)") and signed guest-cart tokens.
//!
//! Pure Rust, no I/O, no clock, no randomness: the caller reads the Spin variables (and fetches
//! the `jwt_jwks_url` key set), passes `now` in unix seconds, and supplies the random guest id.
//! Builds for `wasm32-wasip2`.
//!
//! Token decoding, key decoding (PEM, JWK) and signatures are the `jsonwebtoken` crate's, on its
//! pure-Rust RustCrypto backend. What this crate adds is the policy below, which jsonwebtoken
//! either does not have or would apply with its own clock.
//!
//! # Rules
//!
//! * Algorithms: exactly HS256 (only with `jwt_hs256_secret`), RS256 (only with an RSA public
//!   key) and ES256 (only with a P-256 public key). `none`, `HS384`, `PS256`, ... are refused
//!   with [`AuthError::UnsupportedAlgorithm`]. The algorithm is read from the header but
//!   selects a key *of its own type*: an HS256 token is only ever checked with the HS256 secret,
//!   never with public-key bytes used as an HMAC secret (the classic key-confusion attack), so
//!   an HS256 token against a verifier that has only a public key is
//!   [`AuthError::KeyTypeMismatch`].
//! * Keys are never taken from the token (`jwk`, `jku`, `x5u`, `x5c` headers are ignored); a
//!   header `kid` only picks among the configured keys. Tokens with `crit` are refused.
//! * `exp` is required, `nbf` optional, both with `leeway_seconds`; `iss` and `aud` are checked
//!   when configured; `sub` is required and must be a valid id ([`validate_subject`]).
//!
//! # Guest tokens and user tokens are separate key spaces
//!
//! Guest tokens ([`GuestTokens`]) are HS256 tokens signed with `guest_token_secret`, with
//! `iss` = [`GUEST_ISSUER`], the claim `"guest": true` and `sub` = `guest-<id>`. They are kept
//! apart from user tokens three ways:
//!
//! 1. Different keys: [`Verifier`] only knows `jwt_hs256_secret` / `jwt_public_key`, and
//!    [`GuestTokens`] only `guest_token_secret`. A guest token's signature does not verify
//!    under the user key (unless an operator configured the same secret twice:
//!    [`Verifier::shares_secret_with`] lets the caller refuse that at start-up).
//! 2. Even a token that *does* verify under the user key is refused by [`Verifier`] with
//!    [`AuthError::GuestTokenRefused`] when it carries any guest marker: `iss` =
//!    [`GUEST_ISSUER`], `"guest": true`, or a subject starting with [`GUEST_SUBJECT_PREFIX`].
//!    The `guest-` prefix is therefore reserved: no user id can ever name a guest's cart.
//! 3. [`GuestTokens::verify`] accepts only HS256 tokens signed with the guest secret that carry
//!    the guest issuer, the guest claim and a `guest-` subject; anything else is
//!    [`AuthError::BadSignature`], [`AuthError::KeyTypeMismatch`] or
//!    [`AuthError::NotGuestToken`].

//!
//! # Example
//!
//! ```
//! use cart_auth::{bearer_token, GuestTokens, Verifier, VerifierConfig};
//!
//! let verifier = Verifier::new(&VerifierConfig {
//!     hs256_secret: Some("a-user-token-secret-of-32-bytes-or-more".into()),
//!     issuer: Some("https://idp.example".into()),
//!     ..VerifierConfig::default()
//! })?;
//! let now = 1_700_000_000;
//! let minted = cart_auth::encode_hs256(
//!     b"a-user-token-secret-of-32-bytes-or-more",
//!     &serde_json::json!({ "sub": "user-1", "iss": "https://idp.example", "exp": now + 300 }),
//! );
//! let header = format!("Bearer {minted}");
//! let claims = verifier.verify(bearer_token(&header).unwrap_or_default(), now)?;
//! assert_eq!(claims.subject, "user-1");
//!
//! let guests = GuestTokens::new("a-different-guest-secret-of-32-bytes")?;
//! let token = guests.issue("k3v9q2", now, 86_400)?;
//! assert_eq!(guests.verify(&token, now)?.guest_id(), Some("k3v9q2"));
//! assert!(verifier.verify(&token, now).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod keys;
mod token;

use std::fmt;

use serde_json::json;

pub use error::{AuthError, ConfigError};
pub use keys::{MIN_RSA_BITS, MIN_SECRET_BYTES};
pub use token::{Algorithm, MAX_TOKEN_BYTES};

use keys::{HmacKey, KeyType, PublicKey};

/// Default clock-skew allowance applied to `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// `iss` of every guest token.
pub const GUEST_ISSUER: &str = "edge-cart-guest";
/// Every guest subject is this prefix followed by the guest id.
pub const GUEST_SUBJECT_PREFIX: &str = "guest-";
/// Longest subject (same limit as the cart's ids).
pub const MAX_SUBJECT_LEN: usize = 64;

/// Verification settings, straight from the Spin variables. Empty or blank strings count as
/// not set (Spin variables often default to `""`).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// `jwt_hs256_secret`: the HS256 secret, used as its UTF-8 bytes; at least
    /// [`MIN_SECRET_BYTES`] long.
    pub hs256_secret: Option<String>,
    /// `jwt_public_key`: a PEM public key (RSA `PUBLIC KEY` / `RSA PUBLIC KEY`, or EC P-256
    /// `PUBLIC KEY`), a JWK (`kty` RSA with `n`/`e`, or EC `crv` P-256 with `x`/`y`), or a JWKS
    /// `{"keys":[...]}`. Literal `\n` escapes in a one-line PEM are accepted. RSA keys must have
    /// at least [`MIN_RSA_BITS`] bits. JWKS entries of other types, curves, `use` or `alg` are
    /// skipped.
    pub public_key: Option<String>,
    /// A key set fetched from `jwt_jwks_url`: a JWKS `{"keys":[...]}` only, with the same key
    /// rules as a JWKS in `public_key`. Its keys are used next to those of `public_key`.
    pub key_set: Option<String>,
    /// `iss` must equal this when set.
    pub issuer: Option<String>,
    /// `aud` (a string or an array) must contain this when set.
    pub audience: Option<String>,
    /// Clock-skew allowance for `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            hs256_secret: None,
            public_key: None,
            key_set: None,
            issuer: None,
            audience: None,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("public_key", &self.public_key.as_ref().map(|_| "[set]"))
            .field("key_set", &self.key_set.as_ref().map(|_| "[set]"))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.leeway_seconds)
            .finish()
    }
}

/// The verified identity of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`, a valid id ([`validate_subject`]); for guests `guest-<id>`.
    pub subject: String,
    /// `iss`, when present.
    pub issuer: Option<String>,
    /// `aud` as a list (empty when absent).
    pub audience: Vec<String>,
    /// `exp`, unix seconds.
    pub expires_at: u64,
    /// `nbf`, unix seconds, when present.
    pub not_before: Option<u64>,
    /// `iat`, unix seconds, when present (informational, not checked).
    pub issued_at: Option<u64>,
    /// The header `alg` the token was verified with.
    pub algorithm: Algorithm,
    /// The header `kid`, when present.
    pub key_id: Option<String>,
    /// True only for tokens verified by [`GuestTokens::verify`].
    pub guest: bool,
}

impl Claims {
    /// The guest id (the subject without [`GUEST_SUBJECT_PREFIX`]) of a guest token.
    pub fn guest_id(&self) -> Option<&str> {
        if self.guest {
            self.subject.strip_prefix(GUEST_SUBJECT_PREFIX)
        } else {
            None
        }
    }
}

/// The subject rule, the same charset as the cart's ids: 1..=64 ASCII letters, digits, `.`,
/// `_`, `-`, and not only dots.
pub fn validate_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.len() <= MAX_SUBJECT_LEN
        && sub
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !sub.bytes().all(|b| b == b'.')
}

/// True when `sub` is in the guest namespace (starts with [`GUEST_SUBJECT_PREFIX`]).
pub fn is_guest_subject(sub: &str) -> bool {
    sub.starts_with(GUEST_SUBJECT_PREFIX)
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// The allow-listed algorithm a token's header names, without verifying anything: lets a caller
/// skip loading public keys (say, fetching a JWKS) for an HS256 token. Errors as
/// [`Verifier::verify`] would report them for the header.
pub fn token_algorithm(bearer_token: &str) -> Result<Algorithm, AuthError> {
    token::header_algorithm(bearer_token)
}

/// Verifies user bearer tokens. Build once per configuration with [`Verifier::new`] (keys are
/// parsed then), verify per request.
#[derive(Clone)]
pub struct Verifier {
    secret: Option<HmacKey>,
    public_keys: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field("public_keys", &self.public_keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Verifier {
    /// Parses the configuration. A configuration with neither a secret nor a public key is
    /// accepted; its [`Verifier::verify`] always answers [`AuthError::NoKeyConfigured`].
    pub fn new(config: &VerifierConfig) -> Result<Verifier, ConfigError> {
        let secret = non_blank(&config.hs256_secret)
            .map(|s| HmacKey::new(s.as_bytes()))
            .transpose()?;
        let mut public_keys = match non_blank(&config.public_key) {
            Some(text) => keys::parse_public_keys(text)?,
            None => Vec::new(),
        };
        if let Some(text) = non_blank(&config.key_set) {
            public_keys.extend(keys::parse_key_set(text)?);
        }
        Ok(Verifier {
            secret,
            public_keys,
            issuer: non_blank(&config.issuer).map(str::to_owned),
            audience: non_blank(&config.audience).map(str::to_owned),
            leeway: config.leeway_seconds,
        })
    }

    /// True when at least one key is configured.
    pub fn is_configured(&self) -> bool {
        self.secret.is_some() || !self.public_keys.is_empty()
    }

    /// True when this verifier's HS256 secret equals the guest secret: the two key spaces
    /// then overlap (guest markers are still refused), so callers should refuse to start.
    pub fn shares_secret_with(&self, guests: &GuestTokens) -> bool {
        self.secret.as_ref() == Some(&guests.key)
    }

    /// Verifies a user token (the bare token; see [`bearer_token`]) at `now_unix` seconds.
    pub fn verify(&self, bearer_token: &str, now_unix: u64) -> Result<Claims, AuthError> {
        let parsed = token::parse(bearer_token)?;
        if !self.is_configured() {
            return Err(AuthError::NoKeyConfigured);
        }
        self.check_signature(&parsed)?;
        let policy = token::Policy {
            issuer: self.issuer.as_deref(),
            audience: self.audience.as_deref(),
            leeway: self.leeway,
        };
        let claims = token::claims(parsed, &policy, now_unix)?;
        if claims.guest
            || claims.issuer.as_deref() == Some(GUEST_ISSUER)
            || is_guest_subject(&claims.subject)
        {
            return Err(AuthError::GuestTokenRefused);
        }
        Ok(claims)
    }

    fn check_signature(&self, parsed: &token::Token<'_>) -> Result<(), AuthError> {
        // The header's algorithm picks a key *of its own type*: an HS256 token is only ever
        // checked with the HS256 secret, never with public-key bytes used as an HMAC secret.
        let want = match parsed.alg {
            Algorithm::Hs256 => {
                let key = self.secret.as_ref().ok_or(AuthError::KeyTypeMismatch)?;
                return if key.verify(parsed)? {
                    Ok(())
                } else {
                    Err(AuthError::BadSignature)
                };
            }
            Algorithm::Rs256 => KeyType::Rsa,
            Algorithm::Es256 => KeyType::P256,
        };
        let of_type: Vec<&PublicKey> = self
            .public_keys
            .iter()
            .filter(|k| k.key_type == want)
            .collect();
        // A `kid` the configuration knows picks that key (and must be of the right type); a
        // `kid` it does not know may still be checked against keys that have no `kid` (a
        // single PEM or JWK); otherwise it is unknown.
        let candidates: Vec<&PublicKey> = match &parsed.kid {
            Some(kid) if self.public_keys.iter().any(|k| k.kid.as_ref() == Some(kid)) => {
                let named: Vec<&PublicKey> = of_type
                    .into_iter()
                    .filter(|k| k.kid.as_ref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Err(AuthError::KeyTypeMismatch);
                }
                named
            }
            Some(_) => {
                let unnamed: Vec<&PublicKey> = of_type
                    .iter()
                    .copied()
                    .filter(|k| k.kid.is_none())
                    .collect();
                if unnamed.is_empty() {
                    return Err(if of_type.is_empty() {
                        AuthError::KeyTypeMismatch
                    } else {
                        AuthError::UnknownKeyId
                    });
                }
                unnamed
            }
            None => of_type,
        };
        if candidates.is_empty() {
            return Err(AuthError::KeyTypeMismatch);
        }
        for key in candidates {
            if key.verify(parsed)? {
                return Ok(());
            }
        }
        Err(AuthError::BadSignature)
    }
}

/// Issues and verifies guest-cart tokens (HS256 with `guest_token_secret`).
#[derive(Clone)]
pub struct GuestTokens {
    key: HmacKey,
    leeway: u64,
}

impl fmt::Debug for GuestTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestTokens")
            .field("secret", &"[redacted]")
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl GuestTokens {
    /// `guest_token_secret` as its UTF-8 bytes, at least [`MIN_SECRET_BYTES`] long. The
    /// leeway is [`DEFAULT_LEEWAY_SECONDS`].
    pub fn new(secret: &str) -> Result<GuestTokens, ConfigError> {
        Ok(GuestTokens {
            key: HmacKey::new(secret.as_bytes())?,
            leeway: DEFAULT_LEEWAY_SECONDS,
        })
    }

    /// Same, with another clock-skew allowance.
    pub fn with_leeway(mut self, leeway_seconds: u64) -> GuestTokens {
        self.leeway = leeway_seconds;
        self
    }

    /// Issues a token for `guest_id` (random, from the caller) valid for `ttl_seconds` from
    /// `now_unix`: HS256, `sub` = `guest-<guest_id>`, `iss` = [`GUEST_ISSUER`],
    /// `"guest": true`, `iat`, `exp`. The guest id must keep the subject a valid id (so at
    /// most 58 characters of the id charset), else [`AuthError::InvalidSubject`].
    pub fn issue(
        &self,
        guest_id: &str,
        now_unix: u64,
        ttl_seconds: u64,
    ) -> Result<String, AuthError> {
        let subject = format!("{GUEST_SUBJECT_PREFIX}{guest_id}");
        if guest_id.is_empty() || !validate_subject(&subject) {
            return Err(AuthError::InvalidSubject);
        }
        let claims = json!({
            "iss": GUEST_ISSUER,
            "sub": subject,
            "guest": true,
            "iat": now_unix,
            "exp": now_unix.saturating_add(ttl_seconds),
        });
        Ok(token::encode_hs256(&self.key, &claims))
    }

    /// Verifies a token issued by [`GuestTokens::issue`] with this secret.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, AuthError> {
        let parsed = token::parse(token)?;
        if parsed.alg != Algorithm::Hs256 {
            return Err(AuthError::KeyTypeMismatch);
        }
        if !self.key.verify(&parsed)? {
            return Err(AuthError::BadSignature);
        }
        let policy = token::Policy {
            issuer: None,
            audience: None,
            leeway: self.leeway,
        };
        let claims = token::claims(parsed, &policy, now_unix)?;
        if claims.issuer.as_deref() != Some(GUEST_ISSUER) || !claims.guest {
            return Err(AuthError::NotGuestToken);
        }
        match claims.subject.strip_prefix(GUEST_SUBJECT_PREFIX) {
            Some(id) if !id.is_empty() => Ok(claims),
            _ => Err(AuthError::InvalidSubject),
        }
    }
}

/// Signs `claims` (a JSON object) as an HS256 JWT. For tests, demos and tools that mint user
/// tokens for a verifier configured with the same `jwt_hs256_secret`; the service itself only
/// issues guest tokens.
pub fn encode_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    token::encode_hs256(&HmacKey::unchecked(secret), claims)
}
