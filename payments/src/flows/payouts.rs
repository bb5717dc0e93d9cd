//! Pay-out: seller wallet -> linked bank account through the PSP.
//!
//! Creation holds the amount on the wallet (`seller_wallet -> payouts_in_transit`, pending; the
//! wallet can never go below zero) in the same Txn as the payout record. The PSP accepts the
//! payout (`in_transit`) and later reports it `paid` (post the hold, then
//! `payouts_in_transit -> psp_clearing`) or `failed` (void: the money is back in the wallet).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{describe_commit, failure, parse_id, Pay};
use crate::domain::ids::{BankAccountId, Id, PayoutId, SellerId, Unchecked};
use crate::domain::lists::ListKind;
use crate::domain::model::{
    ns, Failure, InflightKind, Payout, PayoutSchedule, PayoutStatus, PayoutTrigger, Seller,
};
use crate::domain::money::{parse_amount, AmountInput, Currency};
use crate::domain::postings::{self, Leg};
use crate::domain::recon::IndexKind;
use crate::edges::psp::{self, BankDestination, PayoutRequest, PspError};
use crate::edges::store::{Commit, Label, Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::{audit, lists, recon};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayout {
    #[schema(value_type = String)]
    pub seller_id: Unchecked<SellerId>,
    pub currency: String,
    #[serde(flatten)]
    pub amount: AmountInput,
    /// A bank account linked to the seller; defaults to the seller's default account.
    #[schema(value_type = Option<String>)]
    pub bank_account_id: Option<Unchecked<BankAccountId>>,
}

/// What one run of automatic daily payouts did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DailyPayoutRun {
    pub date: String,
    pub created: Vec<Payout>,
    /// Sellers on the daily schedule that were skipped, with the reason.
    pub skipped: Vec<String>,
}

/// Sellers the daily payout run reads per page (it pays one page out before reading the next).
pub const DAILY_PAYOUT_PAGE_MAX: u32 = 256;
const _: () = assert!(DAILY_PAYOUT_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

impl Pay {
    pub async fn create_payout(
        self: &Arc<Self>,
        request: NewPayout,
        idempotency_key: &str,
    ) -> Result<Payout, PayError> {
        let currency = self
            .currency(&request.currency)
            .map_err(|e| e.with_param("currency"))?;
        let amount = parse_amount(&request.amount, currency)
            .map_err(|e| PayError::invalid_param("invalid_amount", "amount", e.to_string()))?;
        let seller = self.seller(&request.seller_id).await?;
        let id = PayoutId::derived(idempotency_key);
        self.open_payout(
            &seller,
            currency,
            amount,
            request.bank_account_id.as_deref(),
            &id,
            PayoutTrigger::OnDemand,
        )
        .await?;
        self.step_payout(&id, true).await?;
        self.payout(&id).await
    }

    /// Creates the payout record and its hold in one Txn (nothing if `id` exists already).
    async fn open_payout(
        &self,
        seller: &Seller,
        currency: Currency,
        amount: u64,
        bank_account_id: Option<&str>,
        id: &PayoutId,
        trigger: PayoutTrigger,
    ) -> Result<bool, PayError> {
        if self.store.get::<Payout>(ns::PAYOUT, id).await?.is_some() {
            return Ok(false);
        }
        let bank_account_id = self.payout_bank_account(seller, bank_account_id).await?;
        let now = self.clock.now_ms();
        let payout = Payout {
            id: id.clone(),
            seller_id: seller.id.clone(),
            bank_account_id,
            amount,
            currency: currency.code.to_string(),
            trigger,
            status: PayoutStatus::Pending,
            failure: None,
            psp_id: None,
            attempts: 0,
            next_attempt_at: self.first_check_at(),
            created_at: now,
            updated_at: now,
        };
        let txn = Self::payout_create_txn(&payout, currency, now);
        match self.store.commit(txn).await? {
            Commit::Committed => {
                self.metrics.inc("tally_pay_payouts_created_total");
                Ok(true)
            }
            Commit::ConditionFailed { .. } => Ok(false),
            Commit::TransferFailed {
                label,
                result: result @ tally_client::CreateTransferResult::ExceedsCredits,
            } if label == Label::transfer(id, Leg::Hold) => Err(self
                .insufficient_funds(seller, currency, amount, result)
                .await),
            other => Err(PayError::Internal(format!(
                "creating payout {id}: {}",
                describe_commit(&other)
            ))),
        }
    }

    /// The bank account a payout goes to: the one asked for, or the seller's default; either
    /// must be linked to the seller.
    async fn payout_bank_account(
        &self,
        seller: &Seller,
        bank_account_id: Option<&str>,
    ) -> Result<BankAccountId, PayError> {
        let not_linked = |what: String| {
            PayError::unprocessable(
                "bank_account_not_linked",
                format!(
                    "{what}; link one with POST /v1/sellers/{}/bank_accounts",
                    seller.id
                ),
            )
        };
        let bank_id = match bank_account_id.or(seller.default_bank_account.as_deref()) {
            Some(bank_id) => bank_id,
            None => {
                return Err(not_linked(format!(
                    "seller {} has no bank account",
                    seller.id
                )))
            }
        };
        let Some(bank) = self.bank_account_record(&seller.id, bank_id).await? else {
            return Err(not_linked(format!(
                "bank account {bank_id} is not linked to seller {}",
                seller.id
            )));
        };
        Ok(bank.id)
    }

    /// The Txn that opens a payout: the payout stored, indexed and tracked, and the amount held
    /// on the seller's wallet.
    fn payout_create_txn(payout: &Payout, currency: Currency, now: i64) -> Txn {
        let id = &payout.id;
        let entry = lists::parties(Some(&payout.seller_id), None);
        let txn = lists::listed(Txn::new(), ListKind::Payout, id, payout.created_at, &entry);
        Self::track(
            recon::indexed(
                audit::stamp(txn, "payout.create", id)
                    .require_version(ns::PAYOUT, id, 0)
                    .put(ns::PAYOUT, id, payout)
                    .event(ns::PAYOUT, None, payout),
                IndexKind::Payout,
                id,
                now,
            ),
            InflightKind::Payout,
            id,
        )
        .postings([postings::payout_opened(
            id,
            currency,
            payout.seller_id.number(),
            payout.amount,
        )])
    }

    /// The error for a payout larger than the seller's wallet holds, naming what it holds and
    /// what is still pending in escrow (which payouts cannot use).
    async fn insufficient_funds(
        &self,
        seller: &Seller,
        currency: Currency,
        amount: u64,
        result: tally_client::CreateTransferResult,
    ) -> PayError {
        let (available, pending) = self
            .balances(&seller.id)
            .await
            .ok()
            .and_then(|b| b.into_iter().find(|b| b.currency == currency.code))
            .map_or((0, 0), |b| (b.available, b.pending));
        PayError::unprocessable(
            "insufficient_funds",
            format!(
                "the wallet of seller {} holds {} {} available, less than the payout of {} {} \
                 ({}; {} {} pending in escrow, not yet released)",
                seller.id,
                currency.format(available),
                currency.code,
                currency.format(amount),
                currency.code,
                result,
                currency.format(pending),
                currency.code,
            ),
        )
    }

    pub async fn payout(&self, id: &str) -> Result<Payout, PayError> {
        let id: PayoutId = parse_id("payout_id", id)?;
        Ok(self.load(ns::PAYOUT, &id, "payout").await?.value)
    }

    pub(crate) async fn step_payout(&self, id: &str, first: bool) -> Result<(), PayError> {
        let Some(current) = self.store.get::<Payout>(ns::PAYOUT, id).await? else {
            return Ok(());
        };
        let payout = current.value;
        if !matches!(
            payout.status,
            PayoutStatus::Pending | PayoutStatus::InTransit
        ) || (!first && payout.next_attempt_at > self.clock.now_ms())
        {
            return Ok(());
        }
        let outcome = if payout.status == PayoutStatus::Pending && payout.attempts == 0 {
            match self.payout_request(&payout).await {
                Ok(request) => self.psp.payout(&request).await,
                Err(error) => return self.payout_request_failed(id, error).await,
            }
        } else {
            match self.psp.payout_status(&payout.id).await {
                Err(PspError::NotFound) => match self.payout_request(&payout).await {
                    Ok(request) => self.psp.payout(&request).await,
                    Err(error) => return self.payout_request_failed(id, error).await,
                },
                other => other,
            }
        };
        self.metrics.psp_call("payout", &outcome);
        match outcome {
            Ok(p) => match p.status {
                psp::PayoutStatus::Paid => self.settle_payout(id, Ok(p.psp_id)).await.map(drop),
                psp::PayoutStatus::Failed { code, message } => self
                    .settle_payout(id, Err(failure(&code, message)))
                    .await
                    .map(drop),
                psp::PayoutStatus::Pending => self.payout_in_transit(id, &p.psp_id).await,
            },
            Err(PspError::Declined { code, message }) => self
                .settle_payout(id, Err(failure(&code, message)))
                .await
                .map(drop),
            Err(PspError::Invalid { message }) => self
                .settle_payout(id, Err(failure("psp_rejected", message)))
                .await
                .map(drop),
            Err(error) => self.retry_later::<Payout>(id, &error.to_string()).await,
        }
    }

    /// The PSP request could not be built (e.g. the bank number does not decrypt with any
    /// configured data key): that counts as a failed attempt, so the payout reaches the dead
    /// letters with the reason instead of failing the same way forever. A cluster outage is not
    /// an attempt: nothing was learnt about the payout.
    async fn payout_request_failed(&self, id: &str, error: PayError) -> Result<(), PayError> {
        if matches!(error, PayError::Unavailable(_)) {
            return Err(error);
        }
        tracing::warn!(payout = %id, %error, "cannot build the PSP payout request");
        self.metrics.inc("tally_pay_psp_request_unbuildable_total");
        self.retry_later::<Payout>(id, &format!("cannot build the PSP request: {error}"))
            .await
    }

    async fn payout_request(&self, payout: &Payout) -> Result<PayoutRequest, PayError> {
        let bank = self
            .bank_account_record(&payout.seller_id, &payout.bank_account_id)
            .await?
            .ok_or_else(|| {
                PayError::Internal(format!("payout {} lost its bank account", payout.id))
            })?;
        let number = self
            .sealer
            .open(&bank.encrypted_number)
            .map_err(|e| PayError::Internal(format!("bank account {}: {e}", bank.id)))?;
        let (iban, account_number) = match bank.kind {
            crate::domain::model::BankAccountKind::Iban => (Some(number), None),
            crate::domain::model::BankAccountKind::UsAch => (None, Some(number)),
        };
        Ok(PayoutRequest {
            reference: payout.id.to_string(),
            amount: payout.amount,
            currency: payout.currency.clone(),
            destination: BankDestination {
                holder_name: bank.holder_name,
                country: bank.country,
                iban,
                account_number,
                routing_number: bank.routing_number,
            },
        })
    }

    /// The PSP accepted the payout; check back on it later (not counted as a failed attempt).
    async fn payout_in_transit(&self, id: &str, psp_id: &str) -> Result<(), PayError> {
        let poll_ms = i64::try_from(self.config.worker.backoff_max_ms.min(5000)).unwrap_or(5000);
        self.update::<Payout, _>(ns::PAYOUT, id, |payout| {
            if payout.status.is_terminal() {
                return None;
            }
            let mut next = payout.clone();
            next.status = PayoutStatus::InTransit;
            next.psp_id = Some(psp_id.to_string());
            next.attempts = next.attempts.max(1);
            next.next_attempt_at = self.clock.now_ms() + poll_ms;
            next.updated_at = self.clock.now_ms();
            Some((next, Txn::new()))
        })
        .await?;
        Ok(())
    }

    /// Settles a payout once: paid posts the hold and moves it on to `psp_clearing`; failed
    /// voids the hold (the money is back in the wallet).
    pub(crate) async fn settle_payout(
        &self,
        id: &str,
        outcome: Result<String, Failure>,
    ) -> Result<Payout, PayError> {
        let settled = self
            .update::<Payout, _>(ns::PAYOUT, id, |payout| {
                if payout.status.is_terminal() {
                    return None;
                }
                let currency = Currency::by_code(&payout.currency)?;
                let mut next = payout.clone();
                next.updated_at = self.clock.now_ms();
                let mut txn = Self::untrack(Txn::new(), id);
                match &outcome {
                    Ok(psp_id) => {
                        next.status = PayoutStatus::Paid;
                        next.psp_id = Some(psp_id.clone());
                        next.failure = None;
                        txn = txn.postings(postings::payout_paid(id, currency, payout.amount));
                    }
                    Err(reason) => {
                        next.status = PayoutStatus::Failed;
                        next.failure = Some(reason.clone());
                        txn = txn.postings([postings::hold_voided(id)]);
                    }
                }
                Some((next, txn))
            })
            .await?;
        Ok(settled)
    }

    /// Automatic payouts for `date` (UTC, `YYYY-MM-DD`): every seller on the daily schedule with
    /// a default bank account gets one payout per currency of its whole available balance. The
    /// payout id is derived from seller, date and currency, so a day is paid out at most once
    /// however often this runs.
    pub async fn run_daily_payouts(
        self: &Arc<Self>,
        date: chrono::NaiveDate,
    ) -> Result<DailyPayoutRun, PayError> {
        let mut run = DailyPayoutRun {
            date: date.to_string(),
            ..DailyPayoutRun::default()
        };
        let mut cursor = String::new();
        loop {
            let sellers = self
                .store
                .next_page::<Seller>(ns::SELLER, "", &mut cursor, DAILY_PAYOUT_PAGE_MAX)
                .await?;
            if sellers.is_empty() {
                return Ok(run);
            }
            for (_, seller) in sellers {
                self.daily_payouts_of(seller.value, date, &mut run).await?;
            }
        }
    }

    /// The automatic payouts of one seller for `date`, recorded in `run`.
    async fn daily_payouts_of(
        self: &Arc<Self>,
        seller: Seller,
        date: chrono::NaiveDate,
        run: &mut DailyPayoutRun,
    ) -> Result<(), PayError> {
        if seller.payout_schedule != PayoutSchedule::Daily {
            return Ok(());
        }
        if seller.default_bank_account.is_none() {
            run.skipped.push(format!("{}: no bank account", seller.id));
            return Ok(());
        }
        for balance in self.balances(&seller.id).await? {
            if balance.available == 0 {
                continue;
            }
            let currency = self.currency(&balance.currency)?;
            let id = PayoutId::derived(&format!("daily/{}/{date}/{}", seller.id, currency.code));
            match self
                .open_payout(
                    &seller,
                    currency,
                    balance.available,
                    None,
                    &id,
                    PayoutTrigger::Automatic,
                )
                .await
            {
                Ok(true) => {
                    self.step_payout(&id, true).await?;
                    run.created.push(self.payout(&id).await?);
                }
                Ok(false) => {}
                Err(error) => run
                    .skipped
                    .push(format!("{} {}: {error}", seller.id, currency.code)),
            }
        }
        Ok(())
    }
}
