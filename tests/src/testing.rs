//! Helpers for tests and benchmarks: a request/response vocabulary for the `CapabilityHost`, and
//! the paths of the workspace, its components and the test fixtures.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::CapabilityHost;

/// Anything that answers a request in process.
pub trait Handle: Send + Sync {
    fn handle(
        &self,
        req: http::Request<Bytes>,
    ) -> impl Future<Output = Result<http::Response<Bytes>>> + Send;
}

impl Handle for CapabilityHost {
    fn handle(
        &self,
        req: http::Request<Bytes>,
    ) -> impl Future<Output = Result<http::Response<Bytes>>> + Send {
        CapabilityHost::handle(self, req)
    }
}

impl<T: Handle> Handle for Arc<T> {
    fn handle(
        &self,
        req: http::Request<Bytes>,
    ) -> impl Future<Output = Result<http::Response<Bytes>>> + Send {
        (**self).handle(req)
    }
}

/// Borrowed header text: `&str`, `&String` or `&&str` (what `rng.pick(&["a", "b"])` returns).
///
/// Deliberately not implemented for owned `String`, so callers write `&format!(..)` and the
/// borrow is never needless.
pub trait HeaderText {
    fn text(&self) -> &str;
}

impl HeaderText for &str {
    fn text(&self) -> &str {
        self
    }
}

impl HeaderText for &&str {
    fn text(&self) -> &str {
        self
    }
}

impl HeaderText for &String {
    fn text(&self) -> &str {
        self
    }
}

/// A request under construction.
#[must_use]
pub struct TestRequest {
    method: http::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// `GET path` (path may include a query).
pub fn get(path: &str) -> TestRequest {
    request(http::Method::GET, path)
}

/// `DELETE path`.
pub fn delete(path: &str) -> TestRequest {
    request(http::Method::DELETE, path)
}

/// `POST path` with a JSON body.
pub fn post_json(path: &str, value: &impl serde::Serialize) -> TestRequest {
    request(http::Method::POST, path).json(value)
}

/// `PUT path` with a JSON body.
pub fn put_json(path: &str, value: &impl serde::Serialize) -> TestRequest {
    request(http::Method::PUT, path).json(value)
}

/// `PATCH path` with a JSON body.
pub fn patch_json(path: &str, value: &impl serde::Serialize) -> TestRequest {
    request(http::Method::PATCH, path).json(value)
}

/// Any method.
pub fn request(method: http::Method, path: &str) -> TestRequest {
    TestRequest {
        method,
        path: path.to_string(),
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

impl TestRequest {
    /// Adds a header (repeat to send several values).
    pub fn header(mut self, name: impl HeaderText, value: impl HeaderText) -> Self {
        self.headers
            .push((name.text().to_string(), value.text().to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    /// The request. The path is sent the way an HTTP client library would put it on the wire:
    /// the fragment (`#...`) is dropped and bytes not allowed in a request target (spaces,
    /// quotes, non-ASCII...) are percent-encoded; existing `%XX` escapes are kept.
    pub fn build(self) -> Result<http::Request<Bytes>> {
        let target = request_target(&self.path);
        let mut builder = http::Request::builder().method(self.method).uri(&target);
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        builder
            .body(self.body)
            .with_context(|| format!("invalid test request for {:?}", self.path))
    }

    /// Sends the request to `host` in process.
    pub async fn send(self, host: &impl Handle) -> Result<TestResponse> {
        let req = self.build()?;
        Ok(TestResponse(host.handle(req).await?))
    }
}

/// `path` as a valid request target (see [`TestRequest::build`]).
pub fn request_target(path: &str) -> String {
    let without_fragment = path.split('#').next().unwrap_or_default();
    let mut out = String::with_capacity(without_fragment.len());
    for b in without_fragment.bytes() {
        let allowed = b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b);
        if allowed {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A collected response with test-friendly accessors.
#[derive(Debug)]
pub struct TestResponse(pub http::Response<Bytes>);

impl TestResponse {
    pub fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    /// The first value of header `name`, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.0
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    pub fn bytes(&self) -> &Bytes {
        self.0.body()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.0.body()).into_owned()
    }

    /// The body parsed as JSON into `T`.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(self.0.body()).with_context(|| {
            format!(
                "status {} body is not the expected JSON: {}",
                self.status(),
                self.text()
            )
        })
    }

    /// The body as a JSON value; panics with the status and body when it is not JSON (a test
    /// failure message, which is what a test wants).
    pub fn json(&self) -> serde_json::Value {
        self.parse_json()
            .unwrap_or_else(|e: anyhow::Error| panic!("{e:#}"))
    }
}

/// The workspace root (the folder with `spin.toml`).
pub fn workspace_root() -> PathBuf {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_dir
        .parent()
        .map_or_else(|| tests_dir.to_path_buf(), Path::to_path_buf)
}

/// Cargo's target folder (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The release build of a workspace component, by its `spin.toml` component id (`cart`,
/// `inventory`, `events`) or its crate name (`spin-adapter`, `event-sink`):
/// `<workspace>/target/wasm32-wasip2/release/<crate name with underscores>.wasm`, the files
/// `spin.toml`'s `source` entries name. Fails when it has not been built.
pub fn wasm_path(name: &str) -> Result<PathBuf> {
    let file = match name {
        "events" => "event_sink".to_string(),
        other => other.replace('-', "_"),
    };
    let path = workspace_root()
        .join("target")
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{file}.wasm"));
    if !path.exists() {
        bail!(
            "{} is not built (cargo build --target wasm32-wasip2 --release -p cart -p spin-adapter -p inventory -p event-sink)",
            path.display()
        );
    }
    Ok(path)
}

/// The built test fixture `name`: `hello` (the library of `tests/fixtures/hello`, the
/// benchmarks' hello-world baseline) or `cap_probe` (its example: one `storefront:cart` call per
/// request, for tests of the capability host itself and the adapter contract suite).
pub fn fixture_path(name: &str) -> PathBuf {
    let release = target_dir().join("wasm32-wasip2").join("release");
    if name == "hello" {
        release.join("hello_fixture.wasm")
    } else {
        release.join("examples").join(format!("{name}.wasm"))
    }
}

/// Every test fixture, by the name `fixture_path` takes.
pub const FIXTURES: &[&str] = &["hello", "cap_probe"];

/// Builds the fixtures once per process (`cargo build --target wasm32-wasip2 --release -p
/// hello-fixture --lib --examples`; cargo makes it a no-op when they are fresh). Set
/// `CART_TESTS_SKIP_FIXTURE_BUILD=1` to use fixtures built beforehand.
pub fn ensure_fixtures() -> Result<()> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| {
        if std::env::var_os("CART_TESTS_SKIP_FIXTURE_BUILD").is_some() {
            return Ok(());
        }
        build_fixtures().map_err(|e| format!("{e:#}"))
    });
    outcome.clone().map_err(|e| anyhow!(e))?;
    let missing: Vec<_> = FIXTURES
        .iter()
        .filter(|n| !fixture_path(n).exists())
        .collect();
    if !missing.is_empty() {
        bail!("fixtures not built: {missing:?} (run cargo build --target wasm32-wasip2 --release -p hello-fixture --lib --examples)");
    }
    Ok(())
}

fn build_fixtures() -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "-p",
            "hello-fixture",
            "--lib",
            "--examples",
        ])
        .output()
        .context("cannot run cargo to build the test fixtures")?;
    if !output.status.success() {
        bail!(
            "building the test fixtures failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::request_target;

    #[test]
    fn request_targets_are_encoded_like_a_client_would_send_them() {
        assert_eq!(
            request_target("/v1/a b/caf\u{e9}?q=x y#frag"),
            "/v1/a%20b/caf%C3%A9?q=x%20y"
        );
        assert_eq!(request_target("/ok%2F?a=b&c"), "/ok%2F?a=b&c");
        assert_eq!(request_target("/\"q\"<>"), "/%22q%22%3C%3E");
    }
}
