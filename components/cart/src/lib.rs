//! The cart logic component: the cart HTTP API over the `storefront:cart` capability contract.
//!
//! It imports only the project's WIT interfaces (documents, kv, locks, inventory, events,
//! config) and WASI; everything Spin-specific lives in the adapter component.

mod edge;
mod ops;
mod ports;
mod runtime;

use edge::{api, http_io, routes, trace};
use ops::relay;
use ports::{metrics, settings};
use runtime::{deferred, oplog, timing};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let started = std::time::Instant::now();
    let (route, response, head_only, method) = match http_io::read_request(
        request,
        settings::max_body_bytes,
        settings::max_header_bytes(),
    )
    .await
    {
        Ok(req) => {
            trace::begin(&req);
            let route = routes::route(&req.method, &req.path);
            let name = api::operation_name(&route);
            let response = api::dispatch(&req, route);
            (name, response, req.is_head(), req.method)
        }
        Err(problem) => (
            "unread",
            http_io::HttpResponse::problem(&problem),
            false,
            String::new(),
        ),
    };
    let total_us = started.elapsed().as_micros() as u64;
    let status = response.status;
    let response = response.with_header("server-timing", timing::server_timing(total_us));
    http_io::send_response(response_out, response, head_only).await;
    // The client has the whole response now: finish the line work that waited for it (holds
    // shrunk and leases released), then publish the outbox, off the critical path.
    deferred::run_all();
    relay::run_claimed();
    metrics::observe_operation(route, status, total_us);
    for (dependency, spent_us) in timing::spent() {
        metrics::observe_dependency(dependency, spent_us);
    }
    metrics::observe_store_writes(route);
    metrics::flush();
    oplog::operation(route, &method, status, total_us);
}
