//! Foreign-exchange rates the sandbox publishes (`GET /v1/fx_rates`), as a real PSP's treasury
//! would: one rate per ordered currency pair, units of the quote currency per unit of the base
//! currency. A starting table is built in; `POST /_sandbox/fx_rates` replaces rates so tests can
//! move the market. Rates are market data, not books: they are not saved with the state file.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Rates one table may hold.
pub const FX_RATES_MAX: usize = 256;
/// Decimal places of a rate.
pub const FX_RATE_SCALE_MAX: u32 = 10;

/// The rates in force at start: major currencies against each other, made up but plausible.
const STARTING_RATES: [(&str, &str, &str); 10] = [
    ("EUR", "USD", "1.0850"),
    ("EUR", "GBP", "0.8560"),
    ("EUR", "JPY", "162.40"),
    ("USD", "EUR", "0.9217"),
    ("USD", "GBP", "0.7890"),
    ("USD", "JPY", "149.70"),
    ("GBP", "EUR", "1.1682"),
    ("GBP", "USD", "1.2674"),
    ("USD", "KWD", "0.3075"),
    ("JPY", "USD", "0.006680"),
];

/// One published rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate {
    /// ISO 4217 code of the currency sold.
    pub base: String,
    /// ISO 4217 code of the currency bought.
    pub quote: String,
    /// Units of `quote` per unit of `base`, as a decimal string.
    pub rate: Decimal,
}

/// The rate table.
#[derive(Debug, Clone)]
pub struct FxTable {
    rates: BTreeMap<(String, String), Decimal>,
}

impl Default for FxTable {
    fn default() -> Self {
        let rates = STARTING_RATES
            .iter()
            .map(|(base, quote, rate)| {
                let rate: Decimal = rate.parse().expect("the starting rates are decimals");
                ((base.to_string(), quote.to_string()), rate)
            })
            .collect();
        FxTable { rates }
    }
}

impl FxTable {
    /// The rate of a pair, if the sandbox quotes it.
    pub fn rate(&self, base: &str, quote: &str) -> Option<FxRate> {
        self.rates
            .get(&(base.to_string(), quote.to_string()))
            .map(|rate| FxRate {
                base: base.to_string(),
                quote: quote.to_string(),
                rate: *rate,
            })
    }

    /// Every rate, by pair.
    pub fn all(&self) -> Vec<FxRate> {
        self.rates
            .iter()
            .map(|((base, quote), rate)| FxRate {
                base: base.clone(),
                quote: quote.clone(),
                rate: *rate,
            })
            .collect()
    }

    /// Sets the given rates (others stay), after checking every one; nothing changes on an error.
    pub fn set(&mut self, rates: &[FxRate]) -> Result<(), String> {
        for rate in rates {
            check(rate)?;
        }
        let mut next = self.rates.clone();
        for rate in rates {
            next.insert((rate.base.clone(), rate.quote.clone()), rate.rate);
        }
        if next.len() > FX_RATES_MAX {
            return Err(format!("the sandbox holds at most {FX_RATES_MAX} rates"));
        }
        self.rates = next;
        Ok(())
    }
}

fn check(rate: &FxRate) -> Result<(), String> {
    let code = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
    if !code(&rate.base) || !code(&rate.quote) || rate.base == rate.quote {
        return Err("`base` and `quote` must be two different ISO 4217 codes like EUR".into());
    }
    if rate.rate <= Decimal::ZERO || rate.rate.scale() > FX_RATE_SCALE_MAX {
        return Err(format!(
            "`rate` must be positive with at most {FX_RATE_SCALE_MAX} decimal places"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_rates_are_quoted_and_can_be_moved() {
        let mut table = FxTable::default();
        assert_eq!(table.rate("EUR", "GBP").unwrap().rate.to_string(), "0.8560");
        assert!(table.rate("GBP", "KWD").is_none());
        let moved = FxRate {
            base: "EUR".into(),
            quote: "GBP".into(),
            rate: "0.9".parse().unwrap(),
        };
        table.set(&[moved]).unwrap();
        assert_eq!(table.rate("EUR", "GBP").unwrap().rate.to_string(), "0.9");
    }

    #[test]
    fn bad_rates_change_nothing() {
        let mut table = FxTable::default();
        let good = FxRate {
            base: "EUR".into(),
            quote: "GBP".into(),
            rate: "0.5".parse().unwrap(),
        };
        for bad in [
            ("EUR", "EUR", "1"),
            ("eur", "GBP", "1"),
            ("EUR", "GBP", "0"),
            ("EUR", "GBP", "-1"),
            ("EUR", "GBP", "0.00000000001"),
        ] {
            let rate = FxRate {
                base: bad.0.into(),
                quote: bad.1.into(),
                rate: bad.2.parse().unwrap(),
            };
            assert!(table.set(&[good.clone(), rate]).is_err(), "{bad:?}");
        }
        assert_eq!(table.rate("EUR", "GBP").unwrap().rate.to_string(), "0.8560");
    }
}
