//! `jwt_jwks_url`: tokens verified with the identity provider's published key set, fetched
//! through `identity-keys.fetch-key-set` (the capability host serves a JWKS the test controls and
//! counts the fetches), cached in key-value with a TTL, refreshed on an unknown `kid` at most
//! once a minute per store. Time moves with the host's injectable clock, never by sleeping.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cart_tests::{get, CapabilityHost, Fault, Interface, TestResponse};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::*;

const JWKS_URL: &str = "https://idp.test/.well-known/jwks.json";
const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "edge-cart";
const GUEST_SECRET: &str = "guest-token-secret-for-tests-0123456789";
/// The cache record (docs/keys.md).
const CACHE_KEY: &str = "jwks:keyset";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        cart_tests::workspace_root()
            .join("crates/cart-auth/tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

/// A signing key of the test identity provider.
struct IdpKey {
    key: EncodingKey,
    alg: Algorithm,
    kid: &'static str,
}

impl IdpKey {
    fn rsa(kid: &'static str) -> IdpKey {
        IdpKey {
            key: EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(),
            alg: Algorithm::RS256,
            kid,
        }
    }

    fn rsa2(kid: &'static str) -> IdpKey {
        IdpKey {
            key: EncodingKey::from_rsa_pem(&fixture("rsa2_private.pem")).unwrap(),
            alg: Algorithm::RS256,
            kid,
        }
    }

    fn ec(kid: &'static str) -> IdpKey {
        IdpKey {
            key: EncodingKey::from_ec_pem(&fixture("ec_p256_private.pem")).unwrap(),
            alg: Algorithm::ES256,
            kid,
        }
    }

    /// The public JWK, as a provider publishes it.
    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).unwrap()
    }

    /// A token for `sub`, valid for ten minutes of the host's clock, naming `kid`.
    fn token_as(&self, host: &CapabilityHost, sub: &str, kid: &str) -> String {
        let now = host.now_ms() / 1000;
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        let claims = json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600});
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    fn token(&self, host: &CapabilityHost, sub: &str) -> String {
        self.token_as(host, sub, self.kid)
    }
}

fn key_set(keys: &[&IdpKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

/// A deployment that verifies with the key set at [`JWKS_URL`] only.
fn jwks_host(extra: &[(&str, &str)]) -> Arc<CapabilityHost> {
    let mut config = vec![
        ("allow_insecure_user_header", "false"),
        ("jwt_jwks_url", JWKS_URL),
        ("jwt_issuer", ISSUER),
        ("jwt_audience", AUDIENCE),
        ("guest_token_secret", GUEST_SECRET),
    ];
    config.extend_from_slice(extra);
    cart_host_with(&config)
}

fn fetches(host: &CapabilityHost) -> u64 {
    host.calls_of(Interface::IdentityKeys, "fetch-key-set")
}

async fn cart_as(host: &CapabilityHost, token: &str) -> TestResponse {
    get(&cart_path("s"))
        .header("authorization", &format!("Bearer {token}"))
        .send(host)
        .await
        .unwrap()
}

fn code(r: &TestResponse) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_es256_tokens_verify_with_the_published_key_set_fetched_once() {
    let host = jwks_host(&[]);
    let (rsa, ec) = (IdpKey::rsa("r1"), IdpKey::ec("e1"));
    host.publish_key_set(JWKS_URL, key_set(&[&rsa, &ec]));

    let alice = cart_as(&host, &rsa.token(&host, "alice")).await;
    assert_eq!(alice.status(), 200, "{}", alice.text());
    assert_eq!(alice.json()["userId"], "alice");
    let bob = cart_as(&host, &ec.token(&host, "bob")).await;
    assert_eq!(bob.status(), 200, "{}", bob.text());
    assert_eq!(bob.json()["userId"], "bob");
    assert_eq!(
        cart_as(&host, &rsa.token(&host, "alice")).await.status(),
        200
    );
    // One fetch served all three: the set is cached in the store.
    assert_eq!(fetches(&host), 1);
    let cached: Value = serde_json::from_slice(&host.kv_get(CACHE_KEY).unwrap()).unwrap();
    assert_eq!(cached["url"], JWKS_URL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_policy_still_holds_key_confusion_issuer_and_guest_subjects() {
    let host = jwks_host(&[]);
    let rsa = IdpKey::rsa("r1");
    let published = key_set(&[&rsa]);
    host.publish_key_set(JWKS_URL, published.clone());
    assert_eq!(cart_as(&host, &rsa.token(&host, "u")).await.status(), 200);

    // An HS256 token "signed" with the published key set as the secret: never checked as HMAC
    // against public key material, and it does not even make the cart load the set.
    let now = host.now_ms() / 1000;
    let forged = cart_auth::encode_hs256(
        published.as_bytes(),
        &json!({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}),
    );
    let r = cart_as(&host, &forged).await;
    assert_problem(&r, 401, "unauthenticated");
    assert_eq!(code(&r), "token-key-type-mismatch");

    // A key of the set does not make any issuer acceptable.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("r1".into());
    let claims =
        json!({"sub": "u", "iss": "https://evil.test/", "aud": AUDIENCE, "exp": now + 600});
    let wrong_issuer = jsonwebtoken::encode(&header, &claims, &rsa.key).unwrap();
    let r = cart_as(&host, &wrong_issuer).await;
    assert_eq!(code(&r), "token-wrong-issuer");

    // Guest subjects stay reserved, whoever signs them. (Refused as a user token, the token is
    // then reported as the guest token it claims to be, which an RS256 one cannot be.)
    let r = cart_as(&host, &rsa.token(&host, "guest-abc")).await;
    assert_problem(&r, 401, "unauthenticated");
    assert_eq!(code(&r), "token-key-type-mismatch");
    assert_eq!(fetches(&host), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_tokens_never_wait_for_the_key_set() {
    let host = jwks_host(&[]);
    // The provider is down and nothing is cached.
    host.fail_always(
        Interface::IdentityKeys,
        Fault::Unavailable("identity provider down".into()),
    );
    let guest = guest_token(&host).await;
    let r = cart_as(&host, &guest).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(fetches(&host), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refreshes_once_a_minute_at_most() {
    let host = jwks_host(&[]);
    let (r1, r2) = (IdpKey::rsa("r1"), IdpKey::rsa2("r2"));
    host.publish_key_set(JWKS_URL, key_set(&[&r1]));
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    assert_eq!(fetches(&host), 1);

    // A minute on, a token names a kid the cached set lacks: one refresh, then refused.
    host.advance_clock(Duration::from_secs(61));
    let r = cart_as(&host, &r1.token_as(&host, "u", "made-up-1")).await;
    assert_problem(&r, 401, "unauthenticated");
    assert_eq!(code(&r), "token-unknown-kid");
    assert_eq!(fetches(&host), 2);

    // More unknown kids within that minute cost the provider nothing.
    for kid in ["made-up-2", "made-up-3", "made-up-4"] {
        let r = cart_as(&host, &r1.token_as(&host, "u", kid)).await;
        assert_eq!(code(&r), "token-unknown-kid");
    }
    assert_eq!(fetches(&host), 2);

    // The provider rotates to r2. Within the minute its tokens are still unknown; the next
    // minute's first r2 token refreshes the set and verifies.
    host.publish_key_set(JWKS_URL, key_set(&[&r1, &r2]));
    let r = cart_as(&host, &r2.token(&host, "u")).await;
    assert_eq!(code(&r), "token-unknown-kid");
    assert_eq!(fetches(&host), 2);
    host.advance_clock(Duration::from_secs(60));
    let r = cart_as(&host, &r2.token(&host, "u")).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(fetches(&host), 3);
    // Known kids never fetch.
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    assert_eq!(fetches(&host), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_set_expires_after_its_ttl() {
    let host = jwks_host(&[("jwt_jwks_ttl_seconds", "300")]);
    let (r1, r2) = (IdpKey::rsa("r1"), IdpKey::rsa2("r2"));
    host.publish_key_set(JWKS_URL, key_set(&[&r1]));
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    assert_eq!(fetches(&host), 1);

    // The provider retires r1. Until the TTL runs out the cached set still verifies r1.
    host.publish_key_set(JWKS_URL, key_set(&[&r2]));
    host.advance_clock(Duration::from_secs(299));
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    assert_eq!(fetches(&host), 1);

    // After it, the next token fetches the set again, and r1 is gone.
    host.advance_clock(Duration::from_secs(2));
    let r = cart_as(&host, &r1.token(&host, "u")).await;
    assert_eq!(code(&r), "token-unknown-kid", "{}", r.text());
    assert_eq!(fetches(&host), 2);
    assert_eq!(cart_as(&host, &r2.token(&host, "u")).await.status(), 200);
    assert_eq!(fetches(&host), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_provider_with_nothing_cached_is_a_503_and_stores_nothing() {
    let host = jwks_host(&[]);
    let r1 = IdpKey::rsa("r1");
    host.fail_always(
        Interface::IdentityKeys,
        Fault::Unavailable("identity provider down".into()),
    );
    let r = cart_as(&host, &r1.token(&host, "u")).await;
    assert_problem(&r, 503, "identity-keys-unavailable");
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(fetches(&host), 1);
    assert_eq!(host.kv_get(CACHE_KEY), None);
    // Every request meanwhile is answered at once, without asking the provider again.
    for _ in 0..3 {
        let r = cart_as(&host, &r1.token(&host, "u")).await;
        assert_problem(&r, 503, "identity-keys-unavailable");
    }
    assert_eq!(fetches(&host), 1);

    // An answer that is not a usable key set is a failure too: not stored.
    host.clear_faults(Interface::IdentityKeys);
    host.publish_key_set(JWKS_URL, "<html>maintenance</html>");
    host.advance_clock(Duration::from_secs(61));
    let r = cart_as(&host, &r1.token(&host, "u")).await;
    assert_problem(&r, 503, "identity-keys-unavailable");
    assert_eq!(fetches(&host), 2);
    assert_eq!(host.kv_get(CACHE_KEY), None);

    // Once the provider is back (after the minute), tokens verify.
    host.publish_key_set(JWKS_URL, key_set(&[&r1]));
    host.advance_clock(Duration::from_secs(61));
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    assert_eq!(fetches(&host), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_provider_keeps_the_stale_set_verifying() {
    let host = jwks_host(&[("jwt_jwks_ttl_seconds", "300")]);
    let r1 = IdpKey::rsa("r1");
    host.publish_key_set(JWKS_URL, key_set(&[&r1]));
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    let cached = host.kv_get(CACHE_KEY).unwrap();

    host.fail_always(
        Interface::IdentityKeys,
        Fault::Unavailable("identity provider down".into()),
    );
    host.advance_clock(Duration::from_secs(301));
    let r = cart_as(&host, &r1.token(&host, "u")).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(fetches(&host), 2);
    // The failed refresh changed nothing.
    assert_eq!(host.kv_get(CACHE_KEY), Some(cached));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_find_the_set_stale_together_make_one_fetch() {
    let host = jwks_host(&[("jwt_jwks_ttl_seconds", "300")]);
    let r1 = IdpKey::rsa("r1");
    host.publish_key_set(JWKS_URL, key_set(&[&r1]));
    assert_eq!(cart_as(&host, &r1.token(&host, "u")).await.status(), 200);
    host.advance_clock(Duration::from_secs(301));

    // The first request to find the set stale is held inside its fetch while four more come.
    let pause = host.pause_next_call(Interface::IdentityKeys, "fetch-key-set");
    let token = r1.token(&host, "u");
    let first = {
        let (host, token) = (host.clone(), token.clone());
        tokio::spawn(async move { cart_as(&host, &token).await })
    };
    pause.arrived().await;
    for _ in 0..4 {
        let r = cart_as(&host, &token).await;
        assert_eq!(r.status(), 200, "stale keys serve meanwhile: {}", r.text());
    }
    pause.resume();
    assert_eq!(first.await.unwrap().status(), 200);
    assert_eq!(fetches(&host), 2);
}
