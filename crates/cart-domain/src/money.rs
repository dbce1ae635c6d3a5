//! Money as integer minor units of an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A three-letter upper-case ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Currency(code.to_owned()))
        } else {
            Err(MoneyError::BadCurrency(code.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    BadCurrency(String),
    Overflow,
    CurrencyMismatch { expected: String, found: String },
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::BadCurrency(c) => write!(f, "{c:?} is not an ISO 4217 currency code"),
            MoneyError::Overflow => write!(f, "amount out of range"),
            MoneyError::CurrencyMismatch { expected, found } => {
                write!(f, "cart is priced in {expected}, product in {found}")
            }
        }
    }
}

impl std::error::Error for MoneyError {}

/// An amount in minor units (cents for EUR) with its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Money { amount, currency }
    }

    /// `self * quantity`, refusing overflow rather than wrapping.
    pub fn times(&self, quantity: u32) -> Result<Money, MoneyError> {
        self.amount
            .checked_mul(i64::from(quantity))
            .map(|amount| Money::new(amount, self.currency.clone()))
            .ok_or(MoneyError::Overflow)
    }

    /// `self + other`, same currency only.
    pub fn plus(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                expected: self.currency.0.clone(),
                found: other.currency.0.clone(),
            });
        }
        self.amount
            .checked_add(other.amount)
            .map(|amount| Money::new(amount, self.currency.clone()))
            .ok_or(MoneyError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").unwrap())
    }

    #[test]
    fn multiplies_and_adds_exactly() {
        assert_eq!(eur(1890).times(3).unwrap(), eur(5670));
        assert_eq!(eur(5670).plus(&eur(450)).unwrap(), eur(6120));
    }

    #[test]
    fn refuses_overflow_and_mixed_currencies() {
        assert_eq!(eur(i64::MAX).times(2), Err(MoneyError::Overflow));
        let usd = Money::new(1, Currency::parse("USD").unwrap());
        assert!(matches!(
            eur(1).plus(&usd),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn currency_codes_are_three_upper_letters() {
        for bad in ["eur", "EURO", "E1R", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }
}
