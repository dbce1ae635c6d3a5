//! `storefront:cart/trace`: the W3C trace context the cart asks to propagate. An instance
//! serves one request, so the context set for it lives in the instance and goes with every
//! outbound request to the inventory and the event pipeline until the request ends.

use std::cell::RefCell;

use crate::exports::storefront::cart::trace::Guest;

thread_local! {
    static CONTEXT: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

impl Guest for crate::Adapter {
    fn set_context(traceparent: String, tracestate: Option<String>) {
        CONTEXT.with(|c| *c.borrow_mut() = Some((traceparent, tracestate)));
    }
}

/// The trace headers for an outbound request (none when the cart set no context).
pub fn headers() -> Vec<(&'static str, String)> {
    CONTEXT.with(|c| match &*c.borrow() {
        None => Vec::new(),
        Some((parent, state)) => {
            let mut out = vec![("traceparent", parent.clone())];
            if let Some(state) = state.as_ref().filter(|s| !s.is_empty()) {
                out.push(("tracestate", state.clone()));
            }
            out
        }
    })
}
