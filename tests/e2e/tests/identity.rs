//! Verified identity only, on real `spin up`: `allow_insecure_user_header=false` and an HS256
//! secret. Bearer tokens are accepted, `X-User-Id` is refused, and no caller reaches another's
//! cart.

use std::time::{SystemTime, UNIX_EPOCH};

use cart_auth::encode_hs256;
use cart_e2e::api::{cart_path, item_path, put_product};
use cart_e2e::{spin_cli, Client, Response, SpinUp};
use serde_json::json;

const SECRET: &str = "e2e-hs256-secret-of-at-least-32-bytes!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn token(secret: &str, sub: &str, exp: u64) -> String {
    encode_hs256(secret.as_bytes(), &json!({"sub": sub, "exp": exp}))
}

fn add_as(c: &Client, token: &str, product: &str, quantity: u32) -> Response {
    c.post(&format!("{}/items", cart_path("sec")))
        .bearer(token)
        .json(&json!({"productId": product, "quantity": quantity}))
        .send()
}

#[test]
fn only_verified_users_reach_their_own_cart() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "identity",
        &[
            ("allow_insecure_user_header", "false"),
            ("jwt_hs256_secret", SECRET),
            ("inventory_timeout_ms", "60000"),
            ("admin_token", "e2e-admin"),
        ],
    );
    let c = up.client().clone();
    put_product(&c, "sec", "pen", 300, 20);
    let alice = token(SECRET, "alice", now() + 600);
    let bob = token(SECRET, "bob", now() + 600);

    let r = add_as(&c, &alice, "pen", 2).expect(200);
    assert_eq!(r.json()["userId"], "alice");

    // The demo header is refused, with or without a matching user.
    for user in ["alice", "mallory"] {
        let r = c
            .post(&format!("{}/items", cart_path("sec")))
            .user(user)
            .json(&json!({"productId": "pen", "quantity": 5}))
            .send()
            .expect(401);
        assert_eq!(r.problem_slug(), "unauthenticated", "{}", r.body);
        let r = c.get(&cart_path("sec")).user(user).send().expect(401);
        assert_eq!(r.problem_slug(), "unauthenticated", "{}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    // A header naming someone else does not change whose cart a token reaches.
    let r = c
        .get(&cart_path("sec"))
        .bearer(&bob)
        .header("X-User-Id", "alice")
        .send()
        .expect(200);
    let view = r.json();
    assert_eq!(view["userId"], "bob");
    assert_eq!(view["lines"], json!([]), "bob sees none of alice's lines");
    // Bob cannot change alice's line: in his cart there is no such line.
    let r = c
        .patch(&item_path("sec", "pen"))
        .bearer(&bob)
        .json(&json!({"quantity": 9}))
        .send()
        .expect(404);
    assert_eq!(r.problem_slug(), "line-not-found", "{}", r.body);
    c.delete(&item_path("sec", "pen"))
        .bearer(&bob)
        .send()
        .expect(404);

    // Admin routes take the admin token (scheme case-insensitive), never a user's token.
    c.post("/admin/outbox/relay")
        .header("Authorization", "bearer e2e-admin")
        .send()
        .expect(200);
    c.post("/admin/outbox/relay")
        .bearer(&alice)
        .send()
        .expect(403);

    // Forged and expired tokens are refused.
    let forged = token(
        "another-secret-that-is-32-bytes-long!!",
        "alice",
        now() + 600,
    );
    let expired = token(SECRET, "alice", now() - 3600);
    for t in [&forged, &expired] {
        let r = c.get(&cart_path("sec")).bearer(t).send().expect(401);
        assert_eq!(r.problem_slug(), "unauthenticated", "{}", r.body);
    }

    // Alice's cart is exactly what she put in it.
    let view = c
        .get(&cart_path("sec"))
        .bearer(&alice)
        .send()
        .expect(200)
        .json();
    assert_eq!(view["lines"][0]["productId"], "pen");
    assert_eq!(view["lines"][0]["quantity"], 2);
    assert_eq!(view["lines"].as_array().map(Vec::len), Some(1));
}
