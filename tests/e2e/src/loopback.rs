//! Loopback peers for the app's outbound HTTP client: a port that accepts connections and never
//! answers (a hung service), and a proxy that records what the app sends before passing it on.
//! Each runs on a free port of its own and stops accepting on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Wakes an accept loop blocked in `accept` so it sees its stop flag.
fn wake(port: u16) {
    let _ = TcpStream::connect(("127.0.0.1", port));
}

/// A loopback port that refuses every connection, reserved for as long as the value lives.
/// A port found free and then let go could be taken by anything (another test's `spin up`,
/// another process) before the app connects; this one stays bound, without listening, so a
/// connection to it is refused (RST on Linux) until the value is dropped.
pub struct ClosedPort {
    port: u16,
    _socket: socket2::Socket,
}

impl ClosedPort {
    pub fn reserve() -> ClosedPort {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket =
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("a TCP socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        socket.bind(&any.into()).expect("a loopback port");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("the bound port");
        ClosedPort {
            port,
            _socket: socket,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A service that accepts every TCP connection and never answers: the request is left unread
/// and the connection open until the peer gives up (or the server is dropped). It counts the
/// connections it accepted, so a test can tell how many calls reached it.
pub struct HungServer {
    port: u16,
    stopped: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
}

impl HungServer {
    pub fn start() -> HungServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let stopped = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (stop, count) = (stopped.clone(), accepted.clone());
        std::thread::spawn(move || {
            // Held, unread, until the server stops: the peer sees a connection that never
            // answers, not one that closes.
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    count.fetch_add(1, Ordering::Relaxed);
                    held.push(conn);
                }
            }
        });
        HungServer {
            port,
            stopped,
            accepted,
        }
    }

    /// `http://127.0.0.1:PORT`: the origin to allow and the base of the URL to call.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for HungServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        wake(self.port);
    }
}

/// An HTTP/1.1 proxy that records each request's method and target, then forwards it to an
/// upstream set once that upstream exists (the app's own listener, known only after `spin up`
/// started), answering one request per connection (`connection: close` both ways). Without an
/// upstream it answers 503.
pub struct RecordingProxy {
    port: u16,
    stopped: Arc<AtomicBool>,
    upstream: Arc<Mutex<Option<String>>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// One request as the proxy received it.
#[derive(Debug, Clone)]
struct Recorded {
    /// `METHOD target`.
    line: String,
    /// `name: value` lines, as sent.
    headers: Vec<String>,
}

impl RecordingProxy {
    pub fn start() -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let stopped = Arc::new(AtomicBool::new(false));
        let upstream: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::new(Mutex::new(Vec::new()));
        let (stop, to, seen) = (stopped.clone(), upstream.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (to, seen) = (to.clone(), seen.clone());
                std::thread::spawn(move || proxy_one(conn, &to, &seen));
            }
        });
        RecordingProxy {
            port,
            stopped,
            upstream,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forwards from now on to `base` (`http://host:port`).
    pub fn forward_to(&self, base: &str) {
        let authority = base.trim_start_matches("http://").trim_end_matches('/');
        *self.upstream.lock().expect("upstream lock") = Some(authority.to_owned());
    }

    /// `METHOD target` of every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        let seen = self.requests.lock().expect("requests lock");
        seen.iter().map(|r| r.line.clone()).collect()
    }

    /// `(METHOD target, value of header name)` of every request so far (name is matched
    /// case-insensitively; None when the request had no such header).
    pub fn header_of_each(&self, name: &str) -> Vec<(String, Option<String>)> {
        let seen = self.requests.lock().expect("requests lock");
        seen.iter()
            .map(|r| {
                let value = r.headers.iter().find_map(|h| {
                    let (n, v) = h.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                });
                (r.line.clone(), value)
            })
            .collect()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        wake(self.port);
    }
}

/// One request: read it, record it, forward it, relay the answer, close.
fn proxy_one(conn: TcpStream, upstream: &Mutex<Option<String>>, seen: &Mutex<Vec<Recorded>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(mut client) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let Some((request_line, headers, body)) = read_request(&mut reader) else {
        return;
    };
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    seen.lock().expect("requests lock").push(Recorded {
        line: format!("{method} {target}"),
        headers: headers.clone(),
    });
    let to = upstream.lock().expect("upstream lock").clone();
    let answer = to.and_then(|authority| forward(&authority, &request_line, &headers, &body));
    let answer = answer.unwrap_or_else(|| {
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_vec()
    });
    let _ = client.write_all(&answer);
    let _ = client.flush();
}

/// The request line, the headers other than `connection`, and the body (`content-length`).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<String>, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let (mut headers, mut length) = (Vec::new(), 0usize);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let name = header
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name == "content-length" {
            length = header.split_once(':')?.1.trim().parse().ok()?;
        }
        if name != "connection" {
            headers.push(header.to_owned());
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line.trim_end().to_owned(), headers, body))
}

/// Sends the request upstream on a fresh connection and returns the whole answer, its
/// `connection` header replaced by `connection: close` (the proxy closes after it).
fn forward(
    authority: &str,
    request_line: &str,
    headers: &[String],
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut upstream = TcpStream::connect(authority).ok()?;
    upstream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .ok()?;
    let mut head = format!("{request_line}\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes()).ok()?;
    upstream.write_all(body).ok()?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).ok()?;
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut relayed: Vec<u8> = head
        .split("\r\n")
        .filter(|line| {
            !line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("connection")
        })
        .flat_map(|line| [line.as_bytes(), b"\r\n"].concat())
        .collect();
    relayed.extend_from_slice(b"connection: close\r\n\r\n");
    relayed.extend_from_slice(&answer[end + 4..]);
    Some(relayed)
}

/// A static file server: answers every request with `200` and a fixed JSON body (an identity
/// provider's JWKS), one request per connection, and counts the requests it answered.
pub struct StaticJsonServer {
    port: u16,
    stopped: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
}

impl StaticJsonServer {
    pub fn start(body: String) -> StaticJsonServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let stopped = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (stop, count) = (stopped.clone(), served.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                let Ok(mut writer) = conn.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(conn);
                if read_request(&mut reader).is_none() {
                    continue;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                if writer.write_all(answer.as_bytes()).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                let _ = writer.flush();
            }
        });
        StaticJsonServer {
            port,
            stopped,
            served,
        }
    }

    /// `http://127.0.0.1:PORT` (an origin for `allowed_outbound_hosts`).
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for StaticJsonServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        wake(self.port);
    }
}
