//! Strong customer authentication (3-D Secure): a card that needs it makes the PSP answer a
//! charge with `requires_action` and the URL of its challenge page. The order waits
//! `requires_action`, its hold pending in the ledger, out of the in-flight index and in the
//! action index (`pay.action`) under the time tally-pay gives up on it.
//!
//! The PSP's answer (its webhook, or this module's last question) settles it through the same
//! functions as any charge: `succeeded` with the usual postings, `requires_capture` for manual
//! capture, or `failed` with the hold voided; each in one Txn conditioned on the order's
//! version, which also deletes the index entry, so a second answer is a no-op.
//!
//! An order still waiting `pay.action_timeout_s` after it began is the worker's
//! (`expire_actions`): it asks the PSP how the charge stands and settles it so; a charge still
//! waiting is canceled at the PSP first, and an order whose PSP does not answer is failed all
//! the same (`action_timeout`), so a PSP that never answers holds no money forever.

use super::capture::captured;
use super::{failure, Pay};
use crate::domain::action;
use crate::domain::capture;
use crate::domain::model::{ns, ChargeStatus, Failure, Order};
use crate::edges::psp::{self, PspError};
use crate::edges::store::{Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;

/// Action index entries one worker step reads.
pub const ACTION_PAGE_MAX: u32 = 256;
const _: () = assert!(ACTION_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

/// Orders past their action timeout one worker pass settles at most; the rest wait for the
/// next pass.
pub const ACTION_EXPIRIES_PER_PASS_MAX: usize = 4096;
const _: () = assert!(ACTION_EXPIRIES_PER_PASS_MAX >= ACTION_PAGE_MAX as usize);

/// Why tally-pay failed an order that waited too long.
fn timed_out() -> Failure {
    failure(
        "action_timeout",
        "the customer's authentication did not finish within pay.action_timeout_s",
    )
}

impl Pay {
    /// Records that the PSP waits for the customer at `url`: the order `requires_action`, out
    /// of the in-flight index, into the action index. Only an order still waiting for the
    /// PSP's first answer changes.
    pub(crate) async fn requires_action(
        &self,
        id: &str,
        psp_id: &str,
        url: &str,
    ) -> Result<(), PayError> {
        let timeout_s = self.config.pay.action_timeout_s;
        self.update::<Order, _>(ns::ORDER, id, |order| {
            let now = self.clock.now_ms();
            let at = action::expires_at(now, timeout_s);
            let next = action::requires_action(order, psp_id, url, at, now)?;
            let key = capture::expiry_key(at, &order.id);
            let txn = Self::untrack(Txn::new(), &order.id).put(ns::ACTION, &key, &order.id);
            Some((next, txn))
        })
        .await
        .map(drop)
    }

    /// Adds to `txn` the end of an order's wait for its customer, when it was waiting: its
    /// action index entry deleted and `next_action` cleared from `next`.
    pub(crate) fn end_action(txn: Txn, order: &Order, next: &mut Order) -> Txn {
        next.next_action = None;
        match action::index_key(order) {
            Some(key) => txn.delete(ns::ACTION, &key),
            None => txn,
        }
    }

    /// One worker pass: settles every order waiting for its customer past its timeout,
    /// reading the action index (sorted by that time) [`ACTION_PAGE_MAX`] entries at a time
    /// and stopping at the first not yet due, or after [`ACTION_EXPIRIES_PER_PASS_MAX`].
    /// Returns how many it looked at.
    pub async fn expire_actions(&self) -> Result<usize, PayError> {
        let now = self.clock.now_ms();
        let mut seen = 0;
        let mut cursor = String::new();
        loop {
            let page = self
                .store
                .next_page::<String>(ns::ACTION, "", &mut cursor, ACTION_PAGE_MAX)
                .await?;
            if page.is_empty() {
                return Ok(seen);
            }
            for (key, entry) in page {
                match capture::expiry_time(&key) {
                    Some(at) if at > now => return Ok(seen),
                    Some(_) => {}
                    None => {
                        tracing::error!(key, "malformed action index key; left alone");
                        continue;
                    }
                }
                seen += 1;
                if let Err(error) = self.expire_action(&key, &entry.value).await {
                    tracing::warn!(order = %entry.value, %error, "an action timeout failed");
                }
                if seen >= ACTION_EXPIRIES_PER_PASS_MAX {
                    return Ok(seen);
                }
            }
        }
    }

    /// Settles one order past its action timeout as the PSP has its charge.
    async fn expire_action(&self, key: &str, id: &str) -> Result<(), PayError> {
        let order = self
            .load::<Order>(ns::ORDER, id, "payment order")
            .await?
            .value;
        if order.status != ChargeStatus::RequiresAction {
            tracing::warn!(order = %order.id, status = ?order.status,
                "action index entry of an order not waiting for its customer; removed");
            self.store
                .commit(Txn::new().delete(ns::ACTION, key))
                .await?;
            return Ok(());
        }
        let charge = self.last_answer(id).await;
        self.settle_as_charged(id, charge).await
    }

    /// How the PSP has the charge at the timeout: asked, and canceled if still waiting for the
    /// customer. `None`: the PSP did not answer.
    async fn last_answer(&self, id: &str) -> Option<psp::Charge> {
        let status = self.psp.charge_status(id).await;
        self.metrics.psp_call("charge_status", &status);
        let charge = status.ok()?;
        if !matches!(charge.status, psp::ChargeStatus::RequiresAction { .. }) {
            return Some(charge);
        }
        let canceled = self.psp.cancel(id).await;
        self.metrics.psp_call("cancel", &canceled);
        match canceled {
            Ok(charge) => Some(charge),
            // Refused: the customer finished meanwhile; it says how.
            Err(PspError::Invalid { .. } | PspError::Declined { .. }) => {
                self.psp.charge_status(id).await.ok()
            }
            Err(_) => None,
        }
    }

    /// Settles an order that waited for its customer as the PSP has its charge; a charge still
    /// waiting, canceled, or not known (`None`) fails the order.
    async fn settle_as_charged(
        &self,
        id: &str,
        charge: Option<psp::Charge>,
    ) -> Result<(), PayError> {
        let Some(charge) = charge else {
            tracing::warn!(order = %id, "the PSP did not answer at the action timeout; failed");
            return self.settle_order(id, Err(timed_out())).await.map(drop);
        };
        match &charge.status {
            psp::ChargeStatus::Succeeded => self.settle_charge(id, Ok(captured(&charge))).await,
            psp::ChargeStatus::Authorized => {
                return self.authorized(id, charge.psp_id.clone()).await;
            }
            psp::ChargeStatus::Failed { code, message } => {
                self.settle_order(id, Err(failure(code, message.clone())))
                    .await
            }
            psp::ChargeStatus::Canceled | psp::ChargeStatus::RequiresAction { .. } => {
                self.settle_order(id, Err(timed_out())).await
            }
        }
        .map(drop)
    }
}
