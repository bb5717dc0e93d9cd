//! The postings of a dispute: opened (amount into `disputes_open`, fee to the PSP, each from
//! the order's pending share, the seller's wallet and the platform's loss account, as
//! [`Taken`] says), won (the amount back), lost (the amount to the PSP), and a later pay-in's
//! repayment of the seller's recovery.

use tally_client::TransferBuilder;

use super::{Leg, Posting};
use crate::domain::chart::{self, code, transfer_code};
use crate::domain::disputes::{Returned, Taken};
use crate::domain::money::Currency;

/// One plain transfer of `amount`, nothing when it is 0.
fn moved(
    object: &str,
    leg: Leg,
    (debit, credit): (u128, u128),
    amount: u64,
    (currency, kind): (Currency, u16),
) -> Option<Posting> {
    (amount > 0).then(|| {
        Posting::new(
            object,
            leg,
            TransferBuilder::new(
                leg.transfer_id(object),
                debit,
                credit,
                u128::from(amount),
                currency.ledger,
                kind,
            ),
        )
    })
}

/// A dispute opens: its amount into `disputes_open`, its fee to `psp_clearing`, each from the
/// seller's pending balance, wallet and the loss account as `taken` says.
pub fn dispute_opened(
    dispute_id: &str,
    currency: Currency,
    seller: u64,
    taken: &Taken,
) -> Vec<Posting> {
    let pending = chart::account_id(code::SELLER_PENDING, currency, seller);
    let wallet = chart::account_id(code::SELLER_WALLET, currency, seller);
    let loss = chart::account_id(code::DISPUTE_LOSS, currency, seller);
    let open = chart::system_account(code::DISPUTES_OPEN, currency);
    let psp = chart::system_account(code::PSP_CLEARING, currency);
    let amount = (currency, transfer_code::DISPUTE);
    let fee = (currency, transfer_code::DISPUTE_FEE);
    [
        (
            Leg::DisputePending,
            pending,
            open,
            taken.amount.pending,
            amount,
        ),
        (
            Leg::DisputeWallet,
            wallet,
            open,
            taken.amount.wallet,
            amount,
        ),
        (Leg::DisputeLoss, loss, open, taken.amount.loss, amount),
        (Leg::DisputeFeePending, pending, psp, taken.fee.pending, fee),
        (Leg::DisputeFeeWallet, wallet, psp, taken.fee.wallet, fee),
        (Leg::DisputeFeeLoss, loss, psp, taken.fee.loss, fee),
    ]
    .into_iter()
    .filter_map(|(leg, debit, credit, value, kind)| {
        moved(dispute_id, leg, (debit, credit), value, kind)
    })
    .collect()
}

/// A dispute was won: its amount leaves `disputes_open`, to the loss account and the seller's
/// wallet as `returned` says.
pub fn dispute_won(
    dispute_id: &str,
    currency: Currency,
    seller: u64,
    returned: &Returned,
) -> Vec<Posting> {
    let open = chart::system_account(code::DISPUTES_OPEN, currency);
    let loss = chart::account_id(code::DISPUTE_LOSS, currency, seller);
    let wallet = chart::account_id(code::SELLER_WALLET, currency, seller);
    let kind = (currency, transfer_code::DISPUTE_RETURN);
    [
        moved(
            dispute_id,
            Leg::DisputeReturnLoss,
            (open, loss),
            returned.loss,
            kind,
        ),
        moved(
            dispute_id,
            Leg::DisputeReturn,
            (open, wallet),
            returned.wallet,
            kind,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A dispute was lost: the PSP keeps the amount, `disputes_open -> psp_clearing`.
pub fn dispute_lost(dispute_id: &str, currency: Currency, amount: u64) -> Option<Posting> {
    moved(
        dispute_id,
        Leg::DisputeLost,
        (
            chart::system_account(code::DISPUTES_OPEN, currency),
            chart::system_account(code::PSP_CLEARING, currency),
        ),
        amount,
        (currency, transfer_code::DISPUTE_LOST),
    )
}

/// A captured order repays its seller's recovery: `amount` from the account the capture paid
/// into (`from_code`: pending or wallet) to the platform's loss account.
pub fn recovery_repaid(
    order_id: &str,
    currency: Currency,
    (seller, from_code): (u64, u16),
    amount: u64,
) -> Option<Posting> {
    moved(
        order_id,
        Leg::Recovery,
        (
            chart::account_id(from_code, currency, seller),
            chart::account_id(code::DISPUTE_LOSS, currency, seller),
        ),
        amount,
        (currency, transfer_code::RECOVERY),
    )
}
