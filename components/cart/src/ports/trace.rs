//! This request's W3C trace context: continued from the caller's `traceparent` (or started
//! here), handed to the host for every outbound call (`storefront:cart/trace`), and stamped on
//! the events the request commits (CloudEvents distributed-tracing extension).

use crate::ports::bindings::trace as host_trace;
use cart_domain::trace_context::TraceContext;
use std::cell::RefCell;

thread_local! {
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// Continues the caller's context (`traceparent`, `tracestate`; absent or malformed starts a
/// new one) and tells the host.
pub fn begin(parent: Option<&str>, state: Option<&str>) {
    let context = TraceContext::from_headers(parent, state, &mut crate::runtime::clock::random_u64);
    host_trace::set_context(&context.traceparent(), context.tracestate.as_deref());
    CURRENT.with(|c| *c.borrow_mut() = Some(context));
}

/// `(traceparent, tracestate)` for what this request produces, if a context was begun.
pub fn current() -> Option<(String, Option<String>)> {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .map(|ctx| (ctx.traceparent(), ctx.tracestate.clone()))
    })
}
