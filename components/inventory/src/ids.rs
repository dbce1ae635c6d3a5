//! Id validation and path-segment decoding: this service's limits over the shared mechanics.
//!
//! Ids become parts of key-value keys (`inv:{store}:{product}`), so the charset excludes the key
//! separator `:` and anything that needs escaping. `~` is allowed because the cart derives
//! reservation ids as `store~user~product~epoch`.

pub use spin_reference_kit::ids::{decode_segment, IdError};

/// Longest accepted id, in bytes (the charset is ASCII, so also in characters).
/// Long enough for the cart's reservation ids (`{user}~{product}~{epoch}`, ids of up to 64).
pub const MAX_ID_LEN: usize = 192;

/// Product ids that would collide with this service's own keys (`inv:{store}:products` is the
/// store's product index), so they can never name a product.
const RESERVED_PRODUCT_IDS: &[&str] = &["products"];

/// Checks `raw` against `^[A-Za-z0-9._~-]{1,192}$`.
pub fn validate_id(raw: &str) -> Result<(), IdError> {
    spin_reference_kit::ids::validate_id(raw, MAX_ID_LEN)
}

/// Like [`validate_id`], and also refuses ids that collide with the service's own keys.
pub fn validate_product_id(raw: &str) -> Result<(), IdError> {
    spin_reference_kit::ids::validate_unreserved_id(raw, MAX_ID_LEN, RESERVED_PRODUCT_IDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_this_services_limit_of_192() {
        assert!(validate_id(&"x".repeat(192)).is_ok());
        let err = validate_id(&"x".repeat(193)).unwrap_err();
        assert_eq!(err.to_string(), "must be at most 192 characters");
    }

    #[test]
    fn product_ids_cannot_shadow_the_index_key() {
        assert_eq!(validate_product_id("products"), Err(IdError::Reserved));
        assert_eq!(validate_product_id("product"), Ok(()));
    }
}
