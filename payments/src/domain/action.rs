//! Strong customer authentication (3-D Secure): what a payment order waiting for its customer
//! (`requires_action`) shows, how long tally-pay lets it wait, and the transition into that
//! state. The index of waiting orders uses the authorization index's key layout
//! (`capture::expiry_key`). Pure: the flows read the clock, call the PSP and commit.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::capture;
use crate::domain::model::{ChargeStatus, Order};

/// The default `pay.action_timeout_s`: 15 minutes, longer than a PSP's own challenge timeout
/// (the sandbox's 10), so the PSP's answer normally comes first.
pub const ACTION_TIMEOUT_S_DEFAULT: u64 = 15 * 60;

/// The longest `pay.action_timeout_s`: a day.
pub const ACTION_TIMEOUT_S_MAX: u64 = 24 * 3600;

const _: () = assert!(ACTION_TIMEOUT_S_DEFAULT <= ACTION_TIMEOUT_S_MAX);
const _: () = assert!(ACTION_TIMEOUT_S_MAX <= capture::AUTHORIZATION_VALIDITY_S_MAX);

/// What the customer must do before the charge can go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"type": "redirect_to_url",
    "url": "https://psp.example.com/3ds/3ds_Xb2kQ9mZr4TtLw0pC7vYh1sN"}))]
pub struct NextAction {
    /// Always `redirect_to_url`.
    #[serde(rename = "type")]
    pub kind: NextActionKind,
    /// The PSP's authentication page: send the customer's browser there.
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextActionKind {
    RedirectToUrl,
}

/// When an order that started waiting at `now_ms` is failed by tally-pay if no answer came.
pub fn expires_at(now_ms: i64, timeout_s: u64) -> i64 {
    debug_assert!(timeout_s <= ACTION_TIMEOUT_S_MAX);
    capture::expires_at(now_ms, timeout_s.min(ACTION_TIMEOUT_S_MAX))
}

/// The order waiting for its customer at `url`, or `None` when it is not waiting for the
/// PSP's first answer (processing, or dead-lettered while the PSP was unreachable).
pub fn requires_action(
    order: &Order,
    psp_id: &str,
    url: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> Option<Order> {
    if !matches!(
        order.status,
        ChargeStatus::Processing | ChargeStatus::DeadLetter
    ) {
        return None;
    }
    let mut next = order.clone();
    next.status = ChargeStatus::RequiresAction;
    next.psp_id = Some(psp_id.to_owned());
    next.next_action = Some(NextAction {
        kind: NextActionKind::RedirectToUrl,
        url: url.to_owned(),
    });
    next.action_expires_at = Some(expires_at_ms);
    next.failure = None;
    next.updated_at = now_ms;
    Some(next)
}

/// The action index key of an order leaving `requires_action`, whose entry goes with it.
pub fn index_key(order: &Order) -> Option<String> {
    let at = order.action_expires_at?;
    (order.status == ChargeStatus::RequiresAction).then(|| capture::expiry_key(at, &order.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ChargeKind;

    fn order(status: ChargeStatus) -> Order {
        let mut order = Order::opened(
            "ord_0123456789abcdef".parse().unwrap(),
            ChargeKind::Order,
            "cus_0123456789abcdef".parse().unwrap(),
            "card_0123456789abcdef".parse().unwrap(),
            1000,
            "USD",
            0,
            0,
        );
        order.status = status;
        order
    }

    #[test]
    fn only_an_order_waiting_for_the_psp_starts_waiting_for_its_customer() {
        let at = expires_at(1_000, 60);
        assert_eq!(at, 61_000);
        let waiting = requires_action(
            &order(ChargeStatus::Processing),
            "ch_1",
            "https://p/3ds/x",
            at,
            5,
        )
        .unwrap();
        assert_eq!(waiting.status, ChargeStatus::RequiresAction);
        assert_eq!(
            serde_json::to_value(&waiting.next_action).unwrap(),
            serde_json::json!({"type": "redirect_to_url", "url": "https://p/3ds/x"})
        );
        assert_eq!(
            index_key(&waiting),
            Some(capture::expiry_key(at, "ord_0123456789abcdef"))
        );
        assert!(requires_action(&waiting, "ch_1", "u", at, 5).is_none());
        for status in [
            ChargeStatus::Succeeded,
            ChargeStatus::Failed,
            ChargeStatus::RequiresCapture,
        ] {
            assert!(requires_action(&order(status), "ch_1", "u", at, 5).is_none());
        }
        assert_eq!(index_key(&order(ChargeStatus::Processing)), None);
    }
}
