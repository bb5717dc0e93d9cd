//! Deposits: a charge to one of the customer's cards into their own wallet. A deposit is an
//! order of kind `deposit` (`pay.order`), created `processing` with its hold in one Txn, then
//! charged and settled exactly like a payment order (`charges.rs`).

use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;

use super::{describe_commit, Pay};
use crate::domain::ids::{CardId, ChargeId, CustomerId, DepositId, Id, Unchecked};
use crate::domain::model::{ns, ChargeKind, Customer, Escrow, InflightKind, Order};
use crate::domain::money::{parse_amount, AmountInput, Currency};
use crate::domain::postings;
use crate::domain::recon::IndexKind;
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::risk::RiskContext;
use crate::flows::{audit, recon};

/// A deposit into the customer's own wallet, charged to one of their cards.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeposit {
    #[schema(value_type = String)]
    pub customer_id: Unchecked<CustomerId>,
    #[schema(value_type = String)]
    pub card_id: Unchecked<CardId>,
    pub currency: String,
    #[serde(flatten)]
    pub amount: AmountInput,
}

impl Pay {
    /// A deposit: one charge into the customer's own wallet.
    pub async fn create_deposit(
        self: &Arc<Self>,
        request: NewDeposit,
        idempotency_key: &str,
    ) -> Result<Order, PayError> {
        let currency = self
            .currency(&request.currency)
            .map_err(|e| e.with_param("currency"))?;
        let amount = parse_amount(&request.amount, currency)
            .map_err(|e| PayError::invalid_param("invalid_amount", "amount", e.to_string()))?;
        let customer = self.customer(&request.customer_id).await?;
        let card = self.card(&customer.id, &request.card_id).await?;
        let id = DepositId::derived(idempotency_key);
        if self.store.get::<Order>(ns::ORDER, &id).await?.is_none() {
            self.check_deposit_risk(&customer, currency, amount)?;
            let record = self.new_deposit(&id, &customer, card.id, amount, currency);
            self.commit_new_deposit(&record, currency).await?;
        }
        self.step_order(&id, true).await?;
        self.order(&id).await
    }

    fn check_deposit_risk(
        &self,
        customer: &Customer,
        currency: Currency,
        amount: u64,
    ) -> Result<(), PayError> {
        self.risk
            .check(&RiskContext {
                customer_id: &customer.id,
                customer_email: &customer.email,
                currency: currency.code,
                order_amounts: &[amount],
            })
            .map_err(|r| PayError::Risk {
                code: r.code,
                message: format!("deposit refused by risk checks: {}", r.message),
            })
    }

    fn new_deposit(
        &self,
        id: &DepositId,
        customer: &Customer,
        card_id: CardId,
        amount: u64,
        currency: Currency,
    ) -> Order {
        let now = self.clock.now_ms();
        Order::opened(
            ChargeId::from(id.clone()),
            ChargeKind::Deposit,
            customer.id.clone(),
            card_id,
            amount,
            currency.code,
            self.first_check_at(),
            now,
        )
    }

    /// One Txn: the deposit stored, indexed and tracked, with the customer's wallet and the
    /// deposit's hold. A concurrent attempt with the same key that committed first is fine.
    async fn commit_new_deposit(&self, record: &Order, currency: Currency) -> Result<(), PayError> {
        let id = &record.id;
        let owner = record.customer_id.number();
        let wallet = postings::charge_wallet(ChargeKind::Deposit, Escrow::NotHeld, currency, owner);
        let hold = postings::charge_opened(
            id,
            (ChargeKind::Deposit, Escrow::NotHeld),
            currency,
            owner,
            record.amount,
        );
        let txn = Self::track(
            recon::indexed(
                audit::stamp(Txn::new(), "deposit.create", id)
                    .require_version(ns::ORDER, id, 0)
                    .put(ns::ORDER, id, record)
                    .event(ns::ORDER, None, record),
                IndexKind::Order,
                id,
                record.created_at,
            ),
            InflightKind::Order,
            id,
        )
        .account(wallet)
        .postings([hold]);
        match self.store.commit(txn).await? {
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(PayError::Internal(format!(
                "creating deposit {id}: {}",
                describe_commit(&other)
            ))),
        }
    }
}
