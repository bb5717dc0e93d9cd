//! A payment order paid out in another currency than it was charged in: the conversion fixed at
//! its capture ([`OrderFx`], stored with the order) and what its release and refunds take from
//! the seller in the payout currency. Pure: the flows read the rate and commit.
//!
//! Rounding rule: every conversion rounds to the payout currency's minor unit, half away from
//! zero (`FxRate::convert`). A refund is converted cumulatively: it takes the conversion of
//! everything the order's refunds have returned (net of the fee they gave back) less what they
//! took in the payout currency before it, so the refunds' payout-currency amounts always add up
//! to the conversion of their charge-currency total, and a refund of the whole share takes back
//! exactly what the capture paid in, to the minor unit.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::fx::{FxError, FxRate};
use crate::domain::model::Order;
use crate::domain::money::Currency;

/// The conversion of a payment order's seller share, fixed at its capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"base": "EUR", "quote": "GBP", "rate": "0.856", "source": "psp",
    "fixed_at": 1764720000000_i64, "share": 9720, "share_converted": 8320,
    "returned_converted": 2080}))]
pub struct OrderFx {
    /// The charge currency.
    pub base: String,
    /// The seller's payout currency.
    pub quote: String,
    /// Units of `quote` per unit of `base`, as a decimal string (`"0.856"`), as the source quoted
    /// it at the capture. Used for everything the order does later, whatever the market does.
    pub rate: String,
    /// The rate source that quoted it: `psp` or `table`.
    pub source: String,
    /// Unix milliseconds at which it was fixed (the capture).
    pub fixed_at: i64,
    /// The seller's share converted: the captured amount less the fee, in `base` minor units.
    pub share: u64,
    /// The share in `quote` minor units: what the seller was credited.
    pub share_converted: u64,
    /// `quote` minor units taken back from the seller by the order's refunds (pending ones too).
    #[serde(default)]
    pub returned_converted: u64,
}

impl OrderFx {
    /// The conversion of `order`'s share (its amount less its fee, both final) at `rate`, quoted
    /// by `source`, fixed at `now_ms`.
    pub fn fixed(
        order: &Order,
        rate: &FxRate,
        source: &str,
        now_ms: i64,
    ) -> Result<OrderFx, FxError> {
        debug_assert_eq!(order.currency, rate.base.code);
        let share = order.amount.saturating_sub(order.fee);
        Ok(OrderFx {
            base: rate.base.code.to_string(),
            quote: rate.quote.code.to_string(),
            rate: rate.rate.normalize().to_string(),
            source: source.to_string(),
            fixed_at: now_ms,
            share,
            share_converted: rate.convert(share)?,
            returned_converted: 0,
        })
    }

    /// The stored rate, as fixed.
    pub fn rate(&self) -> Option<FxRate> {
        let base = Currency::by_code(&self.base)?;
        let quote = Currency::by_code(&self.quote)?;
        let rate: Decimal = self.rate.parse().ok()?;
        FxRate::new(base, quote, rate).ok()
    }

    /// The payout currency.
    pub fn quote_currency(&self) -> Option<Currency> {
        Currency::by_code(&self.quote)
    }

    /// What the seller still holds of the converted share, in the payout currency: what a
    /// release moves from pending to the wallet.
    pub fn unreturned(&self) -> u64 {
        self.share_converted.saturating_sub(self.returned_converted)
    }
}

/// What `order`'s refunds not failed (pending ones too) have returned, net of the fee they gave
/// back, in the charge currency.
pub fn net_returned(order: &Order) -> u64 {
    order
        .refunded
        .saturating_add(order.refund_pending)
        .saturating_sub(order.fee_refunded.saturating_add(order.fee_refund_pending))
}

/// What a new refund of `order` returning `net` (its amount less the fee it gives back, charge
/// currency) takes from the seller in the payout currency, at the rate fixed at capture,
/// cumulatively (see the module's rounding rule).
pub fn refund_converted(order: &Order, fx: &OrderFx, net: u64) -> Result<u64, FxError> {
    let rate = fx.rate().ok_or(FxError::BadRate)?;
    let total = rate.convert(net_returned(order).saturating_add(net))?;
    Ok(total.saturating_sub(fx.returned_converted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::escrow::tests::held_order;
    use crate::domain::money::{pro_rata, FeeRule};

    fn rate(base: &str, quote: &str, rate: &str) -> FxRate {
        let currency = |c| Currency::by_code(c).unwrap();
        FxRate::new(currency(base), currency(quote), rate.parse().unwrap()).unwrap()
    }

    /// An order of `amount` in `currency` with `fee`, captured, nothing refunded.
    fn captured(currency: &str, amount: u64, fee: u64) -> Order {
        let mut order = held_order();
        order.currency = currency.into();
        (order.amount, order.fee) = (amount, fee);
        (order.refunded, order.refund_pending) = (0, 0);
        (order.fee_refunded, order.fee_refund_pending) = (0, 0);
        order
    }

    #[test]
    fn the_share_is_converted_at_the_rate_fixed_with_the_payout_exponent() {
        // 100.00 EUR less a 2.80 fee = 97.20 EUR; at 0.856 = 83.2032 GBP -> 83.20.
        let order = captured("EUR", 10_000, 280);
        let fx = OrderFx::fixed(&order, &rate("EUR", "GBP", "0.856"), "table", 7).unwrap();
        assert_eq!((fx.share, fx.share_converted), (9_720, 8_320));
        assert_eq!((fx.rate.as_str(), fx.fixed_at), ("0.856", 7));
        assert_eq!(fx.rate(), Some(rate("EUR", "GBP", "0.856")));
        // At 162.4 JPY: 97.20 EUR = 15785.28 JPY -> 15785 (no decimals).
        let fx = OrderFx::fixed(&order, &rate("EUR", "JPY", "162.40"), "psp", 7).unwrap();
        assert_eq!(fx.share_converted, 15_785);
        assert_eq!(fx.rate, "162.4");
        // At 0.3355 KWD: 97.20 EUR = 32.6106 KWD -> 32.611 (three decimals).
        let fx = OrderFx::fixed(&order, &rate("EUR", "KWD", "0.3355"), "psp", 7).unwrap();
        assert_eq!(fx.share_converted, 32_611);
        // 1000 JPY less a 55 JPY fee = 945 JPY; at 0.00614 EUR = 5.8023 EUR -> 5.80.
        let order = captured("JPY", 1_000, 55);
        let fx = OrderFx::fixed(&order, &rate("JPY", "EUR", "0.00614"), "psp", 7).unwrap();
        assert_eq!((fx.share, fx.share_converted), (945, 580));
    }

    #[test]
    fn refunds_take_back_the_converted_proportion_and_add_up_exactly() {
        let mut order = captured("EUR", 10_000, 280);
        let mut fx = OrderFx::fixed(&order, &rate("EUR", "JPY", "162.4"), "psp", 7).unwrap();
        assert_eq!(fx.share_converted, 15_785);
        // Three refunds of 33.33 EUR, each returning its share of the fee (9.33, 9.33, rest).
        let mut taken = 0;
        for (amount, fee_back) in [(3_333, 93), (3_333, 93), (3_334, 94)] {
            let net = amount - fee_back;
            let converted = refund_converted(&order, &fx, net).unwrap();
            order.refunded += amount;
            order.fee_refunded += fee_back;
            fx.returned_converted += converted;
            taken += converted;
        }
        // 32.40 EUR at 162.4 = 5261.76 -> 5262; then 64.80 -> 10523.52 -> 10524 (5262 more).
        assert_eq!(
            taken, fx.share_converted,
            "a full refund takes back exactly the share"
        );
        assert_eq!(fx.unreturned(), 0);
    }

    #[test]
    fn a_later_rate_does_not_change_a_fixed_conversion() {
        let order = captured("EUR", 10_000, 280);
        let fx = OrderFx::fixed(&order, &rate("EUR", "GBP", "0.856"), "psp", 7).unwrap();
        let stored = serde_json::to_string(&fx).unwrap();
        let read: OrderFx = serde_json::from_str(&stored).unwrap();
        // Half the share back: 48.60 EUR at the fixed 0.856 = 41.6016 -> 41.60, whatever the
        // market says now.
        assert_eq!(refund_converted(&order, &read, 4_860), Ok(4_160));
        assert_eq!(read.unreturned(), 8_320);
    }

    /// Fees and prorations are whole minor units of the currency they are in: no cents of yen,
    /// thousandths of a dinar kept.
    #[test]
    fn fees_and_prorations_keep_each_currency_s_exponent() {
        let rule = FeeRule {
            percent: Decimal::new(29, 1),
            fixed: 30,
        };
        // JPY (0 decimals): 2.9 % of 1234 JPY = 35.786 -> 36, plus 30 = 66 JPY.
        assert_eq!(rule.fee(1_234), 66);
        // KWD (3 decimals): 2.9 % of 12.345 KWD = 0.358005 -> 0.358, plus 0.030 = 0.388 KWD.
        assert_eq!(rule.fee(12_345), 388);
        // A refund of a third of a 1000 JPY order gives back 66 * 333 / 1000 = 21.978 -> 22.
        assert_eq!(pro_rata(66, 333, 1_000), 22);
        // Proration of a 9.999 KWD plan for 15 of 30 days: 4.9995 -> 5.000 (half away).
        assert_eq!(pro_rata(9_999, 15, 30), 5_000);
        let jpy = Currency::by_code("JPY").unwrap();
        let kwd = Currency::by_code("KWD").unwrap();
        assert_eq!(
            (jpy.format(66), kwd.format(388)),
            ("66".into(), "0.388".into())
        );
    }
}
