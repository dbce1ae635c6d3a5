//! Concurrency you can bet stock on, for each lock backend: the embedded key-value lease, a real
//! `redis-server` (`redis://`), and an Upstash-compatible REST endpoint backed by that Redis
//! (`http(s)://`). Everything runs through the real compiled components.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cart_tests::upstash::UpstashServer;
use cart_tests::{get, post_json, RedisServer, SpinApp};
use serde_json::json;
use support::*;

/// One lock backend under test, with what keeps it alive.
struct Backend {
    name: &'static str,
    app: Arc<SpinApp>,
    _redis: Option<RedisServer>,
    _upstash: Option<UpstashServer>,
    redis_url: Option<String>,
}

fn kv_backend(vars: &[(&str, &str)]) -> Backend {
    Backend {
        name: "kv",
        app: app_with(vars),
        _redis: None,
        _upstash: None,
        redis_url: None,
    }
}

fn redis_backend(vars: &[(&str, &str)]) -> Option<Backend> {
    let redis = RedisServer::start().expect("redis-server starts")?;
    let url = redis.url();
    let origin = origin_of(&url);
    let mut vars = vars.to_vec();
    vars.push(("lock_url", url.as_str()));
    vars.push(("lock_origin", origin.as_str()));
    let app = app_with(&vars);
    Some(Backend {
        name: "redis",
        app,
        redis_url: Some(url),
        _redis: Some(redis),
        _upstash: None,
    })
}

fn upstash_backend(vars: &[(&str, &str)]) -> Option<Backend> {
    let redis = RedisServer::start().expect("redis-server starts")?;
    let upstash = UpstashServer::start(&redis.url(), "upstash-test-token").expect("upstash");
    let url = upstash.url();
    let origin = origin_of(&url);
    let mut vars = vars.to_vec();
    vars.push(("lock_url", url.as_str()));
    vars.push(("lock_origin", origin.as_str()));
    vars.push(("lock_token", "upstash-test-token"));
    let app = app_with(&vars);
    Some(Backend {
        name: "upstash",
        app,
        redis_url: Some(redis.url()),
        _redis: Some(redis),
        _upstash: Some(upstash),
    })
}

fn backends(vars: &[(&str, &str)]) -> Vec<Backend> {
    let mut all = vec![kv_backend(vars)];
    all.extend(redis_backend(vars));
    all.extend(upstash_backend(vars));
    all
}

/// The figures a suite saw, read from `/metrics`.
async fn figures(app: &SpinApp) -> String {
    app.wait_idle().await;
    let text = get("/metrics").send(app).await.unwrap().text();
    let pick = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("0")
            .to_owned()
    };
    format!(
        "lock acquisitions {}, contended {}, attempts {}, wait ms {}, timeouts {}, version conflicts {}",
        pick("cart_lock_acquisitions_total"),
        pick("cart_lock_contended_total"),
        pick("cart_lock_attempts_total"),
        pick("cart_lock_wait_ms_total"),
        pick("cart_lock_timeouts_total"),
        pick("cart_version_conflicts_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_adds_against_stock_ten_reserve_exactly_ten() {
    for backend in backends(&[]) {
        let app = backend.app.clone();
        put_product(&app, "s", "hot", 999, 10).await;
        let mut tasks = Vec::new();
        for i in 0..100 {
            let app = app.clone();
            let user = format!("user{}", i % 10);
            tasks.push(tokio::spawn(async move {
                let r = add(&app, "s", &user, "hot", 1).await;
                (r.status(), r.text())
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                200 => ok += 1,
                409 => assert!(
                    body.contains("/insufficient-stock"),
                    "[{}] a 409 that is not insufficient stock: {body}",
                    backend.name
                ),
                other => panic!("[{}] unexpected {other}: {body}", backend.name),
            }
        }
        assert_eq!(ok, 10, "[{}] exactly ten adds succeed", backend.name);
        let held = reservations(&app, "s", "hot").await;
        assert_eq!(
            held.values().sum::<u64>(),
            10,
            "[{}] {held:?}",
            backend.name
        );
        let mut in_carts = 0;
        for u in 0..10 {
            let user = format!("user{u}");
            let view = cart(&app, "s", &user).await.json();
            let q = lines(&view).get("hot").copied().unwrap_or(0);
            in_carts += q;
            // No doubled hold: each cart's line is backed by exactly its own reservation.
            if q > 0 {
                assert_eq!(
                    view["lines"][0]["reservation"]["status"], "confirmed",
                    "[{}] {user}",
                    backend.name
                );
                let rid = view["lines"][0]["reservation"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(
                    held.get(&rid).copied(),
                    Some(q),
                    "[{}] {user}",
                    backend.name
                );
            }
        }
        assert_eq!(in_carts, 10, "[{}] carts sum to the stock", backend.name);
        assert_eq!(product(&app, "s", "hot").await["available"], 0);
        eprintln!("[{}] stock-10 suite: {}", backend.name, figures(&app).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_adds_of_different_products_all_survive() {
    for backend in backends(&[]) {
        let app = backend.app.clone();
        for i in 0..50 {
            put_product(&app, "s", &format!("p{i}"), 100 + i, 5).await;
        }
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    let r = add(&app, "s", "shopper", &format!("p{i}"), 1).await;
                    (r.status(), r.text())
                })
            })
            .collect();
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, 200, "[{}] {body}", backend.name);
        }
        let view = cart(&app, "s", "shopper").await.json();
        let got = lines(&view);
        assert_eq!(
            got.len(),
            50,
            "[{}] all 50 lines present: {got:?}",
            backend.name
        );
        assert!(got.values().all(|q| *q == 1));
        eprintln!("[{}] 50-lines suite: {}", backend.name, figures(&app).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_retried_twenty_times_in_parallel_applies_once() {
    for backend in backends(&[]) {
        let app = backend.app.clone();
        put_product(&app, "s", "p", 250, 100).await;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    let r = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 3}))
                        .header("x-user-id", "u")
                        .header("idempotency-key", "\"order-42-add\"")
                        .send(&app)
                        .await
                        .unwrap();
                    (
                        r.status(),
                        r.header("idempotent-replayed").map(str::to_owned),
                        r.text(),
                    )
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            let (status, _, body) = t.await.unwrap();
            match status {
                200 => ok += 1,
                409 => assert!(body.contains("/idempotency-key-in-use"), "{body}"),
                other => panic!("[{}] unexpected {other}: {body}", backend.name),
            }
        }
        assert!(
            ok >= 1,
            "[{}] at least the first one completes",
            backend.name
        );
        let view = cart(&app, "s", "u").await.json();
        assert_eq!(lines(&view)["p"], 3, "[{}] applied once", backend.name);
        assert_eq!(reservations(&app, "s", "p").await.values().sum::<u64>(), 3);

        // A later retry replays the stored response; a different body under the key is a 422.
        let replay = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 3}))
            .header("x-user-id", "u")
            .header("idempotency-key", "order-42-add")
            .send(&app)
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(replay.json()["lines"][0]["quantity"], 3);
        let reused = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 4}))
            .header("x-user-id", "u")
            .header("idempotency-key", "order-42-add")
            .send(&app)
            .await
            .unwrap();
        assert_problem(&reused, 422, "idempotency-key-reused");
        // Keys are per user: another shopper's identical key is a different request.
        let other = post_json(&items_path("s"), &json!({"productId": "p", "quantity": 3}))
            .header("x-user-id", "v")
            .header("idempotency-key", "order-42-add")
            .send(&app)
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
        assert_eq!(other.header("idempotent-replayed"), None);
        assert_eq!(lines(&cart(&app, "s", "u").await.json())["p"], 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lock_holder_blocks_only_until_its_ttl() {
    let ttl_ms = 1_500u64;
    for backend in backends(&[("lock_wait_ms", "200")]) {
        let app = backend.app.clone();
        put_product(&app, "s", "p", 100, 10).await;
        // A holder that took the line's lease and died without releasing it.
        let key = "s:u:p";
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        match &backend.redis_url {
            None => app.kv().insert(
                format!("lock:{key}"),
                json!({"token": "dead-holder", "expiresAtMs": now_ms + ttl_ms, "nonce": "n"})
                    .to_string(),
            ),
            Some(url) => {
                redis_set_px(url, &format!("cart-lock:{key}"), "dead-holder", ttl_ms).await
            }
        }
        let blocked = add(&app, "s", "u", "p", 1).await;
        assert_problem(&blocked, 409, "line-busy");
        assert!(blocked.header("retry-after").is_some());
        tokio::time::sleep(Duration::from_millis(ttl_ms + 200)).await;
        let after = add(&app, "s", "u", "p", 1).await;
        assert_eq!(after.status(), 200, "[{}] {}", backend.name, after.text());
        // Other lines were never blocked.
        eprintln!(
            "[{}] dead-holder suite: {}",
            backend.name,
            figures(&app).await
        );
    }
}

async fn redis_set_px(url: &str, key: &str, value: &str, ttl_ms: u64) {
    use cart_tests::resp::{RedisAddress, RespConnection, RespValue};
    let address = RedisAddress::parse(url).expect("redis url");
    let mut conn = RespConnection::connect(&address, Duration::from_secs(2))
        .await
        .expect("connect");
    let reply = conn
        .command(&[
            b"SET".to_vec(),
            key.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
            b"PX".to_vec(),
            ttl_ms.to_string().into_bytes(),
        ])
        .await
        .expect("SET");
    assert_eq!(reply, RespValue::Simple("OK".into()));
}
