//! The demo catalog, so `spin up` has something to sell with nothing configured.

use crate::catalog;
use crate::error::ApiError;
use crate::keys;
use crate::kv::Kv;
use crate::model::{Catalogue, Money, Policy};

pub const DEMO_STORE: &str = "demo";

/// (product id, title, price in euro cents, stock, policy, max quantity)
type DemoProduct = (&'static str, &'static str, i64, u32, Policy, Option<u32>);

const DEMO_PRODUCTS: &[DemoProduct] = &[
    (
        "espresso-beans",
        "Espresso beans 1 kg",
        1890,
        50,
        Policy::Reserve,
        None,
    ),
    (
        "pour-over-kettle",
        "Pour-over kettle",
        4900,
        10,
        Policy::Reserve,
        None,
    ),
    (
        "ceramic-mug",
        "Ceramic mug",
        1200,
        100,
        Policy::Reserve,
        Some(10),
    ),
    (
        "paper-filters",
        "Paper filters (100)",
        450,
        200,
        Policy::Reserve,
        None,
    ),
    ("gift-card", "Gift card", 2500, 1000, Policy::Checkout, None),
];

/// The demo products as (product id, catalogue, stock).
pub fn demo_catalog() -> Vec<(&'static str, Catalogue, u32)> {
    DEMO_PRODUCTS
        .iter()
        .map(|&(id, title, amount, stock, policy, max_quantity)| {
            let catalogue = Catalogue {
                title: title.to_owned(),
                unit_price: Money {
                    amount,
                    currency: "EUR".to_owned(),
                },
                policy,
                min_quantity: 1,
                max_quantity,
                quantity_step: 1,
            };
            (id, catalogue, stock)
        })
        .collect()
}

/// Seeds the demo catalog once per store lifetime. Costs one read on every later request.
///
/// The guard is an increment-only counter: only the request that takes it from 0 to 1 seeds
/// (an absent-key CAS would let two first requests both "create"). Products that already exist
/// are left untouched. Requests racing the very first one do not wait for it, so they can see
/// a demo product as missing for a few milliseconds. If the seeding request fails midway, the
/// catalog stays partial; PUT the missing products by hand.
pub fn ensure_demo_catalog(kv: &Kv) -> Result<(), ApiError> {
    if kv.get_raw(keys::SEED_GUARD)?.is_some() {
        return Ok(());
    }
    if kv.increment(keys::SEED_GUARD, 1)? != 1 {
        return Ok(());
    }
    for (product, catalogue, stock) in demo_catalog() {
        catalog::create_if_absent(kv, DEMO_STORE, product, catalogue, stock)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::validate_product_id;

    #[test]
    fn demo_catalog_matches_the_brief() {
        let cat = demo_catalog();
        assert_eq!(cat.len(), 5);
        for (id, c, _) in &cat {
            assert_eq!(validate_product_id(id), Ok(()));
            assert_eq!(c.quantity_step, 1);
            assert_eq!(c.unit_price.currency, "EUR");
        }
        let mug = cat.iter().find(|(id, _, _)| *id == "ceramic-mug").unwrap();
        assert_eq!(
            (mug.1.unit_price.amount, mug.2, mug.1.max_quantity),
            (1200, 100, Some(10))
        );
        let card = cat.iter().find(|(id, _, _)| *id == "gift-card").unwrap();
        assert_eq!((card.1.policy, card.2), (Policy::Checkout, 1000));
    }
}
