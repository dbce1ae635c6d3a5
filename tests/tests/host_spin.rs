//! The Spin test host against small fixture components (tests/fixtures): it must behave like
//! Spin 4.0.2 as shared/SPIN-FACTS.md describes, because the app ships to Spin.
//!
//! Fixtures are built on first use (`ensure_fixtures`); apps are written inline as `spin.toml`
//! text with `@name@` standing for a fixture's absolute path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cart_tests::{
    ensure_fixtures, fixture_path, get, target_dir, AppOptions, KvStore, SpinApp, TestResponse,
};
use serde_json::Value;

/// Replaces `@fixture@` placeholders with fixture paths.
fn manifest(text: &str) -> String {
    let mut out = text.to_string();
    for name in cart_tests::testing::FIXTURES {
        out = out.replace(
            &format!("@{name}@"),
            &fixture_path(name).display().to_string(),
        );
    }
    out
}

fn try_load(text: &str, options: AppOptions) -> anyhow::Result<Arc<SpinApp>> {
    ensure_fixtures().expect("test fixtures build");
    SpinApp::load_str(&manifest(text), &target_dir(), options)
}

fn load(text: &str) -> Arc<SpinApp> {
    load_with(text, AppOptions::default())
}

fn load_with(text: &str, options: AppOptions) -> Arc<SpinApp> {
    try_load(text, options).expect("app loads")
}

async fn call(app: &SpinApp, path: &str) -> TestResponse {
    get(path).send(app).await.expect("request handled")
}

/// Values of header `name` in an echo fixture answer, in order.
fn echoed(answer: &Value, name: &str) -> Vec<String> {
    answer["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap_or_default().to_string())
        .collect()
}

fn echoed_one(answer: &Value, name: &str) -> String {
    let values = echoed(answer, name);
    assert_eq!(values.len(), 1, "{name}: {values:?}");
    values[0].clone()
}

/// Percent-encodes a fixture query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

mod routing {
    use super::*;

    const APP: &str = r#"
        spin_manifest_version = 2
        [application]
        name = "routing"
        [[trigger.http]]
        route = "/one"
        component = "exact"
        [[trigger.http]]
        route = "/one/..."
        component = "one"
        [[trigger.http]]
        route = "/one/two/..."
        component = "two"
        [component.exact]
        source = "@echo@"
        [component.one]
        source = "@echo@"
        [component.two]
        source = "@echo@"
    "#;

    #[tokio::test(flavor = "multi_thread")]
    async fn exact_beats_wildcard_then_longest_prefix_wins() {
        let app = load(APP);
        for (path, route) in [
            ("/one", "/one"),
            ("/one/", "/one"),
            ("/one/x", "/one/..."),
            ("/one/two", "/one/two/..."),
            ("/one/two/three/four", "/one/two/..."),
        ] {
            let r = call(&app, path).await;
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(echoed_one(&r.json(), "spin-matched-route"), route, "{path}");
        }
        let stats = app.stats();
        assert_eq!(stats.requests["exact"], 2);
        assert_eq!(stats.requests["two"], 2);
        // Spin's instance model: every request gets a fresh instance.
        assert_eq!(stats.instantiations["one"], 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn no_route_is_404_with_an_empty_body() {
        let app = load(APP);
        for path in ["/", "/onetwo", "/other/one"] {
            let r = call(&app, path).await;
            assert_eq!(r.status(), 404, "{path}");
            assert!(r.bytes().is_empty(), "{path}: {}", r.text());
        }
        assert!(app.stats().requests.is_empty(), "no component ran");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn instances_are_tracked_until_they_exit() {
        let app = load(APP);
        let r = call(&app, "/one/x").await;
        assert_eq!(r.status(), 200);
        app.wait_idle().await;
        assert_eq!(app.running_instances(), 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn spin_answers_its_own_health_route() {
        let app = load(APP);
        let r = call(&app, "/.well-known/spin/health").await;
        assert_eq!((r.status(), r.text().as_str()), (200, "OK"));
        assert_eq!(call(&app, "/.well-known/spin/nothing").await.status(), 404);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_trap_before_the_response_is_500_with_an_empty_body() {
        let app = load(APP);
        let r = call(&app, "/one/boom/trap").await;
        assert_eq!(r.status(), 500);
        assert!(r.bytes().is_empty());
        assert!(
            app.guest_output().contains("trap requested by the test"),
            "the guest's panic message is captured: {}",
            app.guest_output()
        );
        // The component's own statuses pass through untouched.
        assert_eq!(call(&app, "/one/status/418").await.status(), 418);
    }
}

mod headers {
    use super::*;

    const APP: &str = r#"
        spin_manifest_version = 2
        [application]
        name = "headers"
        [[trigger.http]]
        route = "/..."
        component = "all"
        [[trigger.http]]
        route = "/v1/..."
        component = "api"
        [component.all]
        source = "@echo@"
        [component.api]
        source = "@echo@"
    "#;

    #[tokio::test(flavor = "multi_thread")]
    async fn catch_all_route_headers_match_spin() {
        let app = load(APP);
        let r = get("/a/b?c=d")
            .header("host", "127.0.0.1:3000")
            .send(&app)
            .await
            .unwrap();
        let a = r.json();
        assert_eq!(a["path_with_query"], "/a/b?c=d");
        assert_eq!(a["scheme"], "http");
        assert_eq!(
            echoed_one(&a, "spin-full-url"),
            "http://127.0.0.1:3000/a/b?c=d"
        );
        assert_eq!(echoed_one(&a, "spin-path-info"), "/a/b");
        assert_eq!(echoed_one(&a, "spin-matched-route"), "/...");
        assert_eq!(echoed_one(&a, "spin-raw-component-route"), "/...");
        assert_eq!(echoed_one(&a, "spin-component-route"), "");
        assert_eq!(echoed_one(&a, "spin-base-path"), "/");
        assert_eq!(echoed_one(&a, "spin-client-addr"), "127.0.0.1:0");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn prefixed_route_headers_match_spin() {
        let app = load(APP);
        let a = get("/v1/a/b?c=d")
            .header("host", "127.0.0.1:3000")
            .send(&app)
            .await
            .unwrap()
            .json();
        assert_eq!(
            a["path_with_query"], "/v1/a/b?c=d",
            "the full path, not the path info"
        );
        assert_eq!(
            echoed_one(&a, "spin-full-url"),
            "http://127.0.0.1:3000/v1/a/b?c=d"
        );
        assert_eq!(echoed_one(&a, "spin-path-info"), "/a/b");
        assert_eq!(echoed_one(&a, "spin-matched-route"), "/v1/...");
        assert_eq!(echoed_one(&a, "spin-raw-component-route"), "/v1/...");
        assert_eq!(echoed_one(&a, "spin-component-route"), "/v1");
        assert_eq!(echoed_one(&a, "spin-base-path"), "/");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn test_requests_are_encoded_like_a_client_would_send_them() {
        let app = load(APP);
        let a = get("/v1/a b/caf\u{e9}?q=x y#frag")
            .send(&app)
            .await
            .unwrap()
            .json();
        assert_eq!(a["path_with_query"], "/v1/a%20b/caf%C3%A9?q=x%20y");
        assert_eq!(
            cart_tests::testing::request_target("/ok%2F?a=b&c"),
            "/ok%2F?a=b&c"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn client_sent_spin_headers_are_kept_and_spins_appended() {
        let app = load(APP);
        let a = get("/v1/x")
            .header("spin-path-info", "/forged")
            .header("x-custom", "kept")
            .send(&app)
            .await
            .unwrap()
            .json();
        assert_eq!(echoed(&a, "spin-path-info"), ["/forged", "/x"]);
        assert_eq!(echoed(&a, "x-custom"), ["kept"]);
        // No Host: in-process requests count as `Host: localhost`.
        assert_eq!(echoed_one(&a, "spin-full-url"), "http://localhost/v1/x");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn served_over_tcp_like_spin_up() {
        use http_body_util::BodyExt;
        let app = load(APP);
        let server = app.clone().serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = server.local_addr().port();
        let stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/a/b?c=d")
            .header("host", format!("127.0.0.1:{port}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let a: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            echoed_one(&a, "spin-full-url"),
            format!("http://127.0.0.1:{port}/a/b?c=d")
        );
        let client = echoed_one(&a, "spin-client-addr");
        assert!(
            client.starts_with("127.0.0.1:") && client != "127.0.0.1:0",
            "{client}"
        );
        // Keep-alive: a second request on the same connection, once hyper has it back.
        sender.ready().await.unwrap();
        let again = sender
            .send_request(
                http::Request::get("/nothing-here/v2")
                    .header("host", "x")
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
        drop(sender);
        server.shutdown();
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "the listener is closed after shutdown"
        );
    }
}

mod chaining {
    use super::*;

    fn app(front_hosts: &str, back_route: &str) -> Arc<SpinApp> {
        load(
            &r#"
            spin_manifest_version = 2
            [application]
            name = "chaining"
            [[trigger.http]]
            route = "/front/..."
            component = "front"
            [[trigger.http]]
            route = BACK_ROUTE
            component = "back"
            [component.front]
            source = "@outbound@"
            allowed_outbound_hosts = FRONT_HOSTS
            [component.back]
            source = "@echo@"
            [component.lonely]
            source = "@echo@"
        "#
            .replace("FRONT_HOSTS", front_hosts)
            .replace("BACK_ROUTE", back_route),
        )
    }

    async fn fetch(app: &SpinApp, url: &str, extra: &str) -> Value {
        let r = call(app, &format!("/front/out?url={}{extra}", enc(url))).await;
        assert_eq!(r.status(), 200, "{}", r.text());
        r.json()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn spin_internal_is_dispatched_in_process_with_spins_headers() {
        let app = app(r#"["http://*.spin.internal"]"#, r#""/back/...""#);
        let out = fetch(&app, "http://back.spin.internal/inner/x?y=1", "").await;
        assert_eq!(out["status"], 200, "{out}");
        let echoed_answer: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            echoed_answer["path_with_query"], "/inner/x?y=1",
            "path kept as is"
        );
        assert_eq!(
            echoed_one(&echoed_answer, "spin-full-url"),
            "http://localhost/inner/x?y=1"
        );
        assert_eq!(echoed_one(&echoed_answer, "spin-client-addr"), "0.0.0.0:0");
        // Spin's synthetic match for chained requests (RouteMatch::synthetic).
        assert_eq!(echoed_one(&echoed_answer, "spin-matched-route"), "/...");
        assert_eq!(echoed_one(&echoed_answer, "spin-path-info"), "/inner/x");
        assert_eq!(echoed_one(&echoed_answer, "spin-component-route"), "");
        let stats = app.stats();
        assert_eq!(stats.outbound["back.spin.internal"], 1);
        assert_eq!(stats.requests["back"], 1, "each hop is a fresh instance");
        assert_eq!(stats.instantiations["back"], 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn target_route_headers_are_available_as_an_option() {
        let text = r#"
            spin_manifest_version = 2
            [application]
            name = "chaining"
            [[trigger.http]]
            route = "/front/..."
            component = "front"
            [[trigger.http]]
            route = "/back/..."
            component = "back"
            [component.front]
            source = "@outbound@"
            allowed_outbound_hosts = ["http://*.spin.internal"]
            [component.back]
            source = "@echo@"
        "#;
        let app = load_with(
            text,
            AppOptions {
                chained_route_headers: cart_tests::ChainedRouteHeaders::TargetRoute,
                ..AppOptions::default()
            },
        );
        let out = fetch(&app, "http://back.spin.internal/back/v1/x", "").await;
        let answer: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(echoed_one(&answer, "spin-matched-route"), "/back/...");
        assert_eq!(echoed_one(&answer, "spin-path-info"), "/v1/x");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn private_routes_are_chainable_but_not_routable() {
        let app = app(r#"["http://*.spin.internal"]"#, "{ private = true }");
        assert_eq!(call(&app, "/back/x").await.status(), 404);
        let out = fetch(&app, "http://back.spin.internal/back/x", "").await;
        assert_eq!(out["status"], 200, "{out}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn chaining_needs_allowed_outbound_hosts_and_a_trigger() {
        let denied = app(r#"["http://example.com"]"#, r#""/back/...""#);
        let out = fetch(&denied, "http://back.spin.internal/x", "").await;
        assert_eq!(out["error"], "HttpRequestDenied");
        assert_eq!(denied.stats().outbound_denied["back.spin.internal"], 1);
        assert!(!denied.stats().requests.contains_key("back"));

        let allowed = app(r#"["http://*.spin.internal"]"#, r#""/back/...""#);
        let out = fetch(&allowed, "http://lonely.spin.internal/x", "").await;
        assert!(
            out["error"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown routing destination"),
            "a component without an HTTP trigger cannot be chained to: {out}"
        );
        // `http://self` is not special.
        let out = fetch(&allowed, "http://self/x", "").await;
        assert_eq!(out["error"], "HttpRequestDenied");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn self_alt_goes_back_through_the_apps_router_when_allowed() {
        let allowed = app(r#"["http://self"]"#, r#""/back/...""#);
        let out = fetch(&allowed, "http://self.alt/back/x?y=1", "").await;
        assert_eq!(out["status"], 200, "{out}");
        let answer: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(echoed_one(&answer, "spin-matched-route"), "/back/...");
        assert_eq!(echoed_one(&answer, "spin-path-info"), "/x");
        let denied = app(r#"["http://*.spin.internal"]"#, r#""/back/...""#);
        let out = fetch(&denied, "http://self.alt/back/x", "").await;
        assert_eq!(out["error"], "HttpRequestDenied");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn real_network_follows_allowed_hosts_exactly() {
        // A second app, served on a loopback port, is the remote service.
        let remote = load(
            r#"
            spin_manifest_version = 2
            [application]
            name = "remote"
            [[trigger.http]]
            route = "/..."
            component = "echo"
            [component.echo]
            source = "@echo@"
        "#,
        );
        let server = remote
            .clone()
            .serve("127.0.0.1:0".parse().unwrap())
            .unwrap();
        let port = server.local_addr().port();
        let app = app(r#"["http://127.0.0.1:*"]"#, r#""/back/...""#);

        let out = fetch(&app, &format!("http://127.0.0.1:{port}/remote/x"), "").await;
        assert_eq!(out["status"], 200, "{out}");
        let answer: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(answer["path_with_query"], "/remote/x");

        let out = fetch(&app, &format!("http://localhost:{port}/x"), "").await;
        assert_eq!(
            out["error"], "HttpRequestDenied",
            "localhost is not 127.0.0.1"
        );
        let out = fetch(&app, &format!("https://127.0.0.1:{port}/x"), "").await;
        assert_eq!(
            out["error"], "HttpRequestDenied",
            "the scheme is part of the rule"
        );
        assert_eq!(app.stats().outbound["127.0.0.1"], 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn guest_timeouts_are_honoured() {
        // Accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let app = app(r#"["http://127.0.0.1:*"]"#, r#""/back/...""#);
        let started = Instant::now();
        let out = fetch(
            &app,
            &format!("http://127.0.0.1:{port}/slow"),
            "&first_byte_ms=300",
        )
        .await;
        assert_eq!(out["error"], "ConnectionReadTimeout", "{out}");
        assert!(started.elapsed() < Duration::from_secs(10));
        keep.abort();
    }
}

mod kv {
    use super::*;

    fn app_with(options: AppOptions) -> Arc<SpinApp> {
        load_with(
            r#"
            spin_manifest_version = 2
            [application]
            name = "kv"
            [[trigger.http]]
            route = "/kv/..."
            component = "kv"
            [[trigger.http]]
            route = "/other/..."
            component = "other"
            [component.kv]
            source = "@kv@"
            key_value_stores = ["default"]
            [component.other]
            source = "@kv@"
            key_value_stores = ["default", "extra"]
        "#,
            options,
        )
    }

    fn extra_options() -> AppOptions {
        AppOptions {
            extra_kv_stores: BTreeMap::from([("extra".to_string(), KvStore::new())]),
            ..AppOptions::default()
        }
    }

    async fn op(app: &SpinApp, query: &str) -> Value {
        let r = call(app, &format!("/kv/{query}")).await;
        assert_eq!(r.status(), 200, "{query}: {}", r.text());
        r.json()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn basic_operations_and_counters() {
        let app = app_with(extra_options());
        assert_eq!(op(&app, "set?key=a&value=1").await["ok"], true);
        assert_eq!(op(&app, "get?key=a").await["value"], "1");
        assert_eq!(op(&app, "get?key=missing").await["value"], Value::Null);
        assert_eq!(op(&app, "exists?key=a").await["value"], true);
        assert_eq!(op(&app, "keys").await["keys"], serde_json::json!(["a"]));
        let batch = op(&app, "batch?keys=x,y").await;
        assert_eq!(
            batch["got"],
            serde_json::json!([["x", "v-x"], ["y", "v-y"]])
        );
        assert_eq!(op(&app, "delete?key=a").await["ok"], true);
        assert_eq!(op(&app, "exists?key=a").await["value"], false);
        assert_eq!(app.kv().get("y").as_deref(), Some(&b"v-y"[..]));
        assert_eq!(app.kv().get("x"), None, "batch deleted the first key");
        let c = app.kv().counters();
        assert_eq!(
            (c.sets, c.gets, c.exists, c.deletes, c.list_keys),
            (1, 2, 2, 1, 1)
        );
        assert_eq!((c.batch_sets, c.batch_gets, c.batch_deletes), (1, 1, 1));
        assert_eq!(c.total(), 10);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cas_fails_when_the_value_changed_and_hands_back_a_primed_cas() {
        let app = app_with(extra_options());
        app.kv().insert("k", "v1");
        let out = op(&app, "cas-race?key=k&value=mine&other=theirs").await;
        assert_eq!(out["seen"], "v1");
        assert_eq!(out["first"], "cas-failed");
        assert_eq!(
            out["primed"], "theirs",
            "the returned cas was read for the guest"
        );
        assert_eq!(out["retry"], "ok");
        assert_eq!(app.kv().get("k").as_deref(), Some(&b"mine"[..]));
        // A read-then-swap with no interference succeeds.
        assert_eq!(
            op(&app, "cas?key=k&value=next&read=1").await["seen"],
            "mine"
        );
        assert_eq!(app.kv().get("k").as_deref(), Some(&b"next"[..]));
        let c = app.kv().counters();
        assert_eq!((c.cas_swaps, c.cas_conflicts), (3, 1));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cas_on_an_absent_or_unread_key_is_a_blind_upsert_like_spin() {
        let app = app_with(extra_options());
        // Two creators: both read "absent", both swaps succeed, the later one wins.
        let out = op(&app, "absent-race?key=fresh").await;
        assert_eq!(out["seen"], serde_json::json!([null, null]));
        assert_eq!(
            (out["second_swap"].as_str(), out["first_swap"].as_str()),
            (Some("ok"), Some("ok"))
        );
        assert_eq!(out["final"], "first");
        // A cas whose current() was never called overwrites whatever is there.
        app.kv().insert("held", "someone else's");
        assert_eq!(op(&app, "cas?key=held&value=blind").await["ok"], true);
        assert_eq!(app.kv().get("held").as_deref(), Some(&b"blind"[..]));
        assert_eq!(app.kv().counters().cas_conflicts, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn increment_stores_little_endian_i64_and_treats_missing_as_zero() {
        let app = app_with(extra_options());
        assert_eq!(op(&app, "incr?key=n&delta=5").await["value"], 5);
        assert_eq!(op(&app, "incr?key=n&delta=-7").await["value"], -2);
        assert_eq!(app.kv().snapshot()["n"], (-2i64).to_le_bytes().to_vec());
        assert_eq!(app.kv().counter("n"), Some(-2));
        // Never `set` a key you increment: the value is no longer a counter.
        app.kv().insert("s", "text");
        let out = op(&app, "incr?key=s&delta=1").await;
        assert!(
            out["error"].as_str().unwrap().starts_with("other:"),
            "{out}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_cas_increments_lose_nothing() {
        let app = app_with(extra_options());
        app.kv().insert("counter", "0");
        let gate = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let app = app.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                op(&app, "cas-incr?key=counter").await
            }));
        }
        let mut max_tries = 0;
        for t in tasks {
            let out = t.await.unwrap();
            assert!(out["error"].is_null(), "{out}");
            max_tries = max_tries.max(out["tries"].as_u64().unwrap());
        }
        assert_eq!(app.kv().get("counter").as_deref(), Some(&b"200"[..]));
        let c = app.kv().counters();
        assert_eq!(
            c.cas_swaps - c.cas_conflicts,
            200,
            "every request swapped exactly once"
        );
        eprintln!(
            "200 CAS increments: {} conflicts retried, at most {max_tries} tries",
            c.cas_conflicts
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn store_labels_are_checked_like_spin() {
        let app = app_with(extra_options());
        assert_eq!(
            op(&app, "open?store=extra").await["error"],
            "access-denied",
            "not listed for this component"
        );
        assert_eq!(op(&app, "open?store=nope").await["error"], "access-denied");
        let r = call(&app, "/other/set?store=extra&key=e&value=1").await;
        assert_eq!(r.json()["ok"], true, "listed and defined");

        // `spin up` refuses an app listing a label nothing defines...
        let err = try_load(
            r#"
            spin_manifest_version = 2
            [application]
            name = "kv"
            [[trigger.http]]
            route = "/..."
            component = "kv"
            [component.kv]
            source = "@kv@"
            key_value_stores = ["default", "undefined"]
        "#,
            AppOptions::default(),
        )
        .err()
        .expect("undefined label refused");
        assert!(format!("{err:#}").contains("\"undefined\""), "{err:#}");
        // ...and when allowed anyway, opening it is `no-such-store`.
        let lenient = load_with(
            r#"
            spin_manifest_version = 2
            [application]
            name = "kv"
            [[trigger.http]]
            route = "/kv/..."
            component = "kv"
            [component.kv]
            source = "@kv@"
            key_value_stores = ["default", "undefined"]
        "#,
            AppOptions {
                allow_undefined_kv_labels: true,
                ..AppOptions::default()
            },
        );
        assert_eq!(
            op(&lenient, "open?store=undefined").await["error"],
            "no-such-store"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn apps_can_share_a_store() {
        let shared = KvStore::new();
        let options = || AppOptions {
            kv: Some(shared.clone()),
            ..extra_options()
        };
        let first = app_with(options());
        let second = app_with(options());
        op(&first, "set?key=shared&value=yes").await;
        assert_eq!(op(&second, "get?key=shared").await["value"], "yes");
        assert_eq!(shared.counters().sets, 1);
    }
}

mod variables {
    use super::*;

    const APP: &str = r#"
        spin_manifest_version = 2
        [application]
        name = "vars"
        [variables]
        from_default = { default = "d" }
        from_env = { default = "d" }
        from_cli = { default = "d" }
        needed = { required = true }
        [[trigger.http]]
        route = "/..."
        component = "vars"
        [component.vars]
        source = "@vars@"
        [component.vars.variables]
        combined = "{{ from_default }}-{{ from_env }}-{{ from_cli }}"
        needed = "{{needed}}"
        literal = "plain"
    "#;

    fn options() -> AppOptions {
        AppOptions {
            variables: HashMap::from([
                ("from_cli".to_string(), "cli".to_string()),
                ("needed".to_string(), "given".to_string()),
            ]),
            env: Some(HashMap::from([
                ("SPIN_VARIABLE_FROM_ENV".to_string(), "env".to_string()),
                (
                    "SPIN_VARIABLE_FROM_CLI".to_string(),
                    "env-loses".to_string(),
                ),
            ])),
            ..AppOptions::default()
        }
    }

    async fn var(app: &SpinApp, name: &str) -> Value {
        call(app, &format!("/?name={name}")).await.json()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn providers_apply_in_spins_order_through_component_templates() {
        let app = load_with(APP, options());
        assert_eq!(var(&app, "combined").await["value"], "d-env-cli");
        assert_eq!(var(&app, "needed").await["value"], "given");
        assert_eq!(var(&app, "literal").await["value"], "plain");
        assert_eq!(app.variables()["from_cli"], "cli");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn components_read_only_what_they_map_and_names_are_validated() {
        let app = load_with(APP, options());
        let out = var(&app, "from_default").await;
        assert_eq!(
            out["error"], "undefined",
            "an app variable the component does not map"
        );
        assert_eq!(out["message"], "no variable for \"vars\".\"from_default\"");
        assert_eq!(var(&app, "Bad").await["error"], "invalid-name");
        assert_eq!(var(&app, "a__b").await["error"], "invalid-name");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_required_variable_without_value_stops_the_load() {
        let err = try_load(
            APP,
            AppOptions {
                env: Some(HashMap::new()),
                ..AppOptions::default()
            },
        )
        .err()
        .expect("required variable missing");
        assert!(format!("{err:#}").contains("\"needed\""), "{err:#}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn manifests_with_bad_variables_are_refused() {
        for (bad, why) in [
            (r#"x = { default = "a", required = true }"#, "exactly one"),
            (r#"x = { }"#, "exactly one"),
            (r#"Bad = { default = "a" }"#, "lower-case"),
        ] {
            let text = format!(
                "spin_manifest_version = 2\n[application]\nname = \"v\"\n[variables]\n{bad}\n"
            );
            let err = try_load(&text, AppOptions::default()).err().expect(bad);
            assert!(format!("{err:#}").contains(why), "{bad}: {err:#}");
        }
        let undeclared = r#"
            spin_manifest_version = 2
            [application]
            name = "v"
            [component.c]
            source = "@vars@"
            [component.c.variables]
            x = "{{ nowhere }}"
        "#;
        let err = try_load(undeclared, AppOptions::default()).err().unwrap();
        assert!(format!("{err:#}").contains("undeclared"), "{err:#}");
    }
}

mod dependencies {
    use super::*;

    fn app(inherit: bool, instancing: cart_tests::DependencyInstancing) -> Arc<SpinApp> {
        load_with(
            &r#"
            spin_manifest_version = 2
            [application]
            name = "deps"
            [variables]
            greeting = { default = "hi" }
            [[trigger.http]]
            route = "/..."
            component = "consumer"
            [component.consumer]
            source = "@dep_consumer@"
            key_value_stores = ["default"]
            allowed_outbound_hosts = ["http://*.spin.internal", "redis://127.0.0.1:1"]
            dependencies_inherit_configuration = INHERIT
            [component.consumer.variables]
            greeting = "{{ greeting }}"
            [component.consumer.dependencies]
            "storefront:cart@0.1.0" = { path = "@dep_provider@" }
        "#
            .replace("INHERIT", &inherit.to_string()),
            AppOptions {
                dependency_instancing: instancing,
                ..AppOptions::default()
            },
        )
    }

    async fn json(app: &SpinApp, path: &str) -> Value {
        let r = call(app, path).await;
        assert_eq!(
            r.status(),
            200,
            "{path}: {} {}",
            r.text(),
            app.guest_output()
        );
        r.json()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn imports_are_forwarded_to_the_dependency_with_all_types_intact() {
        let app = app(true, Default::default());
        assert_eq!(
            json(&app, "/config?name=hello").await["value"],
            "echo:hello"
        );
        assert_eq!(json(&app, "/config?name=none").await["value"], Value::Null);
        let p = json(&app, "/product?store=s1&product=p1").await;
        assert_eq!(
            p["product"],
            serde_json::json!({
                "store_id": "s1", "product_id": "p1", "title": "Title of p1",
                "unit_price": {"amount_minor": 1234, "currency": "EUR"},
                "available": 7, "policy": "Checkout", "min_quantity": 1,
                "max_quantity": 5, "quantity_step": 1,
            })
        );
        assert_eq!(
            json(&app, "/product?product=missing").await["error"],
            "ProductNotFound"
        );
        assert_eq!(
            json(&app, "/reserve?qty=8").await["error"],
            "InsufficientStock(7)"
        );
        let r = json(&app, "/reserve?rid=r9&product=p2&qty=3&ttl=900").await;
        assert_eq!(r["reservation"]["reservation_id"], "r9");
        assert_eq!(r["reservation"]["expires_at_ms"], 900);
        assert_eq!(json(&app, "/commit?ids=a,b").await["ok"], true);
        assert!(json(&app, "/commit").await["error"]
            .as_str()
            .unwrap()
            .contains("nothing to commit"));
        assert_eq!(json(&app, "/publish?topic=t&n=3").await["acked"], 3);
        assert!(json(&app, "/publish?topic=&n=1").await["error"]
            .as_str()
            .unwrap()
            .starts_with("Rejected"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn calls_are_counted_and_one_instance_serves_every_interface() {
        let app = app(true, Default::default());
        json(&app, "/config-many?n=5").await;
        json(&app, "/product").await;
        let stats = app.stats();
        assert_eq!(
            stats.dependency_calls["storefront:cart/config@0.1.0#get"],
            5
        );
        assert_eq!(
            stats.dependency_calls["storefront:cart/inventory@0.1.0#get-product"],
            1
        );
        assert_eq!(stats.dependency_calls_total(), 6);
        let provider = fixture_path("dep_provider").display().to_string();
        assert_eq!(
            stats.instantiations[&provider], 2,
            "one provider instance per request"
        );
        assert_eq!(stats.instantiations["consumer"], 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn per_entry_instancing_mirrors_spins_composer() {
        // One package entry is one instance in Spin's composition too, serving every interface.
        let app = app(true, cart_tests::DependencyInstancing::PerEntry);
        json(&app, "/config?name=x").await;
        json(&app, "/product").await;
        json(&app, "/publish?topic=t&n=1").await;
        let stats = app.stats();
        assert_eq!(stats.instantiations["storefront:cart@0.1.0"], 3);
        assert_eq!(stats.instantiations["consumer"], 3);
        assert_eq!(stats.instantiations.len(), 2, "{:?}", stats.instantiations);
    }

    /// The consumer with `entries` as its `[component.consumer.dependencies]`.
    fn with_entries(entries: &[&str]) -> anyhow::Result<Arc<SpinApp>> {
        let mut text = r#"
            spin_manifest_version = 2
            [application]
            name = "deps"
            [[trigger.http]]
            route = "/..."
            component = "consumer"
            [component.consumer]
            source = "@dep_consumer@"
            [component.consumer.dependencies]
        "#
        .to_string();
        for entry in entries {
            text.push_str(entry);
            text.push('\n');
        }
        try_load(&text, AppOptions::default())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn several_keys_of_one_package_are_refused_like_spin() {
        // Spin 4.0.2 registers every entry in its composition graph under the package name, so
        // a second entry of one package fails the app, even with the same file (SPIN-FACTS).
        for entries in [
            &[
                r#""storefront:cart/config@0.1.0" = { path = "@dep_provider@" }"#,
                r#""storefront:cart/inventory@0.1.0" = { path = "@dep_provider@" }"#,
            ][..],
            &[
                r#""storefront:cart/config@0.1.0" = { path = "@dep_provider@" }"#,
                r#""storefront:cart/inventory@0.1.0" = { path = "@dep_provider@" }"#,
                r#""storefront:cart/events@0.1.0" = { path = "@dep_provider@" }"#,
            ][..],
            &[
                r#""storefront:cart/config" = { path = "@dep_provider@" }"#,
                r#""storefront:cart/events@0.1.0" = { path = "@dep_provider@" }"#,
            ][..],
            // A package key beside an interface key of the same package.
            &[
                r#""storefront:cart@0.1.0" = { path = "@dep_provider@" }"#,
                r#""storefront:cart/config@0.1.0" = { path = "@dep_provider@" }"#,
            ][..],
        ] {
            let err = with_entries(entries)
                .err()
                .unwrap_or_else(|| panic!("{entries:?} loaded"));
            let err = format!("{err:#}");
            assert!(
                err.contains("package `storefront:cart` has already been registered in the graph"),
                "{entries:?}: {err}"
            );
            assert!(
                err.contains("failed to resolve dependencies for component \"consumer\""),
                "{entries:?}: {err}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_key_per_package_is_accepted() {
        for key in ["storefront:cart@0.1.0", "storefront:cart"] {
            let app = with_entries(&[&format!(r#""{key}" = {{ path = "@dep_provider@" }}"#)])
                .unwrap_or_else(|e| panic!("{key}: {e:#}"));
            assert_eq!(json(&app, "/config?name=k").await["value"], "echo:k");
            assert_eq!(json(&app, "/publish?topic=t&n=2").await["acked"], 2);
        }
        // A single interface key passes the one-entry-per-package rule; the consumer's other
        // two imports then stay unsatisfied, which is the only complaint.
        let err =
            with_entries(&[r#""storefront:cart/config@0.1.0" = { path = "@dep_provider@" }"#])
                .err()
                .expect("inventory and events are unsatisfied");
        let err = format!("{err:#}");
        assert!(
            err.contains("does not provide") && !err.contains("already been registered"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn inheriting_dependencies_use_the_dependents_configuration() {
        let app = app(true, Default::default());
        app.kv().insert("probe", "stored");
        assert_eq!(
            json(&app, "/config?name=kv:probe").await["value"],
            "ok:stored"
        );
        assert_eq!(
            json(&app, "/config?name=kvset:written=1").await["value"],
            "ok:set"
        );
        assert_eq!(app.kv().get("written").as_deref(), Some(&b"1"[..]));
        assert_eq!(
            json(&app, "/config?name=var:greeting").await["value"],
            "ok:hi"
        );
        // Allowed host, nothing listening: the request is attempted, not denied.
        let redis = json(&app, "/config?name=redis:redis://127.0.0.1:1").await;
        let redis = redis["value"].as_str().unwrap();
        assert!(
            redis.starts_with("err:Other") && !redis.contains("not permitted"),
            "{redis}"
        );
        let http = json(
            &app,
            &format!(
                "/config?name={}",
                enc("http:http://nowhere.spin.internal/x")
            ),
        )
        .await;
        assert!(
            http["value"]
                .as_str()
                .unwrap()
                .contains("unknown routing destination"),
            "{http}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn without_inheritance_dependencies_are_denied_everything() {
        let app = app(false, Default::default());
        app.kv().insert("probe", "stored");
        assert_eq!(
            json(&app, "/config?name=kv:probe").await["value"],
            "err:access-denied"
        );
        let var = json(&app, "/config?name=var:greeting").await;
        assert!(
            var["value"].as_str().unwrap().starts_with("err:Undefined"),
            "{var}"
        );
        let redis = json(&app, "/config?name=redis:redis://127.0.0.1:1").await;
        assert!(
            redis["value"].as_str().unwrap().contains("not permitted"),
            "{redis}"
        );
        let http = json(
            &app,
            &format!("/config?name={}", enc("http:http://any.spin.internal/x")),
        )
        .await;
        assert!(
            http["value"].as_str().unwrap().contains("not permitted"),
            "{http}"
        );
        // The dependent itself keeps its own configuration: forwarding still works.
        assert_eq!(
            json(&app, "/config?name=plain").await["value"],
            "echo:plain"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bad_dependency_entries_fail_the_load() {
        let base = r#"
            spin_manifest_version = 2
            [application]
            name = "deps"
            [[trigger.http]]
            route = "/..."
            component = "consumer"
            [component.consumer]
            source = "@dep_consumer@"
            [component.consumer.dependencies]
        "#;
        for (entry, why) in [
            (
                r#""storefront:cart/locks@0.1.0" = { path = "@dep_provider@" }"#,
                "doesn't match any imports",
            ),
            (
                r#""storefront:cart/config@0.1.0" = { path = "@dep_provider@", export = "nope" }"#,
                "doesn't export",
            ),
            (
                r#""storefront:cart/config@0.1.0" = "1.0.0""#,
                "not supported",
            ),
        ] {
            let err = try_load(&format!("{base}{entry}\n"), AppOptions::default())
                .err()
                .expect(entry);
            assert!(format!("{err:#}").contains(why), "{entry}: {err:#}");
        }
        // Without the dependencies the consumer's imports are unsatisfied.
        let err = try_load(base, AppOptions::default()).err().unwrap();
        assert!(format!("{err:#}").contains("does not provide"), "{err:#}");
    }
}

mod redis {
    use super::*;

    fn app(allowed: &str) -> Arc<SpinApp> {
        load(
            &r#"
            spin_manifest_version = 2
            [application]
            name = "redis"
            [[trigger.http]]
            route = "/..."
            component = "redis"
            [component.redis]
            source = "@redis@"
            allowed_outbound_hosts = ALLOWED
        "#
            .replace("ALLOWED", allowed),
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn outbound_redis_against_a_real_server() {
        let Some(server) = cart_tests::RedisServer::start().expect("redis-server starts") else {
            return;
        };
        let app = app(&format!("[\"{}\"]", server.url()));
        let r = call(&app, &format!("/?addr={}&prefix=t1", enc(&server.url()))).await;
        assert_eq!(r.status(), 200, "{}", r.text());
        let out = r.json();
        assert_eq!(out["open_error"], Value::Null, "{out}");
        assert_eq!(out["set"], true);
        assert_eq!(out["get"]["Ok"], "v1");
        assert_eq!(out["missing"]["Ok"], true);
        assert_eq!(out["incr"], serde_json::json!([{"Ok": 1}, {"Ok": 2}]));
        assert_eq!(out["sadd"]["Ok"], 2);
        assert_eq!(out["smembers"]["Ok"], serde_json::json!(["a", "b"]));
        assert_eq!(out["srem"]["Ok"], 1);
        assert!(out["wrong_type"]["Err"].is_string(), "{out}");
        // The lease pattern the lock backend uses, with Spin's result shapes.
        assert_eq!(out["lease_taken"], serde_json::json!([{"status": "OK"}]));
        assert_eq!(out["lease_held"], serde_json::json!(["nil"]));
        assert_eq!(out["release_other"], serde_json::json!([{"int": 0}]));
        assert_eq!(out["release_holder"], serde_json::json!([{"int": 1}]));
        assert_eq!(
            out["del"]["Ok"], 3,
            "plain, counter and set existed; nothing did not"
        );
        assert_eq!(out["publish"], true);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_address_must_be_allowed() {
        let Some(server) = cart_tests::RedisServer::start().expect("redis-server starts") else {
            return;
        };
        let app = app(r#"["redis://localhost:6379"]"#);
        let out = call(&app, &format!("/?addr={}", enc(&server.url())))
            .await
            .json();
        assert_eq!(out["open_error"], "invalid-address");
    }
}

mod manifest {
    #[test]
    fn the_projects_spin_toml_parses_as_designed() {
        let path = cart_tests::workspace_root().join("spin.toml");
        let m = cart_tests::manifest::Manifest::load(&path).expect("spin.toml parses");
        let routes: Vec<(String, String)> = m
            .http_triggers
            .iter()
            .filter_map(|t| match &t.route {
                cart_tests::manifest::Route::Path(p) => Some((p.clone(), t.component.clone())),
                cart_tests::manifest::Route::Private => None,
            })
            .collect();
        assert!(
            routes.contains(&("/v1/...".to_string(), "cart".to_string())),
            "{routes:?}"
        );
        let cart = &m.components["cart"];
        assert!(cart.dependencies_inherit_configuration);
        assert!(cart.key_value_stores.contains(&"default".to_string()));
        assert!(cart.source.is_absolute() || cart.source.starts_with(&m.dir));
        // One key for the whole package: Spin refuses one key per interface.
        let deps: Vec<&str> = cart.dependencies.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(deps, ["storefront:cart@0.1.0"]);
        assert!(cart.dependencies[0].path.ends_with("spin_adapter.wasm"));
        // Backends move by variables alone: their origins are allowed by template.
        for origin in ["inventory_origin", "events_origin", "lock_origin"] {
            let entry = format!("{{{{ {origin} }}}}");
            assert!(
                cart.allowed_outbound_hosts.contains(&entry),
                "{origin}: {:?}",
                cart.allowed_outbound_hosts
            );
            assert!(m.variables[origin].default.is_some(), "{origin}");
        }
        for v in m.variables.keys() {
            cart_tests::variables::validate_name(v).unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_empty_origin_variable_refuses_the_app() {
        // Spin refuses an `allowed_outbound_hosts` template that renders to no valid origin.
        let err = cart_tests::SpinApp::load(
            &cart_tests::workspace_root().join("spin.toml"),
            cart_tests::AppOptions {
                variables: [("lock_origin".to_string(), String::new())].into(),
                env: Some(Default::default()),
                ..Default::default()
            },
        )
        .err()
        .expect("an empty lock_origin is refused");
        let err = format!("{err:#}");
        assert!(
            err.contains("\"cart\"") && err.contains("allowed outbound host"),
            "{err}"
        );
    }

    #[test]
    fn wasm_path_reads_sources_from_spin_toml() {
        let cart = cart_tests::wasm_path("cart").unwrap();
        assert!(
            cart.ends_with("target/wasm32-wasip2/release/cart.wasm"),
            "{cart:?}"
        );
        assert!(cart_tests::wasm_path("no-such-component").is_err());
    }

    #[test]
    fn relative_sources_resolve_against_the_manifest_folder() {
        let dir = std::path::Path::new("/srv/app");
        let m = cart_tests::manifest::Manifest::parse(
            r#"
            spin_manifest_version = 2
            [application]
            name = "rel"
            [component.c]
            source = "target/c.wasm"
            [component.c.dependencies]
            "a:b/c" = { path = "deps/d.wasm" }
        "#,
            &dir.join("spin.toml"),
            dir,
        )
        .unwrap();
        assert_eq!(m.components["c"].source, dir.join("target/c.wasm"));
        assert_eq!(
            m.components["c"].dependencies[0].path,
            dir.join("deps/d.wasm")
        );
    }
}
