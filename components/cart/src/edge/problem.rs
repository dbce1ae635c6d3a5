//! The one place where what went wrong below the edge becomes an HTTP problem: each error
//! of `ops` and `ports` gets its kind (status, `type`, title) and extension members here;
//! its `Display` is the problem's `detail`. `http_io::HttpResponse::problem` renders it.
//! A refusal of `cart_domain`'s rules (`OpError::Rule`) becomes its problem through
//! `cart_domain::rule_problems`, which has to sit beside the `Problem` type (Rust's orphan
//! rule: neither the type nor those errors are this crate's).

use crate::ops::error::{Contended, OpError, ShortLine};
use crate::ports::cart_repo::RepoError;
use crate::ports::inventory_port::ReserveError;
use crate::ports::jwks::KeysUnavailable;
use crate::ports::line_lock::LeaseError;
use cart_domain::precondition::etag;
use cart_domain::{Problem, ProblemKind};

impl From<OpError> for Problem {
    fn from(e: OpError) -> Self {
        let detail = e.to_string();
        match e {
            OpError::Rule(e) => e.into(),
            OpError::Store(e) => e.into(),
            OpError::OutboxIndex(_) => {
                Problem::new(ProblemKind::StoreUnavailable, detail).with("retryAfterSeconds", 1)
            }
            OpError::Lease(e) => e.into(),
            OpError::Reserve(e) => e.into(),
            OpError::InventoryUnavailable(_) => {
                Problem::new(ProblemKind::InventoryUnavailable, detail).with("retryAfterSeconds", 2)
            }
            OpError::InventoryMalformed(_) => {
                Problem::new(ProblemKind::InventoryUnavailable, detail)
            }
            OpError::PreconditionFailed { current_revision } => {
                precondition_failed(current_revision)
            }
            OpError::IdempotencyKeyReused => {
                Problem::new(ProblemKind::IdempotencyKeyReused, detail)
            }
            OpError::LineNotFound(product) => {
                Problem::new(ProblemKind::LineNotFound, detail).with("productId", product)
            }
            // A merge that keeps losing has never said when to retry; kept as it was.
            OpError::KeptChanging(Contended::Merge) => {
                Problem::new(ProblemKind::CartConflict, detail)
            }
            OpError::KeptChanging(_) | OpError::CheckoutOvertaken => {
                Problem::new(ProblemKind::CartConflict, detail).with("retryAfterSeconds", 1)
            }
            OpError::CartEmpty => Problem::new(ProblemKind::CartEmpty, detail),
            OpError::StockShort(lines) => Problem::new(ProblemKind::InsufficientStock, detail)
                .with("lines", lines.iter().map(short_line).collect::<Vec<_>>()),
            OpError::CommitRefused(_) => Problem::new(ProblemKind::InsufficientStock, detail),
            OpError::CheckoutPending { checkout_id, cause } => {
                Problem::from(*cause).with("checkoutId", checkout_id)
            }
            OpError::CheckoutUnrecorded { checkout_id } => {
                Problem::new(ProblemKind::CartConflict, detail)
                    .with("checkoutId", checkout_id)
                    .with("retryAfterSeconds", 1)
            }
            OpError::StoredProductId(_) => Problem::new(ProblemKind::Internal, detail),
            OpError::OutboxListing(_) => Problem::new(ProblemKind::StoreUnavailable, detail),
            OpError::ReservationListing(_) => {
                Problem::new(ProblemKind::InventoryUnavailable, detail)
            }
        }
    }
}

/// The 412 for a stale `If-Match`, naming the current version and its `ETag`.
fn precondition_failed(current_version: u64) -> Problem {
    Problem::new(
        ProblemKind::PreconditionFailed,
        format!("the cart is at version {current_version}; reload it and retry"),
    )
    .with("currentVersion", current_version)
    .with("currentETag", etag(current_version))
}

fn short_line(line: &ShortLine) -> serde_json::Value {
    serde_json::json!({
        "productId": line.product_id,
        "requested": line.requested,
        "available": line.available,
        "problem": line.problem,
    })
}

impl From<RepoError> for Problem {
    fn from(e: RepoError) -> Self {
        let detail = e.to_string();
        match e {
            RepoError::Unavailable(_) => {
                Problem::new(ProblemKind::StoreUnavailable, detail).with("retryAfterSeconds", 1)
            }
            RepoError::Unreadable { .. } | RepoError::Unencodable(_) => {
                Problem::new(ProblemKind::Internal, detail)
            }
        }
    }
}

impl From<LeaseError> for Problem {
    fn from(e: LeaseError) -> Self {
        let kind = match e {
            LeaseError::Unavailable(_) => ProblemKind::LockUnavailable,
            LeaseError::Busy { .. } => ProblemKind::LineBusy,
        };
        Problem::new(kind, e.to_string()).with("retryAfterSeconds", 1)
    }
}

impl From<ReserveError> for Problem {
    fn from(e: ReserveError) -> Self {
        let detail = e.to_string();
        match e {
            ReserveError::InsufficientStock {
                product,
                requested,
                available,
            } => Problem::new(ProblemKind::InsufficientStock, detail)
                .with("productId", product)
                .with("requested", requested)
                .with("available", available),
            ReserveError::UnknownProduct(product) => {
                Problem::new(ProblemKind::UnknownProduct, detail).with("productId", product)
            }
            ReserveError::StaleFence { product, held } => {
                Problem::new(ProblemKind::CartConflict, detail)
                    .with("productId", product)
                    .with("staleFence", held)
                    .with("retryAfterSeconds", 1)
            }
        }
    }
}

impl From<KeysUnavailable> for Problem {
    fn from(e: KeysUnavailable) -> Self {
        Problem::new(ProblemKind::IdentityKeysUnavailable, e.to_string())
            .with("code", "identity-keys-unavailable")
            .with("retryAfterSeconds", e.retry_after_seconds())
    }
}
