//! `ETag`, `If-Match` and `If-None-Match` for cart versions (RFC 9110). The strong ETag of a
//! cart is its version number in quotes: versions are unique and never reused.

use std::fmt;

/// The ETag header value for a version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// A parsed `If-Match` / `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    Any,
    /// Versions named by the header; weak tags keep their version (If-None-Match compares weakly).
    List(Vec<(bool, Option<u64>)>),
}

/// Why an `If-Match` / `If-None-Match` value does not parse. The cart component's edge makes
/// it an `invalid-header` problem; `Display` is the problem's `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTagError {
    /// `part` is not a quoted (optionally weak) entity tag.
    NotATag { part: String },
    /// Only commas and spaces.
    EmptyList,
}

impl fmt::Display for EntityTagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityTagError::NotATag { part } => write!(
                f,
                "{part:?} is not an entity tag; send the ETag value, e.g. \"3\""
            ),
            EntityTagError::EmptyList => f.write_str("empty entity-tag list"),
        }
    }
}

impl std::error::Error for EntityTagError {}

/// Parses a list of entity tags. Tags that are not ours (not a number) never match.
pub fn parse_entity_tags(raw: &str) -> Result<EntityTags, EntityTagError> {
    let raw = raw.trim();
    if raw == "*" {
        return Ok(EntityTags::Any);
    }
    let mut tags = Vec::new();
    for part in raw.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (weak, quoted) = match part.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        let inner = quoted
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .ok_or_else(|| EntityTagError::NotATag {
                part: part.to_owned(),
            })?;
        tags.push((weak, inner.parse::<u64>().ok()));
    }
    if tags.is_empty() {
        return Err(EntityTagError::EmptyList);
    }
    Ok(EntityTags::List(tags))
}

impl EntityTags {
    /// `If-Match` uses strong comparison; `*` matches only an existing cart (version > 0).
    pub fn matches_strong(&self, version: u64) -> bool {
        match self {
            EntityTags::Any => version > 0,
            EntityTags::List(tags) => tags.iter().any(|(weak, v)| !weak && *v == Some(version)),
        }
    }

    /// `If-None-Match` uses weak comparison.
    pub fn matches_weak(&self, version: u64) -> bool {
        match self {
            EntityTags::Any => true,
            EntityTags::List(tags) => tags.iter().any(|(_, v)| *v == Some(version)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let t = parse_entity_tags("\"3\", W/\"4\"").unwrap();
        assert!(t.matches_strong(3));
        assert!(!t.matches_strong(4));
        assert!(t.matches_weak(4));
        assert!(!t.matches_weak(5));
        assert!(parse_entity_tags("*").unwrap().matches_strong(1));
        assert!(!parse_entity_tags("*").unwrap().matches_strong(0));
        assert_eq!(
            parse_entity_tags("\"3\", 4"),
            Err(EntityTagError::NotATag { part: "4".into() })
        );
        assert_eq!(
            parse_entity_tags("4").map_err(|e| e.to_string()),
            Err(r#""4" is not an entity tag; send the ETag value, e.g. "3""#.into())
        );
        assert_eq!(parse_entity_tags(" , "), Err(EntityTagError::EmptyList));
        assert!(!parse_entity_tags("\"abc\"").unwrap().matches_weak(3));
    }
}
