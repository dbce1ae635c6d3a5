//! Why an operation did not complete, as a type. `edge::problem` turns each into the HTTP
//! problem the API documents; nothing below the edge builds one.
//!
//! `Display` is the problem's `detail` (but for `PreconditionFailed`, whose detail names the
//! version the way the 412 documents it). A cart rule of `cart_domain` that refuses a change
//! answers with its typed `RuleError`, carried here as `Rule`.

use crate::ports::cart_repo::RepoError;
use crate::ports::inventory_port::ReserveError;
use crate::ports::line_lock::LeaseError;
use crate::ports::outbox::IndexError;
use cart_domain::RuleError;

/// A shortfall of one line at checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortLine {
    pub product_id: String,
    pub requested: u32,
    pub available: u32,
    /// `insufficient-stock` or `unknown-product`.
    pub problem: &'static str,
}

/// Which change kept losing its compare-and-swap race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contended {
    /// A line change, after this many attempts.
    Line {
        attempts: u32,
    },
    Clear,
    /// Recording a checkout's intent.
    CheckoutIntent,
    Merge,
}

#[derive(Debug, Clone)]
pub enum OpError {
    /// A cart rule of `cart_domain` refused the change.
    Rule(RuleError),
    /// The cart store failed.
    Store(RepoError),
    /// The outbox index could not be written before a commit with events.
    OutboxIndex(IndexError),
    /// A line lease was not granted.
    Lease(LeaseError),
    /// The inventory refused a line's hold.
    Reserve(ReserveError),
    /// The inventory could not be reached (and the change cannot degrade); its detail.
    InventoryUnavailable(String),
    /// The inventory answered with a product record the cart cannot use.
    InventoryMalformed(String),
    /// `If-Match` named another revision than the cart's.
    PreconditionFailed { current_revision: u64 },
    /// The idempotency key's mark in the cart is for a different request.
    IdempotencyKeyReused,
    /// The line to change or remove is not in the cart.
    LineNotFound(String),
    /// Every attempt lost its compare-and-swap race.
    KeptChanging(Contended),
    /// Checkout of an empty cart.
    CartEmpty,
    /// A line changed between the checkout's holds and its intent (optimistic mode).
    CheckoutOvertaken,
    /// Lines the inventory cannot hold for the checkout; nothing was committed.
    StockShort(Vec<ShortLine>),
    /// The inventory refused to commit the checkout's holds; its answer.
    CommitRefused(String),
    /// The checkout `checkout_id` is recorded but not finished because of `cause`: the next
    /// checkout request finishes it.
    CheckoutPending {
        checkout_id: String,
        cause: Box<OpError>,
    },
    /// The checkout `checkout_id` was committed in inventory but the cart kept changing.
    CheckoutUnrecorded { checkout_id: String },
    /// A stored line's product id no longer parses.
    StoredProductId(String),
    /// The outbox index could not be listed; the store's error.
    OutboxListing(String),
    /// The inventory's reservations could not be listed; its error.
    ReservationListing(String),
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Rule(e) => e.fmt(f),
            OpError::Store(e) => e.fmt(f),
            OpError::OutboxIndex(e) => e.fmt(f),
            OpError::Lease(e) => e.fmt(f),
            OpError::Reserve(e) => e.fmt(f),
            OpError::InventoryUnavailable(detail) => {
                write!(f, "the inventory service is unavailable: {detail}")
            }
            OpError::InventoryMalformed(detail) => f.write_str(detail),
            OpError::PreconditionFailed { current_revision } => {
                write!(f, "If-Match names another revision than {current_revision}")
            }
            OpError::IdempotencyKeyReused => f.write_str(
                "this Idempotency-Key was already used for a different request (method, path or body)",
            ),
            OpError::LineNotFound(product) => {
                write!(f, "the cart has no line for product {product}")
            }
            OpError::KeptChanging(Contended::Line { attempts }) => {
                write!(f, "the cart changed {attempts} times while saving; retry")
            }
            OpError::KeptChanging(Contended::Clear) => {
                f.write_str("the cart kept changing while clearing; retry")
            }
            OpError::KeptChanging(Contended::CheckoutIntent) => {
                f.write_str("the cart kept changing while checking out; retry")
            }
            OpError::KeptChanging(Contended::Merge) => {
                f.write_str("the cart kept changing while merging; retry the merge")
            }
            OpError::CartEmpty => f.write_str("there is nothing to check out"),
            OpError::CheckoutOvertaken => f.write_str(
                "the cart changed while checking out; review it and check out again",
            ),
            OpError::StockShort(lines) => write!(
                f,
                "{} line(s) cannot be fulfilled; nothing was committed",
                lines.len()
            ),
            OpError::CommitRefused(answer) => {
                write!(f, "the inventory refused to commit the reservations: {answer}")
            }
            OpError::CheckoutPending { cause, .. } => cause.fmt(f),
            OpError::CheckoutUnrecorded { checkout_id } => write!(
                f,
                "checkout {checkout_id} was committed but the cart kept changing; POST the checkout again to finish it"
            ),
            OpError::StoredProductId(e) => write!(f, "stored product id {e}"),
            OpError::OutboxListing(e) => write!(f, "could not list pending outboxes: {e}"),
            OpError::ReservationListing(e) => write!(f, "could not list reservations: {e}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<RuleError> for OpError {
    fn from(e: RuleError) -> Self {
        OpError::Rule(e)
    }
}

impl From<RepoError> for OpError {
    fn from(e: RepoError) -> Self {
        OpError::Store(e)
    }
}

impl From<IndexError> for OpError {
    fn from(e: IndexError) -> Self {
        OpError::OutboxIndex(e)
    }
}

impl From<LeaseError> for OpError {
    fn from(e: LeaseError) -> Self {
        OpError::Lease(e)
    }
}

impl From<ReserveError> for OpError {
    fn from(e: ReserveError) -> Self {
        OpError::Reserve(e)
    }
}
