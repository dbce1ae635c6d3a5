//! Only the owner reaches a cart: verified bearer tokens, guest carts and their merge, admin
//! separation. The compiled cart component over the capability host; verified identity on real
//! `spin up` (tokens accepted, `X-User-Id` refused) is `tests/e2e/tests/identity.rs`.

mod support;

use std::sync::Arc;

use cart_tests::{get, post_json, request, workspace_root, CapabilityHost, TestResponse};
use serde_json::{json, Value};
use support::*;

const SECRET: &str = "user-token-secret-for-tests-0123456789";
const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "edge-cart";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_with(secret: &[u8], claims: Value) -> String {
    cart_auth::encode_hs256(secret, &claims)
}

fn user_token(sub: &str) -> String {
    token_with(
        SECRET.as_bytes(),
        json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600}),
    )
}

/// A guest-token secret of this deployment's own (the shipped demo value is refused here).
const GUEST_SECRET: &str = "guest-token-secret-for-tests-0123456789";

fn secured_host() -> Arc<CapabilityHost> {
    cart_host_with(&[
        ("allow_insecure_user_header", "false"),
        ("jwt_hs256_secret", SECRET),
        ("jwt_issuer", ISSUER),
        ("jwt_audience", AUDIENCE),
        ("guest_token_secret", GUEST_SECRET),
    ])
}

async fn as_bearer(
    req: cart_tests::TestRequest,
    token: &str,
    host: &CapabilityHost,
) -> TestResponse {
    req.header("authorization", &format!("Bearer {token}"))
        .send(host)
        .await
        .unwrap()
}

fn add_req(product: &str, qty: u32) -> cart_tests::TestRequest {
    post_json(
        &items_path("s"),
        &json!({"productId": product, "quantity": qty}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_users_reach_only_their_own_cart() {
    let host = secured_host();
    put_product(&host, "s", "p", 100, 10);
    let alice = user_token("alice");
    let bob = user_token("bob");
    assert_eq!(
        as_bearer(add_req("p", 2), &alice, &host).await.status(),
        200
    );
    let bobs = as_bearer(get(&cart_path("s")), &bob, &host).await;
    assert_eq!(bobs.status(), 200);
    assert_eq!(bobs.json()["lines"], json!([]));
    assert_eq!(bobs.json()["userId"], "bob");
    // With the demo mode off, X-User-Id is ignored: no token, no cart.
    let header_only = get(&cart_path("s"))
        .header("x-user-id", "alice")
        .send(&host)
        .await
        .unwrap();
    assert_problem(&header_only, 401, "unauthenticated");
    // Bob's token plus Alice's header still means Bob.
    let mixed = as_bearer(
        get(&cart_path("s")).header("x-user-id", "alice"),
        &bob,
        &host,
    )
    .await;
    assert_eq!(mixed.json()["userId"], "bob");
    // Bob cannot touch Alice's line through any route or spelling.
    for path in [
        "/v1/stores/s/cart/items/p",
        "/v1/stores/s/cart/items/P",
        "/v1/stores/s/cart/items/%70",
        "/v1/stores/S/cart/items/p",
        "/v1/stores/s/cart/items/p%2F..%2Falice",
    ] {
        let r = as_bearer(request(http::Method::DELETE, path), &bob, &host).await;
        assert!(
            (400..500).contains(&r.status()),
            "{path}: {} {}",
            r.status(),
            r.text()
        );
    }
    let alices = as_bearer(get(&cart_path("s")), &alice, &host).await;
    assert_eq!(lines(&alices.json())["p"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_failure_is_a_401() {
    let host = secured_host();
    let rsa_public = std::fs::read_to_string(
        workspace_root().join("crates/cart-auth/tests/fixtures/rsa_public.pem"),
    )
    .unwrap();
    let valid = json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600});
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&valid.to_string())
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad signature",
            token_with(b"another-secret-of-at-least-32-bytes!!", valid.clone()),
            "token-bad-signature",
        ),
        (
            "expired",
            token_with(
                SECRET.as_bytes(),
                json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600}),
            ),
            "token-expired",
        ),
        (
            "not yet valid",
            token_with(
                SECRET.as_bytes(),
                json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 7200, "nbf": now() + 3600}),
            ),
            "token-not-yet-valid",
        ),
        ("alg none", unsigned, "token-algorithm-unsupported"),
        (
            "wrong issuer",
            token_with(
                SECRET.as_bytes(),
                json!({"sub": "alice", "iss": "https://evil", "aud": AUDIENCE, "exp": now() + 600}),
            ),
            "token-wrong-issuer",
        ),
        (
            "wrong audience",
            token_with(
                SECRET.as_bytes(),
                json!({"sub": "alice", "iss": ISSUER, "aud": "other", "exp": now() + 600}),
            ),
            "token-wrong-audience",
        ),
        (
            "no exp",
            token_with(
                SECRET.as_bytes(),
                json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE}),
            ),
            "token-missing-exp",
        ),
        ("garbage", "not.a.jwt".to_owned(), "token-malformed"),
    ];
    for (name, token, expected_code) in cases {
        let r = as_bearer(get(&cart_path("s")), &token, &host).await;
        assert_problem(&r, 401, "unauthenticated");
        // The whole stable code, so `token-missing-exp` can never pass as `token-expired`.
        assert_eq!(r.json()["code"], expected_code, "{name}");
    }
    let no_token = get(&cart_path("s")).send(&host).await.unwrap();
    assert_problem(&no_token, 401, "unauthenticated");
    let basic = get(&cart_path("s"))
        .header("authorization", "Basic YWxpY2U6eA==")
        .send(&host)
        .await
        .unwrap();
    assert_problem(&basic, 401, "unauthenticated");

    // Key confusion: an RS256 deployment must not accept an HS256 token "signed" with its
    // public key as the HMAC secret.
    let rsa_host = cart_host_with(&[
        ("allow_insecure_user_header", "false"),
        ("jwt_public_key", &rsa_public),
        ("jwt_issuer", "https://idp.example"),
        ("jwt_audience", "cart"),
    ]);
    let confused = token_with(
        rsa_public.as_bytes(),
        json!({"sub": "user-42", "iss": "https://idp.example", "aud": "cart", "exp": now() + 600}),
    );
    let r = as_bearer(get(&cart_path("s")), &confused, &rsa_host).await;
    assert_problem(&r, 401, "unauthenticated");
    // The genuine RS256 token (signed by OpenSSL with the private key) is accepted.
    let genuine = std::fs::read_to_string(
        workspace_root().join("crates/cart-auth/tests/fixtures/rs256_openssl.jwt"),
    )
    .unwrap();
    let ok = as_bearer(get(&cart_path("s")), genuine.trim(), &rsa_host).await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(ok.json()["userId"], "user-42");
}

fn b64(s: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = s.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_refuse_user_tokens() {
    let host = secured_host();
    let alice = user_token("alice");
    for path in [
        "/admin/outbox/relay",
        "/admin/reservations/sweep?storeId=s",
        "/admin/cache/invalidate",
    ] {
        let r = as_bearer(request(http::Method::POST, path), &alice, &host).await;
        assert_problem(&r, 403, "forbidden");
        let anonymous = request(http::Method::POST, path).send(&host).await.unwrap();
        assert_problem(&anonymous, 401, "unauthenticated");
    }
    assert_eq!(get("/healthz").send(&host).await.unwrap().status(), 200);
    assert_eq!(admin_post(&host, "/admin/outbox/relay").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cart_merges_exactly_once_under_retries() {
    let host = secured_host();
    put_product(&host, "s", "p", 100, 10);
    put_product(&host, "s", "q", 300, 10);
    let issued = request(http::Method::POST, "/v1/guest-tokens")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(issued.status(), 201, "{}", issued.text());
    let guest = issued.json()["token"].as_str().unwrap().to_owned();
    let guest_id = issued.json()["userId"].as_str().unwrap().to_owned();
    assert!(guest_id.starts_with("guest-"));
    assert_eq!(
        as_bearer(add_req("p", 2), &guest, &host).await.status(),
        200
    );
    assert_eq!(
        as_bearer(add_req("q", 1), &guest, &host).await.status(),
        200
    );
    let alice = user_token("alice");
    assert_eq!(
        as_bearer(add_req("p", 1), &alice, &host).await.status(),
        200
    );

    // A guest cannot merge; a forged guest token is refused.
    let by_guest = as_bearer(
        post_json("/v1/stores/s/cart/merge", &json!({"guestToken": guest})),
        &guest,
        &host,
    )
    .await;
    assert_problem(&by_guest, 403, "forbidden");
    let forged = as_bearer(
        post_json("/v1/stores/s/cart/merge", &json!({"guestToken": alice})),
        &alice,
        &host,
    )
    .await;
    assert_problem(&forged, 422, "invalid-guest-token");

    // The login merge, retried: five in parallel, then twice more.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let host = host.clone();
            let (alice, guest) = (alice.clone(), guest.clone());
            tokio::spawn(async move {
                let r = post_json("/v1/stores/s/cart/merge", &json!({"guestToken": guest}))
                    .header("authorization", &format!("Bearer {alice}"))
                    .send(&*host)
                    .await
                    .unwrap();
                (r.status(), r.text())
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..2 {
        let r = as_bearer(
            post_json("/v1/stores/s/cart/merge", &json!({"guestToken": guest})),
            &alice,
            &host,
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text());
    }
    let view = as_bearer(get(&cart_path("s")), &alice, &host).await.json();
    assert_eq!(
        lines(&view),
        [("p".to_string(), 3), ("q".to_string(), 1)].into()
    );
    let guest_view = as_bearer(get(&cart_path("s")), &guest, &host).await.json();
    assert_eq!(guest_view["lines"], json!([]));
    // Holds were transferred, not doubled.
    assert_eq!(held_quantities(&host, "s", "p"), vec![3]);
    assert_eq!(held_quantities(&host, "s", "q"), vec![1]);
    assert!(reservations(&host, "s", "p")
        .keys()
        .all(|k| k.starts_with("alice~")));
}

fn problem_code(r: &TestResponse) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_owned()
}

/// A configured JWT key or secret turns the demo `X-User-Id` header off, even with
/// `allow_insecure_user_header=true`: 401 `user-header-refused`, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_user_id_is_refused_whenever_a_jwt_key_is_configured() {
    let rsa_public = std::fs::read_to_string(
        workspace_root().join("crates/cart-auth/tests/fixtures/rsa_public.pem"),
    )
    .unwrap();
    for (name, key) in [
        ("jwt_hs256_secret", SECRET),
        ("jwt_public_key", &rsa_public),
    ] {
        let host = cart_host_with(&[("allow_insecure_user_header", "true"), (name, key)]);
        put_product(&host, "s", "p", 100, 10);
        host.wait_idle().await;
        let before = state_snapshot(&host);
        for req in [
            add_req("p", 1).header("x-user-id", "alice"),
            get(&cart_path("s")).header("x-user-id", "alice"),
            request(http::Method::DELETE, &cart_path("s")).header("x-user-id", "alice"),
        ] {
            let r = req.send(&host).await.unwrap();
            assert_problem(&r, 401, "unauthenticated");
            assert_eq!(problem_code(&r), "user-header-refused", "{name}");
            assert!(r.json()["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(name));
        }
        let anonymous = get(&cart_path("s")).send(&host).await.unwrap();
        assert_problem(&anonymous, 401, "unauthenticated");
        assert_eq!(problem_code(&anonymous), "token-missing");
        host.wait_idle().await;
        let changed = changed_keys(&before, &state_snapshot(&host));
        assert!(changed.is_empty(), "{name}: {changed:?}");
        assert!(reservations(&host, "s", "p").is_empty());
    }
    // The same header in plain demo mode (no key configured) is the demo identity.
    let demo = cart_host();
    put_product(&demo, "s", "p", 100, 10);
    assert_eq!(add(&demo, "s", "alice", "p", 1).await.status(), 200);
}

/// The shipped demo `guest_token_secret` is public: outside demo mode no guest token is issued
/// with it, one minted with it is refused as a bearer token and as a merge source, and nothing
/// is stored. In demo mode it keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_guest_secret_is_honoured_only_in_demo_mode() {
    let host = cart_host_with(&[
        ("allow_insecure_user_header", "false"),
        ("jwt_hs256_secret", SECRET),
        ("jwt_issuer", ISSUER),
        ("jwt_audience", AUDIENCE),
        ("guest_token_secret", GUEST_TOKEN_SECRET),
    ]);
    put_product(&host, "s", "p", 100, 10);
    // What anyone who read spin.toml can mint for a leaked guest id.
    let minted = cart_auth::GuestTokens::new(GUEST_TOKEN_SECRET)
        .unwrap()
        .issue("0123456789abcdef", now(), 3600)
        .unwrap();
    let alice = user_token("alice");
    host.wait_idle().await;
    let before = state_snapshot(&host);

    let issued = request(http::Method::POST, "/v1/guest-tokens")
        .send(&host)
        .await
        .unwrap();
    assert_problem(&issued, 403, "forbidden");
    assert_eq!(problem_code(&issued), "guest-secret-is-demo");
    assert!(issued.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("guest_token_secret"));
    for req in [add_req("p", 1), get(&cart_path("s"))] {
        let r = as_bearer(req, &minted, &host).await;
        assert_problem(&r, 401, "unauthenticated");
        assert_eq!(problem_code(&r), "guest-secret-is-demo");
    }
    let merge = as_bearer(
        post_json("/v1/stores/s/cart/merge", &json!({"guestToken": minted})),
        &alice,
        &host,
    )
    .await;
    assert_problem(&merge, 403, "forbidden");
    assert_eq!(problem_code(&merge), "guest-secret-is-demo");
    // User tokens are unaffected, and a bad user token still says why it failed.
    let expired = token_with(
        SECRET.as_bytes(),
        json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600}),
    );
    let r = as_bearer(get(&cart_path("s")), &expired, &host).await;
    assert_problem(&r, 401, "unauthenticated");
    assert_eq!(problem_code(&r), "token-expired");
    host.wait_idle().await;
    let changed = changed_keys(&before, &state_snapshot(&host));
    assert!(changed.is_empty(), "{changed:?}");
    assert_eq!(
        as_bearer(get(&cart_path("s")), &alice, &host)
            .await
            .status(),
        200
    );

    // Demo mode: the same secret issues and verifies guest tokens.
    let demo = cart_host();
    put_product(&demo, "s", "p", 100, 10);
    let r = as_bearer(add_req("p", 1), &minted, &demo).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.json()["userId"], "guest-0123456789abcdef");
    let issued = request(http::Method::POST, "/v1/guest-tokens")
        .send(&demo)
        .await
        .unwrap();
    assert_eq!(issued.status(), 201, "{}", issued.text());
}
