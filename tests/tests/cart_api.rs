//! The cart HTTP API: the compiled cart component over the capability host's in-memory
//! capabilities (the in-memory inventory stands in for the reference service). The same API on
//! real `spin up`, through the adapter and the reference services, is `tests/e2e`.

mod support;

use cart_tests::{get, patch_json, post_json, request, Interface, ProductSeed};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopping_session_end_to_end() {
    let host = cart_host();
    let s = "shop";
    put_product(&host, s, "beans", 1890, 10);
    put_product(&host, s, "kettle", 4900, 5);
    put_product(&host, s, "filters", 450, 20);

    let first = add(&host, s, "alice", "beans", 2).await;
    assert_eq!(first.status(), 200, "{}", first.text());
    let first_etag = first.header("etag").expect("etag").to_owned();
    let view = first.json();
    assert_eq!(view["lines"][0]["title"], "Title of beans");
    assert_eq!(
        view["lines"][0]["unitPrice"],
        json!({"amount": 1890, "currency": "EUR"})
    );
    assert_eq!(view["lines"][0]["reservation"]["status"], "confirmed");
    assert!(view["lines"][0]["reservation"]["expiresAtMs"]
        .as_u64()
        .is_some());

    assert_eq!(add(&host, s, "alice", "kettle", 1).await.status(), 200);
    assert_eq!(add(&host, s, "alice", "filters", 4).await.status(), 200);
    assert_eq!(set_qty(&host, s, "alice", "beans", 5).await.status(), 200);
    let removed = remove(&host, s, "alice", "filters").await;
    assert_eq!(removed.status(), 200, "{}", removed.text());

    let r = cart(&host, s, "alice").await;
    assert_eq!(r.status(), 200);
    let view = r.json();
    assert_eq!(
        lines(&view),
        [("beans".to_string(), 5), ("kettle".to_string(), 1)].into()
    );
    assert_eq!(
        view["subtotal"],
        json!({"amount": 5 * 1890 + 4900, "currency": "EUR"})
    );
    assert_eq!(view["itemCount"], 6);
    for line in view["lines"].as_array().unwrap() {
        assert_eq!(
            line["lineTotal"]["amount"].as_i64().unwrap(),
            line["unitPrice"]["amount"].as_i64().unwrap() * line["quantity"].as_i64().unwrap()
        );
    }

    let summary = get(&format!("{}/summary", cart_path(s)))
        .header("x-user-id", "alice")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(summary.status(), 200);
    assert_eq!(summary.header("cache-control"), Some("private, max-age=5"));
    let sv = summary.json();
    assert_eq!(
        (sv["itemCount"].as_u64(), sv["lineCount"].as_u64()),
        (Some(6), Some(2))
    );
    assert_eq!(sv["subtotal"]["amount"], 14350);
    assert_eq!(sv["version"], view["version"]);

    // A stale If-Match loses, naming the current version; nothing changes.
    let stale = patch_json(&item_path(s, "kettle"), &json!({"quantity": 2}))
        .header("x-user-id", "alice")
        .header("if-match", &first_etag)
        .send(&host)
        .await
        .unwrap();
    assert_problem(&stale, 412, "precondition-failed");
    assert_eq!(stale.json()["currentVersion"], view["version"]);
    assert_eq!(lines(&cart(&host, s, "alice").await.json())["kettle"], 1);

    // The inventory holds exactly what the cart shows.
    assert_eq!(held_quantities(&host, s, "beans"), vec![5]);
    assert_eq!(held_quantities(&host, s, "kettle"), vec![1]);
    assert!(reservations(&host, s, "filters").is_empty());
    assert_eq!(host.reserved_quantity(s, "beans"), 5);
    assert_eq!(stock_and_available(&host, s, "beans"), (10, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_revalidation_and_matching_if_match() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    let empty = cart(&host, "s", "u").await;
    assert_eq!(empty.status(), 200);
    assert_eq!(empty.json()["version"], 0);
    assert_eq!(empty.json()["lines"], json!([]));

    let added = add(&host, "s", "u", "p", 1).await;
    let etag = added.header("etag").unwrap().to_owned();
    let not_modified = get(&cart_path("s"))
        .header("x-user-id", "u")
        .header("if-none-match", &etag)
        .send(&host)
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert!(not_modified.bytes().is_empty());

    let ok = patch_json(&item_path("s", "p"), &json!({"quantity": 3}))
        .header("x-user-id", "u")
        .header("if-match", &etag)
        .send(&host)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_ne!(ok.header("etag"), Some(etag.as_str()));
    let modified = get(&cart_path("s"))
        .header("x-user-id", "u")
        .header("if-none-match", &etag)
        .send(&host)
        .await
        .unwrap();
    assert_eq!(modified.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_product_again_grows_its_line() {
    let host = cart_host();
    put_product(&host, "s", "mug", 1200, 50);
    assert_eq!(add(&host, "s", "u", "mug", 2).await.status(), 200);
    let view = add(&host, "s", "u", "mug", 3).await.json();
    assert_eq!(view["lines"].as_array().unwrap().len(), 1);
    assert_eq!(view["lines"][0]["quantity"], 5);
    assert_eq!(view["subtotal"]["amount"], 6000);
    let held: Vec<u64> = reservations(&host, "s", "mug").values().copied().collect();
    assert_eq!(held, vec![5], "one absolute hold, never a second one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_stock_names_what_is_available_counting_own_hold() {
    let host = cart_host();
    put_product(&host, "s", "kettle", 4900, 5);
    assert_eq!(add(&host, "s", "bob", "kettle", 2).await.status(), 200);
    assert_eq!(add(&host, "s", "alice", "kettle", 2).await.status(), 200);

    // Alice holds 2, Bob 2: Alice can have at most 3 in total.
    let r = set_qty(&host, "s", "alice", "kettle", 4).await;
    assert_problem(&r, 409, "insufficient-stock");
    assert_eq!(r.json()["available"], 3);
    assert_eq!(r.json()["productId"], "kettle");
    assert_eq!(lines(&cart(&host, "s", "alice").await.json())["kettle"], 2);

    // Re-setting what she already holds always works, even with the rest of the stock gone.
    host.set_stock("s", "kettle", 4);
    let again = set_qty(&host, "s", "alice", "kettle", 2).await;
    assert_eq!(again.status(), 200, "{}", again.text());
    let r = add(&host, "s", "alice", "kettle", 1).await;
    assert_problem(&r, 409, "insufficient-stock");
    assert_eq!(r.json()["available"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_and_clear_release_reservations() {
    let host = cart_host();
    put_product(&host, "s", "a", 100, 10);
    put_product(&host, "s", "b", 200, 10);
    assert_eq!(add(&host, "s", "u", "a", 3).await.status(), 200);
    assert_eq!(add(&host, "s", "u", "b", 4).await.status(), 200);
    let r = set_qty(&host, "s", "u", "a", 0).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        lines(&r.json()).get("a"),
        None,
        "quantity 0 removes the line"
    );
    assert!(reservations(&host, "s", "a").is_empty());

    let cleared = request(http::Method::DELETE, &cart_path("s"))
        .header("x-user-id", "u")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200, "{}", cleared.text());
    assert_eq!(cleared.json()["lines"], json!([]));
    assert!(reservations(&host, "s", "b").is_empty());
    assert_eq!(stock_and_available(&host, "s", "b"), (10, 10));

    // After a clear, new lines use a new reservation epoch.
    let view = add(&host, "s", "u", "b", 1).await.json();
    assert!(view["lines"][0]["reservation"]["id"]
        .as_str()
        .unwrap()
        .ends_with("~1"));

    let missing = remove(&host, "s", "u", "a").await;
    assert_problem(&missing, 404, "line-not-found");
    let missing = set_qty(&host, "s", "u", "a", 2).await;
    assert_problem(&missing, 404, "line-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_products_and_quantity_rules() {
    let host = cart_host();
    host.seed_product(
        ProductSeed::new("s", "mug", "Mug", 1200, 100).quantity_rules(2, Some(10), 2),
    );
    assert_problem(
        &add(&host, "s", "u", "nope", 1).await,
        422,
        "unknown-product",
    );
    assert_problem(
        &add(&host, "s", "u", "mug", 1).await,
        422,
        "invalid-quantity",
    );
    assert_problem(
        &add(&host, "s", "u", "mug", 3).await,
        422,
        "invalid-quantity",
    );
    assert_problem(
        &add(&host, "s", "u", "mug", 12).await,
        422,
        "quantity-limit-exceeded",
    );
    assert_eq!(add(&host, "s", "u", "mug", 4).await.status(), 200);

    host.seed_product(ProductSeed::new("s", "usd", "Dollar thing", 100, 5).currency("USD"));
    assert_problem(
        &add(&host, "s", "u", "usd", 1).await,
        422,
        "currency-mismatch",
    );
    assert!(
        reservations(&host, "s", "usd").is_empty(),
        "the refused line holds nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_never_reaches_another_users_cart() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "alice", "p", 2).await.status(), 200);
    let bob = cart(&host, "s", "bob").await.json();
    assert_eq!(bob["lines"], json!([]));
    assert_eq!(bob["userId"], "bob");
    // Bob cannot change Alice's line by any spelling of her id or the path.
    for user in ["Alice", "alice/..", "..", "alice%00", "ａlice", "alice:x"] {
        let r = set_qty(&host, "s", user, "p", 5).await;
        assert!(
            r.status() == 401 || r.status() == 404,
            "user {user:?} got {} {}",
            r.status(),
            r.text()
        );
    }
    for path in [
        "/v1/stores/s/cart/items/..%2Fp",
        "/v1/stores/s/cart/items/%70",
        "/v1/stores/s/../s/cart/items/p",
        "/v1/stores/s/cart/items/p/..",
    ] {
        let r = request(http::Method::DELETE, path)
            .header("x-user-id", "bob")
            .send(&host)
            .await
            .unwrap();
        assert!((400..500).contains(&r.status()), "{path}: {}", r.status());
    }
    assert_eq!(lines(&cart(&host, "s", "alice").await.json())["p"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_class_is_a_clear_4xx_and_changes_nothing() {
    let host = cart_host_with(&[("max_lines_per_cart", "2"), ("max_body_bytes", "256")]);
    put_product(&host, "s", "a", 100, 10);
    put_product(&host, "s", "b", 100, 10);
    put_product(&host, "s", "c", 100, 10);
    assert_eq!(add(&host, "s", "u", "a", 1).await.status(), 200);
    assert_eq!(add(&host, "s", "u", "b", 1).await.status(), 200);
    let items = items_path("s");
    let json_post = |body: &str| {
        request(http::Method::POST, &items)
            .header("x-user-id", "u")
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let cases: Vec<(&str, cart_tests::TestRequest, u16, &str)> = vec![
        (
            "malformed JSON",
            json_post("{\"productId\": "),
            400,
            "invalid-body",
        ),
        (
            "unknown field",
            json_post(r#"{"productId":"c","quantity":1,"price":1}"#),
            400,
            "invalid-body",
        ),
        (
            "missing field",
            json_post(r#"{"productId":"c"}"#),
            400,
            "invalid-body",
        ),
        (
            "fractional quantity",
            json_post(r#"{"productId":"c","quantity":1.5}"#),
            400,
            "invalid-body",
        ),
        (
            "zero quantity",
            json_post(r#"{"productId":"c","quantity":0}"#),
            422,
            "invalid-quantity",
        ),
        (
            "negative quantity",
            json_post(r#"{"productId":"c","quantity":-4}"#),
            422,
            "invalid-quantity",
        ),
        (
            "quantity above limit",
            json_post(r#"{"productId":"c","quantity":100000}"#),
            422,
            "quantity-limit-exceeded",
        ),
        (
            "too many lines",
            json_post(r#"{"productId":"c","quantity":1}"#),
            422,
            "too-many-lines",
        ),
        (
            "oversized body",
            json_post(&format!(
                r#"{{"productId":"c","quantity":1,"x":"{}"}}"#,
                "y".repeat(400)
            )),
            413,
            "body-too-large",
        ),
        (
            "bad product id",
            json_post(r#"{"productId":"../a","quantity":1}"#),
            400,
            "invalid-id",
        ),
        (
            "unicode product id",
            json_post(r#"{"productId":"caf\u00e9","quantity":1}"#),
            400,
            "invalid-id",
        ),
        (
            "wrong content type",
            request(http::Method::POST, &items)
                .header("x-user-id", "u")
                .header("content-type", "text/plain")
                .body(r#"{"productId":"c","quantity":1}"#),
            415,
            "unsupported-media-type",
        ),
        (
            "no content type",
            request(http::Method::POST, &items)
                .header("x-user-id", "u")
                .body(r#"{"productId":"c","quantity":1}"#),
            415,
            "unsupported-media-type",
        ),
        (
            "bad store id",
            post_json(
                "/v1/stores/s%2Fx/cart/items",
                &json!({"productId":"c","quantity":1}),
            )
            .header("x-user-id", "u"),
            400,
            "invalid-id",
        ),
        (
            "dots store id",
            post_json(
                "/v1/stores/../cart/items",
                &json!({"productId":"c","quantity":1}),
            )
            .header("x-user-id", "u"),
            400,
            "invalid-id",
        ),
        (
            "bad path product id",
            patch_json("/v1/stores/s/cart/items/a%20b", &json!({"quantity":1}))
                .header("x-user-id", "u"),
            400,
            "invalid-id",
        ),
        (
            "no identity",
            post_json(&items, &json!({"productId":"c","quantity":1})),
            401,
            "unauthenticated",
        ),
        (
            "bad identity",
            post_json(&items, &json!({"productId":"c","quantity":1})).header("x-user-id", "u:v"),
            401,
            "unauthenticated",
        ),
        (
            "bad If-Match",
            post_json(&items, &json!({"productId":"a","quantity":1}))
                .header("x-user-id", "u")
                .header("if-match", "7"),
            400,
            "invalid-header",
        ),
        (
            "bad Idempotency-Key",
            post_json(&items, &json!({"productId":"a","quantity":1}))
                .header("x-user-id", "u")
                .header("idempotency-key", "\"open"),
            400,
            "invalid-header",
        ),
        (
            "negative set",
            patch_json(&item_path("s", "a"), &json!({"quantity": -1})).header("x-user-id", "u"),
            422,
            "invalid-quantity",
        ),
        (
            "unknown route",
            get("/v1/stores/s/wishlist").header("x-user-id", "u"),
            404,
            "not-found",
        ),
        (
            "wrong method",
            request(http::Method::PUT, &cart_path("s")).header("x-user-id", "u"),
            405,
            "method-not-allowed",
        ),
        (
            "checkout with fields",
            post_json("/v1/stores/s/cart/checkout", &json!({"pay": true})).header("x-user-id", "u"),
            400,
            "invalid-body",
        ),
    ];
    for (name, req, status, slug) in cases {
        // Earlier requests may still be relaying their events: let them finish first.
        host.wait_idle().await;
        let before = state_snapshot(&host);
        let r = req.send(&host).await.unwrap();
        assert_eq!(r.status(), status, "{name}: {}", r.text());
        assert_problem(&r, status, slug);
        host.wait_idle().await;
        let changed = changed_keys(&before, &state_snapshot(&host));
        assert!(changed.is_empty(), "{name} changed the store: {changed:?}");
    }
    assert_eq!(lines(&cart(&host, "s", "u").await.json()).len(), 2);
    let held: u64 = reservations(&host, "s", "c").values().sum();
    assert_eq!(held, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_operational_routes() {
    let host = cart_host();
    let r = get("/healthz").send(&host).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json()["status"], "ok");
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    // Metrics are flushed after the response, with the relay: let that work finish.
    host.wait_idle().await;
    let metrics = get("/metrics").send(&host).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text();
    // Parsed, anchored samples: `... 1` must not pass for 10 or 100.
    assert_eq!(
        metric(
            &text,
            "cart_operation_duration_seconds_count{operation=\"add_item\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE cart_lock_acquisitions_total counter"),
        "{text}"
    );
    assert_eq!(
        metric(&text, "cart_inventory_breaker_state"),
        Some(0.0),
        "{text}"
    );

    // Admin routes refuse callers without the admin token.
    let anon = request(http::Method::POST, "/admin/outbox/relay")
        .send(&host)
        .await
        .unwrap();
    assert_problem(&anon, 401, "unauthenticated");
    let user = request(http::Method::POST, "/admin/outbox/relay")
        .header("authorization", "Bearer not-the-token")
        .send(&host)
        .await
        .unwrap();
    assert_problem(&user, 403, "forbidden");
    assert_eq!(admin_post(&host, "/admin/outbox/relay").await.status(), 200);
}

/// The variables one request reads, once its after-response work has settled.
async fn variables_read_by(
    host: &cart_tests::CapabilityHost,
    request: cart_tests::TestRequest,
) -> (u16, Vec<String>) {
    host.wait_idle().await;
    host.reset_variables_read();
    let status = request.send(host).await.unwrap().status();
    host.wait_idle().await;
    (status, host.variables_read().into_keys().collect())
}

/// Every variable is a host call of its own on Spin (and an expensive one), so a request reads
/// only what its route needs: `/healthz` the header limit and the metrics sample rate, a cart
/// read neither the body limit (it has no body) nor the line limits nor the guests' settings;
/// a request with a body does read the body limit, and an add the line limits (but neither the
/// guests' settings nor the operators' token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reads_only_the_settings_its_route_needs() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);

    let (status, health) = variables_read_by(&host, get("/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(health, ["max_header_bytes", "metrics_sample_every"]);

    let (status, read) =
        variables_read_by(&host, get("/v1/stores/s/cart").header("x-user-id", "u")).await;
    assert_eq!(status, 200);
    for unneeded in [
        "max_body_bytes",
        "max_lines_per_cart",
        "max_quantity_per_line",
        "guest_reservation_ttl_seconds",
        "guest_abandon_after_days",
        "lock_url",
    ] {
        assert!(
            !read.iter().any(|n| n == unneeded),
            "a cart read read {unneeded}: {read:?}"
        );
    }
    for needed in [
        "max_header_bytes",
        "allow_insecure_user_header",
        "max_id_length",
    ] {
        assert!(
            read.iter().any(|n| n == needed),
            "a cart read skipped {needed}: {read:?}"
        );
    }

    let (status, write) = variables_read_by(
        &host,
        post_json(
            "/v1/stores/s/cart/items",
            &json!({"productId": "p", "quantity": 1}),
        )
        .header("x-user-id", "u"),
    )
    .await;
    assert_eq!(status, 200);
    for needed in ["max_body_bytes", "max_quantity_per_line", "lock_url"] {
        assert!(
            write.iter().any(|n| n == needed),
            "an add skipped {needed}: {write:?}"
        );
    }
    assert!(
        !write.iter().any(|n| n.starts_with("guest_")),
        "a signed-in shopper's add read the guests' settings: {write:?}"
    );
    assert!(
        !write.iter().any(|n| n == "admin_token"),
        "an add (and its relay) read the operators' token: {write:?}"
    );
}

/// One scrape's key-value reads, after the work of earlier requests has settled.
async fn scrape_reads(host: &cart_tests::CapabilityHost) -> (u64, u64, String) {
    host.wait_idle().await;
    host.reset_calls();
    let r = get("/metrics").send(host).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    // Counted once the scrape's own after-response work (its metrics flush) is done too, so
    // the figure does not depend on how far that got.
    host.wait_idle().await;
    let reads = (
        host.calls_of(Interface::Kv, "get") + host.calls_of(Interface::Documents, "read-head"),
        host.calls_of(Interface::Kv, "list-keys"),
    );
    (reads.0, reads.1, r.text())
}

/// A scrape reads a fixed set of keys (the registered series), never a scan of the store: the
/// same reads with thousands of unrelated keys in the store as without, and no `list-keys`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_read_the_same_keys_whatever_the_store_holds() {
    let host = cart_host_with(&[("metrics_sample_every", "1")]);
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    assert_eq!(cart(&host, "s", "u").await.status(), 200);
    // Every operation the next scrapes will find counted, the scrape itself included.
    scrape_reads(&host).await;
    let (reads, scans, before) = scrape_reads(&host).await;
    assert_eq!(scans, 0, "a scrape never lists keys");
    // The metric shards (16) and the breaker state for its gauge.
    assert!(reads > 0 && reads <= 20, "a bounded set of reads: {reads}");

    // 6,000 keys of every family the store holds in production, metrics-looking ones included.
    for i in 0..1_000 {
        host.kv_set(
            &format!("metrics:cart_made_up_total{{n=\"{i}\"}}"),
            7i64.to_le_bytes(),
        );
        host.kv_set(&format!("metrics:junk{i}"), 1i64.to_le_bytes());
        host.kv_set(&format!("idem:u{i}:abc:response"), b"{}".to_vec());
        host.kv_set(&format!("lock:line:s:u{i}:p"), b"{}".to_vec());
        host.kv_set(&format!("breaker:inventory:{i}:ok"), 1i64.to_le_bytes());
        host.kv_set(&format!("inv:s:p{i}"), b"{}".to_vec());
    }
    // A document that looks like a shard beyond the ones the cart uses is never read.
    host.doc_compare_and_swap(
        "metrics:shard:99",
        0,
        br#"{"cart_made_up_total":5}"#.to_vec(),
    )
    .expect("a stray document");
    let (reads_after, scans_after, after) = scrape_reads(&host).await;
    assert_eq!(scans_after, 0);
    assert_eq!(
        reads_after, reads,
        "the scrape cost does not grow with the store"
    );
    assert!(
        !after.contains("made_up") && !after.contains("junk"),
        "{after}"
    );
    let families = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(families(&after), families(&before));
}

/// With `metrics_token` set, a scrape needs it: 401 without a bearer token, 403 with another
/// one (nothing read or changed), 200 with it. Without the variable `/metrics` is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_token_guards_scrapes() {
    let host = cart_host_with(&[("metrics_token", "scrape-secret")]);
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 1).await.status(), 200);
    host.wait_idle().await;
    let before = state_snapshot(&host);
    host.reset_calls();
    let anonymous = get("/metrics").send(&host).await.unwrap();
    assert_problem(&anonymous, 401, "unauthenticated");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    for token in ["not-the-token", ADMIN_TOKEN] {
        let wrong = get("/metrics")
            .header("authorization", &format!("Bearer {token}"))
            .send(&host)
            .await
            .unwrap();
        assert_problem(&wrong, 403, "forbidden");
    }
    assert_eq!(
        host.calls_of(Interface::Kv, "get"),
        0,
        "a refused scrape reads nothing"
    );
    host.wait_idle().await;
    assert!(changed_keys(&before, &state_snapshot(&host)).is_empty());
    let ok = get("/metrics")
        .header("authorization", "Bearer scrape-secret")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(ok
        .text()
        .contains("# TYPE cart_operation_duration_seconds histogram"));
    let open = cart_host();
    assert_eq!(get("/metrics").send(&open).await.unwrap().status(), 200);
}

/// Every series the cart writes is a registered one that `/metrics` shows: a broad workload
/// (writes, reads, refusals, guests, admin jobs, inventory faults) leaves only registered
/// `metrics:` keys, and each stored family appears in the exposition with HELP and TYPE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_written_is_registered_and_shown() {
    let host = cart_host_with(&[("metrics_sample_every", "1")]);
    put_product(&host, "s", "p", 100, 10);
    put_product(&host, "s", "q", 250, 2);
    assert_eq!(add(&host, "s", "u", "p", 2).await.status(), 200);
    assert_problem(
        &add(&host, "s", "u", "q", 5).await,
        409,
        "insufficient-stock",
    );
    assert_eq!(set_qty(&host, "s", "u", "p", 3).await.status(), 200);
    assert_eq!(cart(&host, "s", "u").await.status(), 200);
    let summary = get("/v1/stores/s/cart/summary")
        .header("x-user-id", "u")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(summary.status(), 200, "{}", summary.text());
    let keyed = || {
        post_json(&items_path("s"), &json!({"productId": "q", "quantity": 1}))
            .header("x-user-id", "u")
            .header("idempotency-key", "\"k1\"")
    };
    assert_eq!(keyed().send(&host).await.unwrap().status(), 200);
    let replayed = keyed().send(&host).await.unwrap();
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(remove(&host, "s", "u", "q").await.status(), 200);
    assert_eq!(checkout(&host, "s", "u").await.status(), 200);
    assert_eq!(clear(&host, "s", "u").await.status(), 200);
    host.fail_always(
        Interface::Inventory,
        cart_tests::Fault::Unavailable("down".into()),
    );
    for i in 0..12 {
        // Unconfirmed, then short-circuited: accepted either way.
        assert_eq!(
            add(&host, "s", &format!("v{i}"), "p", 1).await.status(),
            200
        );
    }
    host.clear_all_faults();
    // Past the breaker's open period (30 s), within the product cache's TTL (60 s).
    host.advance_clock(std::time::Duration::from_secs(31));
    let guest = request(http::Method::POST, "/v1/guest-tokens")
        .send(&host)
        .await
        .unwrap();
    let token = guest.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let guest_add = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 1}))
        .header("authorization", &format!("Bearer {token}"))
        .send(&host)
        .await
        .unwrap();
    assert_eq!(guest_add.status(), 200, "{}", guest_add.text());
    let merged = post_json("/v1/stores/s/cart/merge", &json!({"guestToken": token}))
        .header("x-user-id", "w")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(merged.status(), 200, "{}", merged.text());
    assert_eq!(get("/nowhere").send(&host).await.unwrap().status(), 404);
    assert_eq!(
        admin_post(&host, "/admin/outbox/relay?force=true")
            .await
            .status(),
        200
    );
    assert_eq!(
        admin_post(&host, "/admin/reservations/sweep?storeId=s")
            .await
            .status(),
        200
    );
    let text = metrics(&host).await;
    host.wait_idle().await;

    let log = host.guest_output();
    assert!(!log.contains("unregistered metric series"), "{log}");
    // Stored histogram series are `{stored}_raw|_sum|_count`, shown under their family.
    let histograms = [
        (
            "cart_operation_duration_ms",
            "cart_operation_duration_seconds",
        ),
        (
            "cart_dependency_duration_ms",
            "cart_dependency_duration_seconds",
        ),
        (
            "cart_inventory_reservation_us",
            "cart_inventory_reservation_duration_seconds",
        ),
        ("cart_lock_acquire_us", "cart_lock_acquire_duration_seconds"),
        ("cart_lock_hold_us", "cart_lock_hold_duration_seconds"),
        (
            "cart_events_publish_us",
            "cart_events_publish_duration_seconds",
        ),
        (
            "cart_events_publish_batch",
            "cart_events_publish_batch_size",
        ),
        ("cart_outbox_lag_us", "cart_outbox_lag_seconds"),
        ("cart_cache_read_us", "cart_cache_read_duration_seconds"),
        ("cart_cache_write_us", "cart_cache_write_duration_seconds"),
        ("cart_checkout_items", "cart_checkout_items"),
        ("cart_checkout_value", "cart_checkout_value_minor_units"),
    ];
    let exposed = |stored: &str| -> String {
        let name = stored.split('{').next().unwrap_or(stored);
        // Counters kept in milliseconds (`cart_lock_wait_ms_total`) are shown in seconds.
        if let Some(base) = name.strip_suffix("_ms_total") {
            return format!("{base}_seconds_total");
        }
        for suffix in ["_raw", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some((_, family)) = histograms.iter().find(|(s, _)| *s == base) {
                    return (*family).to_owned();
                }
            }
        }
        name.to_owned()
    };
    let stored = stored_metric_series(&host);
    assert!(stored.len() > 20, "{stored:?}");
    for series in &stored {
        let family = exposed(series);
        assert!(
            text.contains(&format!("# HELP {family} "))
                && text.contains(&format!("# TYPE {family} ")),
            "{series} is stored but {family} is not shown:\n{text}"
        );
    }
    for family in [
        "cart_lock_acquisitions_total",
        "cart_inventory_reservations_total",
        "cart_inventory_short_circuits_total",
        "cart_idempotency_replays_total",
        "cart_checkouts_total",
        "cart_guest_merges_total",
        "cart_http_responses_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} counter")),
            "{family}:\n{text}"
        );
    }
    assert!(text.contains("cart_http_responses_total{operation=\"unrouted\",status=\"404\"}"));
    // Every histogram family this workload exercises (checkout, relay, cache, leases).
    for (_, family) in histograms {
        assert!(
            text.contains(&format!("# TYPE {family} histogram")),
            "{family}:\n{text}"
        );
    }
    assert!(text.contains("# TYPE cart_store_writes_total counter"));
    // What each request waited on, per dependency (the seed's reservation and lock latencies).
    assert!(text.contains("# TYPE cart_dependency_duration_seconds histogram"));
    for dependency in ["lock", "inventory", "store"] {
        let count =
            format!("cart_dependency_duration_seconds_count{{dependency=\"{dependency}\"}} ");
        let n: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&count))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {count}in:\n{text}"));
        assert!(n >= 1.0, "{dependency}: {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_timing_breaks_the_request_down() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    let r = add(&host, "s", "u", "p", 1).await;
    let timing = r.header("server-timing").unwrap_or_default().to_owned();
    for phase in ["lock;dur=", "inventory;dur=", "store;dur=", "total;dur="] {
        assert!(timing.contains(phase), "{timing}");
    }
}

/// The compiled cart logic imports only the project's contract and WASI: everything Spin-
/// specific lives in the adapter, which exports the contract and imports Spin's interfaces.
#[test]
fn the_cart_logic_imports_only_the_contract_and_wasi() {
    let engine = cart_tests::engine::engine();
    let imports = |name: &str| -> Vec<String> {
        let component = cart_tests::engine::load_component(&cart_tests::wasm_path(name).unwrap())
            .expect("component loads");
        component
            .component_type()
            .imports(engine)
            .map(|(import, _)| import.to_owned())
            .collect()
    };
    let cart = imports("cart");
    assert!(
        cart.iter()
            .any(|i| i.starts_with("storefront:cart/documents@")),
        "{cart:?}"
    );
    for import in &cart {
        assert!(
            import.starts_with("storefront:cart/") || import.starts_with("wasi:"),
            "the cart logic imports {import}"
        );
    }
    let adapter_path =
        cart_tests::workspace_root().join("target/wasm32-wasip2/release/spin_adapter.wasm");
    let adapter = cart_tests::engine::load_component(&adapter_path).expect("adapter loads");
    let exports: Vec<String> = adapter
        .component_type()
        .exports(engine)
        .map(|(export, _)| export.to_owned())
        .collect();
    for interface in ["documents", "kv", "locks", "inventory", "events", "config"] {
        assert!(
            exports
                .iter()
                .any(|e| e.starts_with(&format!("storefront:cart/{interface}@"))),
            "adapter exports {interface}: {exports:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_can_require_idempotency_keys_on_post() {
    let host = cart_host_with(&[("idempotency_key_required", "true")]);
    put_product(&host, "s", "p", 100, 10);
    let before = state_snapshot(&host);
    let r = add(&host, "s", "u", "p", 1).await;
    assert_problem(&r, 400, "idempotency-key-required");
    host.wait_idle().await;
    assert!(changed_keys(&before, &state_snapshot(&host)).is_empty());
    let ok = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 1}))
        .header("x-user-id", "u")
        .header("idempotency-key", "\"k-1\"")
        .send(&host)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text());
    // Other methods stay optional.
    assert_eq!(set_qty(&host, "s", "u", "p", 2).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowering_a_quantity_shrinks_the_hold_after_the_commit() {
    let host = cart_host();
    put_product(&host, "s", "p", 100, 10);
    assert_eq!(add(&host, "s", "u", "p", 5).await.status(), 200);
    let r = set_qty(&host, "s", "u", "p", 2).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(lines(&r.json())["p"], 2);
    host.wait_idle().await;
    assert_eq!(held_quantities(&host, "s", "p"), vec![2]);
    assert_eq!(stock_and_available(&host, "s", "p"), (10, 8));
}
