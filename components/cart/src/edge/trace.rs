//! The HTTP side of tracing: a request's `traceparent` and `tracestate` headers, handed to
//! `ports::trace`, which keeps the context for the request and tells the host.

use crate::edge::http_io::HttpRequest;

/// Takes the context from the request's headers (a header that is not UTF-8 counts as absent:
/// tracing never fails a request).
pub fn begin(request: &HttpRequest) {
    let parent = request.header("traceparent").ok().flatten();
    let state = request.header("tracestate").ok().flatten();
    crate::ports::trace::begin(parent, state);
}
