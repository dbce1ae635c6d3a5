//! Reading the incoming request (with a body-size cap) and writing the response through the
//! `ResponseOutparam`, so work after the response (event relay) does not delay the client.

use crate::edge::problem_details::{Problem, ProblemKind};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

/// The request as the handlers see it.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first value of a header (names are case-insensitive). Non-UTF-8 values are refused.
    pub fn header(&self, name: &str) -> Result<Option<&str>, Problem> {
        match self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            None => Ok(None),
            Some((_, value)) => std::str::from_utf8(value).map(Some).map_err(|_| {
                Problem::new(
                    ProblemKind::InvalidHeader,
                    format!("header {name} is not valid UTF-8"),
                )
            }),
        }
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Reads method, path, headers, and up to `max_body()` bytes of body (413 beyond that, without
/// reading the rest). The body limit is asked for only when a body chunk arrives: a request
/// without a body does not pay for reading the setting.
pub async fn read_request(
    req: IncomingRequest,
    max_body: impl Fn() -> usize,
    max_headers: usize,
) -> Result<HttpRequest, Problem> {
    let method = req.method().to_string();
    let path = req.path_with_query().unwrap_or_else(|| "/".to_owned());
    let headers = req.headers().entries();
    // Spin's own `spin-*` headers are not the client's, so they do not count.
    let header_bytes: usize = headers
        .iter()
        .filter(|(name, _)| !name.starts_with("spin-"))
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if header_bytes > max_headers {
        return Err(Problem::new(
            ProblemKind::HeadersTooLarge,
            format!(
                "the request headers take {header_bytes} bytes; at most {max_headers} are accepted"
            ),
        )
        .with("maxBytes", max_headers));
    }
    let mut body = Vec::new();
    let mut limit = None;
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                ProblemKind::InvalidBody,
                format!("could not read the request body: {e:?}"),
            )
        })?;
        let limit = *limit.get_or_insert_with(&max_body);
        if body.len() + chunk.len() > limit {
            return Err(Problem::new(
                ProblemKind::BodyTooLarge,
                format!("the body is larger than {limit} bytes"),
            )
            .with("maxBytes", limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpRequest {
        method,
        path,
        headers,
        body,
    })
}

/// A response ready to send.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => HttpResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            },
            Err(e) => HttpResponse::problem(&Problem::new(
                ProblemKind::Internal,
                format!("could not encode the response: {e}"),
            )),
        }
    }

    pub fn problem(problem: &Problem) -> Self {
        let mut response = HttpResponse {
            status: problem.status(),
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: problem.to_json().to_string().into_bytes(),
        };
        if let Some(allow) = problem.extensions.get("allow").and_then(|v| v.as_str()) {
            response.headers.push(("allow".into(), allow.to_owned()));
        }
        if response.status == 401 {
            // RFC 9110 §15.5.2: a 401 names the scheme that would be accepted.
            response
                .headers
                .push(("www-authenticate".into(), "Bearer".into()));
        }
        if let Some(after) = problem.extensions.get("retryAfterSeconds") {
            response
                .headers
                .push(("retry-after".into(), after.to_string()));
        }
        response
    }

    pub fn empty(status: u16) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Sends the response and finishes its body, so the client has all of it before the
/// component does anything else.
pub async fn send_response(out: ResponseOutparam, response: HttpResponse, head_only: bool) {
    let fields = Fields::new();
    for (name, value) in &response.headers {
        // Header names and values are ours and ASCII; a failure here is a bug, not input.
        let _ = fields.append(name, &value.clone().into_bytes());
    }
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    let mut body = outgoing.take_body();
    out.set(outgoing);
    if !head_only && !response.body.is_empty() {
        if let Err(e) = body.send(response.body).await {
            eprintln!(
                "{{\"level\":\"warn\",\"msg\":\"response body write failed\",\"error\":\"{e:?}\"}}"
            );
        }
    }
    let _ = body.close().await;
}
