//! A payment's own events. A payment's status is made of its orders' statuses, so it changes
//! when one of its orders does: the `Txn` that changes the order also holds the payment's
//! event (`payment.succeeded`, `payment.requires_capture`, …) when the payment's status changes
//! with it, conditioned on the versions of the payment's other orders, so that of two orders
//! settling at once exactly one tells the payment's new status.

use serde::Serialize;

use super::Pay;
use crate::domain::model::{ns, Order, Payment, PaymentRecord};
use crate::edges::store::Txn;
use crate::error::PayError;

impl Pay {
    /// `txn` with the event of the payment whose order goes from `before` to `after` (records
    /// of `namespace`), when the payment's status changes; unchanged otherwise.
    pub(super) async fn with_payment_event<T: Serialize>(
        &self,
        txn: Txn,
        namespace: &str,
        before: &T,
        after: &T,
    ) -> Result<Txn, PayError> {
        if namespace != ns::ORDER {
            return Ok(txn);
        }
        let (Some(before), Some(after)) = (as_order(before), as_order(after)) else {
            return Ok(txn);
        };
        let Some(payment_id) = after.payment_id.as_deref() else {
            return Ok(txn); // a deposit
        };
        if before.status == after.status {
            return Ok(txn);
        }
        let Some(record) = self
            .store
            .get::<PaymentRecord>(ns::PAYMENT, payment_id)
            .await?
        else {
            return Ok(txn);
        };
        let (mut txn, mut old, mut new) = (txn, Vec::new(), Vec::new());
        for order_id in &record.value.order_ids {
            if order_id.as_str() == after.id.as_str() {
                old.push(before.clone());
                new.push(after.clone());
                continue;
            }
            let Some(sibling) = self.store.get::<Order>(ns::ORDER, order_id).await? else {
                continue;
            };
            txn = txn.require_version(ns::ORDER, order_id, sibling.version);
            old.push(sibling.value.clone());
            new.push(sibling.value);
        }
        let was = Payment::of(record.value.clone(), old);
        let is = Payment::of(record.value, new);
        Ok(txn.event(ns::PAYMENT, Some(&was), &is))
    }
}

/// The order a record of the order namespace holds.
fn as_order<T: Serialize>(record: &T) -> Option<Order> {
    serde_json::from_value(serde_json::to_value(record).ok()?).ok()
}
