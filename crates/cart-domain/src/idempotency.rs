//! `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header): parsing, request
//! fingerprints and the stored response a retry replays.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// How long a key and its response are kept.
pub const RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// Why an `Idempotency-Key` value was refused. The cart component's edge makes it an
/// `invalid-header` problem naming the header; `Display` is the problem's `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    UnterminatedString,
    BadEscape,
    UnescapedQuote,
    /// A quoted key holds a character outside printable ASCII.
    NotPrintable,
    /// A bare key holds a character a token may not.
    BadCharacter(char),
    Empty,
    TooLong,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::UnterminatedString => {
                f.write_str("Idempotency-Key has an unterminated string")
            }
            KeyError::BadEscape => f.write_str("Idempotency-Key has a bad escape"),
            KeyError::UnescapedQuote => f.write_str("Idempotency-Key has an unescaped quote"),
            KeyError::NotPrintable => f.write_str("Idempotency-Key must be printable ASCII"),
            KeyError::BadCharacter(c) => write!(
                f,
                "Idempotency-Key contains {c:?}; send a quoted string or a token"
            ),
            KeyError::Empty => f.write_str("Idempotency-Key must not be empty"),
            KeyError::TooLong => {
                write!(f, "Idempotency-Key is longer than {MAX_KEY_LEN} characters")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// Parses the header value. The draft defines it as a Structured Field string
/// (`"8e03978e-40d5"`); many clients send it bare, so a bare token is accepted too.
pub fn parse_key(raw: &str) -> Result<String, KeyError> {
    let raw = raw.trim_matches(|c| c == ' ' || c == '\t');
    let key = if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or(KeyError::UnterminatedString)?;
        let mut key = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => key.push(e),
                    _ => return Err(KeyError::BadEscape),
                },
                '"' => return Err(KeyError::UnescapedQuote),
                c if (' '..='~').contains(&c) => key.push(c),
                _ => return Err(KeyError::NotPrintable),
            }
        }
        key
    } else {
        if let Some(c) = raw.chars().find(|c| !('!'..='~').contains(c) || *c == '"') {
            return Err(KeyError::BadCharacter(c));
        }
        raw.to_owned()
    };
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong);
    }
    Ok(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The storage name of a key: hashed, so any key text is safe inside a key-value key, and
/// scoped to the user, so two users' keys never meet.
pub fn scoped_key_hash(user: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex(&h.finalize()[..16])
}

/// What makes two requests "the same request": method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex(&h.finalize())
}

/// How many stored responses a user keeps: records live in slots picked by the key's hash
/// (`record_slot`), so a user's records are bounded by this whatever the number of keys they
/// send. A later key landing in an occupied slot overwrites the earlier record; a retry of the
/// overwritten key then finds no record but still finds its applied-key mark in the cart
/// document, so the change is not applied twice (the retry is answered with the cart as it is).
pub const RECORD_SLOTS: u32 = 16;

/// The slot of a scoped key hash (`scoped_key_hash`): its first 32 bits modulo `RECORD_SLOTS`.
pub fn record_slot(key_hash: &str) -> u32 {
    let head = key_hash.get(..8).unwrap_or(key_hash);
    u32::from_str_radix(head, 16).unwrap_or(0) % RECORD_SLOTS
}

/// A completed request's response, replayed for retries with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResponse {
    /// The scoped key hash it answers: a slot holds whichever key landed in it last.
    #[serde(default)]
    pub key_hash: String,
    pub fingerprint: String,
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
    pub expires_at_ms: u64,
}

/// The mark a change leaves in the cart document itself (same compare-and-swap as the change),
/// so that "was this key applied?" can be answered even if the stored response was never
/// written (a crash between the commit and the response record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedKey {
    pub key_hash: String,
    pub fingerprint: String,
    pub at_ms: u64,
}

/// Most applied-key marks a cart keeps (older ones are dropped first, as are expired ones).
pub const MAX_APPLIED_MARKS: usize = 64;

/// Adds `mark`, dropping expired marks and the oldest beyond the bound.
pub fn remember(marks: &mut Vec<AppliedKey>, mark: AppliedKey, now_ms: u64) {
    marks.retain(|m| m.at_ms + RETENTION_MS > now_ms && m.key_hash != mark.key_hash);
    marks.push(mark);
    if marks.len() > MAX_APPLIED_MARKS {
        let excess = marks.len() - MAX_APPLIED_MARKS;
        marks.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_quoted_and_bare_keys() {
        assert_eq!(parse_key("\"abc-123\"").unwrap(), "abc-123");
        assert_eq!(parse_key("abc-123").unwrap(), "abc-123");
        assert_eq!(parse_key("\"a \\\"q\\\" b\"").unwrap(), "a \"q\" b");
        assert_eq!(parse_key(&"k".repeat(255)).unwrap().len(), 255);
    }

    #[test]
    fn refuses_bad_keys() {
        for (bad, why) in [
            ("", KeyError::Empty),
            ("\"\"", KeyError::Empty),
            ("\"open", KeyError::UnterminatedString),
            ("a b", KeyError::BadCharacter(' ')),
            ("\"bad\\x\"", KeyError::BadEscape),
            ("é", KeyError::BadCharacter('é')),
            ("\"é\"", KeyError::NotPrintable),
            ("\"a\"b\"", KeyError::UnescapedQuote),
        ] {
            assert_eq!(parse_key(bad), Err(why), "{bad:?}");
        }
        assert_eq!(parse_key(&"k".repeat(256)), Err(KeyError::TooLong));
        assert_eq!(
            KeyError::BadCharacter(' ').to_string(),
            "Idempotency-Key contains ' '; send a quoted string or a token"
        );
    }

    #[test]
    fn keys_are_scoped_and_fingerprints_cover_the_body() {
        assert_ne!(scoped_key_hash("alice", "k"), scoped_key_hash("bob", "k"));
        assert_ne!(
            fingerprint("POST", "/a", b"{}"),
            fingerprint("POST", "/a", b"{ }")
        );
        assert_ne!(
            fingerprint("POST", "/a", b"x"),
            fingerprint("PUT", "/a", b"x")
        );
        assert_ne!(
            fingerprint("POST", "/a", b"x"),
            fingerprint("POST", "/b", b"x")
        );
        // Fields are separated, so moving bytes between them changes the fingerprint.
        assert_ne!(
            fingerprint("POST", "/ax", b""),
            fingerprint("POST", "/a", b"x")
        );
        // Stable across builds and instances (a stored fingerprint must keep matching): the
        // SHA-256 of "POST\0/a\0x", and of "alice\0k" cut to 16 bytes.
        assert_eq!(
            fingerprint("POST", "/a", b"x"),
            "baa543d5f07f938b1dc21bd8bc53b869fda7295a0d3cb1e136275f61808d9420"
        );
        assert_eq!(
            scoped_key_hash("alice", "k"),
            "27a1787665de219bd4fdbb445145f4e0"
        );
    }

    #[test]
    fn record_slots_spread_keys_and_stay_in_range() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..400 {
            let slot = record_slot(&scoped_key_hash("alice", &format!("key-{i}")));
            assert!(slot < RECORD_SLOTS);
            seen.insert(slot);
        }
        // 400 keys over 16 slots: every slot is used (a constant slot would fail this).
        assert_eq!(seen.len(), RECORD_SLOTS as usize);
        // Stable: the slot of a stored key must not change between builds.
        assert_eq!(
            record_slot("27a1787665de219bd4fdbb445145f4e0"),
            0x27a1_7876 % 16
        );
        assert_eq!(record_slot("not-hex"), 0);
    }

    #[test]
    fn marks_are_bounded_and_expire() {
        let mut marks = Vec::new();
        for i in 0..100u64 {
            remember(
                &mut marks,
                AppliedKey {
                    key_hash: format!("k{i}"),
                    fingerprint: "f".into(),
                    at_ms: i,
                },
                100,
            );
        }
        assert_eq!(marks.len(), MAX_APPLIED_MARKS);
        assert_eq!(marks.last().unwrap().key_hash, "k99");
        remember(
            &mut marks,
            AppliedKey {
                key_hash: "late".into(),
                fingerprint: "f".into(),
                at_ms: RETENTION_MS + 50,
            },
            RETENTION_MS + 50,
        );
        assert!(marks
            .iter()
            .all(|m| m.at_ms + RETENTION_MS > RETENTION_MS + 50));
    }
}
