//! `jwt_jwks_url` on real `spin up`: the key set is fetched from a loopback server through the
//! adapter's outbound HTTP (allowed by the `jwt_jwks_origin` template in `allowed_outbound_hosts`),
//! cached in the key-value store for every later instance, and a token with an unknown `kid`
//! within the minute after a fetch does not reach the identity provider again.

use std::time::{SystemTime, UNIX_EPOCH};

use cart_e2e::api::cart_path;
use cart_e2e::loopback::StaticJsonServer;
use cart_e2e::{spin_cli, SpinUp};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://idp.e2e/";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn signing_key() -> EncodingKey {
    let pem = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/cart-auth/tests/fixtures/rsa_private.pem"),
    )
    .expect("fixture key");
    EncodingKey::from_rsa_pem(&pem).expect("RSA key")
}

fn token(key: &EncodingKey, kid: &str, sub: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"sub": sub, "iss": ISSUER, "exp": now() + 600});
    jsonwebtoken::encode(&header, &claims, key).expect("token")
}

#[test]
fn tokens_verify_with_the_key_set_fetched_once_from_jwt_jwks_url() {
    let Some(spin) = spin_cli() else { return };
    let key = signing_key();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("e2e-1".into());
    let idp = StaticJsonServer::start(json!({ "keys": [jwk] }).to_string());
    let url = format!("{}/.well-known/jwks.json", idp.origin());
    let up = SpinUp::start(
        spin,
        "identity-jwks",
        &[
            ("allow_insecure_user_header", "false"),
            ("jwt_jwks_url", &url),
            ("jwt_jwks_origin", &idp.origin()),
            ("jwt_issuer", ISSUER),
        ],
    );
    let c = up.client().clone();

    for user in ["alice", "bob", "alice"] {
        let r = c
            .get(&cart_path("jwks"))
            .bearer(&token(&key, "e2e-1", user))
            .send()
            .expect(200);
        assert_eq!(r.json()["userId"], user);
    }
    // Three requests, three instances, one fetch: the set is cached in the store.
    assert_eq!(idp.served(), 1);

    // A made-up kid right after that fetch: refused without asking the provider again.
    let r = c
        .get(&cart_path("jwks"))
        .bearer(&token(&key, "made-up", "alice"))
        .send()
        .expect(401);
    assert_eq!(r.json()["code"], "token-unknown-kid", "{}", r.body);
    assert_eq!(idp.served(), 1);
    // The demo header is refused too: a JWKS URL is a configured key.
    c.get(&cart_path("jwks")).user("alice").send().expect(401);
}
