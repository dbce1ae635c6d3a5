//! The key layout in the shared store "default". Every key starts with `inv:` so it cannot
//! collide with the cart's or the event sink's keys. Ids cannot contain `:` (see `ids`), and the
//! product id `products` is reserved, so these never collide with each other either.

/// CAS'd product document: catalogue fields, stock, holds, committed reservations.
pub fn product(store: &str, product: &str) -> String {
    format!("inv:{store}:{product}")
}

/// CAS'd sorted list of the store's product ids, for the sweep.
pub fn product_index(store: &str) -> String {
    format!("inv:{store}:products")
}

/// Plain value: the product id a reservation belongs to, so release/commit by id can find it.
pub fn reservation_product(store: &str, reservation: &str) -> String {
    format!("inv:{store}:res:{reservation}")
}

/// Increment-only counter: whoever takes it from 0 to 1 seeds the demo catalog.
pub const SEED_GUARD: &str = "inv:seed-guard";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(product("demo", "p1"), "inv:demo:p1");
        assert_eq!(product_index("demo"), "inv:demo:products");
        assert_eq!(reservation_product("demo", "a~b"), "inv:demo:res:a~b");
    }
}
