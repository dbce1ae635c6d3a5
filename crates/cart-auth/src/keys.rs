//! Verification keys: the HMAC secret and the public keys parsed from `jwt_public_key`
//! (PEM, a single JWK or a JWKS).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac as _};
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::{DecodePublicKey as _, ObjectIdentifier};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::error::ConfigError;

/// Shortest accepted HMAC secret, in bytes: RFC 7518 §3.2 requires a key at least as long as the
/// hash output (256 bits) for HS256.
pub const MIN_SECRET_BYTES: usize = 32;

/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// SHA-256 block size: HMAC keys are padded (or hashed, when longer) to this length.
const HMAC_BLOCK: usize = 64;

/// Lenient base64url for configuration data (padding optional); tokens use the strict engine.
const CONFIG_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 for PEM bodies, padding optional.
const PEM_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// rsaEncryption (RFC 8017).
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / P-256 (RFC 5480).
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// An HS256 key, normalised once to the HMAC block size as RFC 2104 does it: a key longer than
/// the block is hashed, a shorter one is zero-padded. HMAC over the normalised key equals HMAC
/// over the original, and building the MAC from a fixed-size key cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HmacKey([u8; HMAC_BLOCK]);

impl HmacKey {
    /// Takes the secret's bytes as given (UTF-8 of the variable), refusing short ones.
    pub(crate) fn new(secret: &[u8]) -> Result<HmacKey, ConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::WeakSecret {
                min_bytes: MIN_SECRET_BYTES,
            });
        }
        Ok(HmacKey::normalise(secret))
    }

    pub(crate) fn normalise(secret: &[u8]) -> HmacKey {
        let mut block = [0u8; HMAC_BLOCK];
        if secret.len() > HMAC_BLOCK {
            let digest = Sha256::digest(secret);
            block[..digest.len()].copy_from_slice(&digest);
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        HmacKey(block)
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.0.into());
        mac.update(data);
        mac
    }

    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 32] {
        self.mac(data).finalize().into_bytes().into()
    }

    /// Constant-time comparison.
    pub(crate) fn verify(&self, data: &[u8], signature: &[u8]) -> bool {
        self.mac(data).verify_slice(signature).is_ok()
    }
}

#[derive(Clone, Debug)]
pub(crate) enum KeyMaterial {
    Rsa(rsa::pkcs1v15::VerifyingKey<Sha256>),
    P256(p256::ecdsa::VerifyingKey),
}

#[derive(Clone, Debug)]
pub(crate) struct PublicKey {
    pub(crate) kid: Option<String>,
    pub(crate) material: KeyMaterial,
}

impl PublicKey {
    fn rsa(kid: Option<String>, key: RsaPublicKey) -> Result<PublicKey, ConfigError> {
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(ConfigError::UnsupportedKey(format!(
                "RSA key of {bits} bits; at least {MIN_RSA_BITS} bits are required"
            )));
        }
        Ok(PublicKey {
            kid,
            material: KeyMaterial::Rsa(rsa::pkcs1v15::VerifyingKey::new(key)),
        })
    }

    fn p256(kid: Option<String>, key: p256::ecdsa::VerifyingKey) -> PublicKey {
        PublicKey {
            kid,
            material: KeyMaterial::P256(key),
        }
    }

    pub(crate) fn is_rsa(&self) -> bool {
        matches!(self.material, KeyMaterial::Rsa(_))
    }

    pub(crate) fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match &self.material {
            KeyMaterial::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .map(|sig| key.verify(signing_input, &sig).is_ok())
                .unwrap_or(false),
            // JWS ES256 signatures are the raw 64-byte r || s (RFC 7518 §3.4), never DER.
            KeyMaterial::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .map(|sig| key.verify(signing_input, &sig).is_ok())
                .unwrap_or(false),
        }
    }
}

/// Parses the `jwt_public_key` variable: a PEM public key, a JWK object or a JWKS.
/// Returns at least one key.
pub(crate) fn parse_public_keys(raw: &str) -> Result<Vec<PublicKey>, ConfigError> {
    let text = raw.trim();
    if text.starts_with('{') {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| ConfigError::InvalidPublicKey("not valid JSON (JWK or JWKS)".into()))?;
        let Value::Object(object) = value else {
            return Err(ConfigError::InvalidPublicKey(
                "a JWK or JWKS must be a JSON object".into(),
            ));
        };
        if object.contains_key("keys") {
            parse_jwks(&object)
        } else {
            parse_jwk(&object)?.map(|key| vec![key]).ok_or_else(|| {
                ConfigError::UnsupportedKey("the JWK is not an RS256 or ES256 signing key".into())
            })
        }
    } else if text.contains("-----BEGIN") {
        parse_pem(text).map(|key| vec![key])
    } else {
        Err(ConfigError::InvalidPublicKey(
            "expected a PEM public key, a JWK or a JWKS".into(),
        ))
    }
}

fn parse_pem(text: &str) -> Result<PublicKey, ConfigError> {
    if text.contains("PRIVATE KEY-----") {
        return Err(ConfigError::UnsupportedKey(
            "a private key was given; configure the public key only".into(),
        ));
    }
    let (label, der) = pem_block(text)?;
    match label {
        "PUBLIC KEY" => {
            let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|_| {
                ConfigError::InvalidPublicKey("the PEM 'PUBLIC KEY' could not be parsed".into())
            })?;
            let (algorithm, parameters) = spki.algorithm.oids().map_err(|_| {
                ConfigError::InvalidPublicKey("the PEM 'PUBLIC KEY' could not be parsed".into())
            })?;
            if algorithm == OID_RSA_ENCRYPTION {
                let key = RsaPublicKey::from_public_key_der(&der).map_err(|_| {
                    ConfigError::InvalidPublicKey("the RSA 'PUBLIC KEY' could not be parsed".into())
                })?;
                PublicKey::rsa(None, key)
            } else if algorithm == OID_EC_PUBLIC_KEY {
                if parameters != Some(OID_P256) {
                    return Err(ConfigError::UnsupportedKey(
                        "only the EC curve P-256 (ES256) is supported".into(),
                    ));
                }
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|_| {
                    ConfigError::InvalidPublicKey(
                        "the P-256 'PUBLIC KEY' could not be parsed".into(),
                    )
                })?;
                Ok(PublicKey::p256(None, key))
            } else {
                Err(ConfigError::UnsupportedKey(
                    "the PEM 'PUBLIC KEY' is neither an RSA key nor an EC P-256 key".into(),
                ))
            }
        }
        "RSA PUBLIC KEY" => {
            let key = RsaPublicKey::from_pkcs1_der(&der).map_err(|_| {
                ConfigError::InvalidPublicKey("the PEM 'RSA PUBLIC KEY' could not be parsed".into())
            })?;
            PublicKey::rsa(None, key)
        }
        "CERTIFICATE" => Err(ConfigError::UnsupportedKey(
            "certificates are not supported; configure the PEM public key or a JWK".into(),
        )),
        _ => Err(ConfigError::UnsupportedKey(
            "expected a PEM block labelled 'PUBLIC KEY' or 'RSA PUBLIC KEY'".into(),
        )),
    }
}

/// The label and DER body of the single PEM block in `text`. Lenient about what RFC 7468's
/// strict form fixes (line width, CRLF, surrounding text) and about literal `\n` escapes, as
/// values passed through environment variables or one-line TOML often carry them.
fn pem_block(text: &str) -> Result<(&str, Vec<u8>), ConfigError> {
    let invalid = || ConfigError::InvalidPublicKey("not a well-formed PEM block".into());
    let after_begin = text.split_once("-----BEGIN ").ok_or_else(invalid)?.1;
    let (label, rest) = after_begin.split_once("-----").ok_or_else(invalid)?;
    let end_marker = format!("-----END {label}-----");
    let (body, after_end) = rest.split_once(&end_marker).ok_or_else(invalid)?;
    if after_end.contains("-----BEGIN ") {
        return Err(ConfigError::InvalidPublicKey(
            "expected exactly one PEM block".into(),
        ));
    }
    let body = body.replace("\\r", "").replace("\\n", "");
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = PEM_B64.decode(base64).map_err(|_| invalid())?;
    Ok((label, der))
}

fn parse_jwks(object: &Map<String, Value>) -> Result<Vec<PublicKey>, ConfigError> {
    let Some(Value::Array(entries)) = object.get("keys") else {
        return Err(ConfigError::InvalidPublicKey(
            "JWKS 'keys' must be an array".into(),
        ));
    };
    let mut keys = Vec::new();
    for entry in entries {
        let Value::Object(jwk) = entry else {
            return Err(ConfigError::InvalidPublicKey(
                "every JWKS entry must be a JSON object".into(),
            ));
        };
        // Keys of other types, curves or uses are skipped: an identity provider's JWKS may
        // well carry them next to the signing key we use.
        if let Some(key) = parse_jwk(jwk)? {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(ConfigError::UnsupportedKey(
            "the JWKS has no RS256 or ES256 signing key".into(),
        ));
    }
    Ok(keys)
}

/// `Ok(None)`: a well-formed key this crate does not use (other type, curve, `use` or `alg`).
fn parse_jwk(jwk: &Map<String, Value>) -> Result<Option<PublicKey>, ConfigError> {
    let kty = string_member(jwk, "kty")?
        .ok_or_else(|| ConfigError::InvalidPublicKey("a JWK has no 'kty'".into()))?;
    if kty == "oct" {
        return Err(ConfigError::UnsupportedKey(
            "symmetric (kty 'oct') keys belong in jwt_hs256_secret, not jwt_public_key".into(),
        ));
    }
    if jwk.contains_key("d") {
        return Err(ConfigError::UnsupportedKey(
            "a private JWK was given (it has 'd'); configure the public key only".into(),
        ));
    }
    if let Some(usage) = string_member(jwk, "use")? {
        if usage != "sig" {
            return Ok(None);
        }
    }
    let kid = string_member(jwk, "kid")?.map(str::to_owned);
    let alg = string_member(jwk, "alg")?;
    match kty {
        "RSA" => {
            if alg.is_some_and(|a| a != "RS256") {
                return Ok(None);
            }
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
                .map_err(|_| {
                    ConfigError::InvalidPublicKey("the RSA JWK has an invalid 'n' or 'e'".into())
                })?;
            PublicKey::rsa(kid, key).map(Some)
        }
        "EC" => {
            if alg.is_some_and(|a| a != "ES256") || string_member(jwk, "crv")? != Some("P-256") {
                return Ok(None);
            }
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(ConfigError::InvalidPublicKey(
                    "the P-256 JWK 'x' and 'y' must be 32 bytes each".into(),
                ));
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| {
                ConfigError::InvalidPublicKey("the P-256 JWK point is not on the curve".into())
            })?;
            Ok(Some(PublicKey::p256(kid, key)))
        }
        _ => Ok(None),
    }
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ConfigError> {
    match jwk.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ConfigError::InvalidPublicKey(format!(
            "JWK member '{name}' must be a string"
        ))),
    }
}

fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, ConfigError> {
    let text = string_member(jwk, name)?
        .ok_or_else(|| ConfigError::InvalidPublicKey(format!("the JWK has no '{name}'")))?;
    CONFIG_B64
        .decode(text)
        .map_err(|_| ConfigError::InvalidPublicKey(format!("JWK member '{name}' is not base64url")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231 vectors: the block-normalised key gives the standard HMAC for short, exact
    /// and longer-than-block keys.
    #[test]
    fn hmac_matches_rfc_4231() {
        let short = HmacKey::normalise(b"Jefe");
        assert_eq!(
            hex(&short.sign(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long = HmacKey::normalise(&[0xaa; 131]);
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let expected = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
        assert_eq!(hex(&long.sign(data)), expected);
        assert!(long.verify(data, &long.sign(data)));
        assert!(!long.verify(data, &[0u8; 32]));
        assert!(!long.verify(data, &long.sign(data)[..31]));
    }

    #[test]
    fn exact_block_key_matches_the_hmac_crate() {
        let key = [7u8; 64];
        let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        reference.update(b"data");
        let expected = reference.finalize().into_bytes();
        assert_eq!(HmacKey::normalise(&key).sign(b"data")[..], expected[..]);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(HmacKey::new(&[1u8; 31]).is_err());
        assert!(HmacKey::new(&[1u8; 32]).is_ok());
    }
}
