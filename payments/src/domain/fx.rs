//! Foreign exchange: a rate between two currencies and the conversion of an amount, exact.
//!
//! A rate is units of the quote currency per unit of the base currency (EUR/GBP 0.856: one euro
//! buys 0.856 pounds). Converting an amount in minor units takes each currency's own exponent
//! into account (JPY has 0 decimals, USD 2, KWD 3), computes in `rust_decimal`, and rounds the
//! result to the quote currency's minor unit, half away from zero (the rule of fees too).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::domain::money::{Currency, AMOUNT_MAX};

/// Decimal places of a rate.
pub const RATE_SCALE_MAX: u32 = 10;
/// The largest rate accepted (KRW per KWD is about 4,500; this leaves room and bounds products).
pub const RATE_MAX: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);

/// A rate, as fixed for a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FxRate {
    pub base: Currency,
    pub quote: Currency,
    pub rate: Decimal,
}

/// Why a rate or a conversion is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("a rate needs two different currencies")]
    SameCurrency,
    #[error(
        "a rate must be positive, at most {RATE_MAX}, with at most {RATE_SCALE_MAX} decimal places"
    )]
    BadRate,
    #[error("the converted amount is over the largest amount ({AMOUNT_MAX} minor units)")]
    TooLarge,
}

impl FxRate {
    /// A checked rate.
    pub fn new(base: Currency, quote: Currency, rate: Decimal) -> Result<FxRate, FxError> {
        if base == quote {
            return Err(FxError::SameCurrency);
        }
        if rate <= Decimal::ZERO || rate > RATE_MAX || rate.scale() > RATE_SCALE_MAX {
            return Err(FxError::BadRate);
        }
        Ok(FxRate { base, quote, rate })
    }

    /// `amount` minor units of the base currency in minor units of the quote currency, rounded
    /// half away from zero.
    pub fn convert(&self, amount: u64) -> Result<u64, FxError> {
        let base_unit = Decimal::from(10u64.pow(self.base.scale));
        let quote_unit = Decimal::from(10u64.pow(self.quote.scale));
        let converted = Decimal::from(amount)
            .checked_mul(self.rate)
            .and_then(|v| v.checked_mul(quote_unit))
            .and_then(|v| v.checked_div(base_unit))
            .ok_or(FxError::TooLarge)?
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        converted
            .to_u64()
            .filter(|v| *v <= AMOUNT_MAX)
            .ok_or(FxError::TooLarge)
    }

    /// As the API shows it.
    pub fn view(&self) -> RateView {
        RateView {
            base: self.base.code.to_string(),
            quote: self.quote.code.to_string(),
            rate: self.rate.normalize().to_string(),
        }
    }
}

/// A rate as the API shows and stores it: the rate as a decimal string, never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateView {
    pub base: String,
    pub quote: String,
    /// Units of `quote` per unit of `base`, e.g. `"0.856"`.
    pub rate: String,
}

/// Parses `BASE/QUOTE=RATE` (`EUR/GBP=0.856`), the form of `fx.rates` in the configuration.
pub fn parse_table_entry(text: &str) -> Result<FxRate, String> {
    let problem =
        || format!("{text:?} is not BASE/QUOTE=RATE with known currencies, e.g. EUR/GBP=0.856");
    let (pair, rate) = text.split_once('=').ok_or_else(problem)?;
    let (base, quote) = pair.trim().split_once('/').ok_or_else(problem)?;
    let base = Currency::by_code(base.trim()).ok_or_else(problem)?;
    let quote = Currency::by_code(quote.trim()).ok_or_else(problem)?;
    let rate: Decimal = rate.trim().parse().map_err(|_| problem())?;
    FxRate::new(base, quote, rate).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::by_code(code).unwrap()
    }

    fn rate(base: &str, quote: &str, rate: &str) -> FxRate {
        FxRate::new(currency(base), currency(quote), rate.parse().unwrap()).unwrap()
    }

    #[test]
    fn conversion_follows_each_currency_s_exponent() {
        // 12.34 EUR at 0.856 = 10.56304 GBP -> 10.56.
        assert_eq!(rate("EUR", "GBP", "0.856").convert(1234), Ok(1056));
        // 12.34 EUR at 162.40 = 2003.9 JPY -> 2004 (no decimals).
        assert_eq!(rate("EUR", "JPY", "162.40").convert(1234), Ok(2004));
        // 1000 JPY at 0.00668 = 6.68 USD.
        assert_eq!(rate("JPY", "USD", "0.00668").convert(1000), Ok(668));
        // 100.00 USD at 0.3075 = 30.750 KWD (three decimals).
        assert_eq!(rate("USD", "KWD", "0.3075").convert(10_000), Ok(30_750));
        // 1.000 KWD at 3.2520 = 3.25 USD (3.252 rounded).
        assert_eq!(rate("KWD", "USD", "3.2520").convert(1000), Ok(325));
    }

    #[test]
    fn halves_round_away_from_zero() {
        // 0.05 EUR at 0.5 = 0.025 GBP -> 0.03.
        assert_eq!(rate("EUR", "GBP", "0.5").convert(5), Ok(3));
        // 0.01 EUR at 0.4 = 0.004 GBP -> 0.00.
        assert_eq!(rate("EUR", "GBP", "0.4").convert(1), Ok(0));
    }

    #[test]
    fn bad_rates_and_huge_results_are_refused() {
        let eur = currency("EUR");
        let gbp = currency("GBP");
        assert_eq!(
            FxRate::new(eur, eur, Decimal::ONE),
            Err(FxError::SameCurrency)
        );
        for bad in ["0", "-1", "0.00000000001", "100000001"] {
            assert_eq!(
                FxRate::new(eur, gbp, bad.parse().unwrap()),
                Err(FxError::BadRate),
                "{bad}"
            );
        }
        assert_eq!(
            rate("USD", "KRW", "99999999").convert(AMOUNT_MAX),
            Err(FxError::TooLarge)
        );
    }

    #[test]
    fn table_entries_parse() {
        let parsed = parse_table_entry(" EUR/GBP = 0.856 ").unwrap();
        assert_eq!(parsed, rate("EUR", "GBP", "0.856"));
        for bad in [
            "EUR-GBP=1",
            "EUR/XXX=1",
            "EUR/GBP=abc",
            "EUR/GBP",
            "EUR/EUR=1",
        ] {
            assert!(parse_table_entry(bad).is_err(), "{bad}");
        }
    }
}
