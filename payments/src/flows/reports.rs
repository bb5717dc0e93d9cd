//! Transaction reports over the ledger: an account's transactions, seller statements and the
//! platform's revenue by day, as JSON or CSV.
//!
//! Every report reads a consistent cut: it first writes a record and takes that write's cluster
//! timestamp `T` (transfers and record writes share one timestamp sequence, so every transfer
//! committed before has a smaller timestamp and every later one a larger), then bounds every
//! query by `timestamp_max = T`. Totals add up even while payments flow. Amounts are integer
//! minor units throughout; only the CSV shows decimals.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tally_client::codes::transfer_flags;
use tally_client::{v1, Balances};
use utoipa::ToSchema;

use super::{check_id, describe_commit, now_ms, Pay};
use crate::domain::chart::{self, code, transfer_code};
use crate::domain::ids;
use crate::domain::model::ns;
use crate::domain::money::Currency;
use crate::edges::store::{Commit, Txn};
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

/// Nanoseconds per day (cluster timestamps are Unix nanoseconds).
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// A period in cluster time: `[from_ns, to_ns)`; `to_ns == None` means up to the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub from_ns: u64,
    pub to_ns: Option<u64>,
}

impl Period {
    /// Parses `from` and `to` (RFC 3339 instants, or `YYYY-MM-DD`: from the start of `from`'s
    /// day to the end of `to`'s day).
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, PayError> {
        let from_ns = match from {
            Some(text) => parse_time("from", text, false)?,
            None => 0,
        };
        let to_ns = to.map(|text| parse_time("to", text, true)).transpose()?;
        if let Some(to_ns) = to_ns {
            if to_ns <= from_ns {
                return Err(PayError::invalid(
                    "invalid_period",
                    "`to` must be after `from`",
                ));
            }
        }
        Ok(Period { from_ns, to_ns })
    }

    /// The period must have a start and last at most [`REPORT_RANGE_DAYS_MAX`] days (an open
    /// end counts as now).
    fn check_bounded(&self) -> Result<(), PayError> {
        let now_ns = Utc::now()
            .timestamp_nanos_opt()
            .and_then(|ns| u64::try_from(ns).ok())
            .unwrap_or(u64::MAX);
        let days = self.to_ns.unwrap_or(now_ns).saturating_sub(self.from_ns) / NANOS_PER_DAY;
        if self.from_ns == 0 || days > REPORT_RANGE_DAYS_MAX {
            return Err(PayError::invalid(
                "invalid_period",
                format!("give `from` (and `to`): a period of at most {REPORT_RANGE_DAYS_MAX} days"),
            ));
        }
        Ok(())
    }

    /// The inclusive timestamp bounds of this period under the cut `cut`, or `None` when the
    /// period lies entirely after the cut.
    fn bounds(&self, cut: u64) -> Option<(u64, u64)> {
        let last = self.to_ns.map_or(cut, |to| to.saturating_sub(1).min(cut));
        // A zero `timestamp_max` would mean "no bound" to the node.
        (self.from_ns <= last && last > 0).then_some((self.from_ns, last))
    }
}

/// An instant as Unix nanoseconds: RFC 3339, or a `YYYY-MM-DD` day (its start, or with `end`
/// the start of the next day).
pub fn parse_time(field: &'static str, text: &str, end: bool) -> Result<u64, PayError> {
    let invalid = || {
        PayError::invalid(
            "invalid_time",
            format!("`{field}` is neither an RFC 3339 time nor a YYYY-MM-DD date"),
        )
    };
    let instant = if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end {
            day.succ_opt().ok_or_else(invalid)?
        } else {
            day
        };
        day.and_hms_opt(0, 0, 0).ok_or_else(invalid)?.and_utc()
    } else {
        DateTime::parse_from_rfc3339(text)
            .map_err(|_| invalid())?
            .with_timezone(&Utc)
    };
    instant
        .timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .filter(|ns| *ns > 0)
        .ok_or_else(|| {
            PayError::invalid("invalid_time", format!("`{field}` is outside 1970 to 2262"))
        })
}

/// A cluster timestamp as RFC 3339 (UTC, milliseconds).
pub fn time_of(timestamp_ns: u64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(i64::try_from(timestamp_ns).unwrap_or(i64::MAX))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The UTC day of a cluster timestamp.
pub fn day_of(timestamp_ns: u64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_nanos(i64::try_from(timestamp_ns).unwrap_or(i64::MAX))
        .date_naive()
}

/// Signed minor units as a decimal string of the currency (`-1250` USD -> `-12.50`).
pub fn format_signed(currency: Currency, minor: i128) -> String {
    match u64::try_from(minor.unsigned_abs()) {
        Ok(magnitude) if minor < 0 => format!("-{}", currency.format(magnitude)),
        Ok(magnitude) => currency.format(magnitude),
        Err(_) => minor.to_string(),
    }
}

/// What a transfer is for, from its code.
pub fn kind_name(transfer_code: u32) -> String {
    let name = match u16::try_from(transfer_code) {
        Ok(transfer_code::PAYIN) => "payin",
        Ok(transfer_code::FEE) => "fee",
        Ok(transfer_code::REFUND) => "refund",
        Ok(transfer_code::REFUND_FEE_RETURN) => "refund_fee_return",
        Ok(transfer_code::PAYOUT) => "payout",
        Ok(transfer_code::DEPOSIT) => "deposit",
        Ok(transfer_code::REFUND_SETTLE) => "refund_settle",
        Ok(transfer_code::PAYOUT_SETTLE) => "payout_settle",
        _ => return format!("code_{transfer_code}"),
    };
    name.to_string()
}

/// The platform's accounts by role name.
pub const SYSTEM_ACCOUNT_NAMES: [(u16, &str); 5] = [
    (code::PSP_CLEARING, "psp_clearing"),
    (code::BANK, "bank"),
    (code::PLATFORM_REVENUE, "platform_revenue"),
    (code::PAYOUTS_IN_TRANSIT, "payouts_in_transit"),
    (code::REFUNDS_IN_TRANSIT, "refunds_in_transit"),
];

const _: () = assert!(SYSTEM_ACCOUNT_NAMES.len() == chart::SYSTEM_CODES.len());

/// The name of one of tally-pay's accounts: a system account's role, or the wallet's owner id.
pub fn account_name(account_id: u128) -> String {
    let account_code = u16::try_from(account_id >> 96).unwrap_or(0);
    let owner = account_id as u64;
    if let Some((_, name)) = SYSTEM_ACCOUNT_NAMES
        .iter()
        .find(|(c, _)| *c == account_code && owner == 0)
    {
        return (*name).to_string();
    }
    match account_code {
        code::SELLER_WALLET => format!("{}_{owner:016x}", ids::SELLER),
        code::CUSTOMER_WALLET => format!("{}_{owner:016x}", ids::CUSTOMER),
        _ => format!("{account_id:032x}"),
    }
}

/// The system account with this role name, for `GET /v1/system_accounts/{name}/transactions`.
pub fn system_code(name: &str) -> Option<u16> {
    SYSTEM_ACCOUNT_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
}

/// Whose transactions: a seller's or customer's wallet, or a system account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Seller(String),
    Customer(String),
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
    pub fn of(flags: u32) -> EntryStatus {
        if flags & transfer_flags::PENDING != 0 {
            EntryStatus::Held
        } else if flags & transfer_flags::VOID_PENDING_TRANSFER != 0 {
            EntryStatus::Voided
        } else {
            EntryStatus::Posted
        }
    }
}

/// True when a stored transfer moved posted balances: neither a pending transfer nor the void
/// of one (a stored post carries the amount it captured and the pending's accounts).
pub fn is_posted(flags: u32) -> bool {
    flags & (transfer_flags::PENDING | transfer_flags::VOID_PENDING_TRANSFER) == 0
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
    /// `payout_settle`.
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
    fn of(transfer: &v1::Transfer, account_id: u128) -> Transaction {
        let debit = tally_proto::u128_of(transfer.debit_account_id);
        let credit = tally_proto::u128_of(transfer.credit_account_id);
        let (direction, counterparty) = if credit == account_id {
            (Direction::Credit, debit)
        } else {
            (Direction::Debit, credit)
        };
        let pending_id = tally_proto::u128_of(transfer.pending_id);
        Transaction {
            id: format!("{:032x}", tally_proto::u128_of(transfer.id)),
            timestamp: transfer.timestamp,
            time: time_of(transfer.timestamp),
            kind: kind_name(transfer.code),
            direction,
            amount: tally_proto::u128_of(transfer.amount),
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Statement {
    pub seller_id: String,
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
    /// Adds one posted movement of the wallet `account_id`, before or within the period.
    fn add(&mut self, transfer: &v1::Transfer, account_id: u128, from_ns: u64) {
        if !is_posted(transfer.flags) {
            return;
        }
        let amount = i128::try_from(tally_proto::u128_of(transfer.amount)).unwrap_or(i128::MAX);
        let signed = if tally_proto::u128_of(transfer.credit_account_id) == account_id {
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
        let line = match u16::try_from(transfer.code) {
            Ok(transfer_code::PAYIN) => &mut self.pay_ins,
            Ok(transfer_code::FEE) => &mut self.fees,
            Ok(transfer_code::REFUND) => &mut self.refunds,
            Ok(transfer_code::REFUND_FEE_RETURN) => &mut self.fee_returns,
            Ok(transfer_code::PAYOUT) => &mut self.payouts,
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
    fn add(&mut self, transfer: &v1::Transfer, revenue_account: u128) {
        if !is_posted(transfer.flags) {
            return;
        }
        let amount = i128::try_from(tally_proto::u128_of(transfer.amount)).unwrap_or(i128::MAX);
        let credit = tally_proto::u128_of(transfer.credit_account_id) == revenue_account;
        let signed = if credit { amount } else { -amount };
        match u16::try_from(transfer.code) {
            Ok(transfer_code::FEE) => self.fees = self.fees.saturating_add(signed),
            Ok(transfer_code::REFUND_FEE_RETURN) => {
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

impl Pay {
    /// Takes a consistent cut: writes the cut record and returns that write's cluster
    /// timestamp. Every transfer with a smaller timestamp committed before it.
    pub async fn report_cut(&self) -> Result<u64, PayError> {
        let txn = Txn::new().put(ns::REPORT_CUT, CUT_KEY, &now_ms());
        match self.store.commit(txn).await? {
            Commit::Committed => {}
            other => {
                return Err(PayError::Internal(format!(
                    "taking a report cut: {}",
                    describe_commit(&other)
                )))
            }
        }
        let record = self
            .store
            .get::<i64>(ns::REPORT_CUT, CUT_KEY)
            .await?
            .ok_or_else(|| PayError::Internal("the report cut record vanished".into()))?;
        debug_assert!(record.timestamp > 0);
        Ok(record.timestamp)
    }

    /// Visits every transfer of `account_id` with a timestamp in `[first, last]`, oldest first,
    /// page by page. Returns how many it visited.
    pub(crate) async fn visit_transfers(
        &self,
        account_id: u128,
        (first, last): (u64, u64),
        mut visit: impl FnMut(&v1::Transfer),
    ) -> Result<u64, PayError> {
        let mut count = 0u64;
        if last == 0 {
            // A zero `timestamp_max` would mean "no bound" to the node.
            return Ok(count);
        }
        let mut timestamp_min = first;
        while timestamp_min <= last {
            let page = self
                .store
                .client()
                .account_transfers(v1::AccountFilter {
                    account_id: Some(account_id.into()),
                    timestamp_min,
                    timestamp_max: last,
                    limit: ACCOUNT_TRANSFERS_PAGE_MAX as u32,
                    reversed: false,
                    stale_ok: false,
                })
                .await?;
            for transfer in &page {
                debug_assert!(transfer.timestamp >= timestamp_min && transfer.timestamp <= last);
                visit(transfer);
            }
            count += page.len() as u64;
            match page.last() {
                Some(transfer) if page.len() == ACCOUNT_TRANSFERS_PAGE_MAX => {
                    timestamp_min = transfer.timestamp.saturating_add(1);
                }
                _ => break,
            }
        }
        Ok(count)
    }

    /// The balances of an account with the `history` flag as of cluster time `at` (its latest
    /// history point at or before `at`; zero before the first), and that point's timestamp.
    pub(crate) async fn balance_at(
        &self,
        account_id: u128,
        at: u64,
    ) -> Result<(Balances, u64), PayError> {
        if at == 0 {
            return Ok((Balances::default(), 0));
        }
        let points = self
            .store
            .client()
            .account_balances(v1::AccountFilter {
                account_id: Some(account_id.into()),
                timestamp_min: 0,
                timestamp_max: at,
                limit: 1,
                reversed: true,
                stale_ok: false,
            })
            .await?;
        Ok(points.first().map_or((Balances::default(), 0), |point| {
            (Balances::of_history(point), point.timestamp)
        }))
    }

    /// The ledger account of a holder in `currency` (the wallet owner must exist).
    async fn holder_account(&self, holder: &Holder, currency: Currency) -> Result<u128, PayError> {
        Ok(match holder {
            Holder::Seller(id) => {
                self.seller(id).await?;
                let owner = ids::number(ids::SELLER, id).expect("checked by seller()");
                chart::account_id(code::SELLER_WALLET, currency, owner)
            }
            Holder::Customer(id) => {
                self.customer(id).await?;
                let owner = ids::number(ids::CUSTOMER, id).expect("checked by customer()");
                chart::account_id(code::CUSTOMER_WALLET, currency, owner)
            }
            Holder::System(system_code) => chart::system_account(*system_code, currency),
        })
    }

    /// One page of a holder's transactions in `period`, after the cursor `after` (a
    /// timestamp), read at a fresh cut.
    pub async fn transactions(
        &self,
        holder: &Holder,
        currency: &str,
        period: Period,
        limit: Option<u32>,
        after: Option<u64>,
    ) -> Result<TransactionPage, PayError> {
        let currency = self.currency(currency)?;
        let limit = limit.unwrap_or(TRANSACTIONS_LIMIT_DEFAULT);
        if limit == 0 || limit > TRANSACTIONS_LIMIT_MAX {
            return Err(PayError::invalid(
                "invalid_limit",
                format!("`limit` must be 1 to {TRANSACTIONS_LIMIT_MAX}"),
            ));
        }
        let account_id = self.holder_account(holder, currency).await?;
        let cut = self.report_cut().await?;
        let period = Period {
            from_ns: period.from_ns.max(after.map_or(0, |a| a.saturating_add(1))),
            ..period
        };
        let mut data = Vec::new();
        if let Some((first, last)) = period.bounds(cut) {
            let page = self
                .store
                .client()
                .account_transfers(v1::AccountFilter {
                    account_id: Some(account_id.into()),
                    timestamp_min: first,
                    timestamp_max: last,
                    limit,
                    reversed: false,
                    stale_ok: false,
                })
                .await?;
            data = page
                .iter()
                .map(|t| Transaction::of(t, account_id))
                .collect();
        }
        let full = data.len() == limit as usize;
        Ok(TransactionPage {
            account: account_name(account_id),
            account_id: format!("{account_id:032x}"),
            currency: currency.code.to_string(),
            cut,
            next_after: data.last().filter(|_| full).map(|t| t.timestamp),
            data,
        })
    }

    /// A seller's statement for `period` in `currency`, read at a fresh cut.
    pub async fn statement(
        &self,
        seller_id: &str,
        currency: &str,
        period: Period,
    ) -> Result<Statement, PayError> {
        let currency = self.currency(currency)?;
        check_id("seller_id", ids::SELLER, seller_id)?;
        let account_id = self
            .holder_account(&Holder::Seller(seller_id.to_string()), currency)
            .await?;
        period.check_bounded()?;
        let cut = self.report_cut().await?;
        let last = period.bounds(cut).map_or(cut, |(_, last)| last);
        let mut statement = Statement {
            seller_id: seller_id.to_string(),
            currency: currency.code.to_string(),
            from: time_of(period.from_ns),
            to: time_of(last.saturating_add(1)),
            cut,
            ..Statement::default()
        };
        let from_ns = period.from_ns;
        self.visit_transfers(account_id, (0, last), |t| {
            statement.add(t, account_id, from_ns)
        })
        .await?;
        let (opening, _) = self
            .balance_at(account_id, from_ns.saturating_sub(1))
            .await?;
        let (closing, _) = self.balance_at(account_id, last).await?;
        statement.ledger_opening_balance = net_posted(&opening);
        statement.ledger_closing_balance = net_posted(&closing);
        statement.check();
        Ok(statement)
    }

    /// Platform revenue per UTC day of `period` in `currency`, read at a fresh cut.
    pub async fn revenue(&self, currency: &str, period: Period) -> Result<RevenueReport, PayError> {
        let currency = self.currency(currency)?;
        period.check_bounded()?;
        let cut = self.report_cut().await?;
        let account_id = chart::system_account(code::PLATFORM_REVENUE, currency);
        let mut days: std::collections::BTreeMap<NaiveDate, RevenueDay> = Default::default();
        let mut total = RevenueDay {
            date: "total".into(),
            ..RevenueDay::default()
        };
        let last = period.bounds(cut).map_or(cut, |(_, last)| last);
        if let Some(bounds) = period.bounds(cut) {
            self.visit_transfers(account_id, bounds, |t| {
                let day = day_of(t.timestamp);
                days.entry(day)
                    .or_insert_with(|| RevenueDay {
                        date: day.to_string(),
                        ..RevenueDay::default()
                    })
                    .add(t, account_id);
                total.add(t, account_id);
            })
            .await?;
        }
        Ok(RevenueReport {
            currency: currency.code.to_string(),
            from: time_of(period.from_ns),
            to: time_of(last.saturating_add(1)),
            cut,
            days: days.into_values().collect(),
            total,
        })
    }
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

    fn transfer(timestamp: u64, code: u16, credit: bool, amount: u128, flags: u32) -> v1::Transfer {
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
        let mut s = Statement::default();
        let held = transfer_flags::PENDING;
        let post = transfer_flags::POST_PENDING_TRANSFER;
        let void = transfer_flags::VOID_PENDING_TRANSFER;
        let movements = [
            transfer(5, transfer_code::PAYIN, true, 1000, post), // before the period
            transfer(6, transfer_code::FEE, false, 55, 0),       // before the period
            transfer(10, transfer_code::PAYIN, true, 5000, held),
            transfer(11, transfer_code::PAYIN, true, 5000, post),
            transfer(12, transfer_code::FEE, false, 155, 0),
            transfer(13, transfer_code::REFUND, false, 2000, held),
            transfer(14, transfer_code::REFUND_FEE_RETURN, true, 62, 0),
            transfer(15, transfer_code::REFUND, false, 2000, post),
            transfer(16, transfer_code::PAYOUT, false, 1000, held),
            transfer(17, transfer_code::PAYOUT, false, 1000, void),
            transfer(18, transfer_code::PAYOUT, false, 700, post),
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
                s.other
            ),
            (5000, -155, -2000, 62, -700, 0)
        );
        assert_eq!(s.movements, 5, "holds and voids are not movements");
        assert_eq!(s.closing_balance, 945 + 5000 - 155 - 2000 + 62 - 700);
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
        day.add(&transfer(1, transfer_code::FEE, true, 320, 0), revenue);
        day.add(
            &transfer(2, transfer_code::REFUND_FEE_RETURN, false, 100, 0),
            revenue,
        );
        day.add(
            &transfer(3, transfer_code::REFUND_FEE_RETURN, true, 40, 0),
            revenue,
        );
        assert_eq!((day.fees, day.fee_returns, day.net), (320, 60, 260));
    }

    #[test]
    fn entry_status_and_posting_follow_the_flags() {
        assert_eq!(EntryStatus::of(transfer_flags::PENDING), EntryStatus::Held);
        assert_eq!(
            EntryStatus::of(transfer_flags::VOID_PENDING_TRANSFER),
            EntryStatus::Voided
        );
        assert_eq!(
            EntryStatus::of(transfer_flags::POST_PENDING_TRANSFER),
            EntryStatus::Posted
        );
        assert!(is_posted(0) && is_posted(transfer_flags::POST_PENDING_TRANSFER));
        assert!(!is_posted(transfer_flags::PENDING));
        assert!(!is_posted(transfer_flags::VOID_PENDING_TRANSFER));
    }

    #[test]
    fn periods_parse_dates_and_instants() {
        let p = Period::parse(Some("2025-03-07"), Some("2025-03-07")).unwrap();
        assert_eq!(p.to_ns.unwrap() - p.from_ns, NANOS_PER_DAY);
        assert_eq!(time_of(p.from_ns), "2025-03-07T00:00:00.000Z");
        let p = Period::parse(Some("2025-03-07T10:00:00+02:00"), None).unwrap();
        assert_eq!(time_of(p.from_ns), "2025-03-07T08:00:00.000Z");
        assert!(Period::parse(Some("2025-03-08"), Some("2025-03-07")).is_err());
        assert!(Period::parse(Some("yesterday"), None).is_err());
        assert!(Period::parse(Some("1969-12-31"), None).is_err());
        // A period after the cut is empty; one across it ends at the cut.
        let p = Period::parse(Some("2025-03-07"), None).unwrap();
        assert_eq!(p.bounds(p.from_ns - 1), None);
        assert_eq!(p.bounds(p.from_ns + 5), Some((p.from_ns, p.from_ns + 5)));
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

    #[test]
    fn names_of_accounts_and_kinds() {
        let usd = Currency::by_code("USD").unwrap();
        assert_eq!(
            account_name(chart::system_account(code::PLATFORM_REVENUE, usd)),
            "platform_revenue"
        );
        assert_eq!(
            account_name(chart::account_id(code::SELLER_WALLET, usd, 255)),
            "sel_00000000000000ff"
        );
        assert_eq!(system_code("psp_clearing"), Some(code::PSP_CLEARING));
        assert_eq!(system_code("sel_00000000000000ff"), None);
        assert_eq!(
            kind_name(u32::from(transfer_code::REFUND_FEE_RETURN)),
            "refund_fee_return"
        );
        assert_eq!(kind_name(999), "code_999");
    }
}
