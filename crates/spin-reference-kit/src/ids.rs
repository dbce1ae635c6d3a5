//! Id validation and path-segment decoding.
//!
//! Ids become parts of key-value keys, so the charset excludes the key separator `:` and anything
//! that needs escaping. `~` is allowed because the cart derives reservation ids as
//! `store~user~product~epoch`. The longest accepted id is each component's own choice, so it is
//! passed in.

use std::fmt;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    Empty,
    /// Longer than `max` bytes (the charset is ASCII, so also characters).
    TooLong {
        max: usize,
    },
    BadCharacter(char),
    BadEscape,
    /// Collides with one of the service's own keys.
    Reserved,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => write!(f, "must not be empty"),
            IdError::TooLong { max } => write!(f, "must be at most {max} characters"),
            IdError::BadCharacter(c) => write!(
                f,
                "contains {c:?}; allowed are ASCII letters, digits, '.', '_', '~' and '-'"
            ),
            IdError::BadEscape => write!(f, "contains an invalid percent-escape"),
            IdError::Reserved => write!(f, "is reserved by the service"),
        }
    }
}

/// Checks `raw` against `^[A-Za-z0-9._~-]{1,max_len}$`.
pub fn validate_id(raw: &str, max_len: usize) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > max_len {
        return Err(IdError::TooLong { max: max_len });
    }
    match raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')))
    {
        Some(c) => Err(IdError::BadCharacter(c)),
        None => Ok(()),
    }
}

/// Like [`validate_id`], and also refuses the ids in `reserved` (ones that would collide with
/// the service's own keys).
pub fn validate_unreserved_id(raw: &str, max_len: usize, reserved: &[&str]) -> Result<(), IdError> {
    validate_id(raw, max_len)?;
    if reserved.contains(&raw) {
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
        assert_eq!(validate_id("demo", 128), Ok(()));
        assert_eq!(validate_id("a.b_c-d~e", 128), Ok(()));
        assert_eq!(validate_id(&"x".repeat(128), 128), Ok(()));
    }

    #[test]
    fn refuses_empty_long_and_foreign_characters() {
        assert_eq!(validate_id("", 128), Err(IdError::Empty));
        assert_eq!(
            validate_id(&"x".repeat(129), 128),
            Err(IdError::TooLong { max: 128 })
        );
        assert_eq!(validate_id("a:b", 128), Err(IdError::BadCharacter(':')));
        assert_eq!(validate_id("a/b", 128), Err(IdError::BadCharacter('/')));
        assert_eq!(validate_id("é", 128), Err(IdError::BadCharacter('é')));
    }

    #[test]
    fn too_long_names_the_limit() {
        assert_eq!(
            IdError::TooLong { max: 192 }.to_string(),
            "must be at most 192 characters"
        );
    }

    #[test]
    fn reserved_ids_are_refused_after_the_charset() {
        let reserved = &["products"];
        assert_eq!(
            validate_unreserved_id("products", 192, reserved),
            Err(IdError::Reserved)
        );
        assert_eq!(validate_unreserved_id("product", 192, reserved), Ok(()));
        assert_eq!(
            validate_unreserved_id("a:b", 192, reserved),
            Err(IdError::BadCharacter(':'))
        );
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
