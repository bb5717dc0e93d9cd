//! The postings of a currency conversion of a seller's money: out of the seller's account in one
//! currency into that ledger's FX position for the order's pair, and out of the other ledger's
//! FX position into the seller's account in the other currency. Each transfer stays inside one
//! ledger, so every currency's ledger balances on its own; the two FX positions together hold
//! the platform's exposure in the pair.

use tally_client::TransferBuilder;

use super::{Leg, Posting};
use crate::domain::chart::{self, transfer_code};
use crate::domain::money::Currency;

/// One side of a conversion: a seller's account (its code) in a currency, and the amount in that
/// currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub currency: Currency,
    pub account_code: u16,
    pub amount: u64,
}

/// `from.amount` of the seller's money in `from.currency` becomes `to.amount` in `to.currency`,
/// through the FX positions of `pair` (the order's charge currency and payout currency, in that
/// order, whichever way the money goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    pub pair: (Currency, Currency),
    /// The number inside the seller's id.
    pub seller: u64,
    pub from: Side,
    pub to: Side,
}

impl Conversion {
    fn position(&self, currency: Currency) -> u128 {
        chart::fx_position_id(currency, self.pair.0, self.pair.1)
    }

    fn seller_account(&self, side: &Side) -> u128 {
        chart::account_id(side.account_code, side.currency, self.seller)
    }
}

fn transfer(object_id: &str, leg: Leg, (debit, credit): (u128, u128), side: &Side) -> Posting {
    Posting::new(
        object_id,
        leg,
        TransferBuilder::new(
            leg.transfer_id(object_id),
            debit,
            credit,
            u128::from(side.amount),
            side.currency.ledger,
            transfer_code::FX,
        ),
    )
}

/// The conversion's two transfers (`fx_out`, `fx_in`); a side of 0 has none.
pub fn converted(object_id: &str, conversion: &Conversion) -> Vec<Posting> {
    debug_assert!(conversion.from.currency != conversion.to.currency);
    let (from, to) = (&conversion.from, &conversion.to);
    let out = (
        conversion.seller_account(from),
        conversion.position(from.currency),
    );
    let into = (
        conversion.position(to.currency),
        conversion.seller_account(to),
    );
    [(Leg::FxOut, out, from), (Leg::FxIn, into, to)]
        .into_iter()
        .filter(|(_, _, side)| side.amount > 0)
        .map(|(leg, accounts, side)| transfer(object_id, leg, accounts, side))
        .collect()
}

/// Undoes a conversion (`fx_in_reverse`, `fx_out_reverse`): the converted money goes back into
/// the FX position, and the original amount back to the seller, into the account coded
/// `back_code` in the currency it came from (its own account, or the wallet when the order it
/// belonged to has been released since).
pub fn conversion_reversed(
    object_id: &str,
    conversion: &Conversion,
    back_code: u16,
) -> Vec<Posting> {
    let (from, to) = (&conversion.from, &conversion.to);
    let back = Side {
        account_code: back_code,
        ..*from
    };
    let undo_in = (
        conversion.seller_account(to),
        conversion.position(to.currency),
    );
    let undo_out = (
        conversion.position(from.currency),
        conversion.seller_account(&back),
    );
    [
        (Leg::FxInReverse, undo_in, to),
        (Leg::FxOutReverse, undo_out, &back),
    ]
    .into_iter()
    .filter(|(_, _, side)| side.amount > 0)
    .map(|(leg, accounts, side)| transfer(object_id, leg, accounts, side))
    .collect()
}
