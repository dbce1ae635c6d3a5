//! A minimal RESP2 client: enough of the Redis protocol for `fermyon:spin/redis` and for
//! checking that a test server answers. One connection, one command at a time.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A Redis reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    Simple(String),
    Error(String),
    Int(i64),
    /// `None` is the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None` is the null array.
    Array(Option<Vec<RespValue>>),
}

/// Transport or protocol failure (a Redis error reply is a [`RespValue::Error`], not this).
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("redis connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis sent a malformed reply: {0}")]
    Protocol(String),
}

/// Where and how to connect, parsed from `redis://[user[:password]@]host[:port][/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAddress {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<u32>,
}

impl RedisAddress {
    pub fn parse(address: &str) -> Option<Self> {
        let rest = address.strip_prefix("redis://")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, 6379),
        };
        if host.is_empty() {
            return None;
        }
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    (!user.is_empty()).then(|| user.to_string()),
                    Some(pass.to_string()),
                ),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        let db = if path.is_empty() {
            None
        } else {
            Some(path.parse().ok()?)
        };
        Some(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            username,
            password,
            db,
        })
    }
}

/// One connection to a Redis server.
pub struct RespConnection {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl RespConnection {
    /// Connects, authenticates and selects the database the address names.
    pub async fn connect(address: &RedisAddress, timeout: Duration) -> Result<Self, RespError> {
        let connect = TcpStream::connect((address.host.as_str(), address.port));
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| RespError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream: BufReader::new(stream),
            timeout,
        };
        if let Some(password) = &address.password {
            let mut args = vec![b"AUTH".to_vec()];
            if let Some(user) = &address.username {
                args.push(user.clone().into_bytes());
            }
            args.push(password.clone().into_bytes());
            conn.expect_ok(&args).await?;
        }
        if let Some(db) = address.db {
            conn.expect_ok(&[b"SELECT".to_vec(), db.to_string().into_bytes()])
                .await?;
        }
        Ok(conn)
    }

    async fn expect_ok(&mut self, args: &[Vec<u8>]) -> Result<(), RespError> {
        match self.command(args).await? {
            RespValue::Error(e) => Err(RespError::Protocol(e)),
            _ => Ok(()),
        }
    }

    /// Sends one command and reads its reply.
    pub async fn command(&mut self, args: &[Vec<u8>]) -> Result<RespValue, RespError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.round_trip(args))
            .await
            .map_err(|_| RespError::Timeout(timeout))?
    }

    async fn round_trip(&mut self, args: &[Vec<u8>]) -> Result<RespValue, RespError> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&out).await?;
        self.read_value().await
    }

    async fn read_line(&mut self) -> Result<String, RespError> {
        let mut line = Vec::new();
        self.stream.read_until(b'\n', &mut line).await?;
        if !line.ends_with(b"\r\n") {
            return Err(RespError::Protocol("connection closed mid-reply".into()));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|e| RespError::Protocol(e.to_string()))
    }

    fn read_value(
        &mut self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<RespValue, RespError>> + Send + '_>,
    > {
        // Boxed because arrays nest: the reader is recursive.
        Box::pin(async move {
            let line = self.read_line().await?;
            let (kind, rest) = line.split_at(line.len().min(1));
            let int = |s: &str| {
                s.parse::<i64>()
                    .map_err(|_| RespError::Protocol(format!("bad integer {s:?}")))
            };
            match kind {
                "+" => Ok(RespValue::Simple(rest.to_string())),
                "-" => Ok(RespValue::Error(rest.to_string())),
                ":" => Ok(RespValue::Int(int(rest)?)),
                "$" => {
                    let len = int(rest)?;
                    if len < 0 {
                        return Ok(RespValue::Bulk(None));
                    }
                    let mut buf = vec![0; len as usize + 2];
                    self.stream.read_exact(&mut buf).await?;
                    buf.truncate(len as usize);
                    Ok(RespValue::Bulk(Some(buf)))
                }
                "*" => {
                    let len = int(rest)?;
                    if len < 0 {
                        return Ok(RespValue::Array(None));
                    }
                    let mut items = Vec::with_capacity(len as usize);
                    for _ in 0..len {
                        items.push(self.read_value().await?);
                    }
                    Ok(RespValue::Array(Some(items)))
                }
                other => Err(RespError::Protocol(format!("unknown reply type {other:?}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let a = RedisAddress::parse("redis://127.0.0.1:7000").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.db), ("127.0.0.1", 7000, None));
        let a = RedisAddress::parse("redis://user:secret@cache:6380/2").unwrap();
        assert_eq!(a.username.as_deref(), Some("user"));
        assert_eq!(a.password.as_deref(), Some("secret"));
        assert_eq!(a.db, Some(2));
        assert_eq!(RedisAddress::parse("redis://h").unwrap().port, 6379);
        assert!(RedisAddress::parse("http://h").is_none());
        assert!(RedisAddress::parse("redis://h:x").is_none());
    }
}
