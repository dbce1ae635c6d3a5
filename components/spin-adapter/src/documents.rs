//! `storefront:cart/documents`: immutable versioned bodies behind a head moved by CAS.
//!
//! The rules every backend shares live here (key limits, which versions prune may touch); the
//! layout and the compare-and-swap itself belong to the store backend ([`crate::store`]).

use crate::exports::storefront::cart::documents::{Document, Guest, StoreError, SwapError};
use crate::kv_store::{self, MAX_KEY_BYTES};
use crate::store;

impl Guest for crate::Adapter {
    fn read_head(key: String) -> Result<Option<Document>, StoreError> {
        check_document_key(&key)?;
        store::open()?.read_head(&key)
    }

    fn read_version(key: String, version: u64) -> Result<Option<Vec<u8>>, StoreError> {
        check_document_key(&key)?;
        if version == 0 {
            return Ok(None);
        }
        store::open()?.read_version(&key, version)
    }

    fn compare_and_swap(key: String, expected: u64, body: Vec<u8>) -> Result<u64, SwapError> {
        check_document_key(&key).map_err(SwapError::Store)?;
        kv_store::check_value(&body).map_err(SwapError::Store)?;
        store::open()
            .map_err(SwapError::Store)?
            .compare_and_swap(&key, expected, &body)
    }

    fn prune(key: String, versions: Vec<u64>) -> Result<u32, StoreError> {
        check_document_key(&key)?;
        let versions = candidates(versions);
        if versions.is_empty() {
            return Ok(0);
        }
        store::open()?.prune(&key, &versions)
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

/// The listed versions a backend may consider for pruning: non-zero, each once, ascending. The
/// backend deletes only those strictly older than the head: newer ones could be bodies of
/// writers about to move the head, so they are never touched.
fn candidates(mut versions: Vec<u64>) -> Vec<u64> {
    versions.retain(|v| *v != 0);
    versions.sort_unstable();
    versions.dedup();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_candidates_are_distinct_non_zero_and_ascending() {
        assert_eq!(candidates(vec![5, 1, 0, 3, 3, 9, 7]), vec![1, 3, 5, 7, 9]);
        assert!(candidates(vec![0]).is_empty());
    }

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
