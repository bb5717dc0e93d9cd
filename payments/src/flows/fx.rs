//! Where FX rates come from: the [`RateSource`] trait, with a configured table (`fx.source =
//! "table"`, `fx.rates`) and the PSP's published rates (`fx.source = "psp"`) as implementations.
//! A conversion fixes the rate it used and stores it with the object it converts, so a later
//! change of the market never changes an amount already decided.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::domain::fx::{parse_table_entry, FxRate};
use crate::domain::money::Currency;
use crate::edges::psp::{Gateway, PspError};
use crate::error::PayError;

/// What a rate source answers, boxed so sources can be chosen at run time.
pub type RateFuture<'a> = Pin<Box<dyn Future<Output = Result<FxRate, PayError>> + Send + 'a>>;

/// A source of FX rates.
pub trait RateSource: Send + Sync {
    /// `fx.source`'s word for it.
    fn name(&self) -> &'static str;
    /// The current rate of `base` in `quote`; `fx_rate_unavailable` when the source has none.
    fn rate(&self, base: Currency, quote: Currency) -> RateFuture<'_>;
}

fn unavailable(base: Currency, quote: Currency, source: &str) -> PayError {
    PayError::unprocessable(
        "fx_rate_unavailable",
        format!(
            "no {}/{} rate from the {source} rate source",
            base.code, quote.code
        ),
    )
}

/// Rates from the configuration (`fx.rates = ["EUR/GBP=0.856", ...]`): fixed until restart.
pub struct TableRates {
    rates: BTreeMap<(&'static str, &'static str), FxRate>,
}

impl TableRates {
    /// The table of `entries` (`BASE/QUOTE=RATE`), or every entry that is not one.
    pub fn parse(entries: &[String]) -> Result<TableRates, Vec<String>> {
        let mut rates = BTreeMap::new();
        let mut problems = Vec::new();
        for entry in entries {
            match parse_table_entry(entry) {
                Ok(rate) => {
                    rates.insert((rate.base.code, rate.quote.code), rate);
                }
                Err(problem) => problems.push(format!("fx.rates: {problem}")),
            }
        }
        if problems.is_empty() {
            Ok(TableRates { rates })
        } else {
            Err(problems)
        }
    }
}

impl RateSource for TableRates {
    fn name(&self) -> &'static str {
        "table"
    }

    fn rate(&self, base: Currency, quote: Currency) -> RateFuture<'_> {
        let found = self.rates.get(&(base.code, quote.code)).copied();
        Box::pin(async move { found.ok_or_else(|| unavailable(base, quote, "table")) })
    }
}

/// The rates the PSP publishes, read at each conversion.
pub struct PspRates {
    gateway: Gateway,
}

impl PspRates {
    pub fn new(gateway: Gateway) -> PspRates {
        PspRates { gateway }
    }
}

impl RateSource for PspRates {
    fn name(&self) -> &'static str {
        "psp"
    }

    fn rate(&self, base: Currency, quote: Currency) -> RateFuture<'_> {
        Box::pin(async move {
            let quoted = match self.gateway.fx_rate(base.code, quote.code).await {
                Ok(quoted) => quoted,
                Err(PspError::NotFound | PspError::Invalid { .. }) => {
                    return Err(unavailable(base, quote, "psp"))
                }
                Err(error) => return Err(PayError::PspUnavailable(format!("fx rate: {error}"))),
            };
            if quoted.base != base.code || quoted.quote != quote.code {
                return Err(PayError::PspUnavailable(
                    "fx rate: the PSP answered another currency pair".into(),
                ));
            }
            FxRate::new(base, quote, quoted.rate)
                .map_err(|e| PayError::PspUnavailable(format!("fx rate from the PSP: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_table_quotes_its_pairs_and_names_bad_entries() {
        let table = TableRates::parse(&["EUR/GBP=0.856".to_string()]).unwrap();
        let eur = Currency::by_code("EUR").unwrap();
        let gbp = Currency::by_code("GBP").unwrap();
        let rate = table.rate(eur, gbp).await.unwrap();
        assert_eq!(rate.rate.to_string(), "0.856");
        let missing = table.rate(gbp, eur).await.unwrap_err();
        assert!(matches!(
            missing,
            PayError::Unprocessable {
                code: "fx_rate_unavailable",
                ..
            }
        ));
        let problems = TableRates::parse(&["EUR/GBP=x".into(), "USD/JPY=150".into()])
            .err()
            .unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("fx.rates:"), "{problems:?}");
    }
}
