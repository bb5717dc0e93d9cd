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
}

impl Leg {
    pub const ALL: [Leg; 8] = [
        Leg::Hold,
        Leg::Post,
        Leg::Void,
        Leg::Fee,
        Leg::FeeReturn,
        Leg::FeeReverse,
        Leg::Settle,
        Leg::Release,
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
    fn account_code(self) -> u16 {
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
mod tests {
    use super::*;

    /// Every leg's string and the id it derives for one object, pinned: these ids are in the
    /// ledger already, so a change here is a change to every retry of an existing object.
    #[test]
    fn leg_strings_and_transfer_ids_are_pinned() {
        let pinned: [(Leg, &str, u128); 8] = [
            (Leg::Hold, "hold", PINNED[0]),
            (Leg::Post, "post", PINNED[1]),
            (Leg::Void, "void", PINNED[2]),
            (Leg::Fee, "fee", PINNED[3]),
            (Leg::FeeReturn, "fee_return", PINNED[4]),
            (Leg::FeeReverse, "fee_reverse", PINNED[5]),
            (Leg::Settle, "settle", PINNED[6]),
            (Leg::Release, "release", PINNED[7]),
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
    const PINNED: [u128; 8] = [
        0xe1d06fc5_9aeb3487_e2f281b0_c39d154d,
        0xf6be538e_eec3daa7_a54115a2_cbee4afe,
        0x4dd3e963_b33266b8_6f28f96b_5fd7b73f,
        0xf72938af_d4882d70_74fff2b4_4cc20766,
        0x554d1a52_6e7b5898_06aa65ea_f2550ac9,
        0x5318817b_cf19730f_a6be86a5_002ebc59,
        0xa28ede9b_5a24cd70_9a4a93fb_cf42b05c,
        0x6f1a672e_240bcd37_fce2f280_c49d6c9d,
    ];

    #[test]
    fn transitions_use_their_legs() {
        let usd = Currency::by_code("USD").unwrap();
        let legs = |postings: &[Posting]| postings.iter().map(|p| p.leg).collect::<Vec<_>>();
        let wallet = (7, RefundFrom::Wallet);
        assert_eq!(
            legs(&charge_succeeded(
                "ord_1",
                usd,
                Some((7, 30)),
                Escrow::NotHeld
            )),
            [Leg::Post, Leg::Fee]
        );
        assert_eq!(
            legs(&charge_succeeded("ord_1", usd, Some((7, 0)), Escrow::Held)),
            [Leg::Post]
        );
        assert_eq!(
            legs(&refund_opened("re_1", usd, wallet, 100, 3)),
            [Leg::FeeReturn, Leg::Hold]
        );
        assert_eq!(
            legs(&refund_opened("re_1", usd, wallet, 100, 0)),
            [Leg::Hold]
        );
        assert_eq!(
            legs(&refund_failed("re_1", usd, wallet, 100, 3)),
            [Leg::Void, Leg::FeeReverse]
        );
        let released = (
            7,
            RefundFrom::Pending {
                order_released: true,
            },
        );
        assert_eq!(
            legs(&refund_failed("re_1", usd, released, 100, 3)),
            [Leg::Void, Leg::FeeReverse, Leg::Release]
        );
        assert_eq!(order_released("ord_1", usd, 7, 0), None);
        assert_eq!(legs(&payout_paid("po_1", usd, 5)), [Leg::Post, Leg::Settle]);
        for posting in refund_succeeded("re_1", usd, 5) {
            assert_eq!(posting.transfer.id, posting.leg.transfer_id("re_1"));
        }
        let hold = charge_opened("dep_1", (ChargeKind::Deposit, Escrow::NotHeld), usd, 7, 5);
        assert_eq!(hold.transfer.code, transfer_code::DEPOSIT);
        assert_eq!(
            hold.transfer.credit_account_id,
            charge_wallet(ChargeKind::Deposit, Escrow::NotHeld, usd, 7).id
        );
    }

    /// A naive ledger of posted and pending balances per account, enough to follow postings.
    #[derive(Default)]
    struct Books {
        /// Account -> (credits - debits) posted.
        posted: std::collections::BTreeMap<u128, i128>,
        /// Account -> debits held by pending transfers.
        held: std::collections::BTreeMap<u128, i128>,
        pending: std::collections::BTreeMap<u128, Transfer>,
    }

    impl Books {
        fn apply(&mut self, postings: impl IntoIterator<Item = Posting>) {
            for Posting { transfer: t, .. } in postings {
                let flags = t.flags;
                if flags.contains(TransferFlags::PENDING) {
                    *self.held.entry(t.debit_account_id).or_default() += t.amount as i128;
                    self.pending.insert(t.id, t);
                } else if flags.contains(TransferFlags::POST_PENDING_TRANSFER)
                    || flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
                {
                    let mut p = self.pending.remove(&t.pending_id).expect("a pending hold");
                    *self.held.entry(p.debit_account_id).or_default() -= p.amount as i128;
                    if flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
                        // Posting less than the hold releases the rest, as the ledger does.
                        p.amount = p.amount.min(t.amount);
                        self.post(&p);
                    }
                } else {
                    self.post(&t);
                }
            }
            // Every account of a seller may never go below zero (posted less held debits).
            for (account, posted) in &self.posted {
                let held = self.held.get(account).copied().unwrap_or(0);
                if account >> 96 != u128::from(code::PSP_CLEARING)
                    && account >> 96 != u128::from(code::PLATFORM_REVENUE)
                    && account >> 96 != u128::from(code::REFUNDS_IN_TRANSIT)
                {
                    assert!(posted - held >= 0, "account {account:x} overdrawn");
                }
            }
        }

        fn post(&mut self, t: &Transfer) {
            *self.posted.entry(t.credit_account_id).or_default() += t.amount as i128;
            *self.posted.entry(t.debit_account_id).or_default() -= t.amount as i128;
        }

        /// Posted balance of a seller account, less what pending transfers hold on it.
        fn available(&self, code: u16, currency: Currency, owner: u64) -> i128 {
            let id = chart::account_id(code, currency, owner);
            self.posted.get(&id).copied().unwrap_or(0) - self.held.get(&id).copied().unwrap_or(0)
        }

        /// Debits equal credits, posted, over every account of one currency.
        fn balances(&self, currency: Currency) -> bool {
            let of = |id: &u128| (id >> 64) as u32 == currency.ledger;
            self.posted
                .iter()
                .filter(|(id, _)| of(id))
                .map(|(_, v)| v)
                .sum::<i128>()
                == 0
        }
    }

    const SELLER: u64 = 7;

    /// Capture into pending, fee at capture, release to the wallet: each balance exact, every
    /// ledger balanced, and a second release of the same order is the same transfer id.
    #[test]
    fn escrowed_order_captures_into_pending_and_releases_to_the_wallet() {
        let usd = Currency::by_code("USD").unwrap();
        let eur = Currency::by_code("EUR").unwrap();
        let mut books = Books::default();
        let held = (ChargeKind::Order, Escrow::Held);
        books.apply([charge_opened("ord_1", held, usd, SELLER, 10_000)]);
        books.apply([charge_opened("ord_2", held, eur, SELLER, 500)]);
        assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 0);
        books.apply(charge_succeeded(
            "ord_1",
            usd,
            Some((SELLER, 280)),
            Escrow::Held,
        ));
        books.apply(charge_succeeded(
            "ord_2",
            eur,
            Some((SELLER, 43)),
            Escrow::Held,
        ));
        assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 9_720);
        assert_eq!(books.available(code::SELLER_WALLET, usd, SELLER), 0);
        assert_eq!(books.available(code::SELLER_PENDING, eur, SELLER), 457);
        let release = order_released("ord_1", usd, SELLER, 9_720).unwrap();
        assert_eq!(release.transfer.id, Leg::Release.transfer_id("ord_1"));
        assert_eq!(
            order_released("ord_1", usd, SELLER, 9_720)
                .unwrap()
                .transfer
                .id,
            release.transfer.id
        );
        books.apply([release]);
        assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 0);
        assert_eq!(books.available(code::SELLER_WALLET, usd, SELLER), 9_720);
        // The other currency's escrow is untouched.
        assert_eq!(books.available(code::SELLER_PENDING, eur, SELLER), 457);
        assert!(books.balances(usd) && books.balances(eur));
    }

    /// A refund before release comes out of pending (with its fee share back into pending); if
    /// it fails after the order was released, what it put back in pending moves to the wallet.
    #[test]
    fn refunds_before_release_come_out_of_pending() {
        let usd = Currency::by_code("USD").unwrap();
        let mut books = Books::default();
        books.apply([charge_opened(
            "ord_1",
            (ChargeKind::Order, Escrow::Held),
            usd,
            SELLER,
            10_000,
        )]);
        books.apply(charge_succeeded(
            "ord_1",
            usd,
            Some((SELLER, 280)),
            Escrow::Held,
        ));
        let pending = (
            SELLER,
            RefundFrom::Pending {
                order_released: false,
            },
        );
        books.apply(refund_opened("re_1", usd, pending, 4_000, 112));
        assert_eq!(
            books.available(code::SELLER_PENDING, usd, SELLER),
            9_720 - 4_000 + 112
        );
        books.apply(refund_succeeded("re_1", usd, 4_000));
        books.apply(refund_opened("re_2", usd, pending, 1_000, 28));
        assert_eq!(
            books.available(code::SELLER_PENDING, usd, SELLER),
            5_832 - 972
        );
        // Released while re_2 is in flight: the order's share counts re_2 as gone.
        books.apply(order_released("ord_1", usd, SELLER, 4_860));
        assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 0);
        let released = (
            SELLER,
            RefundFrom::Pending {
                order_released: true,
            },
        );
        books.apply(refund_failed("re_2", usd, released, 1_000, 28));
        assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 0);
        assert_eq!(
            books.available(code::SELLER_WALLET, usd, SELLER),
            4_860 + 972
        );
        assert_eq!(books.available(code::PLATFORM_REVENUE, usd, 0), 280 - 112);
        assert!(books.balances(usd));
    }

    /// Payouts open on the wallet only, never on pending.
    #[test]
    fn payouts_draw_on_the_wallet_only() {
        let usd = Currency::by_code("USD").unwrap();
        let hold = payout_opened("po_1", usd, SELLER, 5);
        assert_eq!(
            hold.transfer.debit_account_id,
            chart::account_id(code::SELLER_WALLET, usd, SELLER)
        );
    }

    /// Manual capture: the authorization holds the whole amount on the seller's pending
    /// account without making it available; a partial capture posts what was captured (the
    /// rest released), the fee on that; a cancel voids it all. Per currency, balanced.
    #[test]
    fn authorizations_capture_in_part_or_cancel() {
        let usd = Currency::by_code("USD").unwrap();
        let jpy = Currency::by_code("JPY").unwrap();
        let mut books = Books::default();
        let held = (ChargeKind::Order, Escrow::Held);
        books.apply([charge_opened("ord_1", held, usd, SELLER, 10_000)]);
        books.apply([charge_opened("ord_2", held, jpy, SELLER, 5_000)]);
        let clearing = |c| chart::system_account(code::PSP_CLEARING, c);
        assert_eq!(books.held.get(&clearing(usd)), Some(&10_000));
        assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 0);
        let captured = charge_captured("ord_1", usd, Some((SELLER, 205)), Escrow::Held, 7_000);
        assert_eq!(
            captured.iter().map(|p| p.leg).collect::<Vec<_>>(),
            [Leg::Post, Leg::Fee]
        );
        assert_eq!(captured[0].transfer.amount, 7_000);
        assert_eq!(captured[0].transfer.id, Leg::Post.transfer_id("ord_1"));
        books.apply(captured);
        assert_eq!(books.held.get(&clearing(usd)), Some(&0));
        assert_eq!(books.posted.get(&clearing(usd)), Some(&-7_000));
        assert_eq!(
            books.available(code::SELLER_PENDING, usd, SELLER),
            7_000 - 205
        );
        assert_eq!(books.available(code::PLATFORM_REVENUE, usd, 0), 205);
        let void = hold_voided("ord_2");
        assert_eq!(void.leg, Leg::Void);
        books.apply([void]);
        assert_eq!(books.held.get(&clearing(jpy)), Some(&0));
        assert_eq!(books.available(code::SELLER_PENDING, jpy, SELLER), 0);
        assert!(books.balances(usd) && books.balances(jpy));
    }
}
