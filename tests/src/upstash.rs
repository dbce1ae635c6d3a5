//! An Upstash-compatible Redis REST endpoint in front of a real Redis, for testing the lock
//! backend that speaks it: `POST /` with a JSON command array (`["SET","k","v","NX","PX","30000"]`)
//! and `Authorization: Bearer <token>`, answered `200 {"result": ...}`, `400 {"error": ...}` or
//! `401` without the right token, as Upstash's REST API does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use serde_json::{json, Value};
use wasmtime_wasi_http::io::TokioIo;

use crate::resp::{RedisAddress, RespConnection, RespValue};

/// A running endpoint, stopped on drop.
pub struct UpstashServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Config {
    redis: RedisAddress,
    token: String,
}

impl UpstashServer {
    /// Serves on a free loopback port, forwarding to the Redis at `redis_url`.
    pub fn start(redis_url: &str, token: &str) -> Result<UpstashServer> {
        let redis = RedisAddress::parse(redis_url)
            .with_context(|| format!("{redis_url:?} is not a redis:// URL"))?;
        let config = Arc::new(Config {
            redis,
            token: token.to_string(),
        });
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("cannot start the Upstash endpoint runtime")?;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("upstash-endpoint".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let stream = tokio::select! {
                            _ = &mut stop_rx => return,
                            accepted = listener.accept() => match accepted {
                                Ok((s, _)) => s,
                                Err(_) => continue,
                            },
                        };
                        let config = config.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req| {
                                let config = config.clone();
                                async move { Ok::<_, Infallible>(answer(&config, req).await) }
                            });
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .context("cannot start the Upstash endpoint thread")?;
        Ok(UpstashServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`: the `lock_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for UpstashServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: u16, body: Value) -> http::Response<Full<Bytes>> {
    let mut resp = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn to_json(v: RespValue) -> Value {
    match v {
        RespValue::Simple(s) => Value::String(s),
        RespValue::Error(e) => json!({ "error": e }),
        RespValue::Int(i) => json!(i),
        RespValue::Bulk(None) | RespValue::Array(None) => Value::Null,
        RespValue::Bulk(Some(b)) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        RespValue::Array(Some(items)) => Value::Array(items.into_iter().map(to_json).collect()),
    }
}

async fn answer(
    config: &Config,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", config.token));
    if !authorized {
        return reply(401, json!({ "error": "Unauthorized" }));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(400, json!({ "error": format!("cannot read body: {e}") })),
    };
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            400,
            json!({ "error": "ERR body must be a JSON array command" }),
        );
    };
    let args: Vec<Vec<u8>> = items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        })
        .collect();
    let mut conn = match RespConnection::connect(&config.redis, Duration::from_secs(5)).await {
        Ok(c) => c,
        Err(e) => return reply(500, json!({ "error": e.to_string() })),
    };
    match conn.command(&args).await {
        Ok(RespValue::Error(e)) => reply(400, json!({ "error": e })),
        Ok(v) => reply(200, json!({ "result": to_json(v) })),
        Err(e) => reply(500, json!({ "error": e.to_string() })),
    }
}
