//! Input limits. Defaults are safe for a storefront; deployments change them with variables.

/// Bounds on what one request or one cart may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_lines_per_cart: usize,
    pub max_quantity_per_line: u32,
    pub max_body_bytes: usize,
    /// Total size of the request's header names and values.
    pub max_header_bytes: usize,
    pub max_id_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_lines_per_cart: 100,
            max_quantity_per_line: 999,
            max_body_bytes: 16 * 1024,
            max_header_bytes: 8 * 1024,
            max_id_len: crate::ids::MAX_ID_LEN,
        }
    }
}
