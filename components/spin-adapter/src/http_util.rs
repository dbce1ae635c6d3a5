//! One outbound HTTP exchange with a deadline, for every outbound call the adapter makes.
//!
//! spin-sdk 5.2's `send` sets no timeouts and Spin's defaults are 600 s, which would hang a
//! cart request on a dead dependency. So requests are built on the `wasi:http` bindings
//! directly: the connect / first-byte / between-bytes options are set to the timeout, and the
//! whole exchange also waits on a monotonic-clock deadline in case a host ignores the options.

use std::fmt;

use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::Method as WasiMethod;
use spin_sdk::wit::wasi::http0_2_0::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::urls;

/// Largest response body read; more is refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Read chunk size.
const READ_CHUNK_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
}

/// A request to send.
pub struct OutboundRequest<'a> {
    pub method: Method,
    /// Absolute `http(s)://` URL.
    pub url: &'a str,
    /// Lowercase header names with their values.
    pub headers: Vec<(&'static str, String)>,
    /// Empty for no body.
    pub body: Vec<u8>,
    /// Deadline for the whole exchange and each of its phases.
    pub timeout_ms: u64,
}

/// A fully read response.
#[derive(Debug)]
pub struct InboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl InboundResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no response was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The configured URL is unusable.
    BadUrl(String),
    /// Spin refused the destination (not in `allowed_outbound_hosts`).
    Denied,
    /// No answer within the deadline.
    Timeout,
    /// Connection, protocol or stream failure.
    Transport(String),
    /// The response body exceeded [`MAX_RESPONSE_BYTES`].
    TooLarge,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadUrl(reason) => write!(f, "bad configuration: {reason}"),
            HttpError::Denied => f.write_str(
                "bad configuration: destination not in the component's allowed_outbound_hosts",
            ),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Transport(reason) => write!(f, "transport error: {reason}"),
            HttpError::TooLarge => write!(f, "response larger than {MAX_RESPONSE_BYTES} bytes"),
        }
    }
}

/// Sends `request` and reads the whole response, all within `request.timeout_ms`.
pub fn send(request: &OutboundRequest<'_>) -> Result<InboundResponse, HttpError> {
    let parts = urls::split(request.url).map_err(|e| HttpError::BadUrl(e.to_string()))?;
    let timeout_ns = request.timeout_ms.saturating_mul(1_000_000);
    let deadline = wasi::clocks::monotonic_clock::subscribe_duration(timeout_ns);

    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect();
    if request.method != Method::Get {
        // A declared length lets the host send a plain body instead of a chunked one, which
        // some REST proxies handle badly.
        let length = request.body.len().to_string();
        entries.push(("content-length".to_owned(), length.into_bytes()));
    }
    let headers =
        Fields::from_list(&entries).map_err(|e| HttpError::Transport(format!("header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let scheme = if parts.secure {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let built = outgoing
        .set_method(&wasi_method(request.method))
        .and(outgoing.set_scheme(Some(&scheme)))
        .and(outgoing.set_authority(Some(&parts.authority)))
        .and(outgoing.set_path_with_query(Some(&parts.path_and_query)));
    if built.is_err() {
        return Err(HttpError::BadUrl(format!(
            "URL not accepted by the host: {}",
            request.url
        )));
    }
    let body = outgoing
        .body()
        .map_err(|()| HttpError::Transport("request body unavailable".into()))?;

    let future =
        outgoing_handler::handle(outgoing, Some(phase_timeouts(timeout_ns))).map_err(error_code)?;
    write_body(body, &request.body, &deadline)?;
    let response = await_response(&future, &deadline)?;
    // No caller needs response headers: statuses and JSON bodies carry everything.
    let status = response.status();
    let body = read_body(response, &deadline)?;
    Ok(InboundResponse { status, body })
}

fn wasi_method(method: Method) -> WasiMethod {
    match method {
        Method::Get => WasiMethod::Get,
        Method::Put => WasiMethod::Put,
        Method::Post => WasiMethod::Post,
        Method::Delete => WasiMethod::Delete,
    }
}

/// Connect, first-byte and between-bytes timeouts. A host may refuse to set some (they are
/// optional in `wasi:http`); the deadline still bounds the exchange then.
fn phase_timeouts(timeout_ns: u64) -> RequestOptions {
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
    options
}

/// Waits until `ready` fires; a timeout if the deadline fires first.
fn wait(ready: &Pollable, deadline: &Pollable) -> Result<(), HttpError> {
    let fired = poll::poll(&[ready, deadline]);
    if fired.contains(&0) {
        Ok(())
    } else {
        Err(HttpError::Timeout)
    }
}

/// Writes and finishes the request body.
///
/// A closed stream is not an error here: the host closes it once a declared
/// `content-length` is reached, and when the connection failed the response future carries
/// the real reason (refused, reset, denied), which the caller reads next.
fn write_body(body: OutgoingBody, data: &[u8], deadline: &Pollable) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|()| HttpError::Transport("request body stream unavailable".into()))?;
        match write_all(&stream, data, deadline) {
            Ok(()) | Err(WriteStop::Closed) => {}
            Err(WriteStop::Failed(error)) => return Err(error),
        }
        // The stream is a child of the body and must be dropped before the body is finished.
    }
    // Finishing fails only if fewer bytes than declared went out, i.e. the connection broke;
    // the response future then reports why.
    let _ = OutgoingBody::finish(body, None);
    Ok(())
}

/// Why writing a body stopped early.
enum WriteStop {
    Closed,
    Failed(HttpError),
}

impl From<StreamError> for WriteStop {
    fn from(error: StreamError) -> Self {
        match error {
            StreamError::Closed => WriteStop::Closed,
            other => WriteStop::Failed(stream_error(other)),
        }
    }
}

/// Writes all of `data` and flushes, waiting for capacity until the deadline.
fn write_all(stream: &OutputStream, mut data: &[u8], deadline: &Pollable) -> Result<(), WriteStop> {
    while !data.is_empty() {
        let permitted = stream.check_write()?;
        if permitted == 0 {
            wait(&stream.subscribe(), deadline).map_err(WriteStop::Failed)?;
            continue;
        }
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(data.len());
        stream.write(&data[..n])?;
        data = &data[n..];
    }
    stream.flush()?;
    // A flush is complete once the stream accepts writes again.
    while stream.check_write()? == 0 {
        wait(&stream.subscribe(), deadline).map_err(WriteStop::Failed)?;
    }
    Ok(())
}

fn await_response(
    future: &FutureIncomingResponse,
    deadline: &Pollable,
) -> Result<IncomingResponse, HttpError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(error_code(code)),
            Some(Err(())) => return Err(HttpError::Transport("response already taken".into())),
            None => wait(&future.subscribe(), deadline)?,
        }
    }
}

fn read_body(response: IncomingResponse, deadline: &Pollable) -> Result<Vec<u8>, HttpError> {
    let body = response
        .consume()
        .map_err(|()| HttpError::Transport("response body unavailable".into()))?;
    let data = {
        let stream = body
            .stream()
            .map_err(|()| HttpError::Transport("response body stream unavailable".into()))?;
        read_all(&stream, deadline)?
    };
    // Trailers are not used; finishing the body releases it.
    drop(IncomingBody::finish(body));
    Ok(data)
}

fn read_all(stream: &InputStream, deadline: &Pollable) -> Result<Vec<u8>, HttpError> {
    let mut data = Vec::new();
    loop {
        match stream.read(READ_CHUNK_BYTES) {
            Ok(chunk) if chunk.is_empty() => wait(&stream.subscribe(), deadline)?,
            Ok(chunk) => {
                if data.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                data.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(data),
            Err(error) => return Err(stream_error(error)),
        }
    }
}

fn stream_error(error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => HttpError::Transport("stream closed".into()),
        StreamError::LastOperationFailed(e) => HttpError::Transport(e.to_debug_string()),
    }
}

fn error_code(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => HttpError::Timeout,
        other => HttpError::Transport(format!("{other:?}")),
    }
}
