//! Serving a host on a loopback port with hyper, so HTTP clients (curl, the contract suites'
//! client, load generators) can drive it.
//!
//! The server runs on its own thread with its own multi-threaded Tokio runtime, so it can be
//! started from synchronous code or from inside a test's runtime, and stopping it never depends
//! on the caller's runtime.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Something that answers HTTP requests: a [`crate::CapabilityHost`].
pub trait ServeTarget: Send + Sync + 'static {
    /// Answers one request from `client`.
    fn serve_request(
        self: Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
        client: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = http::Response<HyperOutgoingBody>> + Send>>;
}

/// A running server. Dropping it stops the server.
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local_addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting, ends open connections and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    /// Blocks until the server stops.
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // The thread only fails if its runtime panicked; there is nothing left to clean up.
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Binds `addr` and serves `target` until the handle is dropped.
pub fn serve<T: ServeTarget>(target: Arc<T>, addr: SocketAddr) -> Result<ServerHandle> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let local_addr = listener.local_addr().context("listener has no address")?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("capability-host-worker")
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("capability-host".into())
        .spawn(move || {
            runtime.block_on(accept_loop(target, listener, stop_rx));
            // Open keep-alive connections are cut here rather than waited for.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .context("cannot start the server thread")?;
    Ok(ServerHandle {
        local_addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn accept_loop<T: ServeTarget>(
    target: Arc<T>,
    listener: std::net::TcpListener,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("capability host: cannot use the listener: {e}");
            return;
        }
    };
    loop {
        let (stream, client) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually a transient resource limit (EMFILE under load): back off briefly.
                    eprintln!("capability host: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let target = target.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let target = target.clone();
                async move { Ok::<_, Infallible>(target.serve_request(req, client).await) }
            });
            // Connection errors (client went away mid-request) are the client's business.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
