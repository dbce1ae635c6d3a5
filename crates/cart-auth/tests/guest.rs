mod common;

use cart_auth::{
    encode_hs256, is_guest_subject, AuthError, ConfigError, GuestTokens, Verifier, VerifierConfig,
    GUEST_ISSUER,
};
use common::*;
use serde_json::json;

fn guests() -> GuestTokens {
    GuestTokens::new(GUEST_SECRET).unwrap()
}

#[test]
fn guest_token_round_trip() {
    let token = guests().issue("Zq3-x_9", NOW, 3600).unwrap();
    let claims = guests().verify(&token, NOW + 10).unwrap();
    assert_eq!(claims.subject, "guest-Zq3-x_9");
    assert_eq!(claims.guest_id(), Some("Zq3-x_9"));
    assert!(claims.guest);
    assert_eq!(claims.issuer.as_deref(), Some(GUEST_ISSUER));
    assert_eq!(claims.issued_at, Some(NOW));
    assert_eq!(claims.expires_at, NOW + 3600);
    assert!(is_guest_subject(&claims.subject));
}

#[test]
fn guest_token_expires() {
    let token = guests().issue("abc", NOW, 60).unwrap();
    assert!(guests().verify(&token, NOW + 60 + 29).is_ok());
    assert_eq!(
        guests().verify(&token, NOW + 60 + 30),
        Err(AuthError::Expired)
    );
    let strict = guests().with_leeway(0);
    assert_eq!(strict.verify(&token, NOW + 60), Err(AuthError::Expired));
}

#[test]
fn guest_token_is_refused_by_a_verifier_with_another_secret() {
    let token = guests().issue("abc", NOW, 3600).unwrap();
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        rsa_verifier().verify(&token, NOW),
        Err(AuthError::KeyTypeMismatch)
    );
}

#[test]
fn guest_token_is_refused_by_a_verifier_even_with_the_same_secret() {
    let same = Verifier::new(&VerifierConfig {
        hs256_secret: Some(GUEST_SECRET.into()),
        ..VerifierConfig::default()
    })
    .unwrap();
    assert!(same.shares_secret_with(&guests()));
    assert!(!hs_verifier().shares_secret_with(&guests()));
    let token = guests().issue("abc", NOW, 3600).unwrap();
    assert_eq!(same.verify(&token, NOW), Err(AuthError::GuestTokenRefused));
}

#[test]
fn user_token_is_refused_by_guest_tokens() {
    // Signed with the user secret.
    assert_eq!(
        guests().verify(&hs_token(&user_claims()), NOW),
        Err(AuthError::BadSignature)
    );
    // Even one that imitates a guest token, if not signed with the guest secret.
    let imitation = hs_token(&json!({
        "iss": GUEST_ISSUER, "sub": "guest-abc", "guest": true, "exp": NOW + 60
    }));
    assert_eq!(
        guests().verify(&imitation, NOW),
        Err(AuthError::BadSignature)
    );
    // RS256 / ES256 user tokens.
    let rs = token(
        &header("RS256"),
        &user_claims(),
        &Signer::Rs(&rsa_private()),
    );
    assert_eq!(guests().verify(&rs, NOW), Err(AuthError::KeyTypeMismatch));
    let none = token(&header("none"), &user_claims(), &Signer::Unsigned);
    assert_eq!(
        guests().verify(&none, NOW),
        Err(AuthError::UnsupportedAlgorithm("none".into()))
    );
}

#[test]
fn guest_secret_tokens_without_the_guest_markers_are_refused() {
    let secret = GUEST_SECRET.as_bytes();
    let not_guest = [
        json!({ "sub": "guest-abc", "exp": NOW + 60, "guest": true }),
        json!({ "sub": "guest-abc", "exp": NOW + 60, "iss": GUEST_ISSUER }),
        json!({ "sub": "guest-abc", "exp": NOW + 60, "iss": "other", "guest": true }),
        json!({ "sub": "guest-abc", "exp": NOW + 60, "iss": GUEST_ISSUER, "guest": false }),
    ];
    for claims in not_guest {
        assert_eq!(
            guests().verify(&encode_hs256(secret, &claims), NOW),
            Err(AuthError::NotGuestToken),
            "{claims}"
        );
    }
    for sub in ["user-1", "guest-"] {
        let claims = json!({ "sub": sub, "exp": NOW + 60, "iss": GUEST_ISSUER, "guest": true });
        assert_eq!(
            guests().verify(&encode_hs256(secret, &claims), NOW),
            Err(AuthError::InvalidSubject),
            "{sub}"
        );
    }
    let no_exp = json!({ "sub": "guest-abc", "iss": GUEST_ISSUER, "guest": true });
    assert_eq!(
        guests().verify(&encode_hs256(secret, &no_exp), NOW),
        Err(AuthError::MissingExpiry)
    );
}

#[test]
fn tampered_guest_token_is_refused() {
    let token = guests().issue("abc", NOW, 3600).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = json!({
        "iss": GUEST_ISSUER, "sub": "guest-victim", "guest": true, "exp": NOW + 3600
    });
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged_claims.to_string()),
        parts[2]
    );
    assert_eq!(guests().verify(&forged, NOW), Err(AuthError::BadSignature));
    let other = GuestTokens::new("another-guest-secret-0123456789abcdef").unwrap();
    assert_eq!(other.verify(&token, NOW), Err(AuthError::BadSignature));
    assert_eq!(guests().verify("a.b", NOW), Err(AuthError::Malformed));
}

#[test]
fn guest_ids_must_keep_the_subject_valid() {
    let longest = "a".repeat(58);
    assert!(guests().issue(&longest, NOW, 60).is_ok());
    for bad in ["", "a/b", "a:b", "ü", &"a".repeat(59)] {
        assert_eq!(
            guests().issue(bad, NOW, 60),
            Err(AuthError::InvalidSubject),
            "{bad:?}"
        );
    }
    // Only dots in the id is fine: the subject as a whole is not only dots.
    assert!(guests().issue("..", NOW, 60).is_ok());
}

#[test]
fn guest_ttl_saturates() {
    let token = guests().issue("abc", NOW, u64::MAX).unwrap();
    assert_eq!(guests().verify(&token, NOW).unwrap().expires_at, u64::MAX);
}

#[test]
fn weak_guest_secret_is_refused() {
    assert_eq!(
        GuestTokens::new("short").unwrap_err(),
        ConfigError::WeakSecret { min_bytes: 32 }
    );
    assert!(!format!("{:?}", guests()).contains(GUEST_SECRET));
}

#[test]
fn guest_subject_predicate() {
    assert!(is_guest_subject("guest-abc"));
    assert!(!is_guest_subject("guest"));
    assert!(!is_guest_subject("user-guest-abc"));
    assert!(!is_guest_subject("Guest-abc"));
}
