//! Pay-in: payment events with one order per seller (deposits, `deposits.rs`, are charged and
//! settled the same way).
//!
//! An order is created `processing` together with a pending transfer
//! `psp_clearing -> wallet` (one Txn). The PSP is then charged with the order id as its
//! idempotency key. Success posts the transfer and the platform fee and marks the order
//! `succeeded` (one Txn; an order held in escrow is captured into the seller's pending balance
//! and filed in the escrow index for its release, `escrow.rs`); a definite decline voids it and marks it `failed`; a card that needs
//! 3-D Secure makes it wait `requires_action` for its customer (`action.rs`); anything else leaves
//! it `processing` for the worker (status query with backoff) or the webhook, whichever is first.

use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;

use super::{check_text, checked, describe_commit, failure, parse_id, Pay};
use crate::domain::capture::{self, CaptureMethod};
use crate::domain::escrow;
use crate::domain::ids::{
    CardId, ChargeId, CustomerId, Id, OrderId, PaymentId, SellerId, Unchecked,
};
use crate::domain::lists::ListKind;
use crate::domain::model::{
    ns, ChargeKind, ChargeStatus, Customer, Escrow, Failure, InflightKind, Order, Payment,
    PaymentRecord,
};
use crate::domain::money::{parse_amount, AmountInput, Currency, ORDERS_PER_PAYMENT_MAX};
use crate::domain::postings;
use crate::domain::recon::IndexKind;
use crate::edges::psp::{self, ChargeRequest, PspError};
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::capture::{captured, Captured};
use crate::flows::conversion;
use crate::flows::risk::RiskContext;
use crate::flows::{audit, disputes, lists, recon};

/// A checkout: one payment event, one order per seller.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    #[schema(value_type = String)]
    pub customer_id: Unchecked<CustomerId>,
    #[schema(value_type = String)]
    pub card_id: Unchecked<CardId>,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    pub orders: Vec<NewOrder>,
    pub description: Option<String>,
    /// `automatic` (the default): charged at once. `manual`: only authorized
    /// (`requires_capture`), then captured with `POST /v1/payment_orders/{id}/capture`, in full
    /// or in part, or canceled; canceled automatically after `pay.authorization_validity_s`.
    #[serde(default)]
    pub capture: CaptureMethod,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[schema(value_type = String)]
    pub seller_id: Unchecked<SellerId>,
    #[serde(flatten)]
    pub amount: AmountInput,
}

/// What a checkout's records are made of, once its ids are parsed and its parties loaded.
struct NewRecords<'a> {
    payment_id: &'a PaymentId,
    customer_id: &'a CustomerId,
    card_id: &'a CardId,
    sellers: &'a [SellerId],
    amounts: &'a [u64],
    /// Each seller's hold period (seconds; 0: no escrow).
    hold_periods: &'a [u64],
    /// Each seller's payout currency, when not the checkout's.
    payout_currencies: &'a [Option<String>],
    capture: CaptureMethod,
}

/// A checkout's orders as sellers and amounts, in order: one order per seller, 1 to
/// `ORDERS_PER_PAYMENT_MAX` of them.
fn parse_orders(
    orders: &[NewOrder],
    currency: Currency,
) -> Result<(Vec<SellerId>, Vec<u64>), PayError> {
    if orders.is_empty() || orders.len() > ORDERS_PER_PAYMENT_MAX {
        return Err(PayError::invalid_param(
            "invalid_orders",
            "orders",
            format!("`orders` must hold 1 to {ORDERS_PER_PAYMENT_MAX} orders"),
        ));
    }
    let mut amounts = Vec::with_capacity(orders.len());
    let mut sellers: Vec<SellerId> = Vec::with_capacity(orders.len());
    for (index, order) in orders.iter().enumerate() {
        sellers.push(checked("orders[].seller_id", &order.seller_id)?);
        if orders[..index]
            .iter()
            .any(|o| o.seller_id == order.seller_id)
        {
            return Err(PayError::invalid(
                "duplicate_seller",
                format!(
                    "seller {} appears in two orders; one order per seller",
                    order.seller_id
                ),
            ));
        }
        let amount = parse_amount(&order.amount, currency).map_err(|e| {
            PayError::invalid_param(
                "invalid_amount",
                format!("orders[{index}].amount"),
                format!("orders[{index}]: {e}"),
            )
        })?;
        amounts.push(amount);
    }
    Ok((sellers, amounts))
}

impl Pay {
    /// Risk check, then the payment and its orders (with their holds) in one Txn, then the first
    /// PSP attempt of every order. Returns the payment as it stands after those attempts.
    pub async fn create_payment(
        self: &Arc<Self>,
        request: NewPayment,
        idempotency_key: &str,
    ) -> Result<Payment, PayError> {
        let currency = self
            .currency(&request.currency)
            .map_err(|e| e.with_param("currency"))?;
        let customer_id = checked("customer_id", &request.customer_id)?;
        if let Some(description) = &request.description {
            check_text("description", description)?;
        }
        let (sellers, amounts) = parse_orders(&request.orders, currency)?;
        let customer: Customer = self.customer(&customer_id).await?;
        let card = self.card(&customer.id, &request.card_id).await?;
        let hold_periods = self.check_sellers_exist(&sellers).await?;
        let payout_currencies = self.payout_currencies(&sellers, currency, &amounts).await?;
        let payment_id = PaymentId::derived(idempotency_key);
        // A retried request finds the payment its first attempt created and carries on with it.
        if self
            .store
            .get::<PaymentRecord>(ns::PAYMENT, &payment_id)
            .await?
            .is_none()
        {
            self.check_risk(&customer, currency, &amounts)?;
            let new = NewRecords {
                payment_id: &payment_id,
                customer_id: &customer.id,
                card_id: &card.id,
                sellers: &sellers,
                amounts: &amounts,
                hold_periods: &hold_periods,
                payout_currencies: &payout_currencies,
                capture: request.capture,
            };
            self.commit_new_payment(new, currency).await?;
            self.metrics.inc("tally_pay_payments_created_total");
        }
        let record: PaymentRecord = self.load(ns::PAYMENT, &payment_id, "payment").await?.value;
        self.first_attempts(&record, &payment_id).await;
        self.payment(&payment_id).await
    }

    /// Every seller of a checkout must exist; one that does not is the request's fault.
    /// Returns each seller's hold period.
    async fn check_sellers_exist(&self, sellers: &[SellerId]) -> Result<Vec<u64>, PayError> {
        let mut hold_periods = Vec::with_capacity(sellers.len());
        for seller_id in sellers {
            let seller = self.seller(seller_id).await.map_err(|e| match e {
                PayError::NotFound { what } => {
                    PayError::unprocessable("seller_not_found", what.to_string())
                }
                other => other,
            })?;
            hold_periods.push(self.hold_period_s(&seller));
        }
        Ok(hold_periods)
    }

    fn check_risk(
        &self,
        customer: &Customer,
        currency: Currency,
        amounts: &[u64],
    ) -> Result<(), PayError> {
        self.risk
            .check(&RiskContext {
                customer_id: &customer.id,
                customer_email: &customer.email,
                currency: currency.code,
                order_amounts: amounts,
            })
            .map_err(|r| PayError::Risk {
                code: r.code,
                message: format!("payment refused by risk checks: {}", r.message),
            })
    }

    /// Charges each order of a new payment at once, side by side; what fails is retried later.
    async fn first_attempts(self: &Arc<Self>, record: &PaymentRecord, payment_id: &PaymentId) {
        let mut tasks = tokio::task::JoinSet::new();
        for order_id in record.order_ids.clone() {
            let pay = Arc::clone(self);
            tasks.spawn(async move { pay.step_order(&order_id, true).await });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(error)) = joined {
                tracing::warn!(payment = %payment_id, %error, "first attempt of an order failed");
            }
        }
    }

    async fn commit_new_payment(
        &self,
        new: NewRecords<'_>,
        currency: Currency,
    ) -> Result<(), PayError> {
        let NewRecords {
            payment_id,
            customer_id,
            card_id,
            sellers,
            amounts,
            hold_periods,
            payout_currencies,
            capture: _,
        } = new;
        let now = self.clock.now_ms();
        let mut order_ids = Vec::new();
        let mut txn = audit::stamp(Txn::new(), "payment.create", payment_id).require_version(
            ns::PAYMENT,
            payment_id,
            0,
        );
        for (index, (seller_id, amount)) in sellers.iter().zip(amounts).enumerate() {
            let order_id = OrderId::derived(&format!("{payment_id}/{index}"));
            let mut record = self.new_order(&new, &order_id, seller_id, *amount, currency, now);
            record.hold_period_s = hold_periods[index];
            record.payout_currency = payout_currencies[index].clone();
            if record.hold_period_s > 0 {
                record.escrow = Escrow::Held;
            }
            txn = Self::add_order(txn, &record, seller_id, currency, now);
            order_ids.push(order_id);
        }
        let record = PaymentRecord {
            id: payment_id.clone(),
            customer_id: customer_id.clone(),
            card_id: card_id.clone(),
            currency: currency.code.to_string(),
            amount: amounts.iter().sum(),
            order_ids,
            created_at: now,
        };
        let entry = lists::parties(None, Some(customer_id));
        let txn = lists::listed(txn, ListKind::Payment, payment_id, now, &entry)
            .put(ns::PAYMENT, payment_id, &record)
            .event(ns::PAYMENT, None, &record);
        match self.store.commit(txn).await? {
            // Condition failed: a concurrent attempt with the same key committed it first.
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(PayError::Internal(format!(
                "creating payment {payment_id}: {}",
                describe_commit(&other)
            ))),
        }
    }

    fn new_order(
        &self,
        new: &NewRecords<'_>,
        order_id: &OrderId,
        seller_id: &SellerId,
        amount: u64,
        currency: Currency,
        now: i64,
    ) -> Order {
        Order {
            payment_id: Some(new.payment_id.clone()),
            seller_id: Some(seller_id.clone()),
            fee: self.fee.fee(amount),
            capture: new.capture,
            ..Order::opened(
                ChargeId::from(order_id.clone()),
                ChargeKind::Order,
                new.customer_id.clone(),
                new.card_id.clone(),
                amount,
                currency.code,
                self.first_check_at(),
                now,
            )
        }
    }

    /// Adds a new order to its payment's Txn: stored, indexed and tracked, with the seller's
    /// wallet (or pending balance, held in escrow) and the order's hold.
    fn add_order(
        txn: Txn,
        record: &Order,
        seller_id: &SellerId,
        currency: Currency,
        now: i64,
    ) -> Txn {
        let order_id = &record.id;
        let owner = seller_id.number();
        let kind = (ChargeKind::Order, record.escrow);
        let wallet = postings::charge_wallet(kind.0, kind.1, currency, owner);
        let hold = postings::charge_opened(order_id, kind, currency, owner, record.amount);
        let entry = lists::parties(Some(seller_id), Some(&record.customer_id));
        let txn = lists::listed(txn, ListKind::PaymentOrder, order_id, now, &entry);
        Self::track(
            recon::indexed(
                txn.require_version(ns::ORDER, order_id, 0)
                    .put(ns::ORDER, order_id, record)
                    .event(ns::ORDER, None, record),
                IndexKind::Order,
                order_id,
                now,
            ),
            InflightKind::Order,
            order_id,
        )
        .account(wallet)
        .postings([hold])
    }

    pub async fn order(&self, id: &str) -> Result<Order, PayError> {
        let id: ChargeId = id.parse().map_err(|_| {
            PayError::invalid(
                "invalid_id",
                "the id is not a payment order (ord_...) or deposit (dep_...) id",
            )
        })?;
        Ok(self.load(ns::ORDER, &id, "payment order").await?.value)
    }

    pub async fn payment(&self, id: &str) -> Result<Payment, PayError> {
        let id: PaymentId = parse_id("payment_id", id)?;
        let record: PaymentRecord = self.load(ns::PAYMENT, &id, "payment").await?.value;
        let mut orders = Vec::with_capacity(record.order_ids.len());
        for order_id in &record.order_ids {
            orders.push(
                self.load::<Order>(ns::ORDER, order_id, "payment order")
                    .await?
                    .value,
            );
        }
        Ok(Payment::of(record, orders))
    }

    /// One step of an order that is still processing: charge (or, with manual capture,
    /// authorize; or find out how that went) and settle. `first` is the API's own attempt; the
    /// worker only takes due orders.
    pub(crate) async fn step_order(&self, id: &str, first: bool) -> Result<(), PayError> {
        let Some(current) = self.store.get::<Order>(ns::ORDER, id).await? else {
            return Ok(());
        };
        let order = current.value;
        if order.status != ChargeStatus::Processing {
            return Ok(());
        }
        if !first && order.next_attempt_at > self.clock.now_ms() {
            return Ok(());
        }
        let request = self.charge_request(&order).await?;
        let manual = order.capture == CaptureMethod::Manual;
        let outcome = if order.attempts == 0 {
            self.send_charge(&request, manual).await
        } else {
            match self.psp.charge_status(&order.id).await {
                // The PSP never saw it: charge now, under the same idempotency key.
                Err(PspError::NotFound) => self.send_charge(&request, manual).await,
                other => other,
            }
        };
        self.metrics.psp_call("charge", &outcome);
        let settled = match outcome {
            Ok(charge) => match charge.status {
                psp::ChargeStatus::Succeeded => self.settle_charge(id, Ok(captured(&charge))),
                psp::ChargeStatus::Authorized if manual => {
                    return self.authorized(id, charge.psp_id).await;
                }
                psp::ChargeStatus::RequiresAction { url } => {
                    return self.requires_action(id, &charge.psp_id, &url).await;
                }
                psp::ChargeStatus::Authorized => {
                    return self
                        .retry_later::<Order>(id, "charge authorized but not captured")
                        .await;
                }
                psp::ChargeStatus::Failed { code, message } => {
                    self.settle_charge(id, Err(failure(&code, message)))
                }
                psp::ChargeStatus::Canceled => self.settle_charge(
                    id,
                    Err(failure("authorization_canceled", "canceled at the PSP")),
                ),
            },
            Err(PspError::Declined { code, message }) => {
                self.settle_charge(id, Err(failure(&code, message)))
            }
            Err(PspError::Invalid { message }) => {
                self.settle_charge(id, Err(failure("psp_rejected", message)))
            }
            Err(error) => return self.retry_later::<Order>(id, &error.to_string()).await,
        };
        settled.await.map(drop)
    }

    /// The PSP request of an order's charge, with its card's token.
    async fn charge_request(&self, order: &Order) -> Result<ChargeRequest, PayError> {
        let card = self.card(&order.customer_id, &order.card_id).await?;
        Ok(ChargeRequest {
            reference: order.id.to_string(),
            card_token: card.token,
            amount: order.amount,
            currency: order.currency.clone(),
            description: order.payment_id.as_deref().map_or_else(
                || format!("deposit {}", order.id),
                |p| format!("payment {p}"),
            ),
        })
    }

    /// Charges, or with manual capture only authorizes.
    async fn send_charge(
        &self,
        request: &ChargeRequest,
        manual: bool,
    ) -> Result<psp::Charge, PspError> {
        if manual {
            self.psp.authorize(request).await
        } else {
            self.psp.charge(request).await
        }
    }

    /// Settles an order once: `Ok((psp_id, psp_fee))` posts the hold (all of it) and the
    /// platform fee, `Err(failure)` voids the hold. An order already settled is left alone (a
    /// second answer is a no-op).
    pub(crate) async fn settle_order(
        &self,
        id: &str,
        outcome: Result<(String, u64), Failure>,
    ) -> Result<Order, PayError> {
        let outcome = outcome.map(|(psp_id, psp_fee)| Captured {
            psp_id,
            psp_fee,
            amount: None,
            rate: None,
        });
        self.settle_charge(id, outcome).await
    }

    /// Settles an order once, as [`Pay::settle_order`]; an authorized order (manual capture)
    /// is captured for the amount the PSP captured, with the fee on that amount.
    pub(crate) async fn settle_charge(
        &self,
        id: &str,
        mut outcome: Result<Captured, Failure>,
    ) -> Result<Order, PayError> {
        if let Ok(captured) = &mut outcome {
            captured.rate = self.capture_rate(id).await?;
        }
        let mut changed = false;
        // A capture repays its seller's recovery first (`disputes.rs`).
        let recovery = match &outcome {
            Ok(_) => self.recovery_of(id).await?,
            Err(_) => 0,
        };
        let settled = self
            .update::<Order, _>(ns::ORDER, id, |order| {
                let planned = self.settle_plan(order, &outcome, recovery);
                changed = planned.is_some();
                planned
            })
            .await?;
        if !changed {
            return Ok(settled);
        }
        if settled.status == ChargeStatus::Succeeded {
            self.metrics.inc("tally_pay_orders_succeeded_total");
        } else if settled.status == ChargeStatus::Failed {
            self.metrics.inc("tally_pay_orders_failed_total");
        }
        Ok(settled)
    }

    /// The settled order and its Txn, or `None` when it is settled already.
    fn settle_plan(
        &self,
        order: &Order,
        outcome: &Result<Captured, Failure>,
        recovery: u64,
    ) -> Option<(Order, Txn)> {
        if order.status.is_terminal() {
            if !matches!(
                (outcome, order.status),
                (Ok(_), ChargeStatus::Succeeded) | (Err(_), ChargeStatus::Failed)
            ) {
                tracing::error!(order = %order.id, status = ?order.status, answer = ?outcome,
                    "the PSP's answer contradicts the settled order; left for reconciliation");
            }
            return None;
        }
        let currency = Currency::by_code(&order.currency)?;
        let mut next = order.clone();
        next.updated_at = self.clock.now_ms();
        let mut txn = Self::untrack(Txn::new(), &order.id);
        if let Some(at) = order.authorization_expires_at {
            txn = txn.delete(ns::AUTHORIZATION, &capture::expiry_key(at, &order.id));
        }
        txn = Self::end_action(txn, order, &mut next);
        match outcome {
            Ok(captured) => {
                let (mut next, txn) = self.captured_plan(order, next, txn, currency, captured)?;
                // A seller's recovery is owed in the disputed charge's currency: only an order
                // whose share stays in that currency repays it.
                let txn = match next.fx {
                    None => disputes::repay_recovery(&mut next, txn, currency, recovery),
                    Some(_) => txn,
                };
                Some((next, txn))
            }
            Err(reason) => {
                next.status = ChargeStatus::Failed;
                next.failure = Some(reason.clone());
                Some((next, txn.postings([postings::hold_voided(&order.id)])))
            }
        }
    }

    /// A captured order: the hold posted (for the captured amount of an authorization), the
    /// fee taken, an order held in escrow filed in the escrow index for its release, and the
    /// share converted into the seller's payout currency (`None`: it cannot be, yet).
    fn captured_plan(
        &self,
        order: &Order,
        mut next: Order,
        mut txn: Txn,
        currency: Currency,
        captured: &Captured,
    ) -> Option<(Order, Txn)> {
        let authorized = order.status == ChargeStatus::RequiresCapture;
        if authorized {
            let amount = captured
                .amount
                .unwrap_or(order.amount)
                .clamp(1, order.amount);
            let fee = match order.kind {
                ChargeKind::Order => self.fee.fee(amount),
                ChargeKind::Deposit => 0,
            };
            next = capture::captured(&next, amount, fee);
            txn = audit::stamp(txn, "payment_order.capture", &order.id);
        }
        next.status = ChargeStatus::Succeeded;
        next.psp_id = Some(captured.psp_id.clone());
        next.psp_fee = captured.psp_fee;
        next.failure = None;
        let seller_fee = match (order.kind, &order.seller_id) {
            (ChargeKind::Order, Some(seller)) if next.fee > 0 => Some((seller.number(), next.fee)),
            _ => None,
        };
        txn = txn.postings(if authorized {
            postings::charge_captured(&order.id, currency, seller_fee, order.escrow, next.amount)
        } else {
            postings::charge_succeeded(&order.id, currency, seller_fee, order.escrow)
        });
        if order.escrow == Escrow::Held {
            let at = escrow::release_at(next.updated_at, order.hold_period_s);
            next.release_at = Some(at);
            txn = txn.put(ns::ESCROW, &escrow::release_key(at, &order.id), &order.id);
        }
        let txn = conversion::converted_at_capture(&mut next, txn, captured.rate.as_ref())?;
        Some((next, txn))
    }
}
