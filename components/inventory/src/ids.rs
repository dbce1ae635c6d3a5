//! Id validation and path-segment decoding.
//!
//! Ids become parts of key-value keys (`inv:{store}:{product}`), so the charset excludes the key
//! separator `:` and anything that needs escaping. `~` is allowed because the cart derives
//! reservation ids as `store~user~product~epoch`.

use std::fmt;

/// Longest accepted id, in bytes (the charset is ASCII, so also in characters).
/// Long enough for the cart's reservation ids (`{user}~{product}~{epoch}`, ids of up to 64).
pub const MAX_ID_LEN: usize = 192;

/// Product ids that would collide with this service's own keys (`inv:{store}:products` is the
/// store's product index), so they can never name a product.
const RESERVED_PRODUCT_IDS: &[&str] = &["products"];

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    Empty,
    TooLong,
    BadCharacter(char),
    BadEscape,
    Reserved,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => write!(f, "must not be empty"),
            IdError::TooLong => write!(f, "must be at most {MAX_ID_LEN} characters"),
            IdError::BadCharacter(c) => write!(
                f,
                "contains {c:?}; allowed are ASCII letters, digits, '.', '_', '~' and '-'"
            ),
            IdError::BadEscape => write!(f, "contains an invalid percent-escape"),
            IdError::Reserved => write!(f, "is reserved by the service"),
        }
    }
}

/// Checks `raw` against `^[A-Za-z0-9._~-]{1,192}$`.
pub fn validate_id(raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    match raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')))
    {
        Some(c) => Err(IdError::BadCharacter(c)),
        None => Ok(()),
    }
}

/// Like [`validate_id`], and also refuses ids that collide with the service's own keys.
pub fn validate_product_id(raw: &str) -> Result<(), IdError> {
    validate_id(raw)?;
    if RESERVED_PRODUCT_IDS.contains(&raw) {
        return Err(IdError::Reserved);
    }
    Ok(())
}

/// Percent-decodes one path segment, so a client that escapes `~` as `%7E` is still understood.
/// The result is validated afterwards, so any decoded byte outside the id charset is refused there.
pub fn decode_segment(segment: &str) -> Result<String, IdError> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(IdError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| IdError::BadEscape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| IdError::BadEscape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| IdError::BadEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_charset() {
        assert_eq!(validate_id("demo"), Ok(()));
        assert_eq!(validate_id("a.b_c-d~e"), Ok(()));
        assert_eq!(validate_id(&"x".repeat(128)), Ok(()));
    }

    #[test]
    fn refuses_empty_long_and_foreign_characters() {
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(
            validate_id(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong)
        );
        assert_eq!(validate_id("a:b"), Err(IdError::BadCharacter(':')));
        assert_eq!(validate_id("a/b"), Err(IdError::BadCharacter('/')));
        assert_eq!(validate_id("é"), Err(IdError::BadCharacter('é')));
    }

    #[test]
    fn product_ids_cannot_shadow_the_index_key() {
        assert_eq!(validate_product_id("products"), Err(IdError::Reserved));
        assert_eq!(validate_product_id("product"), Ok(()));
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(decode_segment("a%7Eb").as_deref(), Ok("a~b"));
        assert_eq!(decode_segment("plain").as_deref(), Ok("plain"));
        assert_eq!(decode_segment("bad%7"), Err(IdError::BadEscape));
        assert_eq!(decode_segment("bad%zz"), Err(IdError::BadEscape));
        assert_eq!(decode_segment("%FF"), Err(IdError::BadEscape));
    }
}
