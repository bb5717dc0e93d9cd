//! The postings of every transition, checked against a naive ledger: legs, ids, balances.

use super::*;

/// Every leg's string and the id it derives for one object, pinned: these ids are in the
/// ledger already, so a change here is a change to every retry of an existing object.
#[test]
fn leg_strings_and_transfer_ids_are_pinned() {
    let pinned: [(Leg, &str, u128); 12] = [
        (Leg::Hold, "hold", PINNED[0]),
        (Leg::Post, "post", PINNED[1]),
        (Leg::Void, "void", PINNED[2]),
        (Leg::Fee, "fee", PINNED[3]),
        (Leg::FeeReturn, "fee_return", PINNED[4]),
        (Leg::FeeReverse, "fee_reverse", PINNED[5]),
        (Leg::Settle, "settle", PINNED[6]),
        (Leg::Release, "release", PINNED[7]),
        (Leg::FxOut, "fx_out", PINNED[8]),
        (Leg::FxIn, "fx_in", PINNED[9]),
        (Leg::FxOutReverse, "fx_out_reverse", PINNED[10]),
        (Leg::FxInReverse, "fx_in_reverse", PINNED[11]),
    ];
    // The first eight legs, then the FX legs (after the dispute legs, pinned below).
    let legs = pinned.map(|(leg, _, _)| leg);
    assert_eq!(legs[..8], Leg::ALL[..8]);
    assert_eq!(legs[8..], Leg::ALL[18..]);
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
const PINNED: [u128; 12] = [
    0xe1d06fc5_9aeb3487_e2f281b0_c39d154d,
    0xf6be538e_eec3daa7_a54115a2_cbee4afe,
    0x4dd3e963_b33266b8_6f28f96b_5fd7b73f,
    0xf72938af_d4882d70_74fff2b4_4cc20766,
    0x554d1a52_6e7b5898_06aa65ea_f2550ac9,
    0x5318817b_cf19730f_a6be86a5_002ebc59,
    0xa28ede9b_5a24cd70_9a4a93fb_cf42b05c,
    0x6f1a672e_240bcd37_fce2f280_c49d6c9d,
    0x02916dbe_a83d2b26_120a2803_1b106bd7,
    0x465f3707_2807e8d5_cef370ce_7a16f744,
    0x162cf93d_3ccdb4f5_f4feb6c8_4a7724fc,
    0x874a23ca_99825ffb_7a92fbd9_7a48b606,
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
                && account >> 96 != u128::from(code::DISPUTE_LOSS)
                && account >> 96 != u128::from(code::FX_POSITION)
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

/// The dispute legs' strings and ids, pinned as the others.
#[test]
fn dispute_leg_strings_and_transfer_ids_are_pinned() {
    let pinned: [(Leg, &str, u128); 10] = [
        (Leg::DisputePending, "dispute_pending", DISPUTE_PINNED[0]),
        (Leg::DisputeWallet, "dispute_wallet", DISPUTE_PINNED[1]),
        (Leg::DisputeLoss, "dispute_loss", DISPUTE_PINNED[2]),
        (
            Leg::DisputeFeePending,
            "dispute_fee_pending",
            DISPUTE_PINNED[3],
        ),
        (
            Leg::DisputeFeeWallet,
            "dispute_fee_wallet",
            DISPUTE_PINNED[4],
        ),
        (Leg::DisputeFeeLoss, "dispute_fee_loss", DISPUTE_PINNED[5]),
        (
            Leg::DisputeReturnLoss,
            "dispute_return_loss",
            DISPUTE_PINNED[6],
        ),
        (Leg::DisputeReturn, "dispute_return", DISPUTE_PINNED[7]),
        (Leg::DisputeLost, "dispute_lost", DISPUTE_PINNED[8]),
        (Leg::Recovery, "recovery", DISPUTE_PINNED[9]),
    ];
    assert_eq!(pinned.map(|(leg, _, _)| leg), Leg::ALL[8..18]);
    for (leg, name, id) in pinned {
        assert_eq!(leg.as_str(), name);
        assert_eq!(
            leg.transfer_id(OBJECT),
            id,
            "{name}: {:#x}",
            leg.transfer_id(OBJECT)
        );
    }
}

const DISPUTE_PINNED: [u128; 10] = [
    0x5455d5db_3c4fd7f8_c1280380_a26fb16d,
    0xd8e0e1e5_e3f199c8_7bcf8341_7f70ada2,
    0x1541efa5_d8c0961f_e5b5e0dd_01a731a2,
    0xd0ae394c_c4e982c4_2223a657_090415f5,
    0x5c86cde4_84de4a2a_29c5b989_0e90ddb1,
    0x12297af3_341b00b3_7867e380_d31536a5,
    0x7ac9c266_e1d5379d_a36bd92a_92022d67,
    0xcddaf85f_a2e0ee14_79e0b294_51c80a85,
    0x906ba569_092c0af0_02e95462_16a13aee,
    0x12fefbcc_03328796_2bb1baac_435c56e4,
];

/// A dispute the seller cannot cover: the order's pending share, then the wallet, then the
/// platform's loss account; a later capture repays the loss first; a lost dispute's amount
/// goes to the PSP. Every ledger balanced, the loss account back to zero.
#[test]
fn a_dispute_the_seller_cannot_cover_is_repaid_by_later_pay_ins() {
    use crate::domain::disputes::{Returned, Taken};
    let usd = Currency::by_code("USD").unwrap();
    let mut books = Books::default();
    let held = (ChargeKind::Order, Escrow::Held);
    books.apply([charge_opened("ord_1", held, usd, SELLER, 1_000)]);
    books.apply(charge_succeeded(
        "ord_1",
        usd,
        Some((SELLER, 55)),
        Escrow::Held,
    ));
    assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 945);
    // The whole amount and a fee of 1500: 945 from pending, the rest from the loss account.
    let taken = Taken::of(1_000, 1_500, 945, 0);
    books.apply(dispute_opened("dsp_1", usd, SELLER, &taken));
    assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 0);
    assert_eq!(books.available(code::DISPUTE_LOSS, usd, SELLER), -1_555);
    assert_eq!(books.available(code::DISPUTES_OPEN, usd, 0), 1_000);
    assert!(books.balances(usd));
    // Lost: the amount goes to the PSP.
    books.apply(dispute_lost("dsp_1", usd, 1_000));
    assert_eq!(books.available(code::DISPUTES_OPEN, usd, 0), 0);
    // A later order of 2000 (fee 88) repays 1555 of its 1912 out of pending.
    books.apply([charge_opened("ord_2", held, usd, SELLER, 2_000)]);
    let mut capture = charge_succeeded("ord_2", usd, Some((SELLER, 88)), Escrow::Held);
    capture.extend(recovery_repaid(
        "ord_2",
        usd,
        (SELLER, code::SELLER_PENDING),
        1_555,
    ));
    assert_eq!(capture.last().map(|p| p.leg), Some(Leg::Recovery));
    books.apply(capture);
    assert_eq!(books.available(code::DISPUTE_LOSS, usd, SELLER), 0);
    assert_eq!(books.available(code::SELLER_PENDING, usd, SELLER), 357);
    assert!(books.balances(usd));
    // A won dispute of another seller's order gives the amount back.
    let other = SELLER + 1;
    books.apply([charge_opened(
        "ord_3",
        (ChargeKind::Order, Escrow::NotHeld),
        usd,
        other,
        5_000,
    )]);
    books.apply(charge_succeeded(
        "ord_3",
        usd,
        Some((other, 0)),
        Escrow::NotHeld,
    ));
    let taken = Taken::of(5_000, 1_500, 0, 5_000);
    books.apply(dispute_opened("dsp_2", usd, other, &taken));
    assert_eq!(books.available(code::SELLER_WALLET, usd, other), 0);
    assert_eq!(books.available(code::DISPUTE_LOSS, usd, other), -1_500);
    let returned = Returned::of(5_000, taken.amount.loss, 1_500);
    books.apply(dispute_won("dsp_2", usd, other, &returned));
    assert_eq!(books.available(code::SELLER_WALLET, usd, other), 5_000);
    assert_eq!(books.available(code::DISPUTE_LOSS, usd, other), -1_500);
    assert_eq!(books.available(code::DISPUTES_OPEN, usd, 0), 0);
    assert!(books.balances(usd));
}

/// An EUR order paid out in GBP: captured into GBP pending through the pair's FX positions,
/// partly refunded (converted back), a refund that fails undone, released in GBP. Every ledger
/// balances by itself at every step, and the seller's EUR accounts end at zero.
#[test]
fn a_converted_order_balances_each_ledger_by_itself() {
    use super::fx::{conversion_reversed, converted, Conversion, Side};
    let [eur, gbp] = ["EUR", "GBP"].map(|c| Currency::by_code(c).unwrap());
    let pending = code::SELLER_PENDING;
    let side = |currency, account_code, amount| Side {
        currency,
        account_code,
        amount,
    };
    let mut books = Books::default();
    books.apply([charge_opened(
        "ord_1",
        (ChargeKind::Order, Escrow::Held),
        eur,
        SELLER,
        10_000,
    )]);
    books.apply(charge_succeeded(
        "ord_1",
        eur,
        Some((SELLER, 280)),
        Escrow::Held,
    ));
    let capture = Conversion {
        pair: (eur, gbp),
        seller: SELLER,
        from: side(eur, pending, 9_720),
        to: side(gbp, pending, 8_320),
    };
    books.apply(converted("ord_1", &capture));
    assert_eq!(books.available(pending, eur, SELLER), 0);
    assert_eq!(books.available(pending, gbp, SELLER), 8_320);
    assert!(books.balances(eur) && books.balances(gbp));
    // A refund of 10.00 EUR with 0.28 fee back: 9.72 EUR net, 8.32 GBP taken.
    let back = Conversion {
        pair: (eur, gbp),
        seller: SELLER,
        from: side(gbp, pending, 832),
        to: side(eur, pending, 972),
    };
    let from = (
        SELLER,
        RefundFrom::Pending {
            order_released: false,
        },
    );
    for refund in ["ref_1", "ref_2"] {
        books.apply(converted(refund, &back));
        books.apply(refund_opened(refund, eur, from, 1_000, 28));
        assert!(books.balances(eur) && books.balances(gbp));
    }
    books.apply(refund_succeeded("ref_1", eur, 1_000));
    books.apply(refund_failed("ref_2", eur, from, 1_000, 28));
    books.apply(conversion_reversed("ref_2", &back, pending));
    assert_eq!(books.available(pending, eur, SELLER), 0);
    assert_eq!(books.available(pending, gbp, SELLER), 8_320 - 832);
    books.apply(order_released("ord_1", gbp, SELLER, 8_320 - 832));
    assert_eq!(books.available(code::SELLER_WALLET, gbp, SELLER), 7_488);
    let position = |c| books.posted[&chart::fx_position_id(c, eur, gbp)];
    assert_eq!(
        (position(eur), position(gbp)),
        (9_720 - 972, -(8_320 - 832))
    );
    assert!(books.balances(eur) && books.balances(gbp));
    assert!(converted(
        "ord_2",
        &Conversion {
            to: side(gbp, pending, 0),
            ..capture
        }
    )
    .iter()
    .all(|p| p.leg == Leg::FxOut));
}
