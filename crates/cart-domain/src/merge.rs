//! The quantity rules of merging a guest's line into the signed-in shopper's line: pure
//! decisions, so they are unit-tested here; the cart component asks the inventory and saves.

use crate::cart::{largest_allowed, ProductSnapshot};

/// What the user's line should become when the guest's `guest` units join its `existing`
/// ones: the sum, within the per-line limit and the product's own rules (maximum, step).
/// `None` when nothing of the guest's line fits, so the user's line stays as it is.
pub fn merge_target(
    product: &ProductSnapshot,
    existing: u32,
    guest: u32,
    max_per_line: u32,
) -> Option<u32> {
    let combined = existing.saturating_add(guest).min(max_per_line);
    let target = largest_allowed(product, combined);
    (target > existing).then_some(target)
}

/// When the stock is short of `target` (the inventory can give the line `available` units in
/// all): the most the product's rules allow within that. `None` when that is no more than
/// the user already has: the user's line is never shrunk by a merge.
pub fn merge_within_stock(
    product: &ProductSnapshot,
    existing: u32,
    target: u32,
    available: u32,
) -> Option<u32> {
    let quantity = largest_allowed(product, available.min(target)).max(existing);
    (quantity > existing).then_some(quantity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};
    use crate::reservation::ReservationPolicy;

    fn product(max: Option<u32>, min: u32, step: u32) -> ProductSnapshot {
        ProductSnapshot {
            product_id: "m".into(),
            title: "Mug".into(),
            unit_price: Money::new(100, Currency::parse("EUR").expect("EUR")),
            policy: ReservationPolicy::Reserve,
            min_quantity: min,
            max_quantity: max,
            quantity_step: step,
        }
    }

    #[test]
    fn guest_six_and_user_six_of_a_product_sold_at_most_ten_in_twos_make_ten() {
        assert_eq!(merge_target(&product(Some(10), 2, 2), 6, 6, 99), Some(10));
    }

    #[test]
    fn the_per_line_limit_caps_the_sum() {
        assert_eq!(merge_target(&product(None, 1, 1), 60, 50, 99), Some(99));
        assert_eq!(merge_target(&product(None, 1, 1), 2, 3, 99), Some(5));
    }

    #[test]
    fn a_step_rounds_the_sum_down_to_an_allowed_quantity() {
        // 4 + 3 = 7 in steps of 2 from 2: 6.
        assert_eq!(merge_target(&product(None, 2, 2), 4, 3, 99), Some(6));
    }

    #[test]
    fn nothing_fits_when_the_user_is_at_the_maximum_already() {
        assert_eq!(merge_target(&product(Some(10), 1, 1), 10, 3, 99), None);
        // 9 in steps of 3 from 3: 9 + 2 = 11 rounds down to 9, no more than before.
        assert_eq!(merge_target(&product(None, 3, 3), 9, 2, 99), None);
    }

    #[test]
    fn a_guest_line_joins_an_empty_user_line_whole() {
        assert_eq!(merge_target(&product(None, 1, 1), 0, 4, 99), Some(4));
    }

    #[test]
    fn short_stock_keeps_what_is_available_within_the_rules() {
        // User 2 + guest 5 = 7 asked; 5 available in all.
        assert_eq!(merge_within_stock(&product(None, 1, 1), 2, 7, 5), Some(5));
        // Steps of 2 from 2: 5 available allows 4.
        assert_eq!(merge_within_stock(&product(None, 2, 2), 2, 8, 5), Some(4));
    }

    #[test]
    fn short_stock_never_shrinks_the_users_line() {
        assert_eq!(merge_within_stock(&product(None, 1, 1), 4, 7, 3), None);
        assert_eq!(merge_within_stock(&product(None, 1, 1), 4, 7, 4), None);
        assert_eq!(merge_within_stock(&product(None, 1, 1), 0, 7, 0), None);
    }

    #[test]
    fn more_stock_than_asked_gives_the_target_not_more() {
        assert_eq!(merge_within_stock(&product(None, 1, 1), 1, 5, 50), Some(5));
    }
}
