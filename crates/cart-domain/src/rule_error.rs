//! Why a cart rule refused a change, as a type. The rules of `cart` return it; the cart
//! component's edge turns it into the HTTP problem (kind, extension members), and its
//! `Display` is the problem's `detail`, so the wording lives with the rule.

use crate::money::Currency;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The cart's lines are frozen until checkout `checkout_id` is finished.
    CheckoutPending { checkout_id: String },
    /// Adding would overflow the line's quantity.
    QuantityOutOfRange,
    /// Set or remove of a line the cart does not have.
    LineNotFound { product_id: String },
    /// The change would put `target` units on a line; the deployment allows `max`.
    LineQuantityAboveLimit { max: u32, target: u32 },
    /// A new line would exceed the deployment's line count `max`.
    TooManyLines { max: usize },
    /// A new line is priced in another currency than the cart's.
    CurrencyMismatch {
        cart: Currency,
        product_id: String,
        product: Currency,
    },
    /// The product is sold in quantities of at least `min`.
    BelowProductMinimum { product_id: String, min: u32 },
    /// The product is limited to `max` per cart.
    AboveProductMaximum { product_id: String, max: u32 },
    /// The product is sold in steps of `step` from `min`.
    OffProductStep {
        product_id: String,
        step: u32,
        min: u32,
    },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::CheckoutPending { checkout_id } => write!(
                f,
                "checkout {checkout_id} is in progress and its lines may already be sold; \
                 POST the checkout again to finish it, then change the cart"
            ),
            RuleError::QuantityOutOfRange => f.write_str("quantity out of range"),
            RuleError::LineNotFound { product_id } => {
                write!(f, "the cart has no line for product {product_id}")
            }
            RuleError::LineQuantityAboveLimit { max, target } => write!(
                f,
                "a line may hold at most {max} units; this change would make it {target}"
            ),
            RuleError::TooManyLines { max } => write!(f, "a cart may hold at most {max} lines"),
            RuleError::CurrencyMismatch {
                cart,
                product_id,
                product,
            } => write!(
                f,
                "the cart is priced in {}, {product_id} in {}",
                cart.as_str(),
                product.as_str()
            ),
            RuleError::BelowProductMinimum { product_id, min } => write!(
                f,
                "{product_id} must be bought in quantities of at least {min}"
            ),
            RuleError::AboveProductMaximum { product_id, max } => {
                write!(f, "{product_id} is limited to {max} per cart")
            }
            RuleError::OffProductStep {
                product_id,
                step,
                min,
            } => write!(f, "{product_id} is sold in steps of {step} from {min}"),
        }
    }
}

impl std::error::Error for RuleError {}
