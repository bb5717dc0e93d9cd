//! The reports themselves, each over one consistent cut.

use tally_client::{AccountFilter, Balances, Transfer};

use super::{
    Holder, Period, RevenueDay, RevenueReport, Statement, Transaction, TransactionPage,
    ACCOUNT_TRANSFERS_PAGE_MAX, CUT_KEY, TRANSACTIONS_LIMIT_DEFAULT, TRANSACTIONS_LIMIT_MAX,
};
use chrono::NaiveDate;

use super::{day_of, net_posted, time_of};
use crate::domain::chart::{self, account_name, code};
use crate::domain::ids::SellerId;
use crate::domain::model::ns;
use crate::domain::money::Currency;
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::{describe_commit, parse_id, Pay};

impl Pay {
    /// Takes a consistent cut: writes the cut record and returns that write's cluster
    /// timestamp. Every transfer with a smaller timestamp committed before it.
    pub async fn report_cut(&self) -> Result<u64, PayError> {
        let txn = Txn::new().put(ns::REPORT_CUT, CUT_KEY, &self.clock.now_ms());
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
        mut visit: impl FnMut(&Transfer),
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
                .account_transfers(AccountFilter {
                    account_id,
                    timestamp_min,
                    timestamp_max: last,
                    limit: ACCOUNT_TRANSFERS_PAGE_MAX as u32,
                    reversed: false,
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
            .account_balances(AccountFilter {
                account_id,
                timestamp_min: 0,
                timestamp_max: at,
                limit: 1,
                reversed: true,
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
                let owner = self.seller(id).await?.id.number();
                chart::account_id(code::SELLER_WALLET, currency, owner)
            }
            Holder::Customer(id) => {
                let owner = self.customer(id).await?.id.number();
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
            return Err(PayError::invalid_param(
                "invalid_limit",
                "limit",
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
                .account_transfers(AccountFilter {
                    account_id,
                    timestamp_min: first,
                    timestamp_max: last,
                    limit,
                    reversed: false,
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
        let seller_id: SellerId = parse_id("seller_id", seller_id)?;
        let account_id = self
            .holder_account(&Holder::Seller(seller_id.clone().into()), currency)
            .await?;
        period.check_bounded()?;
        let cut = self.report_cut().await?;
        let last = period.bounds(cut).map_or(cut, |(_, last)| last);
        let mut statement = Statement::new(
            seller_id,
            currency.code,
            time_of(period.from_ns),
            time_of(last.saturating_add(1)),
            cut,
        );
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
