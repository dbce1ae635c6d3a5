//! Key layout and value encoding of the Redis store.
//!
//! | contract item           | Redis key                 | value                                  |
//! |-------------------------|---------------------------|----------------------------------------|
//! | document `k`, head      | `ec:doc:{T}`              | current version, ASCII decimal         |
//! | document `k`, version N | `ec:doc:{T}:v{N}`         | the body, never changed once written   |
//! | kv record `k`           | `ec:kv:{T}`               | `=` followed by the value (`set`)      |
//! | kv counter `k`          | `ec:kv:{T}`               | ASCII integer (`INCRBY`)               |
//!
//! `T` is the contract key with `%`, `{` and `}` percent-escaped, so it is never empty, holds
//! no brace and maps back to exactly one key. Wrapped in braces it is the Redis Cluster hash
//! tag: the head and every version of a document hash to one slot, so the scripts that touch
//! them together run on a cluster too. Each kv key is its own tag.
//!
//! A record and a counter share a key: `set` stores a leading `=`, which no integer has, so
//! `get` tells them apart and `INCRBY` refuses to count a record (the contract forbids it). A
//! counter reads back as 8 little-endian bytes, as Spin's key-value `increment` stores it, so
//! the cart decodes counters the same way on every backend.

/// Prefix of every key this store writes (leases keep their own `cart-lock:` prefix).
const PREFIX: &str = "ec:";

/// The hash tag text of a contract key (see the module comment).
pub fn tag(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            other => out.push(other),
        }
    }
    out
}

/// The inverse of [`tag`]; none for text [`tag`] never produces.
pub fn untag(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['%', '{', '}']) {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "%25" => '%',
            "%7B" => '{',
            "%7D" => '}',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Head of document `key`.
pub fn head_key(key: &str) -> String {
    format!("{PREFIX}doc:{{{}}}", tag(key))
}

/// Body of `version` of document `key`: the head key plus `:v{N}` (the read-head script
/// derives it the same way).
pub fn body_key(key: &str, version: u64) -> String {
    format!("{}{BODY_SUFFIX}{version}", head_key(key))
}

/// What separates a head key from a version number in a body key.
pub const BODY_SUFFIX: &str = ":v";

/// Record or counter `key`.
pub fn kv_key(key: &str) -> String {
    format!("{PREFIX}kv:{{{}}}", tag(key))
}

/// The `SCAN … MATCH` pattern for kv keys starting with `prefix`. Escaping is per character,
/// so the escaped prefix is a prefix of the escaped key exactly when the key has the prefix.
pub fn kv_pattern(prefix: &str) -> String {
    format!("{PREFIX}kv:{{{}*", glob_escape(&tag(prefix)))
}

/// The contract key of a kv Redis key; none for keys of any other shape.
pub fn kv_contract_key(redis_key: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(redis_key).ok()?;
    let inner = text
        .strip_prefix(PREFIX)?
        .strip_prefix("kv:{")?
        .strip_suffix('}')?;
    untag(inner)
}

/// Escapes the characters `SCAN … MATCH` treats as glob syntax.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Marks a stored record (as opposed to a counter).
const RECORD_MARK: u8 = b'=';

/// The stored form of a record `value`.
pub fn encode_record(value: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(value.len() + 1);
    stored.push(RECORD_MARK);
    stored.extend_from_slice(value);
    stored
}

/// A stored kv value as the contract hands it out: a record's bytes, or a counter as 8
/// little-endian bytes. An error for anything this store never writes.
pub fn decode_stored(stored: &[u8]) -> Result<Vec<u8>, String> {
    if let Some(value) = stored.strip_prefix(&[RECORD_MARK]) {
        return Ok(value.to_vec());
    }
    std::str::from_utf8(stored)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .map(|counter| counter.to_le_bytes().to_vec())
        .ok_or_else(|| format!("unreadable stored value ({} bytes)", stored.len()))
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key when
/// it has none, modulo 16384 — as Redis computes it.
pub fn slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % 16384
}

/// The part of a key Redis Cluster hashes: the text between the first `{` and the first `}`
/// after it, when that is not empty; else the whole key.
fn hashed_part(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|b| *b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|b| *b == b'}') {
        Some(0) | None => key,
        Some(len) => &key[open + 1..open + 1 + len],
    }
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as in Redis' `crc16.c`.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for byte in bytes {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_keys_share_one_hash_tag() {
        assert_eq!(head_key("cart:s1:u1"), "ec:doc:{cart:s1:u1}");
        assert_eq!(body_key("cart:s1:u1", 7), "ec:doc:{cart:s1:u1}:v7");
        let head = slot(head_key("cart:s1:u1").as_bytes());
        for version in [1, 2, 99, u64::MAX] {
            assert_eq!(slot(body_key("cart:s1:u1", version).as_bytes()), head);
        }
        assert_eq!(
            head,
            slot(b"cart:s1:u1"),
            "the slot of the contract key itself"
        );
    }

    #[test]
    fn braces_in_contract_keys_cannot_break_the_tag() {
        for key in ["}x", "a}b", "{", "m{op=\"add\"}", "%7B", "}{"] {
            let head = head_key(key);
            let tag_text = &head["ec:doc:{".len()..head.len() - 1];
            assert!(!tag_text.contains(['{', '}']), "{head}");
            assert_eq!(untag(tag_text).as_deref(), Some(key));
            assert_eq!(
                slot(head.as_bytes()),
                slot(body_key(key, 3).as_bytes()),
                "{key}"
            );
        }
    }

    #[test]
    fn tags_round_trip_and_refuse_foreign_text() {
        for key in ["plain", "a%b", "%25", "x{y}z", ""] {
            assert_eq!(untag(&tag(key)).as_deref(), Some(key));
        }
        assert_eq!(tag("metrics:x{le=\"5\"}"), "metrics:x%7Ble=\"5\"%7D");
        assert_eq!(untag("%2"), None);
        assert_eq!(untag("%41"), None);
        assert_eq!(untag("a{b"), None);
    }

    #[test]
    fn kv_keys_and_scan_patterns() {
        assert_eq!(
            kv_key("outbox:pending:cart:s:u"),
            "ec:kv:{outbox:pending:cart:s:u}"
        );
        assert_eq!(kv_pattern("outbox:pending:"), "ec:kv:{outbox:pending:*");
        assert_eq!(kv_pattern("a*b?[c]\\"), "ec:kv:{a\\*b\\?\\[c\\]\\\\*");
        assert_eq!(kv_pattern("m{"), "ec:kv:{m%7B*");
        let key = "metrics:cart_ops_total{op=\"add\"}";
        assert_eq!(
            kv_contract_key(kv_key(key).as_bytes()).as_deref(),
            Some(key)
        );
        assert_eq!(kv_contract_key(b"ec:doc:{cart:s:u}"), None);
        assert_eq!(kv_contract_key(b"cart-lock:s:u:p"), None);
        assert_eq!(kv_contract_key(b"ec:kv:{unterminated"), None);
    }

    #[test]
    fn records_and_counters_are_told_apart() {
        assert_eq!(encode_record(b"{\"a\":1}"), b"={\"a\":1}".to_vec());
        assert_eq!(decode_stored(&encode_record(b"")), Ok(Vec::new()));
        assert_eq!(decode_stored(&encode_record(b"42")), Ok(b"42".to_vec()));
        assert_eq!(decode_stored(b"42"), Ok(42i64.to_le_bytes().to_vec()));
        assert_eq!(decode_stored(b"-7"), Ok((-7i64).to_le_bytes().to_vec()));
        assert!(decode_stored(b"").is_err());
        assert!(decode_stored(b"4x").is_err());
        assert!(decode_stored(&[0xff, 0x00]).is_err());
    }

    #[test]
    fn slots_match_redis() {
        // Reference values: the CRC16 check value of Redis' crc16.c and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag hashes the whole key; only the first `{...}` counts.
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }
}
