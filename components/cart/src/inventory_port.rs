//! The inventory capability in cart terms: product snapshots and line reservations.

use crate::bindings::inventory::{self, InventoryError, Product};
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
    match crate::breaker::call(|| inventory::get_product(store, product)) {
        Ok(p) => snapshot(p).map_err(LookupError::Invalid),
        Err(InventoryError::ProductNotFound) => Err(LookupError::NotFound),
        Err(InventoryError::Unavailable(d)) | Err(InventoryError::Rejected(d)) => {
            Err(LookupError::Unavailable(d))
        }
        Err(InventoryError::InsufficientStock(_)) => Err(LookupError::Unavailable(
            "unexpected insufficient-stock answer to a lookup".into(),
        )),
    }
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
/// degrades the line to `unconfirmed` instead of failing the shopper.
pub fn reserve_line(
    store: &str,
    product: &ProductSnapshot,
    reservation_id: &str,
    quantity: u32,
    ttl_ms: u64,
) -> Result<ReservationState, Problem> {
    if product.policy == ReservationPolicy::Checkout {
        return Ok(ReservationState {
            id: reservation_id.to_owned(),
            status: ReservationStatus::NotRequired,
            expires_at_ms: None,
        });
    }
    match crate::breaker::call(|| {
        inventory::reserve(store, &product.product_id, reservation_id, quantity, ttl_ms)
    }) {
        Ok(r) => Ok(ReservationState {
            id: reservation_id.to_owned(),
            status: counted(ReservationStatus::Confirmed),
            expires_at_ms: Some(r.expires_at_ms),
        }),
        Err(InventoryError::InsufficientStock(available)) => Err({
            crate::metrics::inc("cart_inventory_reservations_total{result=\"insufficient\"}");
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

fn counted(status: ReservationStatus) -> ReservationStatus {
    let result = match status {
        ReservationStatus::Confirmed => "confirmed",
        ReservationStatus::Unconfirmed => "unconfirmed",
        ReservationStatus::Expired => "expired",
        ReservationStatus::NotRequired => "not_required",
    };
    crate::metrics::inc(&format!(
        "cart_inventory_reservations_total{{result=\"{result}\"}}"
    ));
    status
}

/// Releases a hold. Best effort: an unreleased hold expires by its TTL (and the sweep).
pub fn release(store: &str, reservation: &ReservationState) {
    if reservation.status == ReservationStatus::NotRequired {
        return;
    }
    if let Err(e) = crate::breaker::call(|| inventory::release(store, &reservation.id)) {
        eprintln!(
            "{{\"level\":\"warn\",\"msg\":\"reservation release failed\",\"reservationId\":\"{}\",\"error\":\"{e:?}\"}}",
            reservation.id
        );
    }
}
