//! The JSON the API returns for a cart and its summary.

use crate::cart::Cart;
use crate::money::{Money, MoneyError};
use crate::reservation::ReservationStatus;
use serde::Serialize;

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    pub store_id: String,
    pub user_id: String,
    pub version: u64,
    pub currency: Option<String>,
    pub lines: Vec<LineView>,
    pub line_count: usize,
    pub item_count: u64,
    pub subtotal: Option<Money>,
    pub updated_at_ms: u64,
    /// `open`, or `checked_out` until the next change.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checkout: Option<crate::cart::CheckoutRecord>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub product_id: String,
    pub title: String,
    pub unit_price: Money,
    pub quantity: u32,
    pub line_total: Money,
    pub reservation: ReservationView,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    pub id: String,
    pub status: ReservationStatus,
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub store_id: String,
    pub version: u64,
    pub line_count: usize,
    pub item_count: u64,
    pub subtotal: Option<Money>,
    pub currency: Option<String>,
}

impl CartView {
    pub fn build(
        store_id: &str,
        user_id: &str,
        version: u64,
        cart: &Cart,
        now_ms: u64,
    ) -> Result<Self, MoneyError> {
        let lines = cart
            .lines
            .iter()
            .map(|l| {
                Ok(LineView {
                    product_id: l.product_id.clone(),
                    title: l.title.clone(),
                    unit_price: l.unit_price.clone(),
                    quantity: l.quantity,
                    line_total: l.total()?,
                    reservation: ReservationView {
                        id: l.reservation.id.clone(),
                        status: l.reservation.status_at(now_ms),
                        expires_at_ms: l.reservation.expires_at_ms,
                    },
                })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        let subtotal = cart.subtotal()?;
        Ok(CartView {
            store_id: store_id.to_owned(),
            user_id: user_id.to_owned(),
            version,
            currency: subtotal.as_ref().map(|m| m.currency.as_str().to_owned()),
            line_count: lines.len(),
            lines,
            item_count: cart.item_count(),
            subtotal,
            updated_at_ms: cart.updated_at_ms,
            status: if cart.is_checked_out() {
                "checked_out"
            } else {
                "open"
            },
            last_checkout: cart.last_checkout.clone(),
        })
    }
}

impl SummaryView {
    pub fn build(store_id: &str, version: u64, cart: &Cart) -> Result<Self, MoneyError> {
        let subtotal = cart.subtotal()?;
        Ok(SummaryView {
            store_id: store_id.to_owned(),
            version,
            line_count: cart.lines.len(),
            item_count: cart.item_count(),
            currency: subtotal.as_ref().map(|m| m.currency.as_str().to_owned()),
            subtotal,
        })
    }
}
