//! Id validation and path-segment decoding: this service's limit over the shared mechanics.
//!
//! Topic and cluster ids become parts of key-value keys (`evt:{topic}:next`), so the charset
//! excludes the key separator `:` and anything that needs escaping.

pub use spin_reference_kit::ids::{decode_segment, IdError};

/// Longest accepted id, in bytes (the charset is ASCII, so also in characters).
pub const MAX_ID_LEN: usize = 128;

/// Checks `raw` against `^[A-Za-z0-9._~-]{1,128}$`.
pub fn validate_id(raw: &str) -> Result<(), IdError> {
    spin_reference_kit::ids::validate_id(raw, MAX_ID_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_this_services_limit_of_128() {
        assert!(validate_id(&"x".repeat(128)).is_ok());
        let err = validate_id(&"x".repeat(129)).unwrap_err();
        assert_eq!(err.to_string(), "must be at most 128 characters");
    }
}
