mod common;

use cart_auth::{
    bearer_token, encode_hs256, Algorithm, AuthError, ConfigError, Verifier, VerifierConfig,
    GUEST_ISSUER,
};
use common::*;
use serde_json::json;

fn config() -> VerifierConfig {
    VerifierConfig::default()
}

// ---------- valid tokens ----------

#[test]
fn hs256_valid_token() {
    let claims = hs_verifier()
        .verify(&hs_token(&user_claims()), NOW)
        .unwrap();
    assert_eq!(claims.subject, "user-1");
    assert_eq!(claims.expires_at, NOW + 600);
    assert_eq!(claims.issued_at, Some(NOW));
    assert_eq!(claims.algorithm, Algorithm::Hs256);
    assert!(!claims.guest);
    assert_eq!(claims.guest_id(), None);
}

#[test]
fn hs256_secret_longer_than_the_hmac_block() {
    let secret = "x".repeat(100);
    let verifier = Verifier::new(&VerifierConfig {
        hs256_secret: Some(secret.clone()),
        ..config()
    })
    .unwrap();
    let token = token(
        &header("HS256"),
        &user_claims(),
        &Signer::Hs(secret.as_bytes()),
    );
    assert_eq!(verifier.verify(&token, NOW).unwrap().subject, "user-1");
}

#[test]
fn rs256_valid_with_spki_pem() {
    let key = rsa_private();
    let token = token(&header("RS256"), &user_claims(), &Signer::Rs(&key));
    let claims = rsa_verifier().verify(&token, NOW).unwrap();
    assert_eq!(claims.subject, "user-1");
    assert_eq!(claims.algorithm, Algorithm::Rs256);
}

#[test]
fn rs256_valid_with_pkcs1_pem() {
    let key = rsa_private();
    let token = token(&header("RS256"), &user_claims(), &Signer::Rs(&key));
    let verifier = public_key_verifier(RSA_PUBLIC_PKCS1_PEM);
    assert_eq!(verifier.verify(&token, NOW).unwrap().subject, "user-1");
}

#[test]
fn rs256_valid_with_one_line_escaped_pem() {
    let one_line = RSA_PUBLIC_PEM.trim().replace('\n', "\\n");
    assert!(!one_line.contains('\n'));
    let key = rsa_private();
    let token = token(&header("RS256"), &user_claims(), &Signer::Rs(&key));
    let verifier = public_key_verifier(&one_line);
    assert_eq!(verifier.verify(&token, NOW).unwrap().subject, "user-1");
}

#[test]
fn pem_line_width_and_crlf_do_not_matter() {
    let lines: Vec<&str> = RSA_PUBLIC_PEM.lines().collect();
    let body: String = lines[1..lines.len() - 1].concat();
    let one_body_line = format!("{}\n{body}\n{}\n", lines[0], lines[lines.len() - 1]);
    let crlf = RSA_PUBLIC_PEM.replace('\n', "\r\n");
    let key = rsa_private();
    let token = token(&header("RS256"), &user_claims(), &Signer::Rs(&key));
    for pem in [one_body_line, crlf] {
        assert_eq!(
            public_key_verifier(&pem)
                .verify(&token, NOW)
                .unwrap()
                .subject,
            "user-1"
        );
    }
}

#[test]
fn rs256_valid_with_jwk() {
    let key = rsa_private();
    let jwk = rsa_jwk(&key.to_public_key(), None).to_string();
    let token = token(&header("RS256"), &user_claims(), &Signer::Rs(&key));
    assert_eq!(
        public_key_verifier(&jwk)
            .verify(&token, NOW)
            .unwrap()
            .subject,
        "user-1"
    );
}

#[test]
fn rs256_token_made_by_openssl() {
    let verifier = Verifier::new(&VerifierConfig {
        public_key: Some(RSA_PUBLIC_PEM.into()),
        issuer: Some("https://idp.example".into()),
        audience: Some("cart".into()),
        ..config()
    })
    .unwrap();
    let claims = verifier.verify(RS256_OPENSSL_JWT, NOW).unwrap();
    assert_eq!(claims.subject, "user-42");
    assert_eq!(claims.issuer.as_deref(), Some("https://idp.example"));
    assert_eq!(
        claims.audience,
        vec!["cart".to_string(), "other".to_string()]
    );
    assert_eq!(claims.key_id.as_deref(), Some("openssl-rsa"));
    assert_eq!(claims.expires_at, 4_102_444_800);
}

#[test]
fn hs256_token_made_by_openssl() {
    let verifier = Verifier::new(&VerifierConfig {
        hs256_secret: Some(OPENSSL_HS_SECRET.into()),
        ..config()
    })
    .unwrap();
    assert_eq!(
        verifier.verify(HS256_OPENSSL_JWT, NOW).unwrap().subject,
        "user-42"
    );
}

#[test]
fn es256_valid_with_pem() {
    let key = ec_private(1);
    let token = token(&header("ES256"), &user_claims(), &Signer::Es(&key));
    let verifier = public_key_verifier(&ec_public_pem(&key));
    let claims = verifier.verify(&token, NOW).unwrap();
    assert_eq!(claims.subject, "user-1");
    assert_eq!(claims.algorithm, Algorithm::Es256);
}

#[test]
fn es256_valid_with_jwk() {
    let key = ec_private(2);
    let token = token(&header("ES256"), &user_claims(), &Signer::Es(&key));
    let verifier = public_key_verifier(&ec_jwk(&key, Some("ec-1")).to_string());
    assert_eq!(verifier.verify(&token, NOW).unwrap().subject, "user-1");
}

#[test]
fn es256_der_signature_is_refused() {
    let key = ec_private(2);
    let input = format!(
        "{}.{}",
        b64(header("ES256").to_string()),
        b64(user_claims().to_string())
    );
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&key, input.as_bytes());
    let token = format!("{input}.{}", b64(signature.to_der().as_bytes()));
    let verifier = public_key_verifier(&ec_public_pem(&key));
    assert_eq!(verifier.verify(&token, NOW), Err(AuthError::BadSignature));
}

// ---------- JWKS and kid ----------

fn jwks_verifier() -> Verifier {
    let jwks = json!({ "keys": [
        rsa_jwk(&rsa_private().to_public_key(), Some("r1")),
        rsa_jwk(&rsa2_private().to_public_key(), Some("r2")),
        ec_jwk(&ec_private(3), Some("e1")),
        // Keys this crate does not use are skipped, not fatal.
        { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed" },
        { "kty": "EC", "crv": "P-384", "kid": "p384",
          "x": "AAAA", "y": "AAAA" },
        { "kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB" },
    ]});
    public_key_verifier(&jwks.to_string())
}

#[test]
fn jwks_picks_the_key_by_kid() {
    let verifier = jwks_verifier();
    let rsa2 = rsa2_private();
    let token2 = token(
        &header_kid("RS256", "r2"),
        &user_claims(),
        &Signer::Rs(&rsa2),
    );
    let claims = verifier.verify(&token2, NOW).unwrap();
    assert_eq!(claims.key_id.as_deref(), Some("r2"));

    let ec = ec_private(3);
    let token_ec = token(&header_kid("ES256", "e1"), &user_claims(), &Signer::Es(&ec));
    assert_eq!(verifier.verify(&token_ec, NOW).unwrap().subject, "user-1");

    // Signed by r2 but naming r1: only r1 is tried.
    let wrong = token(
        &header_kid("RS256", "r1"),
        &user_claims(),
        &Signer::Rs(&rsa2),
    );
    assert_eq!(verifier.verify(&wrong, NOW), Err(AuthError::BadSignature));
}

#[test]
fn jwks_unknown_kid_is_refused() {
    let token = token(
        &header_kid("RS256", "nope"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    assert_eq!(
        jwks_verifier().verify(&token, NOW),
        Err(AuthError::UnknownKeyId)
    );
}

#[test]
fn jwks_kid_of_another_key_type_is_a_mismatch() {
    // kid e1 names the EC key, but the token claims RS256.
    let token = token(
        &header_kid("RS256", "e1"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    assert_eq!(
        jwks_verifier().verify(&token, NOW),
        Err(AuthError::KeyTypeMismatch)
    );
}

#[test]
fn jwks_without_token_kid_tries_the_keys_of_the_right_type() {
    let token = token(
        &header("RS256"),
        &user_claims(),
        &Signer::Rs(&rsa2_private()),
    );
    assert_eq!(
        jwks_verifier().verify(&token, NOW).unwrap().subject,
        "user-1"
    );
}

#[test]
fn single_pem_ignores_an_unknown_token_kid() {
    let token = token(
        &header_kid("RS256", "rotated-2024"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    assert_eq!(
        rsa_verifier().verify(&token, NOW).unwrap().subject,
        "user-1"
    );
}

#[test]
fn jwks_with_no_usable_key_is_a_config_error() {
    let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": "AAAA" }] }).to_string();
    let err = Verifier::new(&VerifierConfig {
        public_key: Some(jwks),
        ..config()
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::UnsupportedKey(_)), "{err:?}");
}

// ---------- time ----------

#[test]
fn expired_token_is_refused() {
    let verifier = hs_verifier();
    let token = hs_token(&json!({ "sub": "user-1", "exp": NOW - 31 }));
    assert_eq!(verifier.verify(&token, NOW), Err(AuthError::Expired));
    // exp + leeway == now is already expired.
    let token = hs_token(&json!({ "sub": "user-1", "exp": NOW - 30 }));
    assert_eq!(verifier.verify(&token, NOW), Err(AuthError::Expired));
}

#[test]
fn leeway_is_honoured_for_exp() {
    let token = hs_token(&json!({ "sub": "user-1", "exp": NOW - 10 }));
    assert!(hs_verifier().verify(&token, NOW).is_ok());
    let strict = Verifier::new(&VerifierConfig {
        hs256_secret: Some(HS_SECRET.into()),
        leeway_seconds: 0,
        ..config()
    })
    .unwrap();
    assert_eq!(strict.verify(&token, NOW), Err(AuthError::Expired));
    let token = hs_token(&json!({ "sub": "user-1", "exp": NOW }));
    assert_eq!(strict.verify(&token, NOW), Err(AuthError::Expired));
    let token = hs_token(&json!({ "sub": "user-1", "exp": NOW + 1 }));
    assert!(strict.verify(&token, NOW).is_ok());
}

#[test]
fn nbf_in_the_future_is_refused_and_leeway_applies() {
    let verifier = hs_verifier();
    let future = hs_token(&json!({ "sub": "user-1", "exp": NOW + 600, "nbf": NOW + 31 }));
    assert_eq!(verifier.verify(&future, NOW), Err(AuthError::NotYetValid));
    let within = hs_token(&json!({ "sub": "user-1", "exp": NOW + 600, "nbf": NOW + 30 }));
    assert!(verifier.verify(&within, NOW).is_ok());
    let past = hs_token(&json!({ "sub": "user-1", "exp": NOW + 600, "nbf": NOW - 5 }));
    assert_eq!(
        verifier.verify(&past, NOW).unwrap().not_before,
        Some(NOW - 5)
    );
}

#[test]
fn missing_exp_is_refused() {
    let token = hs_token(&json!({ "sub": "user-1" }));
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(AuthError::MissingExpiry)
    );
    let token = hs_token(&json!({ "sub": "user-1", "exp": null }));
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(AuthError::MissingExpiry)
    );
}

#[test]
fn fractional_numeric_dates_are_accepted() {
    let token = hs_token(&json!({ "sub": "user-1", "exp": (NOW + 60) as f64 + 0.5 }));
    assert_eq!(
        hs_verifier().verify(&token, NOW).unwrap().expires_at,
        NOW + 60
    );
}

// ---------- signatures and algorithms ----------

fn tamper_payload(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(json!({ "sub": "admin", "exp": NOW + 600 }).to_string());
    format!("{}.{}.{}", parts[0], forged, parts[2])
}

#[test]
fn tampered_payload_is_a_bad_signature() {
    let hs = hs_token(&user_claims());
    assert_eq!(
        hs_verifier().verify(&tamper_payload(&hs), NOW),
        Err(AuthError::BadSignature)
    );

    let rs = token(
        &header("RS256"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    assert_eq!(
        rsa_verifier().verify(&tamper_payload(&rs), NOW),
        Err(AuthError::BadSignature)
    );

    let ec = ec_private(4);
    let es = token(&header("ES256"), &user_claims(), &Signer::Es(&ec));
    let verifier = public_key_verifier(&ec_public_pem(&ec));
    assert_eq!(
        verifier.verify(&tamper_payload(&es), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn token_signed_by_another_key_is_a_bad_signature() {
    let other_secret = token(
        &header("HS256"),
        &user_claims(),
        &Signer::Hs(b"another-secret-0123456789abcdef-0123456789"),
    );
    assert_eq!(
        hs_verifier().verify(&other_secret, NOW),
        Err(AuthError::BadSignature)
    );
    let other_rsa = token(
        &header("RS256"),
        &user_claims(),
        &Signer::Rs(&rsa2_private()),
    );
    assert_eq!(
        rsa_verifier().verify(&other_rsa, NOW),
        Err(AuthError::BadSignature)
    );
    let other_ec = token(
        &header("ES256"),
        &user_claims(),
        &Signer::Es(&ec_private(5)),
    );
    let verifier = public_key_verifier(&ec_public_pem(&ec_private(6)));
    assert_eq!(
        verifier.verify(&other_ec, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn empty_signature_is_refused() {
    let token = hs_token(&user_claims());
    let unsigned = format!("{}.", token.rsplit_once('.').unwrap().0);
    assert_eq!(
        hs_verifier().verify(&unsigned, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn alg_none_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = token(&header(alg), &user_claims(), &Signer::Unsigned);
        assert!(token.ends_with('.'));
        for verifier in [hs_verifier(), rsa_verifier()] {
            assert_eq!(
                verifier.verify(&token, NOW),
                Err(AuthError::UnsupportedAlgorithm(alg.into()))
            );
        }
    }
}

#[test]
fn algorithms_outside_the_allow_list_are_refused() {
    for alg in [
        "HS384", "HS512", "RS384", "RS512", "PS256", "ES384", "ES512", "EdDSA", "hs256", "",
    ] {
        let token = token(
            &header(alg),
            &user_claims(),
            &Signer::Hs(HS_SECRET.as_bytes()),
        );
        assert_eq!(
            hs_verifier().verify(&token, NOW),
            Err(AuthError::UnsupportedAlgorithm(alg.into())),
            "{alg}"
        );
    }
}

#[test]
fn key_confusion_hs256_signed_with_the_rsa_public_key_is_refused() {
    // The attacker signs an HS256 token using the public key PEM (or its DER) as HMAC secret.
    for secret in [RSA_PUBLIC_PEM, RSA_PUBLIC_PEM.trim()] {
        let forged = token(
            &header("HS256"),
            &user_claims(),
            &Signer::Hs(secret.as_bytes()),
        );
        assert_eq!(
            rsa_verifier().verify(&forged, NOW),
            Err(AuthError::KeyTypeMismatch)
        );
        // With a JWK or JWKS configured too.
        let jwk = rsa_jwk(&rsa_private().to_public_key(), None).to_string();
        assert_eq!(
            public_key_verifier(&jwk).verify(&forged, NOW),
            Err(AuthError::KeyTypeMismatch)
        );
        // When both an HS secret and the RSA key are configured, the HS secret is the only
        // HMAC key, so the forgery is just a bad signature.
        let both = Verifier::new(&VerifierConfig {
            hs256_secret: Some(HS_SECRET.into()),
            public_key: Some(RSA_PUBLIC_PEM.into()),
            ..config()
        })
        .unwrap();
        assert_eq!(both.verify(&forged, NOW), Err(AuthError::BadSignature));
    }
}

#[test]
fn key_confusion_hs256_signed_with_the_ec_public_key_is_refused() {
    let ec = ec_private(7);
    let pem = ec_public_pem(&ec);
    let forged = token(
        &header("HS256"),
        &user_claims(),
        &Signer::Hs(pem.as_bytes()),
    );
    assert_eq!(
        public_key_verifier(&pem).verify(&forged, NOW),
        Err(AuthError::KeyTypeMismatch)
    );
}

#[test]
fn rs256_token_against_an_hs_only_verifier_is_a_mismatch() {
    let token = token(
        &header("RS256"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(AuthError::KeyTypeMismatch)
    );
    let es = token_es();
    assert_eq!(
        hs_verifier().verify(&es, NOW),
        Err(AuthError::KeyTypeMismatch)
    );
}

fn token_es() -> String {
    token(
        &header("ES256"),
        &user_claims(),
        &Signer::Es(&ec_private(8)),
    )
}

#[test]
fn es256_token_against_an_rsa_verifier_and_back_is_a_mismatch() {
    assert_eq!(
        rsa_verifier().verify(&token_es(), NOW),
        Err(AuthError::KeyTypeMismatch)
    );
    let rs = token(
        &header("RS256"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    let ec_verifier = public_key_verifier(&ec_public_pem(&ec_private(8)));
    assert_eq!(
        ec_verifier.verify(&rs, NOW),
        Err(AuthError::KeyTypeMismatch)
    );
}

#[test]
fn header_embedded_keys_are_ignored() {
    // An attacker-supplied `jwk` header must not be used to verify.
    let attacker = ec_private(9);
    let mut header = header("ES256");
    header["jwk"] = ec_jwk(&attacker, None);
    header["jku"] = json!("https://attacker.example/jwks.json");
    let forged = token(&header, &user_claims(), &Signer::Es(&attacker));
    let verifier = public_key_verifier(&ec_public_pem(&ec_private(10)));
    assert_eq!(verifier.verify(&forged, NOW), Err(AuthError::BadSignature));
}

// ---------- iss / aud ----------

fn verifier_with(issuer: Option<&str>, audience: Option<&str>) -> Verifier {
    Verifier::new(&VerifierConfig {
        hs256_secret: Some(HS_SECRET.into()),
        issuer: issuer.map(str::to_owned),
        audience: audience.map(str::to_owned),
        ..config()
    })
    .unwrap()
}

#[test]
fn issuer_is_checked_when_configured() {
    let verifier = verifier_with(Some("https://idp.example"), None);
    let good = hs_token(&json!({ "sub": "u", "exp": NOW + 60, "iss": "https://idp.example" }));
    assert_eq!(
        verifier.verify(&good, NOW).unwrap().issuer.as_deref(),
        Some("https://idp.example")
    );
    let wrong = hs_token(&json!({ "sub": "u", "exp": NOW + 60, "iss": "https://evil.example" }));
    assert_eq!(verifier.verify(&wrong, NOW), Err(AuthError::WrongIssuer));
    let missing = hs_token(&json!({ "sub": "u", "exp": NOW + 60 }));
    assert_eq!(verifier.verify(&missing, NOW), Err(AuthError::WrongIssuer));
    // Not configured: any issuer is fine.
    assert!(hs_verifier().verify(&wrong, NOW).is_ok());
}

#[test]
fn audience_is_checked_when_configured() {
    let verifier = verifier_with(None, Some("cart"));
    for aud in [json!("cart"), json!(["other", "cart"])] {
        let token = hs_token(&json!({ "sub": "u", "exp": NOW + 60, "aud": aud }));
        assert!(verifier.verify(&token, NOW).is_ok(), "{aud}");
    }
    for aud in [json!("carts"), json!(["other"]), json!([])] {
        let token = hs_token(&json!({ "sub": "u", "exp": NOW + 60, "aud": aud }));
        assert_eq!(
            verifier.verify(&token, NOW),
            Err(AuthError::WrongAudience),
            "{aud}"
        );
    }
    let missing = hs_token(&json!({ "sub": "u", "exp": NOW + 60 }));
    assert_eq!(
        verifier.verify(&missing, NOW),
        Err(AuthError::WrongAudience)
    );
    let not_strings = hs_token(&json!({ "sub": "u", "exp": NOW + 60, "aud": [1] }));
    assert_eq!(
        verifier.verify(&not_strings, NOW),
        Err(AuthError::Malformed)
    );
}

#[test]
fn blank_config_strings_count_as_unset() {
    let verifier = Verifier::new(&VerifierConfig {
        hs256_secret: Some(HS_SECRET.into()),
        public_key: Some("  ".into()),
        issuer: Some(String::new()),
        audience: Some(" ".into()),
        ..config()
    })
    .unwrap();
    assert!(verifier.verify(&hs_token(&user_claims()), NOW).is_ok());
}

// ---------- subject ----------

#[test]
fn missing_subject_is_refused() {
    let token = hs_token(&json!({ "exp": NOW + 60 }));
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(AuthError::MissingSubject)
    );
}

#[test]
fn subject_must_be_a_valid_id() {
    let too_long = "a".repeat(65);
    let subjects = [
        json!(""),
        json!("a/b"),
        json!("a:b"),
        json!("user 1"),
        json!("ü"),
        json!("."),
        json!(".."),
        json!(too_long),
        json!(42),
        json!(["user-1"]),
    ];
    for sub in subjects {
        let token = hs_token(&json!({ "sub": sub, "exp": NOW + 60 }));
        assert_eq!(
            hs_verifier().verify(&token, NOW),
            Err(AuthError::InvalidSubject),
            "{sub}"
        );
    }
    for ok in ["a", "User_1.x-y", "..a", &"b".repeat(64)] {
        let token = hs_token(&json!({ "sub": ok, "exp": NOW + 60 }));
        assert_eq!(hs_verifier().verify(&token, NOW).unwrap().subject, ok);
    }
}

#[test]
fn guest_marked_tokens_are_refused_even_when_signed_by_the_user_key() {
    let verifier = hs_verifier();
    let cases = [
        json!({ "sub": "guest-abc", "exp": NOW + 60 }),
        json!({ "sub": "user-1", "exp": NOW + 60, "guest": true }),
        json!({ "sub": "user-1", "exp": NOW + 60, "iss": GUEST_ISSUER }),
    ];
    for claims in cases {
        assert_eq!(
            verifier.verify(&hs_token(&claims), NOW),
            Err(AuthError::GuestTokenRefused),
            "{claims}"
        );
    }
}

// ---------- malformed ----------

#[test]
fn malformed_tokens_are_refused() {
    let good = hs_token(&user_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let signed =
        |payload: &[u8]| token_raw(&header("HS256"), payload, &Signer::Hs(HS_SECRET.as_bytes()));
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("   ".into(), "blank"),
        ("abc".into(), "one part"),
        (format!("{}.{}", parts[0], parts[1]), "two parts"),
        (format!("{good}.x"), "four parts"),
        (format!("{good}.x.y"), "five parts (JWE shape)"),
        (
            format!("!!!.{}.{}", parts[1], parts[2]),
            "bad header base64",
        ),
        (
            format!("{}.@@@.{}", parts[0], parts[2]),
            "bad payload base64",
        ),
        (
            format!("{}.{}.***", parts[0], parts[1]),
            "bad signature base64",
        ),
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            "padded header",
        ),
        (
            format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
            "header not JSON",
        ),
        (
            format!("{}.{}.{}", b64("[1,2]"), parts[1], parts[2]),
            "header not an object",
        ),
        (
            format!("{}.{}.{}", b64(r#"{"typ":"JWT"}"#), parts[1], parts[2]),
            "no alg",
        ),
        (
            format!("{}.{}.{}", b64(r#"{"alg":256}"#), parts[1], parts[2]),
            "alg not a string",
        ),
        (signed(b"not json"), "payload not JSON (signed)"),
        (signed(b"[\"sub\",1]"), "payload an array (signed)"),
        (
            signed(br#"{"sub":"u","exp":"tomorrow"}"#),
            "exp not a number (signed)",
        ),
        (signed(br#"{"sub":"u","exp":-5}"#), "exp negative (signed)"),
        (
            signed(br#"{"sub":"u","exp":9999999999,"nbf":"x"}"#),
            "nbf not a number",
        ),
        (
            signed(br#"{"sub":"u","exp":9999999999,"iss":7}"#),
            "iss not a string",
        ),
        (
            signed(br#"{"sub":"u","exp":9999999999,"guest":"yes"}"#),
            "guest not a bool",
        ),
        ("a".repeat(cart_auth::MAX_TOKEN_BYTES + 1), "oversized"),
    ];
    let verifier = hs_verifier();
    for (token, what) in cases {
        assert_eq!(
            verifier.verify(&token, NOW),
            Err(AuthError::Malformed),
            "{what}"
        );
    }
}

#[test]
fn crit_and_non_string_kid_headers_are_refused() {
    let mut crit = header("HS256");
    crit["crit"] = json!(["exp"]);
    crit["exp"] = json!(1);
    let mut b64_false = header("HS256");
    b64_false["b64"] = json!(false);
    let mut kid_number = header("HS256");
    kid_number["kid"] = json!(7);
    for header in [crit, b64_false, kid_number] {
        let token = token(&header, &user_claims(), &Signer::Hs(HS_SECRET.as_bytes()));
        assert_eq!(
            hs_verifier().verify(&token, NOW),
            Err(AuthError::Malformed),
            "{header}"
        );
    }
}

#[test]
fn surrounding_whitespace_is_tolerated() {
    let token = format!("  {}\n", hs_token(&user_claims()));
    assert!(hs_verifier().verify(&token, NOW).is_ok());
}

// ---------- configuration ----------

#[test]
fn no_key_configured() {
    let verifier = Verifier::new(&config()).unwrap();
    assert!(!verifier.is_configured());
    assert_eq!(
        verifier.verify(&hs_token(&user_claims()), NOW),
        Err(AuthError::NoKeyConfigured)
    );
    assert!(!AuthError::NoKeyConfigured.is_client_error());
    assert!(AuthError::Expired.is_client_error());
}

#[test]
fn bad_configurations_are_refused() {
    let weak = Verifier::new(&VerifierConfig {
        hs256_secret: Some("short".into()),
        ..config()
    })
    .unwrap_err();
    assert_eq!(weak, ConfigError::WeakSecret { min_bytes: 32 });

    let unsupported = [
        RSA_PRIVATE_PEM.to_string(),
        RSA1024_PUBLIC_PEM.to_string(),
        EC_P384_PUBLIC_PEM.to_string(),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_string(),
        json!({ "kty": "oct", "k": "c2VjcmV0" }).to_string(),
        json!({ "kty": "OKP", "crv": "Ed25519", "x": "AAAA" }).to_string(),
        json!({ "kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA" }).to_string(),
        {
            let mut jwk = ec_jwk(&ec_private(11), None);
            jwk["d"] = json!("AAAA");
            jwk.to_string()
        },
    ];
    for key in unsupported {
        let err = Verifier::new(&VerifierConfig {
            public_key: Some(key.clone()),
            ..config()
        })
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnsupportedKey(_)),
            "{key}: {err:?}"
        );
    }

    let invalid = [
        "hello".to_string(),
        "{not json".to_string(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_string(),
        "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n".to_string(),
        json!({ "kty": "RSA", "n": "AQAB" }).to_string(),
        json!({ "kty": "RSA", "n": "!!", "e": "AQAB" }).to_string(),
        json!({ "kty": "EC", "crv": "P-256", "x": b64([1u8; 32]), "y": b64([2u8; 32]) })
            .to_string(),
        json!({ "kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA" }).to_string(),
        json!({ "no": "kty" }).to_string(),
        json!({ "keys": "nope" }).to_string(),
        json!({ "keys": [1] }).to_string(),
    ];
    for key in invalid {
        let err = Verifier::new(&VerifierConfig {
            public_key: Some(key.clone()),
            ..config()
        })
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidPublicKey(_)),
            "{key}: {err:?}"
        );
    }
}

#[test]
fn config_errors_never_echo_key_material() {
    let err = Verifier::new(&VerifierConfig {
        public_key: Some(RSA_PRIVATE_PEM.into()),
        ..config()
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("MII"), "{text}");
    assert_eq!(err.code(), "auth-config-unsupported-key");
}

#[test]
fn debug_output_redacts_secrets() {
    let config = VerifierConfig {
        hs256_secret: Some(HS_SECRET.into()),
        ..config()
    };
    assert!(!format!("{config:?}").contains(HS_SECRET));
    let verifier = Verifier::new(&config).unwrap();
    assert!(!format!("{verifier:?}").contains("user-secret"));
}

// ---------- errors and helpers ----------

#[test]
fn error_codes_are_stable_and_distinct() {
    let all = [
        AuthError::Malformed,
        AuthError::UnsupportedAlgorithm("none".into()),
        AuthError::KeyTypeMismatch,
        AuthError::BadSignature,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::MissingExpiry,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::MissingSubject,
        AuthError::InvalidSubject,
        AuthError::UnknownKeyId,
        AuthError::NoKeyConfigured,
        AuthError::GuestTokenRefused,
        AuthError::NotGuestToken,
    ];
    let mut codes: Vec<&str> = all.iter().map(AuthError::code).collect();
    assert_eq!(AuthError::Expired.code(), "token-expired");
    for (error, code) in all.iter().zip(&codes) {
        assert!(!error.to_string().is_empty());
        assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    assert!(AuthError::UnsupportedAlgorithm("none".into())
        .to_string()
        .contains("\"none\""));
}

#[test]
fn unsupported_algorithm_text_is_sanitised() {
    let long = format!("{}\u{7}", "X".repeat(100));
    let token = token(&header(&long), &user_claims(), &Signer::Unsigned);
    match hs_verifier().verify(&token, NOW) {
        Err(AuthError::UnsupportedAlgorithm(alg)) => assert_eq!(alg, "X".repeat(32)),
        other => panic!("{other:?}"),
    }
    let bell = token_raw(&json!({ "alg": "a\nb" }), b"{}", &Signer::Unsigned);
    assert_eq!(
        hs_verifier().verify(&bell, NOW),
        Err(AuthError::UnsupportedAlgorithm("a?b".into()))
    );
}

#[test]
fn bearer_token_extraction() {
    assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
    assert_eq!(bearer_token("bearer   abc "), Some("abc"));
    assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("Bearer"), None);
    assert_eq!(bearer_token(""), None);
}

#[test]
fn encode_hs256_mints_tokens_the_verifier_accepts() {
    let token = encode_hs256(HS_SECRET.as_bytes(), &user_claims());
    assert_eq!(hs_verifier().verify(&token, NOW).unwrap().subject, "user-1");
}
