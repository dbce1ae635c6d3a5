//! An Upstash-compatible Redis REST endpoint in front of a real `redis-server`, so the lock
//! backend that speaks it can run on real Spin: `POST /` with a JSON command array
//! (`["SET","k","v","NX","PX","30000"]`) and `Authorization: Bearer <token>`, answered
//! `200 {"result": ...}`, `400 {"error": ...}`, or `401` without the right token, as Upstash's
//! REST API does. Plain HTTP/1.1 with keep-alive, one thread per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

/// A running endpoint; stops accepting on drop.
pub struct UpstashServer {
    port: u16,
    stopped: Arc<AtomicBool>,
    commands: Arc<AtomicU64>,
}

impl UpstashServer {
    pub fn start(redis_port: u16, token: &str) -> UpstashServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let stopped = Arc::new(AtomicBool::new(false));
        let commands = Arc::new(AtomicU64::new(0));
        let (stop, count, token) = (stopped.clone(), commands.clone(), token.to_owned());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (token, count) = (token.clone(), count.clone());
                std::thread::spawn(move || serve_connection(conn, redis_port, &token, &count));
            }
        });
        UpstashServer {
            port,
            stopped,
            commands,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Commands answered so far (authorised ones).
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }
}

impl Drop for UpstashServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_connection(conn: TcpStream, redis_port: u16, token: &str, count: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let Ok(redis) = TcpStream::connect(("127.0.0.1", redis_port)) else {
        return;
    };
    let mut redis = Resp::new(redis);
    while let Some((authorization, body)) = read_request(&mut reader) {
        let (status, answer) = if authorization != format!("Bearer {token}") {
            (401, json!({"error": "Unauthorized"}))
        } else {
            match serde_json::from_slice::<Vec<Value>>(&body) {
                Ok(args) if !args.is_empty() => {
                    count.fetch_add(1, Ordering::Relaxed);
                    match redis.command(&args) {
                        Ok(result) => (200, json!({ "result": result })),
                        Err(message) => (400, json!({ "error": message })),
                    }
                }
                _ => (
                    400,
                    json!({"error": "ERR the body must be a JSON command array"}),
                ),
            }
        };
        let body = answer.to_string();
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            if status == 200 { "OK" } else { "Error" },
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// One request's `Authorization` header and body; `None` at the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let (mut length, mut authorization) = (0usize, String::new());
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "authorization" => authorization = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((authorization, body))
}

/// A RESP2 connection to Redis: sends a command, reads one reply as JSON (Upstash's shape).
struct Resp {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Resp {
    fn new(stream: TcpStream) -> Resp {
        let writer = stream.try_clone().expect("clone the redis stream");
        Resp {
            writer,
            reader: BufReader::new(stream),
        }
    }

    fn command(&mut self, args: &[Value]) -> Result<Value, String> {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            let text = match arg {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            request.push_str(&format!("${}\r\n{text}\r\n", text.len()));
        }
        self.writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("ERR redis: {e}"))?;
        self.reply()
    }

    fn reply(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("ERR redis: {e}"))?;
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            "+" => Ok(json!(rest)),
            "-" => Err(rest.to_owned()),
            ":" => rest
                .parse::<i64>()
                .map(|n| json!(n))
                .map_err(|e| e.to_string()),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| "ERR bad bulk length".to_owned())?;
                if n < 0 {
                    return Ok(Value::Null);
                }
                let mut buf = vec![0; n as usize + 2];
                self.reader
                    .read_exact(&mut buf)
                    .map_err(|e| format!("ERR redis: {e}"))?;
                buf.truncate(n as usize);
                Ok(json!(String::from_utf8_lossy(&buf)))
            }
            "*" => {
                let n: i64 = rest
                    .parse()
                    .map_err(|_| "ERR bad array length".to_owned())?;
                if n < 0 {
                    return Ok(Value::Null);
                }
                (0..n)
                    .map(|_| self.reply())
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            _ => Err(format!("ERR unexpected reply {line:?}")),
        }
    }
}
