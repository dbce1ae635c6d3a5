//! Token minting for the tests, written against the RustCrypto crates directly (not through
//! the crate under test), plus fixed keys.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::{SignatureEncoding as _, Signer as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::Sha256;

use cart_auth::{Verifier, VerifierConfig};

pub const NOW: u64 = 1_700_000_000;
pub const HS_SECRET: &str = "user-secret-0123456789abcdef-0123456789";
pub const GUEST_SECRET: &str = "guest-secret-0123456789abcdef-012345678";

pub const RSA_PRIVATE_PEM: &str = include_str!("../fixtures/rsa_private.pem");
pub const RSA_PUBLIC_PEM: &str = include_str!("../fixtures/rsa_public.pem");
pub const RSA_PUBLIC_PKCS1_PEM: &str = include_str!("../fixtures/rsa_public_pkcs1.pem");
pub const RSA2_PRIVATE_PEM: &str = include_str!("../fixtures/rsa2_private.pem");
pub const RSA1024_PUBLIC_PEM: &str = include_str!("../fixtures/rsa1024_public.pem");
pub const EC_P384_PUBLIC_PEM: &str = include_str!("../fixtures/ec_p384_public.pem");
pub const RS256_OPENSSL_JWT: &str = include_str!("../fixtures/rs256_openssl.jwt");
pub const HS256_OPENSSL_JWT: &str = include_str!("../fixtures/hs256_openssl.jwt");
pub const OPENSSL_HS_SECRET: &str = "openssl-test-secret-0123456789abcdef";

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn rsa_private() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(RSA_PRIVATE_PEM).unwrap()
}

pub fn rsa2_private() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(RSA2_PRIVATE_PEM).unwrap()
}

/// A P-256 key from a fixed scalar (`seed` must be non-zero and below the curve order).
pub fn ec_private(seed: u8) -> p256::ecdsa::SigningKey {
    let mut scalar = [0x11u8; 32];
    scalar[31] = seed;
    p256::ecdsa::SigningKey::from_slice(&scalar).unwrap()
}

pub fn ec_public_pem(key: &p256::ecdsa::SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

pub fn rsa_jwk(key: &RsaPublicKey, kid: Option<&str>) -> Value {
    let mut jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "n": b64(key.n().to_bytes_be()),
        "e": b64(key.e().to_bytes_be()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

pub fn ec_jwk(key: &p256::ecdsa::SigningKey, kid: Option<&str>) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    let mut jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64(point.x().unwrap()),
        "y": b64(point.y().unwrap()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

pub enum Signer<'a> {
    Hs(&'a [u8]),
    Rs(&'a RsaPrivateKey),
    Es(&'a p256::ecdsa::SigningKey),
    /// An empty signature (for `alg: none`).
    Unsigned,
}

pub fn sign_input(input: &str, signer: &Signer<'_>) -> Vec<u8> {
    match signer {
        Signer::Hs(secret) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signer::Rs(key) => {
            let signing = rsa::pkcs1v15::SigningKey::<Sha256>::new((*key).clone());
            signing.sign(input.as_bytes()).to_vec()
        }
        Signer::Es(key) => {
            let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
            signature.to_bytes().to_vec()
        }
        Signer::Unsigned => Vec::new(),
    }
}

/// A compact JWS of any header and payload bytes.
pub fn token_raw(header: &Value, payload: &[u8], signer: &Signer<'_>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload));
    let signature = sign_input(&input, signer);
    format!("{input}.{}", b64(signature))
}

pub fn token(header: &Value, claims: &Value, signer: &Signer<'_>) -> String {
    token_raw(header, claims.to_string().as_bytes(), signer)
}

pub fn header(alg: &str) -> Value {
    json!({ "alg": alg, "typ": "JWT" })
}

pub fn header_kid(alg: &str, kid: &str) -> Value {
    json!({ "alg": alg, "typ": "JWT", "kid": kid })
}

/// Valid user claims at [`NOW`].
pub fn user_claims() -> Value {
    json!({ "sub": "user-1", "iat": NOW, "exp": NOW + 600 })
}

pub fn hs_token(claims: &Value) -> String {
    token(&header("HS256"), claims, &Signer::Hs(HS_SECRET.as_bytes()))
}

pub fn hs_verifier() -> Verifier {
    Verifier::new(&VerifierConfig {
        hs256_secret: Some(HS_SECRET.into()),
        ..VerifierConfig::default()
    })
    .unwrap()
}

pub fn public_key_verifier(public_key: &str) -> Verifier {
    Verifier::new(&VerifierConfig {
        public_key: Some(public_key.into()),
        ..VerifierConfig::default()
    })
    .unwrap()
}

pub fn rsa_verifier() -> Verifier {
    public_key_verifier(RSA_PUBLIC_PEM)
}
