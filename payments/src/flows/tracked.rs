//! What orders, refunds and payouts have in common: the worker drives each to a terminal state,
//! retrying with backoff, and parks it in the dead-letter queue when its attempts run out.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{failure, now_ms, Pay, Retry};
use crate::domain::model::{
    ns, ChargeStatus, DeadLetter, Failure, InflightKind, Order, Payout, PayoutStatus, Refund,
    RefundStatus,
};
use crate::edges::store::Txn;
use crate::error::PayError;
use crate::flows::audit;

/// An object the worker drives through the PSP.
pub(crate) trait Tracked: Serialize + DeserializeOwned + Clone + Send + Sync {
    const NAMESPACE: &'static str;
    /// Also the kind of its dead letter.
    const KIND: InflightKind;

    fn id(&self) -> &str;
    fn amount(&self) -> u64;
    fn currency(&self) -> &str;
    fn attempts(&self) -> u32;
    /// Still waiting for a definite answer from the PSP.
    fn in_flight(&self) -> bool;
    fn is_dead_letter(&self) -> bool;
    fn schedule(&mut self, attempts: u32, at_ms: i64);
    fn to_dead_letter(&mut self, attempts: u32, reason: Failure);
    /// Back to in-flight after a dead letter; the next attempt asks the PSP first.
    fn revive(&mut self);
    fn failure(&self) -> Option<Failure>;
    fn touch(&mut self, at_ms: i64);
}

impl Pay {
    /// Records a failed attempt: the next one after a backoff, or the dead-letter queue when the
    /// attempts are used up.
    pub(crate) async fn retry_later<T: Tracked>(
        &self,
        id: &str,
        reason: &str,
    ) -> Result<(), PayError> {
        self.update::<T, _>(T::NAMESPACE, id, |object| {
            if !object.in_flight() {
                return None;
            }
            let mut next = object.clone();
            next.touch(self.clock.now_ms());
            match self.next_retry(object.attempts()) {
                Retry::At { attempts, at_ms } => {
                    next.schedule(attempts, at_ms);
                    Some((next, Txn::new()))
                }
                Retry::Exhausted { attempts } => {
                    next.to_dead_letter(attempts, failure("retries_exhausted", reason));
                    let entry = DeadLetter {
                        kind: T::KIND,
                        id: next.id().to_string(),
                        amount: next.amount(),
                        currency: next.currency().to_string(),
                        attempts,
                        reason: next.failure(),
                        updated_at: self.clock.now_ms(),
                    };
                    Some((next, Self::dead_letter(Txn::new(), &entry)))
                }
            }
        })
        .await?;
        Ok(())
    }

    /// Puts a dead-lettered object back in the worker's hands with fresh attempts.
    pub(crate) async fn revive<T: Tracked>(&self, id: &str) -> Result<(), PayError> {
        self.update::<T, _>(T::NAMESPACE, id, |object| {
            if !object.is_dead_letter() {
                return None;
            }
            let mut next = object.clone();
            next.revive();
            next.touch(self.clock.now_ms());
            let txn = audit::stamp(Txn::new(), "dead_letter.retry", id).delete(ns::DEAD_LETTER, id);
            let txn = Self::track(txn, T::KIND, id);
            Some((next, txn))
        })
        .await?;
        Ok(())
    }
}

/// The accessors every tracked object implements the same way, from its common fields.
macro_rules! common_fields {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn amount(&self) -> u64 {
            self.amount
        }
        fn currency(&self) -> &str {
            &self.currency
        }
        fn attempts(&self) -> u32 {
            self.attempts
        }
        fn schedule(&mut self, attempts: u32, at_ms: i64) {
            self.attempts = attempts;
            self.next_attempt_at = at_ms;
        }
        fn failure(&self) -> Option<Failure> {
            self.failure.clone()
        }
        fn touch(&mut self, at_ms: i64) {
            self.updated_at = at_ms;
        }
    };
}

impl Tracked for Order {
    const NAMESPACE: &'static str = ns::ORDER;
    const KIND: InflightKind = InflightKind::Order;
    common_fields!();

    fn in_flight(&self) -> bool {
        self.status == ChargeStatus::Processing
    }
    fn is_dead_letter(&self) -> bool {
        self.status == ChargeStatus::DeadLetter
    }
    fn to_dead_letter(&mut self, attempts: u32, reason: Failure) {
        self.attempts = attempts;
        self.status = ChargeStatus::DeadLetter;
        self.failure = Some(reason);
    }
    fn revive(&mut self) {
        self.status = ChargeStatus::Processing;
        self.attempts = 1;
        self.failure = None;
        self.next_attempt_at = now_ms();
    }
}

impl Tracked for Refund {
    const NAMESPACE: &'static str = ns::REFUND;
    const KIND: InflightKind = InflightKind::Refund;
    common_fields!();

    fn in_flight(&self) -> bool {
        self.status == RefundStatus::Pending
    }
    fn is_dead_letter(&self) -> bool {
        self.status == RefundStatus::DeadLetter
    }
    fn to_dead_letter(&mut self, attempts: u32, reason: Failure) {
        self.attempts = attempts;
        self.status = RefundStatus::DeadLetter;
        self.failure = Some(reason);
    }
    fn revive(&mut self) {
        self.status = RefundStatus::Pending;
        self.attempts = 1;
        self.failure = None;
        self.next_attempt_at = now_ms();
    }
}

impl Tracked for Payout {
    const NAMESPACE: &'static str = ns::PAYOUT;
    const KIND: InflightKind = InflightKind::Payout;
    common_fields!();

    fn in_flight(&self) -> bool {
        matches!(self.status, PayoutStatus::Pending | PayoutStatus::InTransit)
    }
    fn is_dead_letter(&self) -> bool {
        self.status == PayoutStatus::DeadLetter
    }
    fn to_dead_letter(&mut self, attempts: u32, reason: Failure) {
        self.attempts = attempts;
        self.status = PayoutStatus::DeadLetter;
        self.failure = Some(reason);
    }
    fn revive(&mut self) {
        self.status = PayoutStatus::Pending;
        self.attempts = 1;
        self.failure = None;
        self.next_attempt_at = now_ms();
    }
}
