//! Cart documents through the `documents` capability: `cart:{store}:{user}` moves from version
//! to version by compare-and-swap, so readers never see a torn write and the version number is
//! the ETag. Superseded versions are the store's to drop.

use crate::ports::bindings::documents::{self, StoreError, SwapError};
use cart_domain::{Cart, StoreId, UserId};

/// A cart as read: its version (0 = never written) and contents.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub version: u64,
    pub cart: Cart,
}

/// Why the cart store could not read or write a cart.
#[derive(Debug, Clone)]
pub enum RepoError {
    /// The store failed; the store's own detail.
    Unavailable(String),
    /// A stored version is not a cart this build can read.
    Unreadable { version: u64, reason: String },
    /// The cart could not be encoded.
    Unencodable(String),
}

impl std::fmt::Display for RepoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepoError::Unavailable(detail) => write!(f, "the cart store failed: {detail}"),
            RepoError::Unreadable { version, reason } => {
                write!(f, "stored cart version {version} is unreadable: {reason}")
            }
            RepoError::Unencodable(reason) => write!(f, "could not encode the cart: {reason}"),
        }
    }
}

impl std::error::Error for RepoError {}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(d) | StoreError::Invalid(d) => RepoError::Unavailable(d),
        }
    }
}

/// Why a save did not happen.
pub enum SaveError {
    /// Someone else moved the head.
    Conflict,
    Failed(RepoError),
}

pub fn cart_key(store: &StoreId, user: &UserId) -> String {
    // Ids cannot contain ':' (see cart_domain::ids), so keys of different carts never collide.
    format!("cart:{store}:{user}")
}

pub fn load(key: &str) -> Result<Loaded, RepoError> {
    match documents::read_head(key)? {
        None => Ok(Loaded {
            version: 0,
            cart: Cart::default(),
        }),
        Some(doc) => {
            let cart = serde_json::from_slice(&doc.body).map_err(|e| RepoError::Unreadable {
                version: doc.version,
                reason: e.to_string(),
            })?;
            Ok(Loaded {
                version: doc.version,
                cart,
            })
        }
    }
}

/// Writes `cart` as the version after `expected`. The caller sets `previous_version`.
pub fn save(key: &str, expected: u64, cart: &Cart) -> Result<u64, SaveError> {
    let body = serde_json::to_vec(cart)
        .map_err(|e| SaveError::Failed(RepoError::Unencodable(e.to_string())))?;
    documents::compare_and_swap(key, expected, &body).map_err(|e| match e {
        SwapError::Conflict(_) => SaveError::Conflict,
        SwapError::Store(e) => SaveError::Failed(e.into()),
    })
}
