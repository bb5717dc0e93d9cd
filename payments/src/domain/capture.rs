//! Authorize now, capture later: how a payment order is captured (`CaptureMethod`), how long
//! an authorization waits for its capture, the key of the index the worker reads expired
//! authorizations from, and what a capture or a cancellation changes. Pure: the flows read the
//! clock, call the PSP and commit.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::model::{Cancellation, ChargeStatus, Order};

/// The default `pay.authorization_validity_s`: 7 days.
pub const AUTHORIZATION_VALIDITY_S_DEFAULT: u64 = 7 * 24 * 3600;

/// The longest validity the service may set: 30 days (card networks hold an authorization for
/// about a week; none for a month).
pub const AUTHORIZATION_VALIDITY_S_MAX: u64 = 30 * 24 * 3600;

const _: () = assert!(AUTHORIZATION_VALIDITY_S_DEFAULT <= AUTHORIZATION_VALIDITY_S_MAX);
// Milliseconds of the longest validity added to any time of this millennium fit an i64.
const _: () = assert!(AUTHORIZATION_VALIDITY_S_MAX < (i64::MAX as u64) / 1000 / 2);

/// When a payment order's charge is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    /// Authorized and captured at once (every order stored before manual capture existed).
    #[default]
    Automatic,
    /// Authorized only (`requires_capture`); captured by `POST
    /// /v1/payment_orders/{id}/capture` or canceled, by the API or when the authorization
    /// expires.
    Manual,
}

/// When an authorization made at `authorized_at_ms`, valid `validity_s`, expires.
pub fn expires_at(authorized_at_ms: i64, validity_s: u64) -> i64 {
    debug_assert!(validity_s <= AUTHORIZATION_VALIDITY_S_MAX);
    let validity = validity_s.min(AUTHORIZATION_VALIDITY_S_MAX) * 1000;
    authorized_at_ms.saturating_add(i64::try_from(validity).unwrap_or(i64::MAX))
}

/// The key of an order in the authorization index (`ns::AUTHORIZATION`): the expiry time,
/// zero-padded so the keys sort by it, then the order id. A key whose time is at most now is
/// due.
pub fn expiry_key(expires_at_ms: i64, order_id: &str) -> String {
    format!("{:020}/{order_id}", expires_at_ms.max(0))
}

/// The expiry time a key of the authorization index holds, or `None` for a malformed key.
pub fn expiry_time(key: &str) -> Option<i64> {
    let (time, _) = key.split_once('/')?;
    (time.len() == 20).then_some(())?;
    time.parse().ok()
}

/// Why a capture is refused before the PSP is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureRefusal {
    /// The order is not (or no longer) waiting for its capture.
    NotCapturable(ChargeStatus),
    /// The amount is 0 or more than was authorized.
    AmountOutOfRange { authorized: u64 },
}

/// The amount to capture of `order`: `requested`, or all of it; refused unless the order is
/// `requires_capture` and the amount is 1 to the authorized amount.
pub fn capture_amount(order: &Order, requested: Option<u64>) -> Result<u64, CaptureRefusal> {
    if order.status != ChargeStatus::RequiresCapture {
        return Err(CaptureRefusal::NotCapturable(order.status));
    }
    let amount = requested.unwrap_or(order.amount);
    if amount == 0 || amount > order.amount {
        return Err(CaptureRefusal::AmountOutOfRange {
            authorized: order.amount,
        });
    }
    Ok(amount)
}

/// True when `order` was captured already, for just what a capture of `requested` (all of the
/// authorization when `None`) asks: the same capture again (its answer lost, or its webhook first)
/// is answered with the order as it is, as the PSP answers a repeated capture.
pub fn captured_already(order: &Order, requested: Option<u64>) -> bool {
    let Some(authorized) = order.amount_authorized else {
        return false;
    };
    order.status == ChargeStatus::Succeeded
        && order.capture == CaptureMethod::Manual
        && requested.unwrap_or(authorized) == order.amount
}

/// The order once its authorization is captured for `amount` (at most the authorized amount)
/// with the platform fee `fee` on it: the order's amount becomes what was captured, what was
/// authorized is kept in `amount_authorized`. Status, PSP id and fee are the caller's.
pub fn captured(order: &Order, amount: u64, fee: u64) -> Order {
    debug_assert!(amount > 0 && amount <= order.amount);
    debug_assert!(fee <= amount);
    let mut next = order.clone();
    next.amount_authorized = Some(order.amount_authorized.unwrap_or(order.amount));
    next.amount = amount.min(order.amount);
    next.fee = fee.min(next.amount);
    next
}

/// The order canceled at `now_ms` for `why`, or `None` when it is not waiting for a capture
/// (captured, canceled already, never authorized): a second cancellation changes nothing.
pub fn canceled(order: &Order, why: Cancellation, now_ms: i64) -> Option<Order> {
    if order.status != ChargeStatus::RequiresCapture {
        return None;
    }
    let mut next = order.clone();
    next.status = ChargeStatus::Canceled;
    next.cancellation = Some(why);
    next.canceled_at = Some(now_ms);
    next.updated_at = now_ms;
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::escrow::tests::held_order;
    use crate::domain::model::Escrow;

    /// An order authorized for 10_000 with manual capture, nothing refunded.
    fn authorized_order() -> Order {
        let mut order = held_order();
        order.status = ChargeStatus::RequiresCapture;
        order.capture = CaptureMethod::Manual;
        order.amount = 10_000;
        order.fee = 280;
        (order.refunded, order.refund_pending) = (0, 0);
        (order.fee_refunded, order.fee_refund_pending) = (0, 0);
        order.release_at = None;
        order.authorization_expires_at = Some(61_000);
        order
    }

    #[test]
    fn a_capture_takes_at_most_what_was_authorized() {
        let order = authorized_order();
        assert_eq!(capture_amount(&order, None), Ok(10_000));
        assert_eq!(capture_amount(&order, Some(7_000)), Ok(7_000));
        let out_of_range = Err(CaptureRefusal::AmountOutOfRange { authorized: 10_000 });
        assert_eq!(capture_amount(&order, Some(10_001)), out_of_range);
        assert_eq!(capture_amount(&order, Some(0)), out_of_range);
        let captured = captured(&order, 7_000, 205);
        assert_eq!(
            (captured.amount, captured.amount_authorized, captured.fee),
            (7_000, Some(10_000), 205)
        );
        assert_eq!(captured.escrow, Escrow::Held);
        let mut succeeded = captured;
        succeeded.status = ChargeStatus::Succeeded;
        assert_eq!(
            capture_amount(&succeeded, None),
            Err(CaptureRefusal::NotCapturable(ChargeStatus::Succeeded))
        );
    }

    #[test]
    fn only_the_same_capture_again_finds_it_captured_already() {
        let order = authorized_order();
        assert!(!captured_already(&order, None), "not captured yet");
        let mut part = captured(&order, 7_000, 205);
        part.status = ChargeStatus::Succeeded;
        assert!(captured_already(&part, Some(7_000)));
        assert!(!captured_already(&part, None), "all of it was not captured");
        assert!(!captured_already(&part, Some(6_000)));
        let mut all = captured(&order, 10_000, 280);
        all.status = ChargeStatus::Succeeded;
        assert!(captured_already(&all, None));
        assert!(captured_already(&all, Some(10_000)));
        let mut automatic = all.clone();
        automatic.capture = CaptureMethod::Automatic;
        assert!(!captured_already(&automatic, None), "never authorized only");
    }

    #[test]
    fn a_cancel_happens_once_and_only_for_an_authorized_order() {
        let order = authorized_order();
        let canceled = canceled(&order, Cancellation::AuthorizationExpired, 62_000).unwrap();
        assert_eq!(canceled.status, ChargeStatus::Canceled);
        assert_eq!(
            canceled.cancellation,
            Some(Cancellation::AuthorizationExpired)
        );
        assert_eq!(
            (canceled.canceled_at, canceled.updated_at),
            (Some(62_000), 62_000)
        );
        assert_eq!(
            super::canceled(&canceled, Cancellation::Requested, 63_000),
            None
        );
        let mut processing = order;
        processing.status = ChargeStatus::Processing;
        assert_eq!(
            super::canceled(&processing, Cancellation::Requested, 63_000),
            None
        );
        assert!(ChargeStatus::Canceled.is_terminal());
        assert!(!ChargeStatus::RequiresCapture.is_terminal());
    }

    #[test]
    fn expiry_keys_sort_by_time_and_read_back() {
        let at = expires_at(1_000, 60);
        assert_eq!(at, 61_000);
        let key = expiry_key(at, "ord_00000000000000ff");
        assert_eq!(key, "00000000000000061000/ord_00000000000000ff");
        assert_eq!(expiry_time(&key), Some(61_000));
        assert!(expiry_key(9_999, "ord_b") < expiry_key(10_000, "ord_a"));
        assert_eq!(expiry_time("61000/ord_1"), None);
        assert_eq!(expires_at(0, AUTHORIZATION_VALIDITY_S_DEFAULT), 604_800_000);
    }
}
