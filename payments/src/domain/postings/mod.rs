//! The ledger postings of each payment object, per transition: `(object, transition) ->
//! transfers`. Pure: no store, no clock; the flows put what these return into the object's `Txn`.
//!
//! Every transfer's id is derived from the object's id and its [`Leg`], so a retried step sends
//! the same ids and the ledger applies it at most once. A leg's string is part of every transfer
//! id ever written: renaming one would make retries of old objects post twice (the test at the
//! bottom pins them).

use tally_client::{Account, Transfer, TransferBuilder, TransferFlags};

use crate::domain::chart::{self, code, transfer_code};
use crate::domain::model::{ChargeKind, Escrow};
use crate::domain::money::Currency;

mod disputes;
pub use disputes::{dispute_lost, dispute_opened, dispute_won, recovery_repaid};
pub mod fx;

/// A transfer's role within its object's life. The string is hashed into the transfer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The pending transfer opened with the object (charge, refund, payout).
    Hold,
    /// Posts the hold when the PSP confirms.
    Post,
    /// Voids the hold when the PSP refuses.
    Void,
    /// A payment order's platform fee: seller wallet -> platform revenue.
    Fee,
    /// A refund's share of the platform fee, returned to the seller when the refund opens.
    FeeReturn,
    /// Takes the returned fee share back when the refund fails.
    FeeReverse,
    /// Moves a confirmed refund or payout on from "in transit" to `psp_clearing`.
    Settle,
    /// Moves an escrowed order's seller share from pending to the wallet (on the order), or the
    /// money a failed refund put back in pending after its order was released (on the refund).
    Release,
    /// A dispute's amount from the disputed order's pending share, the seller's wallet, or the
    /// platform's loss account, into `disputes_open` (`disputes.rs`).
    DisputePending,
    DisputeWallet,
    DisputeLoss,
    /// A dispute's fee, from the same sources, to the PSP (`psp_clearing`).
    DisputeFeePending,
    DisputeFeeWallet,
    DisputeFeeLoss,
    /// A won dispute's amount back to the loss account, and to the seller's wallet.
    DisputeReturnLoss,
    DisputeReturn,
    /// A lost dispute's amount to the PSP.
    DisputeLost,
    /// A pay-in's repayment of its seller's recovery (on the order).
    Recovery,
    /// A conversion's first half: the seller's money leaves its account in the currency
    /// converted from, into that ledger's FX position (`postings/fx.rs`).
    FxOut,
    /// A conversion's second half: the FX position of the currency converted to pays the
    /// converted amount into the seller's account in that currency.
    FxIn,
    /// Undoes `FxOut` when the refund that converted the money back fails.
    FxOutReverse,
    /// Undoes `FxIn` when the refund that converted the money back fails.
    FxInReverse,
}

impl Leg {
    pub const ALL: [Leg; 22] = [
        Leg::Hold,
        Leg::Post,
        Leg::Void,
        Leg::Fee,
        Leg::FeeReturn,
        Leg::FeeReverse,
        Leg::Settle,
        Leg::Release,
        Leg::DisputePending,
        Leg::DisputeWallet,
        Leg::DisputeLoss,
        Leg::DisputeFeePending,
        Leg::DisputeFeeWallet,
        Leg::DisputeFeeLoss,
        Leg::DisputeReturnLoss,
        Leg::DisputeReturn,
        Leg::DisputeLost,
        Leg::Recovery,
        Leg::FxOut,
        Leg::FxIn,
        Leg::FxOutReverse,
        Leg::FxInReverse,
    ];

    /// The leg's name as hashed into transfer ids. Never change one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Leg::Hold => "hold",
            Leg::Post => "post",
            Leg::Void => "void",
            Leg::Fee => "fee",
            Leg::FeeReturn => "fee_return",
            Leg::FeeReverse => "fee_reverse",
            Leg::Settle => "settle",
            Leg::Release => "release",
            Leg::DisputePending => "dispute_pending",
            Leg::DisputeWallet => "dispute_wallet",
            Leg::DisputeLoss => "dispute_loss",
            Leg::DisputeFeePending => "dispute_fee_pending",
            Leg::DisputeFeeWallet => "dispute_fee_wallet",
            Leg::DisputeFeeLoss => "dispute_fee_loss",
            Leg::DisputeReturnLoss => "dispute_return_loss",
            Leg::DisputeReturn => "dispute_return",
            Leg::DisputeLost => "dispute_lost",
            Leg::Recovery => "recovery",
            Leg::FxOut => "fx_out",
            Leg::FxIn => "fx_in",
            Leg::FxOutReverse => "fx_out_reverse",
            Leg::FxInReverse => "fx_in_reverse",
        }
    }

    /// The id of this leg's transfer for the object `object_id`.
    pub fn transfer_id(self, object_id: &str) -> u128 {
        chart::transfer_id(object_id, self.as_str())
    }
}

/// One transfer of an object, with the object's id and the leg it is (a `Txn` labels the
/// transfer with both, so a failure is read by leg, not by position).
#[derive(Debug, Clone, PartialEq)]
pub struct Posting {
    pub object: String,
    pub leg: Leg,
    pub transfer: Transfer,
}

impl Posting {
    pub(crate) fn new(object: &str, leg: Leg, transfer: TransferBuilder) -> Posting {
        Posting {
            object: object.to_string(),
            leg,
            transfer: transfer.build(),
        }
    }
}

/// The account code a charge pays into: a seller's pending balance for a payment order held in
/// escrow, the seller's wallet for one that is not, the customer's own wallet for a deposit.
pub fn charge_account_code(kind: ChargeKind, escrow: Escrow) -> u16 {
    match (kind, escrow) {
        (ChargeKind::Order, Escrow::NotHeld) => code::SELLER_WALLET,
        // A released order's money came in through pending too.
        (ChargeKind::Order, Escrow::Held | Escrow::Released) => code::SELLER_PENDING,
        (ChargeKind::Deposit, _) => code::CUSTOMER_WALLET,
    }
}

/// The account a charge pays into ([`charge_account_code`]). `owner` is the number inside that
/// seller's or customer's id.
pub fn charge_wallet(kind: ChargeKind, escrow: Escrow, currency: Currency, owner: u64) -> Account {
    chart::wallet(charge_account_code(kind, escrow), currency, owner)
}

/// A charge (payment order or deposit) opens: `psp_clearing -> wallet` (or the seller's
/// pending balance, for an order held in escrow), pending.
pub fn charge_opened(
    charge_id: &str,
    (kind, escrow): (ChargeKind, Escrow),
    currency: Currency,
    owner: u64,
    amount: u64,
) -> Posting {
    let wallet_code = charge_account_code(kind, escrow);
    let transfer = match kind {
        ChargeKind::Order => transfer_code::PAYIN,
        ChargeKind::Deposit => transfer_code::DEPOSIT,
    };
    Posting::new(
        charge_id,
        Leg::Hold,
        TransferBuilder::new(
            Leg::Hold.transfer_id(charge_id),
            chart::system_account(code::PSP_CLEARING, currency),
            chart::account_id(wallet_code, currency, owner),
            u128::from(amount),
            currency.ledger,
            transfer,
        )
        .flags(TransferFlags::PENDING),
    )
}

/// The PSP captured a charge: post the hold, and for a payment order take the platform fee from
/// the seller (`seller_fee`: the number inside the seller id and the fee; nothing when it is 0),
/// out of the account the hold credited: pending for an order held in escrow (the fee is the
/// platform's at capture, whether or not the order is released later).
pub fn charge_succeeded(
    charge_id: &str,
    currency: Currency,
    seller_fee: Option<(u64, u64)>,
    escrow: Escrow,
) -> Vec<Posting> {
    posted_with_fee(charge_id, currency, seller_fee, escrow, None)
}

/// A manual capture of `captured` (at most the authorized amount) of an authorized charge:
/// post the hold for that amount (the ledger releases the rest of it) and take the platform
/// fee, computed on the captured amount, as [`charge_succeeded`] does.
pub fn charge_captured(
    charge_id: &str,
    currency: Currency,
    seller_fee: Option<(u64, u64)>,
    escrow: Escrow,
    captured: u64,
) -> Vec<Posting> {
    debug_assert!(captured > 0);
    debug_assert!(seller_fee.is_none_or(|(_, fee)| fee <= captured));
    posted_with_fee(charge_id, currency, seller_fee, escrow, Some(captured))
}

/// Posts a charge's hold (`amount`: part of it; `None`: all) and takes the platform fee.
fn posted_with_fee(
    charge_id: &str,
    currency: Currency,
    seller_fee: Option<(u64, u64)>,
    escrow: Escrow,
    amount: Option<u64>,
) -> Vec<Posting> {
    let mut postings = vec![Posting::new(
        charge_id,
        Leg::Post,
        TransferBuilder::post(
            Leg::Post.transfer_id(charge_id),
            Leg::Hold.transfer_id(charge_id),
            amount.map(u128::from),
        ),
    )];
    if let Some((seller, fee)) = seller_fee.filter(|(_, fee)| *fee > 0) {
        postings.push(Posting::new(
            charge_id,
            Leg::Fee,
            TransferBuilder::new(
                Leg::Fee.transfer_id(charge_id),
                chart::account_id(
                    charge_account_code(ChargeKind::Order, escrow),
                    currency,
                    seller,
                ),
                chart::system_account(code::PLATFORM_REVENUE, currency),
                u128::from(fee),
                currency.ledger,
                transfer_code::FEE,
            ),
        ));
    }
    postings
}

/// A hold's object failed for good (declined charge, failed payout), or an authorization was
/// canceled before its capture: void the hold.
pub fn hold_voided(object_id: &str) -> Posting {
    Posting::new(
        object_id,
        Leg::Void,
        TransferBuilder::void(
            Leg::Void.transfer_id(object_id),
            Leg::Hold.transfer_id(object_id),
        ),
    )
}

/// An escrowed order is released: its seller share moves from pending to the wallet, where
/// payouts can draw on it. Nothing when the share is 0 (refunded in full before release).
pub fn order_released(
    order_id: &str,
    currency: Currency,
    seller: u64,
    share: u64,
) -> Option<Posting> {
    (share > 0).then(|| release(order_id, currency, seller, share))
}

fn release(object_id: &str, currency: Currency, seller: u64, amount: u64) -> Posting {
    Posting::new(
        object_id,
        Leg::Release,
        TransferBuilder::new(
            Leg::Release.transfer_id(object_id),
            chart::account_id(code::SELLER_PENDING, currency, seller),
            chart::account_id(code::SELLER_WALLET, currency, seller),
            u128::from(amount),
            currency.ledger,
            transfer_code::RELEASE,
        ),
    )
}

/// Which of the seller's balances a refund draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundFrom {
    /// The wallet (available): the order was not held in escrow, or was released.
    Wallet,
    /// The pending balance: the order was held; `order_released` says whether it has been
    /// released since (so what a failed refund puts back in pending belongs in the wallet).
    Pending { order_released: bool },
}

impl RefundFrom {
    pub fn account_code(self) -> u16 {
        match self {
            RefundFrom::Wallet => code::SELLER_WALLET,
            RefundFrom::Pending { .. } => code::SELLER_PENDING,
        }
    }
}

/// A refund opens: the fee share goes back to the seller (posted, if any), then the refund is
/// held on the seller's wallet, or pending balance before release (`-> refunds_in_transit`,
/// pending).
pub fn refund_opened(
    refund_id: &str,
    currency: Currency,
    (seller, from): (u64, RefundFrom),
    amount: u64,
    fee_back: u64,
) -> Vec<Posting> {
    let seller_wallet = chart::account_id(from.account_code(), currency, seller);
    let mut postings = Vec::with_capacity(2);
    if fee_back > 0 {
        postings.push(Posting::new(
            refund_id,
            Leg::FeeReturn,
            TransferBuilder::new(
                Leg::FeeReturn.transfer_id(refund_id),
                chart::system_account(code::PLATFORM_REVENUE, currency),
                seller_wallet,
                u128::from(fee_back),
                currency.ledger,
                transfer_code::REFUND_FEE_RETURN,
            ),
        ));
    }
    postings.push(Posting::new(
        refund_id,
        Leg::Hold,
        TransferBuilder::new(
            Leg::Hold.transfer_id(refund_id),
            seller_wallet,
            chart::system_account(code::REFUNDS_IN_TRANSIT, currency),
            u128::from(amount),
            currency.ledger,
            transfer_code::REFUND,
        )
        .flags(TransferFlags::PENDING),
    ));
    postings
}

/// The PSP paid a refund: post the hold, then `refunds_in_transit -> psp_clearing`.
pub fn refund_succeeded(refund_id: &str, currency: Currency, amount: u64) -> Vec<Posting> {
    vec![
        Posting::new(
            refund_id,
            Leg::Post,
            TransferBuilder::post(
                Leg::Post.transfer_id(refund_id),
                Leg::Hold.transfer_id(refund_id),
                None,
            ),
        ),
        Posting::new(
            refund_id,
            Leg::Settle,
            TransferBuilder::new(
                Leg::Settle.transfer_id(refund_id),
                chart::system_account(code::REFUNDS_IN_TRANSIT, currency),
                chart::system_account(code::PSP_CLEARING, currency),
                u128::from(amount),
                currency.ledger,
                transfer_code::REFUND_SETTLE,
            ),
        ),
    ]
}

/// A refund failed: void the hold, and take back the fee share it returned (if any). A refund
/// drawn on pending whose order was released meanwhile then moves what it put back in pending
/// (`amount - fee_returned`) on to the wallet, as the release would have.
pub fn refund_failed(
    refund_id: &str,
    currency: Currency,
    (seller, from): (u64, RefundFrom),
    amount: u64,
    fee_returned: u64,
) -> Vec<Posting> {
    let mut postings = vec![hold_voided(refund_id)];
    if fee_returned > 0 {
        postings.push(Posting::new(
            refund_id,
            Leg::FeeReverse,
            TransferBuilder::new(
                Leg::FeeReverse.transfer_id(refund_id),
                chart::account_id(from.account_code(), currency, seller),
                chart::system_account(code::PLATFORM_REVENUE, currency),
                u128::from(fee_returned),
                currency.ledger,
                transfer_code::REFUND_FEE_RETURN,
            ),
        ));
    }
    let back = amount.saturating_sub(fee_returned);
    if from
        == (RefundFrom::Pending {
            order_released: true,
        })
        && back > 0
    {
        postings.push(release(refund_id, currency, seller, back));
    }
    postings
}

/// A payout opens: `seller_wallet -> payouts_in_transit`, pending (the wallet cannot go below
/// zero, so this is where an overdraft is refused).
pub fn payout_opened(payout_id: &str, currency: Currency, seller: u64, amount: u64) -> Posting {
    Posting::new(
        payout_id,
        Leg::Hold,
        TransferBuilder::new(
            Leg::Hold.transfer_id(payout_id),
            chart::account_id(code::SELLER_WALLET, currency, seller),
            chart::system_account(code::PAYOUTS_IN_TRANSIT, currency),
            u128::from(amount),
            currency.ledger,
            transfer_code::PAYOUT,
        )
        .flags(TransferFlags::PENDING),
    )
}

/// The PSP paid a payout out: post the hold, then `payouts_in_transit -> psp_clearing`.
pub fn payout_paid(payout_id: &str, currency: Currency, amount: u64) -> Vec<Posting> {
    vec![
        Posting::new(
            payout_id,
            Leg::Post,
            TransferBuilder::post(
                Leg::Post.transfer_id(payout_id),
                Leg::Hold.transfer_id(payout_id),
                None,
            ),
        ),
        Posting::new(
            payout_id,
            Leg::Settle,
            TransferBuilder::new(
                Leg::Settle.transfer_id(payout_id),
                chart::system_account(code::PAYOUTS_IN_TRANSIT, currency),
                chart::system_account(code::PSP_CLEARING, currency),
                u128::from(amount),
                currency.ledger,
                transfer_code::PAYOUT_SETTLE,
            ),
        ),
    ]
}

#[cfg(test)]
mod tests;
