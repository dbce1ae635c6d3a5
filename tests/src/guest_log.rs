//! Where component stdout/stderr goes. Spin writes it to `<state-dir>/logs/`; the test host
//! keeps it in memory per app by default, so tests can assert on the structured log lines a
//! component writes and parallel tests do not interleave output on the terminal.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::engine::lock;

/// What to do with component output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GuestOutput {
    /// Keep it in memory, readable with `guest_output()` (bounded: oldest output is dropped).
    #[default]
    Capture,
    /// Write it to this process's stdout/stderr, as `spin up` shows it on the terminal.
    Inherit,
    /// Drop it (benchmarks: printing would be measured too).
    Discard,
}

/// Keeps at most this much output; beyond it the oldest half is dropped.
const MAX_CAPTURE: usize = 8 * 1024 * 1024;

/// A shared, bounded buffer of component output.
#[derive(Clone, Default)]
pub struct GuestLog {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl GuestLog {
    /// Everything captured so far, lossily decoded.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&lock(&self.buf)).into_owned()
    }

    pub fn clear(&self) {
        lock(&self.buf).clear();
    }

    /// Host-side diagnostics (why a component failed) go where component output goes.
    pub(crate) fn append_host_line(&self, line: &str) {
        self.append(line.as_bytes());
    }

    fn append(&self, bytes: &[u8]) {
        let mut buf = lock(&self.buf);
        buf.extend_from_slice(bytes);
        if buf.len() > MAX_CAPTURE {
            let cut = buf.len() - MAX_CAPTURE / 2;
            buf.drain(..cut);
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LogWriter(self.clone()))
    }
}

struct LogWriter(GuestLog);

impl AsyncWrite for LogWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Builds the WASI context of one instance with the app's output policy. Components get no
/// environment, arguments or preopened directories, as under Spin without `environment` /
/// `files` in the manifest.
pub fn wasi_ctx(output: GuestOutput, log: &GuestLog) -> wasmtime_wasi::WasiCtx {
    wasi_builder(output, log).build()
}

/// [`wasi_ctx`] before it is built, for hosts that add to it (a wall clock of their own).
pub fn wasi_builder(output: GuestOutput, log: &GuestLog) -> wasmtime_wasi::WasiCtxBuilder {
    let mut builder = wasmtime_wasi::WasiCtx::builder();
    match output {
        GuestOutput::Capture => {
            builder.stdout(log.clone()).stderr(log.clone());
        }
        GuestOutput::Inherit => {
            builder.inherit_stdout().inherit_stderr();
        }
        GuestOutput::Discard => {}
    }
    builder
}
