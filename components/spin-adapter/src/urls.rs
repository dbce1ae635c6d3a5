//! URL building and splitting for outbound HTTP.
//!
//! Only what the adapter needs: absolute `http`/`https` URLs from configuration, with path
//! segments appended and percent-encoded, split into the parts `wasi:http` asks for.

use std::fmt::{self, Write as _};

/// The URL parts a `wasi:http` outgoing request is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    pub secure: bool,
    pub authority: String,
    /// Path and query, always starting with `/`; the fragment is dropped.
    pub path_and_query: String,
}

/// Why a configured URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not `http://` or `https://`.
    UnsupportedScheme,
    /// No host after the scheme.
    MissingHost,
    /// `user:password@host`: credentials belong in headers, not in the URL.
    UserInfo,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::UnsupportedScheme => "URL scheme must be http or https",
            UrlError::MissingHost => "URL has no host",
            UrlError::UserInfo => "URL must not carry credentials",
        })
    }
}

/// Splits an absolute `http(s)://authority/path?query#fragment` URL.
pub fn split(url: &str) -> Result<UrlParts, UrlError> {
    let url = url.trim();
    let (secure, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
        (false, rest)
    } else {
        return Err(UrlError::UnsupportedScheme);
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let path_and_query = if tail.starts_with('/') {
        tail.to_owned()
    } else {
        format!("/{tail}")
    };
    Ok(UrlParts {
        secure,
        authority: authority.to_owned(),
        path_and_query,
    })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `base` followed by each segment percent-encoded, separated by `/`.
///
/// Ids are validated by the cart logic before they get here, but they are encoded anyway so
/// no value can ever change the shape of the path (`/`, `?`, `#`, `..`).
pub fn join(base: &str, segments: &[&str]) -> String {
    let mut url = base.trim().trim_end_matches('/').to_owned();
    for segment in segments {
        url.push('/');
        url.push_str(&encode_segment(segment));
    }
    url
}

/// Percent-encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    // "." and ".." are unreserved but would be resolved as dot-segments by servers.
    match out.as_str() {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_characters_pass_through() {
        assert_eq!(encode_segment("Ab-9._~"), "Ab-9._~");
    }

    #[test]
    fn everything_else_is_percent_encoded() {
        assert_eq!(encode_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(encode_segment("ü"), "%C3%BC");
        assert_eq!(encode_segment("%"), "%25");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("."), "%2E");
        assert_eq!(encode_segment(""), "");
    }

    #[test]
    fn join_appends_encoded_segments_without_double_slashes() {
        assert_eq!(
            join(
                "http://inventory.spin.internal/inventory/v1/",
                &["stores", "s 1", "products", "p/2"]
            ),
            "http://inventory.spin.internal/inventory/v1/stores/s%201/products/p%2F2"
        );
        assert_eq!(join("https://h", &["topics", "t"]), "https://h/topics/t");
    }

    #[test]
    fn split_recognises_scheme_authority_and_path() {
        assert_eq!(
            split("http://inventory.spin.internal/inventory/v1/stores/a?x=1#frag"),
            Ok(UrlParts {
                secure: false,
                authority: "inventory.spin.internal".into(),
                path_and_query: "/inventory/v1/stores/a?x=1".into(),
            })
        );
        assert_eq!(
            split("HTTPS://example.upstash.io:443"),
            Ok(UrlParts {
                secure: true,
                authority: "example.upstash.io:443".into(),
                path_and_query: "/".into(),
            })
        );
        assert_eq!(
            split("http://127.0.0.1:8080?q").map(|p| p.path_and_query),
            Ok("/?q".into())
        );
    }

    #[test]
    fn split_rejects_unusable_urls() {
        assert_eq!(split("redis://h:6379"), Err(UrlError::UnsupportedScheme));
        assert_eq!(split("kv"), Err(UrlError::UnsupportedScheme));
        assert_eq!(split("http:///path"), Err(UrlError::MissingHost));
        assert_eq!(split("https://u:p@host/"), Err(UrlError::UserInfo));
    }
}
