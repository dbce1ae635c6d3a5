//! Cart documents through the `documents` capability: `cart:{store}:{user}` moves from version
//! to version by compare-and-swap, so readers never see a torn write and the version number is
//! the ETag. Superseded versions are the store's to drop.

use crate::ports::bindings::documents::{self, StoreError, SwapError};
use cart_domain::{Cart, Problem, ProblemKind, StoreId, UserId};

/// A cart as read: its version (0 = never written) and contents.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub version: u64,
    pub cart: Cart,
}

/// Why a save did not happen.
pub enum SaveError {
    /// Someone else moved the head.
    Conflict,
    Failed(Problem),
}

pub fn cart_key(store: &StoreId, user: &UserId) -> String {
    // Ids cannot contain ':' (see cart_domain::ids), so keys of different carts never collide.
    format!("cart:{store}:{user}")
}

fn unavailable(e: StoreError) -> Problem {
    let detail = match e {
        StoreError::Unavailable(d) | StoreError::Invalid(d) => d,
    };
    Problem::new(
        ProblemKind::StoreUnavailable,
        format!("the cart store failed: {detail}"),
    )
    .with("retryAfterSeconds", 1)
}

pub fn load(key: &str) -> Result<Loaded, Problem> {
    match documents::read_head(key).map_err(unavailable)? {
        None => Ok(Loaded {
            version: 0,
            cart: Cart::default(),
        }),
        Some(doc) => {
            let cart = serde_json::from_slice(&doc.body).map_err(|e| {
                Problem::new(
                    ProblemKind::Internal,
                    format!("stored cart version {} is unreadable: {e}", doc.version),
                )
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
    let body = serde_json::to_vec(cart).map_err(|e| {
        SaveError::Failed(Problem::new(
            ProblemKind::Internal,
            format!("could not encode the cart: {e}"),
        ))
    })?;
    documents::compare_and_swap(key, expected, &body).map_err(|e| match e {
        SwapError::Conflict(_) => SaveError::Conflict,
        SwapError::Store(e) => SaveError::Failed(unavailable(e)),
    })
}
