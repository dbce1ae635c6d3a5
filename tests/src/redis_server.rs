//! A throwaway `redis-server` on a free loopback port, for tests of outbound Redis.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running server, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` (no persistence) on a free port and waits until it answers PING.
    ///
    /// Returns `Ok(None)` with a message on stderr when `redis-server` is not installed and the
    /// `CI` environment variable is unset; in CI a missing server is an error, so a CI run can
    /// never silently skip Redis coverage.
    pub fn start() -> Result<Option<RedisServer>> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        if Command::new(&binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var_os("CI").is_some() {
                bail!("{binary} is not installed, and CI is set: install redis-server (apt-get install redis-server)");
            }
            eprintln!("SKIPPED: {binary} is not installed (set CI to make this an error)");
            return Ok(None);
        }
        let mut last_error = None;
        // Another process can take the port between choosing and binding it: retry a few times.
        for _ in 0..5 {
            let port = free_port()?;
            let child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {binary}"))?;
            let mut server = RedisServer { child, port };
            match server.wait_ready(Duration::from_secs(5)) {
                Ok(()) => return Ok(Some(server)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, the form `allowed_outbound_hosts` and Spin use.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited early with {status}");
            }
            if ping(addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "redis-server did not answer PING on port {} within {timeout:?}",
            self.port
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Already gone is fine; either way reap the process so no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn ping(addr: SocketAddr) -> Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf)?;
    if &buf != b"+PONG\r\n" {
        bail!("unexpected PING answer {:?}", String::from_utf8_lossy(&buf));
    }
    Ok(())
}
