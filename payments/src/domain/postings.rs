//! The ledger postings of each payment object, per transition: `(object, transition) ->
//! transfers`. Pure: no store, no clock; the flows put what these return into the object's `Txn`.
//!
//! Every transfer's id is derived from the object's id and its [`Leg`], so a retried step sends
//! the same ids and the ledger applies it at most once. A leg's string is part of every transfer
//! id ever written: renaming one would make retries of old objects post twice (the test at the
//! bottom pins them).

use tally_client::{Account, Transfer, TransferBuilder, TransferFlags};

use crate::domain::chart::{self, code, transfer_code};
use crate::domain::model::ChargeKind;
use crate::domain::money::Currency;

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
}

impl Leg {
    pub const ALL: [Leg; 7] = [
        Leg::Hold,
        Leg::Post,
        Leg::Void,
        Leg::Fee,
        Leg::FeeReturn,
        Leg::FeeReverse,
        Leg::Settle,
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
    fn new(object: &str, leg: Leg, transfer: TransferBuilder) -> Posting {
        Posting {
            object: object.to_string(),
            leg,
            transfer: transfer.build(),
        }
    }
}

/// The wallet a charge pays into: a seller's for a payment order, the customer's own for a
/// deposit. `owner` is the number inside that seller's or customer's id.
pub fn charge_wallet(kind: ChargeKind, currency: Currency, owner: u64) -> Account {
    let wallet_code = match kind {
        ChargeKind::Order => code::SELLER_WALLET,
        ChargeKind::Deposit => code::CUSTOMER_WALLET,
    };
    chart::wallet(wallet_code, currency, owner)
}

/// A charge (payment order or deposit) opens: `psp_clearing -> wallet`, pending.
pub fn charge_opened(
    charge_id: &str,
    kind: ChargeKind,
    currency: Currency,
    owner: u64,
    amount: u64,
) -> Posting {
    let (wallet_code, transfer) = match kind {
        ChargeKind::Order => (code::SELLER_WALLET, transfer_code::PAYIN),
        ChargeKind::Deposit => (code::CUSTOMER_WALLET, transfer_code::DEPOSIT),
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
/// the seller (`seller_fee`: the number inside the seller id and the fee; nothing when it is 0).
pub fn charge_succeeded(
    charge_id: &str,
    currency: Currency,
    seller_fee: Option<(u64, u64)>,
) -> Vec<Posting> {
    let mut postings = vec![Posting::new(
        charge_id,
        Leg::Post,
        TransferBuilder::post(
            Leg::Post.transfer_id(charge_id),
            Leg::Hold.transfer_id(charge_id),
            None,
        ),
    )];
    if let Some((seller, fee)) = seller_fee.filter(|(_, fee)| *fee > 0) {
        postings.push(Posting::new(
            charge_id,
            Leg::Fee,
            TransferBuilder::new(
                Leg::Fee.transfer_id(charge_id),
                chart::account_id(code::SELLER_WALLET, currency, seller),
                chart::system_account(code::PLATFORM_REVENUE, currency),
                u128::from(fee),
                currency.ledger,
                transfer_code::FEE,
            ),
        ));
    }
    postings
}

/// A hold's object failed for good (declined charge, failed payout): void the hold.
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

/// A refund opens: the fee share goes back to the seller (posted, if any), then the refund is
/// held on the seller's wallet (`seller_wallet -> refunds_in_transit`, pending).
pub fn refund_opened(
    refund_id: &str,
    currency: Currency,
    seller: u64,
    amount: u64,
    fee_back: u64,
) -> Vec<Posting> {
    let seller_wallet = chart::account_id(code::SELLER_WALLET, currency, seller);
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

/// A refund failed: void the hold, and take back the fee share it returned (if any).
pub fn refund_failed(
    refund_id: &str,
    currency: Currency,
    seller: u64,
    fee_returned: u64,
) -> Vec<Posting> {
    let mut postings = vec![hold_voided(refund_id)];
    if fee_returned > 0 {
        postings.push(Posting::new(
            refund_id,
            Leg::FeeReverse,
            TransferBuilder::new(
                Leg::FeeReverse.transfer_id(refund_id),
                chart::account_id(code::SELLER_WALLET, currency, seller),
                chart::system_account(code::PLATFORM_REVENUE, currency),
                u128::from(fee_returned),
                currency.ledger,
                transfer_code::REFUND_FEE_RETURN,
            ),
        ));
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
mod tests {
    use super::*;

    /// Every leg's string and the id it derives for one object, pinned: these ids are in the
    /// ledger already, so a change here is a change to every retry of an existing object.
    #[test]
    fn leg_strings_and_transfer_ids_are_pinned() {
        let pinned: [(Leg, &str, u128); 7] = [
            (Leg::Hold, "hold", PINNED[0]),
            (Leg::Post, "post", PINNED[1]),
            (Leg::Void, "void", PINNED[2]),
            (Leg::Fee, "fee", PINNED[3]),
            (Leg::FeeReturn, "fee_return", PINNED[4]),
            (Leg::FeeReverse, "fee_reverse", PINNED[5]),
            (Leg::Settle, "settle", PINNED[6]),
        ];
        assert_eq!(pinned.map(|(leg, _, _)| leg), Leg::ALL);
        for (leg, name, id) in pinned {
            assert_eq!(leg.as_str(), name);
            assert_eq!(leg.transfer_id(OBJECT), chart::transfer_id(OBJECT, name));
            assert_eq!(
                leg.transfer_id(OBJECT),
                id,
                "{name}: {:#x}",
                leg.transfer_id(OBJECT)
            );
        }
    }

    const OBJECT: &str = "ord_00000000000000ff";
    const PINNED: [u128; 7] = [
        0xe1d06fc5_9aeb3487_e2f281b0_c39d154d,
        0xf6be538e_eec3daa7_a54115a2_cbee4afe,
        0x4dd3e963_b33266b8_6f28f96b_5fd7b73f,
        0xf72938af_d4882d70_74fff2b4_4cc20766,
        0x554d1a52_6e7b5898_06aa65ea_f2550ac9,
        0x5318817b_cf19730f_a6be86a5_002ebc59,
        0xa28ede9b_5a24cd70_9a4a93fb_cf42b05c,
    ];

    #[test]
    fn transitions_use_their_legs() {
        let usd = Currency::by_code("USD").unwrap();
        let legs = |postings: &[Posting]| postings.iter().map(|p| p.leg).collect::<Vec<_>>();
        assert_eq!(
            legs(&charge_succeeded("ord_1", usd, Some((7, 30)))),
            [Leg::Post, Leg::Fee]
        );
        assert_eq!(
            legs(&charge_succeeded("ord_1", usd, Some((7, 0)))),
            [Leg::Post]
        );
        assert_eq!(
            legs(&refund_opened("re_1", usd, 7, 100, 3)),
            [Leg::FeeReturn, Leg::Hold]
        );
        assert_eq!(legs(&refund_opened("re_1", usd, 7, 100, 0)), [Leg::Hold]);
        assert_eq!(
            legs(&refund_failed("re_1", usd, 7, 3)),
            [Leg::Void, Leg::FeeReverse]
        );
        assert_eq!(legs(&payout_paid("po_1", usd, 5)), [Leg::Post, Leg::Settle]);
        for posting in refund_succeeded("re_1", usd, 5) {
            assert_eq!(posting.transfer.id, posting.leg.transfer_id("re_1"));
        }
        let hold = charge_opened("dep_1", ChargeKind::Deposit, usd, 7, 5);
        assert_eq!(hold.transfer.code, transfer_code::DEPOSIT);
        assert_eq!(
            hold.transfer.credit_account_id,
            charge_wallet(ChargeKind::Deposit, usd, 7).id
        );
    }
}
