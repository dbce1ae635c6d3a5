//! Validated identifiers. Ids end up inside key-value keys (`cart:{store}:{user}`) and URL paths,
//! so the charset excludes the key separator `:`, the reservation-id separator `~`, `/`, `%`
//! and anything that needs escaping; an id made only of dots is refused so it can never act as
//! a path segment like `..`.

use std::fmt;

/// Longest id accepted unless a deployment lowers it.
pub const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    Empty,
    TooLong { max: usize },
    BadCharacter(char),
    OnlyDots,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => write!(f, "must not be empty"),
            IdError::TooLong { max } => write!(f, "must be at most {max} characters"),
            IdError::BadCharacter(c) => write!(
                f,
                "contains {c:?}; allowed are ASCII letters, digits, '.', '_' and '-'"
            ),
            IdError::OnlyDots => write!(f, "must not consist of dots only"),
        }
    }
}

impl std::error::Error for IdError {}

/// Checks one id against the charset and length rules.
pub fn validate_id(raw: &str, max_len: usize) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > max_len {
        return Err(IdError::TooLong { max: max_len });
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(IdError::BadCharacter(c));
    }
    if raw.chars().all(|c| c == '.') {
        return Err(IdError::OnlyDots);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `raw` with the given maximum length.
            pub fn parse_with_max(raw: &str, max_len: usize) -> Result<Self, IdError> {
                validate_id(raw, max_len).map(|()| Self(raw.to_owned()))
            }

            /// Validates `raw` with the default maximum length.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                Self::parse_with_max(raw, MAX_ID_LEN)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A store (storefront) id.
    StoreId
);
id_type!(
    /// A user id: the token subject, or the demo header in local mode.
    UserId
);
id_type!(
    /// A product id as the inventory knows it.
    ProductId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for ok in ["demo", "user-42", "a.b_c-D9", "x"] {
            assert!(StoreId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_separators_traversal_and_unicode() {
        for bad in [
            "", "a:b", "a/b", "..", ".", "a~b", "a%2Fb", "é", "a b", "a\u{0}b", "ＡＢ",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enforces_length() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            ProductId::parse(&long),
            Err(IdError::TooLong { max: MAX_ID_LEN })
        );
        assert!(ProductId::parse(&long[..MAX_ID_LEN]).is_ok());
    }
}
