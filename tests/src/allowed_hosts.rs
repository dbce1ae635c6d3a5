//! `allowed_outbound_hosts` as Spin parses and applies it.
//!
//! Entries are `scheme://host[:port]`: scheme `*` or a name; host `*`, `*.suffix`, a name, an IP
//! address or CIDR range (`localhost` and `127.0.0.1` are different hosts); port `*`, a number,
//! a range `a..b` (end excluded) or, when omitted, the scheme's well-known port. Templates are
//! rendered with the app's variables before parsing.

use std::net::IpAddr;
use std::ops::Range;

/// Why an entry was refused.
#[derive(Debug, thiserror::Error)]
#[error("allowed outbound host {entry:?}: {reason}")]
pub struct AllowedHostError {
    pub entry: String,
    pub reason: String,
}

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Debug, Clone)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Any,
    /// `*.example.com` stored as `.example.com`.
    Subdomain(String),
    Exact(String),
    Cidr {
        net: IpAddr,
        prefix: u8,
    },
    /// `self` / `self.alt`: requests back to the app's own listener.
    ToSelf,
}

#[derive(Debug, Clone)]
enum PortPattern {
    Any,
    Port(u16),
    Range(Range<u16>),
}

/// The port a scheme implies when a URL or entry gives none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHosts {
    /// Parses already rendered entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowedHostError> {
        let mut parsed = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            parsed.push(
                AllowedHost::parse(entry).map_err(|reason| AllowedHostError {
                    entry: entry.to_string(),
                    reason,
                })?,
            );
        }
        Ok(Self { entries: parsed })
    }

    /// Whether a request to `scheme://host:port` is allowed (`port` `None` = the scheme's
    /// well-known port).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.entries.iter().any(|e| e.allows(scheme, host, port))
    }

    /// Whether relative URLs and `self.alt` (requests back through the app's listener) are
    /// allowed for one of `schemes`.
    pub fn allows_self(&self, schemes: &[&str]) -> bool {
        self.entries.iter().any(|e| {
            schemes
                .iter()
                .any(|s| e.scheme.as_deref().is_none_or(|allowed| allowed == *s))
                && matches!(e.host, HostPattern::Any | HostPattern::ToSelf)
        })
    }

    /// Whether the URL `url` (`scheme://host[:port]/...`) is allowed.
    pub fn allows_url(&self, url: &str) -> bool {
        match parse_url_authority(url) {
            Some((scheme, host, port)) => self.allows(&scheme, &host, port),
            None => false,
        }
    }
}

/// Splits `scheme://[user@]host[:port][/...]` into its parts.
pub fn parse_url_authority(url: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        let (h, after) = stripped.split_once(']')?;
        let port = after.strip_prefix(':').map(str::parse).transpose().ok()?;
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(
                "has no scheme: hosts must be <scheme>://<host>[:<port>] ('*' allowed in each part)"
                    .into(),
            );
        };
        let scheme = match scheme {
            "*" => None,
            s if s.chars().all(char::is_alphabetic) && !s.is_empty() => Some(s.to_string()),
            s => return Err(format!("scheme {s:?} contains non alphabetic character")),
        };
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                return Err(format!("has a path ({path:?}) but is not allowed to"));
            }
            Some((p, _)) => p,
            None => port,
        };
        let host = HostPattern::parse(host.trim())?;
        let port = match port {
            "" => match scheme.as_deref().and_then(well_known_port) {
                Some(p) => PortPattern::Port(p),
                None => {
                    return Err("no port was provided and the scheme has no well-known port".into())
                }
            },
            "*" => PortPattern::Any,
            p => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(
                    a.parse()
                        .map_err(|_| format!("port range {p:?} contains non-number"))?
                        ..b.parse()
                            .map_err(|_| format!("port range {p:?} contains non-number"))?,
                ),
                None => PortPattern::Port(
                    p.parse()
                        .map_err(|_| format!("port {p:?} is not a number"))?,
                ),
            },
        };
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => h == host,
            HostPattern::Cidr { net, prefix } => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidr_contains(*net, *prefix, ip)),
            HostPattern::ToSelf => false,
        };
        if !host_ok {
            return false;
        }
        match &self.port {
            PortPattern::Any => true,
            PortPattern::Port(p) => port.or_else(|| well_known_port(scheme)) == Some(*p),
            PortPattern::Range(r) => port
                .or_else(|| well_known_port(scheme))
                .is_some_and(|p| r.contains(&p)),
        }
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self, String> {
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            return Err("host lists are not yet supported".into());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Some((ip, prefix)) = bare.split_once('/') {
            if let (Ok(ip), Ok(prefix)) = (ip.parse::<IpAddr>(), prefix.parse::<u8>()) {
                return Ok(Self::Cidr { net: ip, prefix });
            }
            if !prefix.is_empty() {
                return Err("hosts must not contain paths".into());
            }
        }
        if let Ok(ip) = bare.trim_end_matches('/').parse::<IpAddr>() {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Cidr { net: ip, prefix });
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err("wildcards are allowed only as prefixes".into());
            }
            return Ok(Self::Subdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            return Err("wildcards are allowed only as subdomains".into());
        }
        Ok(Self::Exact(host.trim_end_matches('/').to_ascii_lowercase()))
    }
}

fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = u32::from(prefix.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = u32::from(prefix.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries).unwrap()
    }

    #[test]
    fn service_chaining_wildcard() {
        let h = hosts(&["http://*.spin.internal"]);
        assert!(h.allows_url("http://inventory.spin.internal/inventory/v1/x"));
        assert!(!h.allows_url("https://inventory.spin.internal/"));
        assert!(!h.allows_url("http://inventory.spin.internal:8080/"));
        assert!(!h.allows_url("http://self/"));
    }

    #[test]
    fn ports_ranges_and_defaults() {
        let h = hosts(&[
            "http://127.0.0.1:*",
            "https://api.example.com",
            "redis://localhost:7000..7002",
        ]);
        assert!(h.allows_url("http://127.0.0.1:4567/x"));
        assert!(
            !h.allows_url("http://localhost:4567/x"),
            "localhost is not 127.0.0.1"
        );
        assert!(h.allows_url("https://api.example.com/v1"));
        assert!(!h.allows_url("https://api.example.com:8443/v1"));
        assert!(h.allows_url("redis://localhost:7001"));
        assert!(
            !h.allows_url("redis://localhost:7002"),
            "range end is excluded"
        );
    }

    #[test]
    fn any_scheme_host_and_cidr() {
        let h = hosts(&["*://10.0.0.0/8:*"]);
        assert!(h.allows("http", "10.1.2.3", Some(1)));
        assert!(!h.allows("http", "11.1.2.3", Some(1)));
        assert!(hosts(&["*://*:*"]).allows("mqtt", "anything", None));
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in [
            "example.com",
            "http://a.*.com",
            "http://x:notaport",
            "http://x:1/path",
        ] {
            assert!(AllowedHosts::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn self_requests_need_self_or_any_host() {
        assert!(hosts(&["http://self"]).allows_self(&["http", "https"]));
        assert!(!hosts(&["http://*.spin.internal"]).allows_self(&["http", "https"]));
    }
}
