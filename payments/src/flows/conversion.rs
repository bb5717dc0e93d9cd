//! Payment orders paid out in the seller's payout currency: the rate is read from the
//! configured [`RateSource`](super::fx::RateSource) when the order is captured, fixed on the
//! order (`Order::fx`) in the capture's own `Txn` with the conversion's postings, and used, never
//! read again, for the order's release and refunds (`domain/conversion.rs` has the arithmetic,
//! `domain/postings/fx.rs` the transfers).

use super::Pay;
use crate::domain::chart;
use crate::domain::conversion::{self, OrderFx};
use crate::domain::fx::FxRate;
use crate::domain::ids::SellerId;
use crate::domain::model::{ns, ChargeKind, Escrow, Order, Refund};
use crate::domain::money::Currency;
use crate::domain::postings::fx::{conversion_reversed, converted, Conversion, Side};
use crate::domain::postings::{self, Posting, RefundFrom};
use crate::edges::store::Txn;
use crate::error::PayError;

/// The rate read for a capture, and the name of the source that quoted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedRate {
    pub rate: FxRate,
    pub source: &'static str,
}

/// The currency `order`'s share is paid out in when it is not the order's own.
pub(crate) fn payout_currency(order: &Order) -> Option<Currency> {
    order
        .payout_currency
        .as_deref()
        .filter(|c| *c != order.currency)
        .and_then(Currency::by_code)
}

impl Pay {
    /// The rate to fix if order `id` is captured now: `None` when its seller is paid in the
    /// order's own currency, or it is settled already. A rate the source cannot give is an
    /// error: the capture is not recorded and is tried again (the worker, the webhook, or the
    /// caller of the capture).
    pub(crate) async fn capture_rate(&self, id: &str) -> Result<Option<FixedRate>, PayError> {
        let Some(order) = self.store.get::<Order>(ns::ORDER, id).await? else {
            return Ok(None);
        };
        let order = order.value;
        let (Some(quote), Some(base)) =
            (payout_currency(&order), Currency::by_code(&order.currency))
        else {
            return Ok(None);
        };
        if order.status.is_terminal() || order.fx.is_some() {
            return Ok(None);
        }
        let rate = self.rates.rate(base, quote).await?;
        Ok(Some(FixedRate {
            rate,
            source: self.rates.name(),
        }))
    }

    /// Each seller's payout currency for a new checkout in `currency` (`None`: the checkout's
    /// own), checked now: the rate source must quote the pair, and each order's amount must
    /// convert within the largest amount, or the checkout is refused before anything is made.
    pub(crate) async fn payout_currencies(
        &self,
        sellers: &[SellerId],
        currency: Currency,
        amounts: &[u64],
    ) -> Result<Vec<Option<String>>, PayError> {
        let mut currencies = Vec::with_capacity(sellers.len());
        for (seller_id, amount) in sellers.iter().zip(amounts) {
            let seller = self.seller(seller_id).await?;
            let quote = seller
                .payout_currency
                .as_deref()
                .filter(|c| *c != currency.code)
                .and_then(Currency::by_code);
            if let Some(quote) = quote {
                let rate = self.rates.rate(currency, quote).await?;
                rate.convert(*amount)
                    .map_err(|e| PayError::unprocessable("fx_amount_too_large", e.to_string()))?;
            }
            currencies.push(quote.map(|q| q.code.to_string()));
        }
        Ok(currencies)
    }
}

/// Adds the conversion of a captured order's share into its seller's payout currency to the
/// capture's `Txn`: the conversion fixed on `next` (amount and fee final), the FX positions and
/// the seller's account in that currency, and the two transfers after the capture's own. An
/// order paid in its own currency is left as it is. `None` when it cannot be converted (no rate
/// was read for it, or the result is too large): the capture is not recorded, and is tried
/// again.
pub(crate) fn converted_at_capture(
    next: &mut Order,
    txn: Txn,
    rate: Option<&FixedRate>,
) -> Option<Txn> {
    let Some(quote) = payout_currency(next) else {
        return Some(txn);
    };
    let seller = next.seller_id.as_ref()?.number();
    let Some(rate) = rate.filter(|r| r.rate.quote == quote && r.rate.base.code == next.currency)
    else {
        tracing::warn!(order = %next.id, "captured without a rate read; tried again later");
        return None;
    };
    let fx = OrderFx::fixed(next, &rate.rate, rate.source, next.updated_at)
        .map_err(|error| tracing::error!(order = %next.id, %error, "conversion refused"))
        .ok()?;
    let base = rate.rate.base;
    let account_code = postings::charge_account_code(ChargeKind::Order, next.escrow);
    let conversion = Conversion {
        pair: (base, quote),
        seller,
        from: Side {
            currency: base,
            account_code,
            amount: fx.share,
        },
        to: Side {
            currency: quote,
            account_code,
            amount: fx.share_converted,
        },
    };
    next.fx = Some(fx);
    Some(
        txn.account(chart::fx_position(base, base, quote))
            .account(chart::fx_position(quote, base, quote))
            .account(chart::wallet(account_code, quote, seller))
            .postings(converted(&next.id, &conversion)),
    )
}

/// What a release of `order` moves from pending to the wallet: `share` in the order's
/// currency, or, for an order converted at capture, what the seller still holds of the
/// converted share, in the payout currency.
pub(crate) fn released_share(order: &Order, currency: Currency, share: u64) -> (Currency, u64) {
    match order.fx.as_ref() {
        Some(fx) => fx
            .quote_currency()
            .map_or((currency, share), |quote| (quote, fx.unreturned())),
        None => (currency, share),
    }
}

/// A refund of an order converted at capture: the seller's money in the payout currency goes
/// back into the order's currency first, at the rate fixed at capture (the refund's
/// `amount - fee_back`, converted cumulatively: `domain/conversion.rs`), on the balance the
/// refund draws on. `None` for an order paid in its own currency.
pub(crate) fn refund_conversion(
    order: &Order,
    seller: u64,
    from: RefundFrom,
    (amount, fee_back): (u64, u64),
) -> Result<Option<Conversion>, PayError> {
    let Some(fx) = order.fx.as_ref() else {
        return Ok(None);
    };
    let rate = fx
        .rate()
        .ok_or_else(|| PayError::Internal(format!("order {} has a bad stored rate", order.id)))?;
    let net = amount.saturating_sub(fee_back);
    let taken = conversion::refund_converted(order, fx, net)
        .map_err(|e| PayError::Internal(format!("converting a refund of {}: {e}", order.id)))?;
    Ok(Some(refund_legs(
        rate,
        seller,
        from.account_code(),
        (taken, net),
    )))
}

fn refund_legs(rate: FxRate, seller: u64, code: u16, (taken, net): (u64, u64)) -> Conversion {
    Conversion {
        pair: (rate.base, rate.quote),
        seller,
        from: Side {
            currency: rate.quote,
            account_code: code,
            amount: taken,
        },
        to: Side {
            currency: rate.base,
            account_code: code,
            amount: net,
        },
    }
}

/// The postings of a failed refund: the hold voided, the fee share taken back, and for an
/// order converted at capture the conversion undone (and `order`'s converted total lowered).
/// A refund drawn on pending whose order was released meanwhile puts its money on the wallet:
/// in the order's currency, or, converted, in the payout currency.
pub(crate) fn refund_failed(
    refund: &Refund,
    order: &mut Order,
    currency: Currency,
) -> Vec<Posting> {
    let from = if refund.from_pending {
        RefundFrom::Pending {
            order_released: order.escrow == Escrow::Released,
        }
    } else {
        RefundFrom::Wallet
    };
    let undone = refund_conversion_undone(refund, order, from);
    // Converted: the order's currency stays on the balance it was drawn on until undone.
    let order_side = match (from, undone.is_empty()) {
        (RefundFrom::Pending { .. }, false) => RefundFrom::Pending {
            order_released: false,
        },
        _ => from,
    };
    if let (Some(fx), Some(taken)) = (order.fx.as_mut(), refund.converted) {
        fx.returned_converted = fx.returned_converted.saturating_sub(taken);
    }
    let mut postings = postings::refund_failed(
        &refund.id,
        currency,
        (refund.seller_id.number(), order_side),
        refund.amount,
        refund.fee_returned,
    );
    postings.extend(undone);
    postings
}

/// A failed refund of an order converted at capture: its conversion undone, the payout-currency
/// money back on the balance it came from, or on the wallet when it came from pending and the
/// order has been released since. Nothing for a refund without a conversion.
fn refund_conversion_undone(refund: &Refund, order: &Order, from: RefundFrom) -> Vec<Posting> {
    let (Some(taken), Some(rate)) = (refund.converted, order.fx.as_ref().and_then(OrderFx::rate))
    else {
        return Vec::new();
    };
    let net = refund.amount.saturating_sub(refund.fee_returned);
    let legs = refund_legs(
        rate,
        refund.seller_id.number(),
        from.account_code(),
        (taken, net),
    );
    let back_code = match from {
        RefundFrom::Pending {
            order_released: true,
        } => RefundFrom::Wallet.account_code(),
        other => other.account_code(),
    };
    conversion_reversed(&refund.id, &legs, back_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chart::code;
    use crate::domain::escrow::tests::held_order;
    use crate::domain::model::RefundStatus;
    use crate::domain::postings::Leg;

    fn currency(code: &str) -> Currency {
        Currency::by_code(code).unwrap()
    }

    fn eur_gbp() -> FixedRate {
        FixedRate {
            rate: FxRate::new(currency("EUR"), currency("GBP"), "0.856".parse().unwrap()).unwrap(),
            source: "table",
        }
    }

    /// A held EUR order of 100.00 with a 2.80 fee, for a seller paid in GBP, just captured.
    fn gbp_order() -> Order {
        let mut order = held_order();
        order.currency = "EUR".into();
        (order.refunded, order.refund_pending) = (0, 0);
        (order.fee_refunded, order.fee_refund_pending) = (0, 0);
        order.payout_currency = Some("GBP".into());
        order
    }

    #[test]
    fn a_capture_fixes_the_rate_it_read_or_waits_for_one() {
        let mut order = gbp_order();
        assert!(converted_at_capture(&mut order, Txn::new(), None).is_none());
        assert_eq!(order.fx, None);
        assert!(converted_at_capture(&mut order, Txn::new(), Some(&eur_gbp())).is_some());
        let fx = order.fx.clone().unwrap();
        assert_eq!(
            (fx.share, fx.share_converted, fx.source.as_str()),
            (9_720, 8_320, "table")
        );
        assert_eq!(
            released_share(&order, currency("EUR"), 9_720),
            (currency("GBP"), 8_320)
        );
        let mut plain = held_order();
        assert!(converted_at_capture(&mut plain, Txn::new(), Some(&eur_gbp())).is_some());
        assert_eq!(plain.fx, None, "paid in its own currency");
        plain.payout_currency = Some(plain.currency.clone());
        assert_eq!(payout_currency(&plain), None);
    }

    #[test]
    fn a_failed_refund_undoes_its_conversion_onto_the_wallet_once_released() {
        let mut order = gbp_order();
        converted_at_capture(&mut order, Txn::new(), Some(&eur_gbp())).unwrap();
        let from = RefundFrom::Pending {
            order_released: false,
        };
        let conversion = refund_conversion(&order, 255, from, (1_000, 28))
            .unwrap()
            .unwrap();
        assert_eq!((conversion.from.amount, conversion.to.amount), (832, 972));
        assert_eq!(conversion.from.account_code, code::SELLER_PENDING);
        order.refund_pending = 1_000;
        order.fee_refund_pending = 28;
        order.fx.as_mut().unwrap().returned_converted = 832;
        order.escrow = Escrow::Released;
        let refund = Refund {
            id: "re_00000000000000ff".parse().unwrap(),
            order_id: "ord_00000000000000ff".parse().unwrap(),
            seller_id: "sel_00000000000000ff".parse().unwrap(),
            amount: 1_000,
            currency: "EUR".into(),
            fee_returned: 28,
            from_pending: true,
            converted: Some(832),
            reason: None,
            status: RefundStatus::Pending,
            failure: None,
            psp_id: None,
            attempts: 0,
            next_attempt_at: 0,
            created_at: 0,
            updated_at: 0,
        };
        let postings = refund_failed(&refund, &mut order, currency("EUR"));
        let legs: Vec<Leg> = postings.iter().map(|p| p.leg).collect();
        assert_eq!(
            legs,
            [
                Leg::Void,
                Leg::FeeReverse,
                Leg::FxInReverse,
                Leg::FxOutReverse
            ],
            "no release in the charge currency"
        );
        let back = &postings[3].transfer;
        let gbp_wallet = chart::account_id(code::SELLER_WALLET, currency("GBP"), 255);
        assert_eq!((back.credit_account_id, back.amount), (gbp_wallet, 832));
        assert_eq!(order.fx.unwrap().returned_converted, 0);
    }
}
