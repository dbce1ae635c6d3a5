//! `storefront:cart/documents`: versioned documents whose head moves by compare-and-swap.
//!
//! The rules every backend shares live here (key and value limits); the layout and the
//! compare-and-swap itself belong to the store backend ([`crate::store`]).

use crate::exports::storefront::cart::documents::{Document, Guest, StoreError, SwapError};
use crate::kv_store::{self, MAX_KEY_BYTES};
use crate::store;

impl Guest for crate::Adapter {
    fn read_head(key: String) -> Result<Option<Document>, StoreError> {
        check_document_key(&key)?;
        store::open()?.read_head(&key)
    }

    fn compare_and_swap(key: String, expected: u64, body: Vec<u8>) -> Result<u64, SwapError> {
        check_document_key(&key).map_err(SwapError::Store)?;
        kv_store::check_value(&body).map_err(SwapError::Store)?;
        store::open()
            .map_err(SwapError::Store)?
            .compare_and_swap(&key, expected, &body)
    }
}

/// Longest suffix a document key gets: `:v` and a 20-digit u64.
const MAX_SUFFIX_BYTES: usize = 22;

/// Refuses document keys whose derived keys would exceed the store's key limit. The limit is
/// the key-value store's, applied to every backend so that switching backends changes no answer.
fn check_document_key(key: &str) -> Result<(), StoreError> {
    kv_store::check_key(key)?;
    if key.len() + MAX_SUFFIX_BYTES > MAX_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "document key of {} bytes leaves no room for version suffixes (max {})",
            key.len(),
            MAX_KEY_BYTES - MAX_SUFFIX_BYTES
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_keys_leave_room_for_suffixes() {
        let longest = "k".repeat(MAX_KEY_BYTES - MAX_SUFFIX_BYTES);
        assert!(check_document_key(&longest).is_ok());
        assert!(format!("{longest}:v{}", u64::MAX).len() <= MAX_KEY_BYTES);
        assert!(matches!(
            check_document_key(&format!("{longest}k")),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            check_document_key(""),
            Err(StoreError::Invalid(_))
        ));
    }
}
