//! Currencies and amounts. The ledger holds integer minor units; `rust_decimal` is used where an
//! amount is parsed from a decimal string or multiplied (fees, refunds of fees), always with an
//! explicit rounding rule. No floating point.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Largest amount of one payment order, refund, deposit or payout, in minor units
/// (10^13 minor units = 100 billion USD); keeps every sum of a payment far inside u64 and u128.
pub const AMOUNT_MAX: u64 = 10_000_000_000_000;

/// Payment orders in one payment event (one per seller).
pub const ORDERS_PER_PAYMENT_MAX: usize = 16;

/// A currency Tally supports: ISO 4217 code, numeric code (which is also its ledger id), and the
/// number of decimals of its minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    pub code: &'static str,
    pub ledger: u32,
    pub scale: u32,
}

/// The ISO 4217 currencies tally-pay knows. A currency must also be enabled in the config.
pub const CURRENCIES: &[Currency] = &[
    Currency {
        code: "USD",
        ledger: 840,
        scale: 2,
    },
    Currency {
        code: "EUR",
        ledger: 978,
        scale: 2,
    },
    Currency {
        code: "GBP",
        ledger: 826,
        scale: 2,
    },
    Currency {
        code: "CHF",
        ledger: 756,
        scale: 2,
    },
    Currency {
        code: "CAD",
        ledger: 124,
        scale: 2,
    },
    Currency {
        code: "AUD",
        ledger: 36,
        scale: 2,
    },
    Currency {
        code: "SEK",
        ledger: 752,
        scale: 2,
    },
    Currency {
        code: "JPY",
        ledger: 392,
        scale: 0,
    },
    Currency {
        code: "KRW",
        ledger: 410,
        scale: 0,
    },
    Currency {
        code: "KWD",
        ledger: 414,
        scale: 3,
    },
    Currency {
        code: "BHD",
        ledger: 48,
        scale: 3,
    },
];

impl Currency {
    /// Looks a currency up by its ISO code (upper case, as in `USD`).
    pub fn by_code(code: &str) -> Option<Currency> {
        CURRENCIES.iter().copied().find(|c| c.code == code)
    }

    pub fn by_ledger(ledger: u32) -> Option<Currency> {
        CURRENCIES.iter().copied().find(|c| c.ledger == ledger)
    }

    /// Formats minor units as a decimal string (`1250` USD -> `12.50`).
    pub fn format(&self, minor: u64) -> String {
        Decimal::from_i128_with_scale(i128::from(minor), self.scale).to_string()
    }
}

/// Why an amount was refused. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("unknown currency: use an ISO 4217 code such as USD, EUR or JPY")]
    UnknownCurrency(String),
    #[error("currency {0} is not enabled on this service")]
    CurrencyNotEnabled(String),
    #[error("amount must be positive")]
    NotPositive,
    #[error("amount exceeds the maximum of {AMOUNT_MAX} minor units")]
    TooLarge,
    #[error(
        "amount has more decimals than {currency} allows ({scale}); amounts are integer \
         minor units (`amount`) or a decimal string with at most {scale} decimals \
         (`amount_decimal`)"
    )]
    TooPrecise {
        value: String,
        currency: &'static str,
        scale: u32,
    },
    #[error("`amount_decimal` is not a decimal number")]
    NotANumber(String),
    #[error("give exactly one of `amount` (integer minor units) and `amount_decimal`")]
    AmountMissingOrBoth,
}

/// How an API request states an amount: integer minor units, or a decimal string in major units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AmountInput {
    /// Integer minor units (1250 = 12.50 USD). A JSON number with a fraction is rejected.
    #[schema(value_type = Option<i64>)]
    pub amount: Option<serde_json::Number>,
    /// Alternatively a decimal string in major units (`"12.50"`), at most the currency's scale.
    pub amount_decimal: Option<String>,
}

/// Parses an amount for `currency`: exactly one of minor units or decimal string, positive, at
/// most [`AMOUNT_MAX`], never rounded (too many decimals is an error, not a rounding).
pub fn parse_amount(input: &AmountInput, currency: Currency) -> Result<u64, AmountError> {
    match (&input.amount, &input.amount_decimal) {
        (Some(number), None) => {
            if let Some(value) = number.as_u64() {
                return check_range(value);
            }
            if number.as_i64().is_some() {
                return Err(AmountError::NotPositive);
            }
            // A fractional JSON number: never interpreted, since minor units are integers.
            let text = number.to_string();
            match text.parse::<Decimal>() {
                Ok(value) if value.is_sign_negative() => Err(AmountError::NotPositive),
                _ => Err(AmountError::TooPrecise {
                    value: text,
                    currency: currency.code,
                    scale: 0,
                }),
            }
        }
        (None, Some(text)) => parse_decimal(text, currency),
        _ => Err(AmountError::AmountMissingOrBoth),
    }
}

/// Parses a decimal string in major units into minor units; more decimals than the currency's
/// scale is an error.
pub fn parse_decimal(text: &str, currency: Currency) -> Result<u64, AmountError> {
    let value: Decimal = text
        .trim()
        .parse()
        .map_err(|_| AmountError::NotANumber(text.to_string()))?;
    if value.is_sign_negative() || value.is_zero() {
        return Err(AmountError::NotPositive);
    }
    if value.normalize().scale() > currency.scale {
        return Err(AmountError::TooPrecise {
            value: text.to_string(),
            currency: currency.code,
            scale: currency.scale,
        });
    }
    let minor = value
        .checked_mul(Decimal::from(10u64.pow(currency.scale)))
        .and_then(|m| m.to_u64())
        .ok_or(AmountError::TooLarge)?;
    check_range(minor)
}

fn check_range(value: u64) -> Result<u64, AmountError> {
    if value == 0 {
        return Err(AmountError::NotPositive);
    }
    if value > AMOUNT_MAX {
        return Err(AmountError::TooLarge);
    }
    Ok(value)
}

/// A fee rule: `percent` of the amount plus `fixed` minor units, capped at the amount.
///
/// Rounding rule: the percentage part is rounded to whole minor units half away from zero
/// (`0.5` -> `1`), then `fixed` is added. The fee never exceeds the amount it is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRule {
    pub percent: Decimal,
    pub fixed: u64,
}

impl FeeRule {
    pub fn fee(&self, amount: u64) -> u64 {
        let part = (Decimal::from(amount) * self.percent / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            .to_u64()
            .unwrap_or(u64::MAX);
        part.saturating_add(self.fixed).min(amount)
    }
}

/// `total * part / whole`, rounded half away from zero: the share of a fee that goes back with a
/// partial refund. Never more than `total`.
pub fn pro_rata(total: u64, part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    let share = (Decimal::from(total) * Decimal::from(part) / Decimal::from(whole))
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_u64()
        .unwrap_or(total);
    share.min(total)
}

/// Signed minor units as a decimal string of the currency (`-1250` USD -> `-12.50`).
pub fn format_signed(currency: Currency, minor: i128) -> String {
    match u64::try_from(minor.unsigned_abs()) {
        Ok(magnitude) if minor < 0 => format!("-{}", currency.format(magnitude)),
        Ok(magnitude) => currency.format(magnitude),
        Err(_) => minor.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::by_code("USD").unwrap()
    }

    fn minor(n: &str) -> AmountInput {
        AmountInput {
            amount: Some(serde_json::from_str(n).unwrap()),
            amount_decimal: None,
        }
    }

    #[test]
    fn integer_minor_units_are_accepted_within_range() {
        assert_eq!(parse_amount(&minor("1250"), usd()), Ok(1250));
        assert_eq!(
            parse_amount(&minor("0"), usd()),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            parse_amount(&minor("-5"), usd()),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            parse_amount(&minor("10000000000001"), usd()),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn fractional_minor_units_are_rejected_not_rounded() {
        assert!(matches!(
            parse_amount(&minor("12.345"), usd()),
            Err(AmountError::TooPrecise { .. })
        ));
        assert_eq!(
            parse_amount(&minor("-1.5"), usd()),
            Err(AmountError::NotPositive)
        );
    }

    #[test]
    fn decimal_strings_respect_the_currency_scale() {
        assert_eq!(parse_decimal("12.34", usd()), Ok(1234));
        assert_eq!(parse_decimal("12.30", usd()), Ok(1230));
        assert!(matches!(
            parse_decimal("12.345", usd()),
            Err(AmountError::TooPrecise { scale: 2, .. })
        ));
        let jpy = Currency::by_code("JPY").unwrap();
        assert_eq!(parse_decimal("500", jpy), Ok(500));
        assert!(parse_decimal("500.5", jpy).is_err());
        let kwd = Currency::by_code("KWD").unwrap();
        assert_eq!(parse_decimal("1.234", kwd), Ok(1234));
        assert!(parse_decimal("abc", usd()).is_err());
        assert_eq!(parse_decimal("-1", usd()), Err(AmountError::NotPositive));
    }

    #[test]
    fn exactly_one_amount_form_is_required() {
        let both = AmountInput {
            amount: Some(serde_json::from_str("1").unwrap()),
            amount_decimal: Some("1".into()),
        };
        assert_eq!(
            parse_amount(&both, usd()),
            Err(AmountError::AmountMissingOrBoth)
        );
        assert_eq!(
            parse_amount(&AmountInput::default(), usd()),
            Err(AmountError::AmountMissingOrBoth)
        );
    }

    #[test]
    fn fee_rounds_half_away_from_zero_and_is_capped() {
        let rule = FeeRule {
            percent: Decimal::new(29, 1), // 2.9 %
            fixed: 30,
        };
        assert_eq!(rule.fee(10_000), 290 + 30);
        // 2.9 % of 50 = 1.45 -> 1; of 150 = 4.35 -> 4; of 1550 = 44.95 -> 45.
        assert_eq!(rule.fee(50), 31);
        assert_eq!(rule.fee(150), 34);
        assert_eq!(rule.fee(1550), 75);
        assert_eq!(rule.fee(20), 20, "capped at the amount");
    }

    #[test]
    fn pro_rata_shares_round_half_away_from_zero() {
        assert_eq!(pro_rata(320, 5000, 10_000), 160);
        assert_eq!(pro_rata(3, 1, 2), 2); // 1.5 -> 2
        assert_eq!(pro_rata(3, 2, 2), 3);
        assert_eq!(pro_rata(3, 0, 2), 0);
    }

    #[test]
    fn formats_minor_units_with_the_scale() {
        assert_eq!(usd().format(1250), "12.50");
        assert_eq!(Currency::by_code("JPY").unwrap().format(500), "500");
    }
}
