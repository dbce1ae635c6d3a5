//! Verification keys: the HS256 secret, and the public keys of `jwt_public_key` (a PEM, a JWK or
//! a JWKS) or of a key set fetched from `jwt_jwks_url`.
//!
//! Decoding is `jsonwebtoken`'s (PEM and JWK). This module holds the policy it does not: which
//! keys are accepted (RSA of at least [`MIN_RSA_BITS`] bits for RS256, EC P-256 for ES256,
//! signing keys only, never private or symmetric ones), checked when the configuration is
//! loaded rather than on the first token, and which key type each one is.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, DecodingKeyKind, EncodingKey};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};

use crate::error::{AuthError, ConfigError};
use crate::token::{Algorithm, Token};

/// Shortest accepted HMAC secret, in bytes: RFC 7518 §3.2 requires a key at least as long as the
/// hash output (256 bits) for HS256.
pub const MIN_SECRET_BYTES: usize = 32;

/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// An HS256 secret (the UTF-8 bytes of the variable).
#[derive(Clone)]
pub(crate) struct HmacKey {
    secret: Vec<u8>,
    decoding: DecodingKey,
}

impl PartialEq for HmacKey {
    fn eq(&self, other: &HmacKey) -> bool {
        self.secret == other.secret
    }
}

impl HmacKey {
    /// Refuses secrets shorter than [`MIN_SECRET_BYTES`].
    pub(crate) fn new(secret: &[u8]) -> Result<HmacKey, ConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::WeakSecret {
                min_bytes: MIN_SECRET_BYTES,
            });
        }
        Ok(HmacKey {
            secret: secret.to_vec(),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Any length, for [`crate::encode_hs256`] (a minting helper for tests and tools).
    pub(crate) fn unchecked(secret: &[u8]) -> HmacKey {
        HmacKey {
            secret: secret.to_vec(),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub(crate) fn encoding(&self) -> EncodingKey {
        EncodingKey::from_secret(&self.secret)
    }

    pub(crate) fn verify(&self, token: &Token<'_>) -> Result<bool, AuthError> {
        check_signature(token, &self.decoding, Algorithm::Hs256)
    }
}

/// The type of a public key, which fixes the one algorithm it may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// RS256 only.
    Rsa,
    /// ES256 only.
    P256,
}

impl KeyType {
    pub(crate) fn algorithm(self) -> Algorithm {
        match self {
            KeyType::Rsa => Algorithm::Rs256,
            KeyType::P256 => Algorithm::Es256,
        }
    }
}

#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) kid: Option<String>,
    pub(crate) key_type: KeyType,
    decoding: DecodingKey,
}

impl PublicKey {
    /// Checks the token's signature with this key, under this key's own algorithm.
    pub(crate) fn verify(&self, token: &Token<'_>) -> Result<bool, AuthError> {
        check_signature(token, &self.decoding, self.key_type.algorithm())
    }
}

/// `Ok(false)` for a signature that does not verify (including a DER-encoded ES256 one: JWS
/// wants the raw `r || s`), `Malformed` when the signature part is not base64url.
fn check_signature(
    token: &Token<'_>,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<bool, AuthError> {
    match jsonwebtoken::crypto::verify(token.signature, token.message.as_bytes(), key, alg.jwt()) {
        Ok(valid) => Ok(valid),
        Err(e) if matches!(e.kind(), ErrorKind::Base64(_)) => Err(AuthError::Malformed),
        Err(_) => Ok(false),
    }
}

fn invalid(why: impl Into<String>) -> ConfigError {
    ConfigError::InvalidPublicKey(why.into())
}

fn unsupported(why: impl Into<String>) -> ConfigError {
    ConfigError::UnsupportedKey(why.into())
}

/// Parses the `jwt_public_key` variable: a PEM public key, a JWK object or a JWKS.
/// Returns at least one key.
pub(crate) fn parse_public_keys(raw: &str) -> Result<Vec<PublicKey>, ConfigError> {
    let text = raw.trim();
    if text.starts_with('{') {
        let object = json_object(text)?;
        if object.contains_key("keys") {
            parse_jwks(&object)
        } else {
            parse_jwk(&object)?
                .map(|key| vec![key])
                .ok_or_else(|| unsupported("the JWK is not an RS256 or ES256 signing key"))
        }
    } else if text.contains("-----BEGIN") {
        parse_pem(text).map(|key| vec![key])
    } else {
        Err(invalid("expected a PEM public key, a JWK or a JWKS"))
    }
}

/// Parses a key set fetched from `jwt_jwks_url`: a JWKS (`{"keys":[...]}`) and nothing else.
pub(crate) fn parse_key_set(raw: &str) -> Result<Vec<PublicKey>, ConfigError> {
    let object = json_object(raw.trim())?;
    if !object.contains_key("keys") {
        return Err(invalid("a key set must be a JWKS object with 'keys'"));
    }
    parse_jwks(&object)
}

fn json_object(text: &str) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(invalid("a JWK or JWKS must be a JSON object")),
        Err(_) => Err(invalid("not valid JSON (JWK or JWKS)")),
    }
}

fn parse_pem(text: &str) -> Result<PublicKey, ConfigError> {
    if text.contains("PRIVATE KEY-----") {
        return Err(unsupported(
            "a private key was given; configure the public key only",
        ));
    }
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(unsupported(
            "certificates are not supported; configure the PEM public key or a JWK",
        ));
    }
    if text.matches("-----BEGIN ").count() != 1 {
        return Err(invalid("expected exactly one PEM block"));
    }
    if !text.contains("-----BEGIN PUBLIC KEY-----")
        && !text.contains("-----BEGIN RSA PUBLIC KEY-----")
    {
        return Err(unsupported(
            "expected a PEM block labelled 'PUBLIC KEY' or 'RSA PUBLIC KEY'",
        ));
    }
    // Values passed through environment variables or one-line TOML often carry literal `\n`.
    let pem = text.replace("\\r", "").replace("\\n", "\n");
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return rsa_key(None, key);
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
        return p256_key(None, key, Curve::FromPoint);
    }
    if DecodingKey::from_ed_pem(pem.as_bytes()).is_ok() {
        return Err(unsupported(
            "the PEM 'PUBLIC KEY' is neither an RSA key nor an EC P-256 key",
        ));
    }
    Err(invalid("the PEM public key could not be parsed"))
}

/// Checks what jsonwebtoken only finds out when verifying: the RSA key decodes and is large
/// enough.
fn rsa_key(kid: Option<String>, decoding: DecodingKey) -> Result<PublicKey, ConfigError> {
    let key = match decoding.kind() {
        DecodingKeyKind::SecretOrDer(pkcs1) => RsaPublicKey::from_pkcs1_der(pkcs1)
            .map_err(|_| invalid("the RSA public key could not be parsed"))?,
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                .map_err(|_| invalid("the RSA JWK has an invalid 'n' or 'e'"))?
        }
    };
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(unsupported(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} bits are required"
        )));
    }
    Ok(PublicKey {
        kid,
        key_type: KeyType::Rsa,
        decoding,
    })
}

/// How the curve of an EC key is known.
enum Curve {
    /// A JWK that says `crv: P-256`: any other point is a broken key.
    DeclaredP256,
    /// A PEM: the point's length tells the curve.
    FromPoint,
}

/// Checks that the EC key is a point on P-256 (jsonwebtoken would accept any bytes here and
/// fail every verification later).
fn p256_key(
    kid: Option<String>,
    decoding: DecodingKey,
    curve: Curve,
) -> Result<PublicKey, ConfigError> {
    let DecodingKeyKind::SecretOrDer(point) = decoding.kind() else {
        return Err(invalid("the EC public key could not be parsed"));
    };
    if p256::PublicKey::from_sec1_bytes(point).is_err() {
        // 65 bytes is an uncompressed P-256 point, 33 a compressed one; in a PEM any other
        // length is another curve (P-384 is 97).
        return Err(match curve {
            Curve::DeclaredP256 if point.len() != 65 => {
                invalid("the P-256 JWK 'x' and 'y' must be 32 bytes each")
            }
            Curve::FromPoint if !matches!(point.len(), 33 | 65) => {
                unsupported("only the EC curve P-256 (ES256) is supported")
            }
            _ => invalid("the P-256 public key is not a point on the curve"),
        });
    }
    Ok(PublicKey {
        kid,
        key_type: KeyType::P256,
        decoding,
    })
}

fn parse_jwks(object: &Map<String, Value>) -> Result<Vec<PublicKey>, ConfigError> {
    let Some(Value::Array(entries)) = object.get("keys") else {
        return Err(invalid("JWKS 'keys' must be an array"));
    };
    let mut keys = Vec::new();
    for entry in entries {
        let Value::Object(jwk) = entry else {
            return Err(invalid("every JWKS entry must be a JSON object"));
        };
        // Keys of other types, curves or uses are skipped: an identity provider's JWKS may
        // well carry them next to the signing key we use.
        if let Some(key) = parse_jwk(jwk)? {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(unsupported("the JWKS has no RS256 or ES256 signing key"));
    }
    Ok(keys)
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ConfigError> {
    match jwk.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(format!("JWK member '{name}' must be a string"))),
    }
}

/// `Ok(None)`: a well-formed key this crate does not use (other type, curve, `use` or `alg`).
/// The members that decide that are looked at first, so that a key we skip never fails on
/// what jsonwebtoken's JWK type does not know (a new `alg`, an unusual curve).
fn parse_jwk(jwk: &Map<String, Value>) -> Result<Option<PublicKey>, ConfigError> {
    let kty = string_member(jwk, "kty")?.ok_or_else(|| invalid("a JWK has no 'kty'"))?;
    if kty == "oct" {
        return Err(unsupported(
            "symmetric (kty 'oct') keys belong in jwt_hs256_secret, not jwt_public_key",
        ));
    }
    if jwk.contains_key("d") {
        return Err(unsupported(
            "a private JWK was given (it has 'd'); configure the public key only",
        ));
    }
    if string_member(jwk, "use")?.is_some_and(|usage| usage != "sig") {
        return Ok(None);
    }
    let alg = string_member(jwk, "alg")?;
    let usable = match kty {
        "RSA" => alg.is_none_or(|a| a == "RS256"),
        "EC" => alg.is_none_or(|a| a == "ES256") && string_member(jwk, "crv")? == Some("P-256"),
        _ => false,
    };
    if !usable {
        return Ok(None);
    }
    let parsed: Jwk = serde_json::from_value(Value::Object(jwk.clone()))
        .map_err(|_| invalid(format!("the {kty} JWK could not be parsed")))?;
    let kid = parsed.common.key_id.clone();
    let decoding = DecodingKey::from_jwk(&parsed)
        .map_err(|_| invalid(format!("the {kty} JWK members are not base64url")))?;
    if kty == "RSA" {
        rsa_key(kid, decoding).map(Some)
    } else {
        p256_key(kid, decoding, Curve::DeclaredP256).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231 vectors through the HS256 this crate signs and verifies with: standard HMAC for
    /// short and longer-than-block keys (the secret's UTF-8 bytes are the key, as given).
    #[test]
    fn hs256_matches_rfc_4231() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let cases = [
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, expected) in cases {
            let key = HmacKey::unchecked(&key);
            let signature =
                jsonwebtoken::crypto::sign(&data, &key.encoding(), Algorithm::Hs256.jwt()).unwrap();
            assert_eq!(hex(&URL_SAFE_NO_PAD.decode(signature).unwrap()), expected);
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(HmacKey::new(&[1u8; 31]).is_err());
        assert!(HmacKey::new(&[1u8; 32]).is_ok());
    }

    #[test]
    fn a_key_set_must_be_a_jwks() {
        let one_jwk = r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#;
        assert!(matches!(
            parse_key_set(one_jwk),
            Err(ConfigError::InvalidPublicKey(_))
        ));
        assert!(matches!(
            parse_key_set("-----BEGIN PUBLIC KEY-----"),
            Err(ConfigError::InvalidPublicKey(_))
        ));
    }
}
