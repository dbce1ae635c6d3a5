//! The inventory capability in cart terms: product snapshots and line reservations.

use crate::ports::bindings::inventory::{self, InventoryError, Product};
use cart_domain::reservation::ReservationState;
use cart_domain::{Currency, Money, ProductSnapshot, ReservationPolicy, ReservationStatus};

/// Why a product could not be looked up.
#[derive(Debug, Clone)]
pub enum LookupError {
    NotFound,
    Unavailable(String),
    /// The inventory answered with a record the cart cannot use.
    Malformed(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound => f.write_str("the product does not exist in this store"),
            LookupError::Unavailable(detail) => {
                write!(f, "the inventory service is unavailable: {detail}")
            }
            LookupError::Malformed(detail) => f.write_str(detail),
        }
    }
}

/// Why a line's hold was refused (an unavailable inventory is not a refusal: the line is kept
/// `unconfirmed`).
#[derive(Debug, Clone)]
pub enum ReserveError {
    InsufficientStock {
        product: String,
        requested: u32,
        available: u32,
    },
    UnknownProduct(String),
    /// A newer writer set this line's hold: the caller's decision is stale.
    StaleFence {
        product: String,
        held: u64,
    },
}

impl std::fmt::Display for ReserveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReserveError::InsufficientStock {
                product,
                requested,
                available,
            } => write!(
                f,
                "only {available} of {product} can be held for you; you asked for {requested}"
            ),
            ReserveError::UnknownProduct(product) => {
                write!(f, "product {product} does not exist in this store")
            }
            ReserveError::StaleFence { product, .. } => write!(
                f,
                "the line for {product} was changed by a newer request meanwhile; retry"
            ),
        }
    }
}

/// The inventory's answer to a raw hold (`hold`), in cart terms.
#[derive(Debug, Clone)]
pub enum HoldFailure {
    InsufficientStock(u32),
    ProductNotFound,
    StaleFence(u64),
    /// Unavailable, or refused for another reason; the inventory's detail.
    Unavailable(String),
}

/// Why the inventory did not commit a checkout's reservations.
#[derive(Debug, Clone)]
pub enum CommitError {
    /// It could not be reached (the commit may be retried).
    Unavailable(String),
    /// It refused; its answer as the contract's error prints it.
    Refused(String),
}

/// One hold the inventory keeps for a store.
#[derive(Debug, Clone)]
pub struct ListedHold {
    pub reservation_id: String,
    pub product_id: String,
    pub quantity: u32,
}

fn snapshot(p: Product) -> Result<ProductSnapshot, LookupError> {
    let currency = Currency::parse(&p.unit_price.currency).map_err(|e| {
        LookupError::Malformed(format!(
            "inventory sent a bad price for {}: {e}",
            p.product_id
        ))
    })?;
    Ok(ProductSnapshot {
        product_id: p.product_id,
        title: p.title,
        unit_price: Money::new(p.unit_price.amount_minor, currency),
        policy: match p.policy {
            inventory::ReservationPolicy::Reserve => ReservationPolicy::Reserve,
            inventory::ReservationPolicy::Checkout => ReservationPolicy::Checkout,
        },
        min_quantity: p.min_quantity.max(1),
        max_quantity: p.max_quantity,
        quantity_step: p.quantity_step.max(1),
    })
}

pub fn lookup(store: &str, product: &str) -> Result<ProductSnapshot, LookupError> {
    match crate::ports::breaker::call(|| inventory::get_product(store, product)) {
        Ok(p) => snapshot(p),
        Err(InventoryError::ProductNotFound) => Err(LookupError::NotFound),
        Err(InventoryError::Unavailable(d)) | Err(InventoryError::Rejected(d)) => {
            Err(LookupError::Unavailable(d))
        }
        Err(InventoryError::InsufficientStock(_)) | Err(InventoryError::StaleFence(_)) => Err(
            LookupError::Unavailable("unexpected reservation answer to a lookup".into()),
        ),
    }
}

/// Holds `quantity` units for the line. The reservation is absolute, so repeating it (a retry,
/// or the shopper re-setting a quantity they hold) is harmless. An unavailable inventory
/// degrades the line to `unconfirmed` instead of failing the shopper. `fence` is the cart
/// version the decision was made from, plus one: a hold a newer writer set is left alone and
/// the answer is a `cart-conflict` with `staleFence` (re-read and decide again).
pub fn reserve_line(
    store: &str,
    product: &ProductSnapshot,
    reservation_id: &str,
    quantity: u32,
    ttl_ms: u64,
    fence: u64,
) -> Result<ReservationState, ReserveError> {
    if product.policy == ReservationPolicy::Checkout {
        return Ok(ReservationState {
            id: reservation_id.to_owned(),
            status: ReservationStatus::NotRequired,
            expires_at_ms: None,
        });
    }
    match reserve(
        store,
        &product.product_id,
        reservation_id,
        quantity,
        ttl_ms,
        fence,
    ) {
        Ok(r) => Ok(ReservationState {
            id: reservation_id.to_owned(),
            status: counted(ReservationStatus::Confirmed),
            expires_at_ms: Some(r.expires_at_ms),
        }),
        Err(InventoryError::InsufficientStock(available)) => Err({
            crate::ports::metrics::inc(
                "cart_inventory_reservations_total{result=\"insufficient\"}",
            );
            ReserveError::InsufficientStock {
                product: product.product_id.clone(),
                requested: quantity,
                available,
            }
        }),
        Err(InventoryError::ProductNotFound) => {
            Err(ReserveError::UnknownProduct(product.product_id.clone()))
        }
        Err(InventoryError::StaleFence(held)) => {
            crate::ports::metrics::inc("cart_inventory_reservations_total{result=\"stale_fence\"}");
            Err(ReserveError::StaleFence {
                product: product.product_id.clone(),
                held,
            })
        }
        Err(InventoryError::Unavailable(d)) | Err(InventoryError::Rejected(d)) => {
            eprintln!(
                "{{\"level\":\"warn\",\"msg\":\"reservation degraded to unconfirmed\",\"reservationId\":\"{reservation_id}\",\"error\":{}}}",
                serde_json::Value::String(d)
            );
            Ok(ReservationState {
                id: reservation_id.to_owned(),
                status: counted(ReservationStatus::Unconfirmed),
                expires_at_ms: None,
            })
        }
    }
}

/// Holds `quantity` units under `reservation_id` whatever the product's policy (checkout
/// confirms every line this way), through the breaker and timed like every reservation.
pub fn hold(
    store: &str,
    product: &str,
    reservation_id: &str,
    quantity: u32,
    ttl_ms: u64,
    fence: u64,
) -> Result<(), HoldFailure> {
    match reserve(store, product, reservation_id, quantity, ttl_ms, fence) {
        Ok(_) => Ok(()),
        Err(InventoryError::InsufficientStock(available)) => {
            Err(HoldFailure::InsufficientStock(available))
        }
        Err(InventoryError::ProductNotFound) => Err(HoldFailure::ProductNotFound),
        Err(InventoryError::StaleFence(held)) => Err(HoldFailure::StaleFence(held)),
        Err(InventoryError::Unavailable(d)) | Err(InventoryError::Rejected(d)) => {
            Err(HoldFailure::Unavailable(d))
        }
    }
}

/// Commits reservations (a checkout's sale), through the breaker.
pub fn commit(store: &str, reservation_ids: &[String]) -> Result<(), CommitError> {
    crate::ports::breaker::call(|| inventory::commit(store, reservation_ids)).map_err(|e| match e {
        InventoryError::Unavailable(d) => CommitError::Unavailable(d),
        other => CommitError::Refused(format!("{other:?}")),
    })
}

/// Every hold the inventory keeps for `store`, through the breaker; the error as the
/// contract's error prints it.
pub fn list_reservations(store: &str) -> Result<Vec<ListedHold>, String> {
    crate::ports::breaker::call(|| inventory::list_reservations(store))
        .map(|holds| {
            holds
                .into_iter()
                .map(|h| ListedHold {
                    reservation_id: h.reservation_id,
                    product_id: h.product_id,
                    quantity: h.quantity,
                })
                .collect()
        })
        .map_err(|e| format!("{e:?}"))
}

/// One reservation call through the breaker, timed for
/// `cart_inventory_reservation_duration_seconds` (two clock reads).
fn reserve(
    store: &str,
    product: &str,
    reservation_id: &str,
    quantity: u32,
    ttl_ms: u64,
    fence: u64,
) -> Result<inventory::Reservation, InventoryError> {
    let started = std::time::Instant::now();
    let result = crate::ports::breaker::call(|| {
        inventory::reserve(store, product, reservation_id, quantity, ttl_ms, fence)
    });
    crate::ports::metrics::observe(
        &crate::runtime::metric_registry::RESERVATION_DURATION,
        "",
        started.elapsed().as_micros() as u64,
    );
    result
}

fn counted(status: ReservationStatus) -> ReservationStatus {
    let result = match status {
        ReservationStatus::Confirmed => "confirmed",
        ReservationStatus::Unconfirmed => "unconfirmed",
        ReservationStatus::Expired => "expired",
        ReservationStatus::NotRequired => "not_required",
    };
    crate::ports::metrics::inc(&format!(
        "cart_inventory_reservations_total{{result=\"{result}\"}}"
    ));
    status
}

/// Releases a hold. Best effort: an unreleased hold expires by its TTL (and the sweep).
pub fn release(store: &str, reservation: &ReservationState) {
    if reservation.status == ReservationStatus::NotRequired {
        return;
    }
    if let Err(e) = crate::ports::breaker::call(|| inventory::release(store, &reservation.id)) {
        eprintln!(
            "{{\"level\":\"warn\",\"msg\":\"reservation release failed\",\"reservationId\":\"{}\",\"error\":\"{e:?}\"}}",
            reservation.id
        );
    }
}

/// Releases a line's hold as of the cart version `fence` (the version the removal decided
/// from, plus one), as an absolute reserve of 0 units: a hold a newer writer has set since
/// (the same product added again: same cart epoch, so the same reservation id, with a higher
/// fence) is left alone. An unfenced release landing late would take that new line's hold
/// away; without line leases nothing else orders the two. Best effort like `release`.
pub fn release_fenced(store: &str, product_id: &str, reservation: &ReservationState, fence: u64) {
    if reservation.status == ReservationStatus::NotRequired {
        return;
    }
    // ttl-ms must be at least 1 even for zero units (the reference inventory checks it).
    match crate::ports::breaker::call(|| {
        inventory::reserve(store, product_id, &reservation.id, 0, 1, fence)
    }) {
        // Released, or a newer writer holds it now: theirs to keep.
        Ok(_) | Err(InventoryError::StaleFence(_)) => {}
        // The product is gone from the catalogue (nobody can add it again): release plainly.
        Err(InventoryError::ProductNotFound) => release(store, reservation),
        Err(e) => eprintln!(
            "{{\"level\":\"warn\",\"msg\":\"reservation release failed\",\"reservationId\":\"{}\",\"error\":\"{e:?}\"}}",
            reservation.id
        ),
    }
}
