//! The inventory capability in cart terms: product snapshots and line reservations.

use crate::ports::bindings::inventory::{self, InventoryError, Product};
use cart_domain::reservation::ReservationState;
use cart_domain::{
    Currency, Money, Problem, ProblemKind, ProductSnapshot, ReservationPolicy, ReservationStatus,
};

/// Why a product could not be looked up.
pub enum LookupError {
    NotFound,
    Unavailable(String),
    Invalid(Problem),
}

fn snapshot(p: Product) -> Result<ProductSnapshot, Problem> {
    let currency = Currency::parse(&p.unit_price.currency).map_err(|e| {
        Problem::new(
            ProblemKind::InventoryUnavailable,
            format!("inventory sent a bad price for {}: {e}", p.product_id),
        )
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
        Ok(p) => snapshot(p).map_err(LookupError::Invalid),
        Err(InventoryError::ProductNotFound) => Err(LookupError::NotFound),
        Err(InventoryError::Unavailable(d)) | Err(InventoryError::Rejected(d)) => {
            Err(LookupError::Unavailable(d))
        }
        Err(InventoryError::InsufficientStock(_)) | Err(InventoryError::StaleFence(_)) => Err(
            LookupError::Unavailable("unexpected reservation answer to a lookup".into()),
        ),
    }
}

/// A newer writer set this line's hold: the caller's decision is stale.
pub fn stale_fence(product: &str, held: u64) -> Problem {
    Problem::new(
        ProblemKind::CartConflict,
        format!("the line for {product} was changed by a newer request meanwhile; retry"),
    )
    .with("productId", product)
    .with("staleFence", held)
    .with("retryAfterSeconds", 1)
}

/// Whether `problem` is `stale_fence`'s.
pub fn is_stale_fence(problem: &Problem) -> bool {
    problem.kind == ProblemKind::CartConflict && problem.extensions.contains_key("staleFence")
}

pub fn unknown_product(product: &str) -> Problem {
    Problem::new(
        ProblemKind::UnknownProduct,
        format!("product {product} does not exist in this store"),
    )
    .with("productId", product)
}

pub fn inventory_unavailable(detail: &str) -> Problem {
    Problem::new(
        ProblemKind::InventoryUnavailable,
        format!("the inventory service is unavailable: {detail}"),
    )
    .with("retryAfterSeconds", 2)
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
) -> Result<ReservationState, Problem> {
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
            Problem::new(
                ProblemKind::InsufficientStock,
                format!(
                    "only {available} of {} can be held for you; you asked for {quantity}",
                    product.product_id
                ),
            )
            .with("productId", product.product_id.clone())
            .with("requested", quantity)
            .with("available", available)
        }),
        Err(InventoryError::ProductNotFound) => Err(unknown_product(&product.product_id)),
        Err(InventoryError::StaleFence(held)) => {
            crate::ports::metrics::inc("cart_inventory_reservations_total{result=\"stale_fence\"}");
            Err(stale_fence(&product.product_id, held))
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

/// One reservation call through the breaker, timed for
/// `cart_inventory_reservation_duration_seconds` (two clock reads).
pub fn reserve(
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
