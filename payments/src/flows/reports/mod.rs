//! Transaction reports over the ledger: an account's transactions, seller statements and the
//! platform's revenue by day, as JSON or CSV.
//!
//! Every report reads a consistent cut: it first writes a record and takes that write's cluster
//! timestamp `T` (transfers and record writes share one timestamp sequence, so every transfer
//! committed before has a smaller timestamp and every later one a larger), then bounds every
//! query by `timestamp_max = T`. Totals add up even while payments flow. Amounts are integer
//! minor units throughout; only the CSV shows decimals.

mod postings;
mod queries;
mod statement_csv;
mod time;

use serde::{Deserialize, Serialize};
use tally_client::{Balances, Transfer, TransferFlags};
use utoipa::ToSchema;

pub use postings::ObjectPosting;
pub use time::{day_of, parse_time, time_of, Period};

use crate::domain::chart::{account_name, kind_name, transfer_code};
use crate::domain::ids::{CustomerId, SellerId, Unchecked};
use crate::domain::money::{format_signed, Currency};
use crate::error::PayError;

/// Transfers in one page of an account's history (the node's `ACCOUNT_TRANSFERS_PAGE_MAX`).
pub const ACCOUNT_TRANSFERS_PAGE_MAX: usize = 8192;

/// Transactions one request returns when it does not say, and at most.
pub const TRANSACTIONS_LIMIT_DEFAULT: u32 = 100;
pub const TRANSACTIONS_LIMIT_MAX: u32 = 1000;

/// Longest period a statement or revenue report covers.
pub const REPORT_RANGE_DAYS_MAX: u64 = 3660;

const _: () = assert!(TRANSACTIONS_LIMIT_DEFAULT <= TRANSACTIONS_LIMIT_MAX);
const _: () = assert!(TRANSACTIONS_LIMIT_MAX as usize <= ACCOUNT_TRANSFERS_PAGE_MAX);

/// The key of the record whose writes give report cuts.
const CUT_KEY: &str = "cut";

/// Whose transactions: a seller's or customer's wallet, or a system account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Seller(Unchecked<SellerId>),
    Customer(Unchecked<CustomerId>),
    System(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Credit,
    Debit,
}

/// `posted`: moved money; `held`: a pending transfer (reserved, posted or voided later by
/// another entry); `voided`: the release of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    Posted,
    Held,
    Voided,
}

impl EntryStatus {
    pub fn of(flags: TransferFlags) -> EntryStatus {
        if flags.contains(TransferFlags::PENDING) {
            EntryStatus::Held
        } else if flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
            EntryStatus::Voided
        } else {
            EntryStatus::Posted
        }
    }
}

/// True when a stored transfer moved posted balances: neither a pending transfer nor the void
/// of one (a stored post carries the amount it captured and the pending's accounts).
pub fn is_posted(flags: TransferFlags) -> bool {
    !flags.contains(TransferFlags::PENDING) && !flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
}

/// One ledger entry of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transaction {
    /// The ledger transfer id (32 hex digits).
    pub id: String,
    /// Cluster timestamp (Unix nanoseconds); also the `after` cursor.
    pub timestamp: u64,
    /// The same instant as RFC 3339.
    pub time: String,
    /// `payin`, `fee`, `refund`, `refund_fee_return`, `payout`, `deposit`, `refund_settle`,
    /// `payout_settle`, `release` (escrow: pending to the wallet).
    pub kind: String,
    pub direction: Direction,
    /// Minor units.
    pub amount: u128,
    pub status: EntryStatus,
    /// The other account: a system account's role or a wallet owner's id.
    pub counterparty: String,
    /// The hold this entry posts or voids.
    pub pending_id: Option<String>,
}

impl Transaction {
    fn of(transfer: &Transfer, account_id: u128) -> Transaction {
        let debit = transfer.debit_account_id;
        let credit = transfer.credit_account_id;
        let (direction, counterparty) = if credit == account_id {
            (Direction::Credit, debit)
        } else {
            (Direction::Debit, credit)
        };
        let pending_id = transfer.pending_id;
        Transaction {
            id: format!("{:032x}", transfer.id),
            timestamp: transfer.timestamp,
            time: time_of(transfer.timestamp),
            kind: kind_name(u32::from(transfer.code)),
            direction,
            amount: transfer.amount,
            status: EntryStatus::of(transfer.flags),
            counterparty: account_name(counterparty),
            pending_id: (pending_id != 0).then(|| format!("{pending_id:032x}")),
        }
    }
}

/// One page of an account's transactions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransactionPage {
    /// The wallet owner's id or the system account's role.
    pub account: String,
    pub account_id: String,
    pub currency: String,
    /// The cluster timestamp the page was read at; nothing later is listed.
    pub cut: u64,
    pub data: Vec<Transaction>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

impl TransactionPage {
    /// CSV with a header; amounts as decimals of the currency.
    pub fn to_csv(&self, currency: Currency) -> Result<String, PayError> {
        let mut writer = csv_writer();
        csv_row(
            &mut writer,
            &[
                "transfer_id",
                "timestamp",
                "time",
                "kind",
                "direction",
                "amount",
                "currency",
                "status",
                "counterparty",
                "pending_id",
            ],
        )?;
        for t in &self.data {
            let direction = match t.direction {
                Direction::Credit => "credit",
                Direction::Debit => "debit",
            };
            let status = match t.status {
                EntryStatus::Posted => "posted",
                EntryStatus::Held => "held",
                EntryStatus::Voided => "voided",
            };
            let amount = format_signed(currency, i128::try_from(t.amount).unwrap_or(i128::MAX));
            csv_row(
                &mut writer,
                &[
                    &t.id,
                    &t.timestamp.to_string(),
                    &t.time,
                    &t.kind,
                    direction,
                    &amount,
                    currency.code,
                    status,
                    &t.counterparty,
                    t.pending_id.as_deref().unwrap_or(""),
                ],
            )?;
        }
        csv_finish(writer)
    }
}

/// A seller's statement for a period: signed effects on the wallet's posted balance (credits
/// positive; fees, refunds and payouts negative), and the checks that they add up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Statement {
    #[schema(value_type = String)]
    pub seller_id: SellerId,
    pub currency: String,
    /// Start of the period (RFC 3339, inclusive).
    pub from: String,
    /// End of the period (RFC 3339, exclusive), or the cut when that is earlier.
    pub to: String,
    pub cut: u64,
    pub opening_balance: i128,
    pub pay_ins: i128,
    pub fees: i128,
    pub refunds: i128,
    /// Platform fees given back with refunds (less any taken back when a refund failed).
    pub fee_returns: i128,
    pub payouts: i128,
    /// Escrowed orders released into the wallet: their pay-in less its fee and the refunds made
    /// before release. An order held in escrow shows here, not in `pay_ins` and `fees` (those
    /// moved the seller's pending balance), so nothing is counted twice.
    pub releases: i128,
    /// Money converted into this currency (an order's share paid out in the seller's payout
    /// currency) less money converted out of it (that order's refunds).
    pub conversions: i128,
    /// Posted movements of any other kind.
    pub other: i128,
    pub closing_balance: i128,
    /// Posted movements within the period.
    pub movements: u64,
    /// The wallet's posted balance in the ledger's balance history at the start and at the end.
    pub ledger_opening_balance: i128,
    pub ledger_closing_balance: i128,
    /// Opening + movements = closing, and both balances equal the ledger's.
    pub adds_up: bool,
}

impl Statement {
    /// An empty statement of `seller_id`'s wallet in `currency` for the period `from`..`to`,
    /// read at `cut`: every figure 0 until movements are added.
    pub fn new(seller_id: SellerId, currency: &str, from: String, to: String, cut: u64) -> Self {
        Statement {
            seller_id,
            currency: currency.to_string(),
            from,
            to,
            cut,
            opening_balance: 0,
            pay_ins: 0,
            fees: 0,
            refunds: 0,
            fee_returns: 0,
            releases: 0,
            conversions: 0,
            payouts: 0,
            other: 0,
            closing_balance: 0,
            movements: 0,
            ledger_opening_balance: 0,
            ledger_closing_balance: 0,
            adds_up: false,
        }
    }

    /// Adds one posted movement of the wallet `account_id`, before or within the period.
    fn add(&mut self, transfer: &Transfer, account_id: u128, from_ns: u64) {
        if !is_posted(transfer.flags) {
            return;
        }
        let amount = i128::try_from(transfer.amount).unwrap_or(i128::MAX);
        let signed = if transfer.credit_account_id == account_id {
            amount
        } else {
            -amount
        };
        self.closing_balance = self.closing_balance.saturating_add(signed);
        if transfer.timestamp < from_ns {
            self.opening_balance = self.opening_balance.saturating_add(signed);
            return;
        }
        self.movements += 1;
        let line = match transfer.code {
            transfer_code::PAYIN => &mut self.pay_ins,
            transfer_code::FEE => &mut self.fees,
            transfer_code::REFUND => &mut self.refunds,
            transfer_code::REFUND_FEE_RETURN => &mut self.fee_returns,
            transfer_code::PAYOUT => &mut self.payouts,
            transfer_code::RELEASE => &mut self.releases,
            transfer_code::FX => &mut self.conversions,
            _ => &mut self.other,
        };
        *line = line.saturating_add(signed);
    }

    /// Opening plus every line.
    pub fn computed_closing(&self) -> i128 {
        [
            self.pay_ins,
            self.fees,
            self.refunds,
            self.fee_returns,
            self.payouts,
            self.releases,
            self.conversions,
            self.other,
        ]
        .iter()
        .fold(self.opening_balance, |sum, line| sum.saturating_add(*line))
    }

    fn check(&mut self) {
        self.adds_up = self.computed_closing() == self.closing_balance
            && self.closing_balance == self.ledger_closing_balance
            && self.opening_balance == self.ledger_opening_balance;
    }
}

/// The platform's fee revenue of one UTC day (or the total), in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevenueDay {
    /// `YYYY-MM-DD`, or `total`.
    pub date: String,
    /// Platform fees credited.
    pub fees: i128,
    /// Fees given back with refunds, less those taken back when a refund failed.
    pub fee_returns: i128,
    /// Posted movements of any other kind (credits positive).
    pub other: i128,
    /// `fees - fee_returns + other`.
    pub net: i128,
}

impl RevenueDay {
    fn add(&mut self, transfer: &Transfer, revenue_account: u128) {
        if !is_posted(transfer.flags) {
            return;
        }
        let amount = i128::try_from(transfer.amount).unwrap_or(i128::MAX);
        let credit = transfer.credit_account_id == revenue_account;
        let signed = if credit { amount } else { -amount };
        match transfer.code {
            transfer_code::FEE => self.fees = self.fees.saturating_add(signed),
            transfer_code::REFUND_FEE_RETURN => {
                self.fee_returns = self.fee_returns.saturating_sub(signed);
            }
            _ => self.other = self.other.saturating_add(signed),
        }
        self.net = self.net.saturating_add(signed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevenueReport {
    pub currency: String,
    pub from: String,
    pub to: String,
    pub cut: u64,
    /// Days with any revenue movement, oldest first.
    pub days: Vec<RevenueDay>,
    pub total: RevenueDay,
}

impl RevenueReport {
    /// CSV with a header, one row per day and a `total` row; amounts as decimals.
    pub fn to_csv(&self, currency: Currency) -> Result<String, PayError> {
        let mut writer = csv_writer();
        csv_row(
            &mut writer,
            &["date", "currency", "fees", "fee_returns", "other", "net"],
        )?;
        for day in self.days.iter().chain([&self.total]) {
            csv_row(
                &mut writer,
                &[
                    &day.date,
                    currency.code,
                    &format_signed(currency, day.fees),
                    &format_signed(currency, day.fee_returns),
                    &format_signed(currency, day.other),
                    &format_signed(currency, day.net),
                ],
            )?;
        }
        csv_finish(writer)
    }
}

pub(crate) fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new())
}

pub(crate) fn csv_row(writer: &mut csv::Writer<Vec<u8>>, row: &[&str]) -> Result<(), PayError> {
    writer
        .write_record(row)
        .map_err(|e| PayError::Internal(format!("writing CSV: {e}")))
}

pub(crate) fn csv_finish(writer: csv::Writer<Vec<u8>>) -> Result<String, PayError> {
    let bytes = writer
        .into_inner()
        .map_err(|e| PayError::Internal(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| PayError::Internal(format!("writing CSV: {e}")))
}

/// Posted credits minus posted debits.
pub fn net_posted(balances: &Balances) -> i128 {
    let credits = i128::try_from(balances.credits_posted).unwrap_or(i128::MAX);
    let debits = i128::try_from(balances.debits_posted).unwrap_or(i128::MAX);
    credits - debits
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_client::TransferBuilder;

    const WALLET: u128 = 77;
    const OTHER: u128 = 5;

    fn transfer(
        timestamp: u64,
        code: u16,
        credit: bool,
        amount: u128,
        flags: TransferFlags,
    ) -> Transfer {
        let (debit_account, credit_account) = if credit {
            (OTHER, WALLET)
        } else {
            (WALLET, OTHER)
        };
        let mut t = TransferBuilder::new(1, debit_account, credit_account, amount, 840, code)
            .flags(flags)
            .build();
        t.timestamp = timestamp;
        t
    }
    #[test]
    fn statement_sorts_posted_movements_and_adds_up() {
        let mut s = Statement::new(
            SellerId::from("sel_1"),
            "USD",
            String::new(),
            String::new(),
            0,
        );
        let held = TransferFlags::PENDING;
        let post = TransferFlags::POST_PENDING_TRANSFER;
        let void = TransferFlags::VOID_PENDING_TRANSFER;
        let movements = [
            transfer(5, transfer_code::PAYIN, true, 1000, post), // before the period
            transfer(6, transfer_code::FEE, false, 55, TransferFlags::empty()), // before the period
            transfer(10, transfer_code::PAYIN, true, 5000, held),
            transfer(11, transfer_code::PAYIN, true, 5000, post),
            transfer(12, transfer_code::FEE, false, 155, TransferFlags::empty()),
            transfer(13, transfer_code::REFUND, false, 2000, held),
            transfer(
                14,
                transfer_code::REFUND_FEE_RETURN,
                true,
                62,
                TransferFlags::empty(),
            ),
            transfer(15, transfer_code::REFUND, false, 2000, post),
            transfer(16, transfer_code::PAYOUT, false, 1000, held),
            transfer(17, transfer_code::PAYOUT, false, 1000, void),
            transfer(18, transfer_code::PAYOUT, false, 700, post),
            transfer(
                19,
                transfer_code::RELEASE,
                true,
                300,
                TransferFlags::empty(),
            ),
            transfer(20, transfer_code::FX, true, 832, TransferFlags::empty()),
        ];
        for t in &movements {
            s.add(t, WALLET, 10);
        }
        assert_eq!(s.opening_balance, 945);
        assert_eq!(
            (
                s.pay_ins,
                s.fees,
                s.refunds,
                s.fee_returns,
                s.payouts,
                s.releases,
                s.conversions,
                s.other
            ),
            (5000, -155, -2000, 62, -700, 300, 832, 0)
        );
        assert_eq!(s.movements, 7, "holds and voids are not movements");
        assert_eq!(
            s.closing_balance,
            945 + 5000 - 155 - 2000 + 62 - 700 + 300 + 832
        );
        s.ledger_opening_balance = 945;
        s.ledger_closing_balance = s.closing_balance;
        s.check();
        assert!(s.adds_up);
        s.ledger_closing_balance += 1;
        s.check();
        assert!(!s.adds_up, "a difference with the ledger is never hidden");
    }
    #[test]
    fn revenue_nets_fee_returns_and_reversals() {
        let mut day = RevenueDay::default();
        // From the revenue account's side: fees are credits, fee returns debits, a failed
        // refund's fee reversal a credit again.
        let revenue = WALLET;
        day.add(
            &transfer(1, transfer_code::FEE, true, 320, TransferFlags::empty()),
            revenue,
        );
        day.add(
            &transfer(
                2,
                transfer_code::REFUND_FEE_RETURN,
                false,
                100,
                TransferFlags::empty(),
            ),
            revenue,
        );
        day.add(
            &transfer(
                3,
                transfer_code::REFUND_FEE_RETURN,
                true,
                40,
                TransferFlags::empty(),
            ),
            revenue,
        );
        assert_eq!((day.fees, day.fee_returns, day.net), (320, 60, 260));
    }
    #[test]
    fn entry_status_and_posting_follow_the_flags() {
        assert_eq!(EntryStatus::of(TransferFlags::PENDING), EntryStatus::Held);
        assert_eq!(
            EntryStatus::of(TransferFlags::VOID_PENDING_TRANSFER),
            EntryStatus::Voided
        );
        assert_eq!(
            EntryStatus::of(TransferFlags::POST_PENDING_TRANSFER),
            EntryStatus::Posted
        );
        assert!(
            is_posted(TransferFlags::empty()) && is_posted(TransferFlags::POST_PENDING_TRANSFER)
        );
        assert!(!is_posted(TransferFlags::PENDING));
        assert!(!is_posted(TransferFlags::VOID_PENDING_TRANSFER));
    }
    #[test]
    fn csv_has_a_header_and_decimal_amounts() {
        let usd = Currency::by_code("USD").unwrap();
        let report = RevenueReport {
            currency: "USD".into(),
            from: String::new(),
            to: String::new(),
            cut: 1,
            days: vec![RevenueDay {
                date: "2025-03-07".into(),
                fees: 320,
                fee_returns: 100,
                other: 0,
                net: 220,
            }],
            total: RevenueDay {
                date: "total".into(),
                fees: 320,
                fee_returns: 100,
                other: -5,
                net: 215,
            },
        };
        assert_eq!(
            report.to_csv(usd).unwrap(),
            "date,currency,fees,fee_returns,other,net\n\
             2025-03-07,USD,3.20,1.00,0.00,2.20\n\
             total,USD,3.20,1.00,-0.05,2.15\n"
        );
    }
}
