//! Outbound `wasi:http` for Spin components: the `send_request` hook.
//!
//! Order of checks is Spin's (`factor-outbound-http` then the HTTP trigger's interceptor):
//! first `allowed_outbound_hosts` (denied -> `HttpRequestDenied`), then service chaining
//! (`<component>.spin.internal` dispatched in process), otherwise the real network with the
//! guest's timeouts (600 s each when the guest sets none, as in Spin).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::app::SpinApp;
use crate::host_state::Capabilities;

/// The hooks of one side (main component or dependencies) of a request's store.
pub struct OutboundHooks {
    pub app: Arc<SpinApp>,
    pub caps: Arc<Capabilities>,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// The component id of a `<id>.spin.internal` host, as Spin parses it.
pub fn service_chaining_target(host: &str) -> Option<&str> {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let (first, rest) = host.split_once('.')?;
    (rest == "spin.internal").then_some(first)
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let app = self.app.clone();
        let caps = self.caps.clone();
        Box::new(async move { send(app, caps, request, options).await })
    }
}

fn done() -> IoFuture {
    Box::new(async { Ok(()) })
}

async fn send(
    app: Arc<SpinApp>,
    caps: Arc<Capabilities>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    if caps.deny_all {
        // What Spin's deny-all adapter answers for a dependency without inherited configuration.
        return Err(HttpError::InternalError(Some(
            "\"wasi:http/outgoing-handler\" is not permitted".to_string(),
        )));
    }
    let uri = request.uri().clone();
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri.port_u16();

    // Relative URLs and `self.alt` go back to the app itself, if allowed.
    if host.is_empty() || host == "self.alt" {
        if !caps.allowed_hosts.allows_self(&["http", "https"]) {
            app.stats_ref().record_denied("self");
            return Err(HttpError::HttpRequestDenied);
        }
        app.stats_ref().record_outbound("self");
        request.headers_mut().remove(http::header::HOST);
        let response = app.dispatch_self(request).await;
        return Ok((response, done()));
    }

    if !caps.allowed_hosts.allows(&scheme, &host, port) {
        app.stats_ref().record_denied(&host);
        return Err(HttpError::HttpRequestDenied);
    }
    app.stats_ref().record_outbound(&host);

    if let Some(target) = service_chaining_target(&host) {
        // Spin strips `Host` from outbound requests; the chained component then sees
        // `spin-full-url: http://localhost/...`.
        request.headers_mut().remove(http::header::HOST);
        let target = target.to_string();
        let response = app.dispatch_chained(&target, request).await?;
        return Ok((response, done()));
    }

    let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
    let io: IoFuture = Box::new(io);
    Ok((response.map(|b| b.boxed_unsync()), io))
}

/// A body of fixed bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> WasiBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> WasiBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Hooks that refuse every outbound request: for hosts whose components must not make any.
pub struct DenyAllOutbound;

impl WasiHttpHooks for DenyAllOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

#[cfg(test)]
mod tests {
    use super::service_chaining_target;

    #[test]
    fn parses_chaining_hosts() {
        assert_eq!(
            service_chaining_target("inventory.spin.internal"),
            Some("inventory")
        );
        assert_eq!(
            service_chaining_target("inventory.spin.internal:80"),
            Some("inventory")
        );
        assert_eq!(service_chaining_target("a.b.spin.internal"), None);
        assert_eq!(service_chaining_target("spin.internal"), None);
        assert_eq!(service_chaining_target("example.com"), None);
    }
}
