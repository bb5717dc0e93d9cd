//! Escrow: how long a captured order's seller share stays pending, when it is due, the key of
//! the index the worker reads due orders from, and what releasing an order changes. Pure: the
//! flows read the clock and commit.

use crate::domain::model::{ChargeStatus, Escrow, Order};

/// The longest hold period a seller or the service may set: 180 days, in seconds.
pub const HOLD_PERIOD_S_MAX: u64 = 180 * 24 * 3600;

/// The default hold period (`escrow.hold_period_s`): 14 days.
pub const HOLD_PERIOD_S_DEFAULT: u64 = 14 * 24 * 3600;

const _: () = assert!(HOLD_PERIOD_S_DEFAULT <= HOLD_PERIOD_S_MAX);
// Milliseconds of the longest hold added to any time of this millennium fit an i64.
const _: () = assert!(HOLD_PERIOD_S_MAX < (i64::MAX as u64) / 1000 / 2);

/// When an order captured at `captured_at_ms` with `hold_period_s` is released automatically.
pub fn release_at(captured_at_ms: i64, hold_period_s: u64) -> i64 {
    debug_assert!(hold_period_s <= HOLD_PERIOD_S_MAX);
    let hold_ms = i64::try_from(hold_period_s.min(HOLD_PERIOD_S_MAX) * 1000).unwrap_or(i64::MAX);
    captured_at_ms.saturating_add(hold_ms)
}

/// The key of an order in the escrow index (`ns::ESCROW`): the release time, zero-padded so the
/// keys sort by it, then the order id. A key whose time is at most now is due.
pub fn release_key(release_at_ms: i64, order_id: &str) -> String {
    format!("{:020}/{order_id}", release_at_ms.max(0))
}

/// The release time a key of the escrow index holds, or `None` for a malformed key.
pub fn release_time(key: &str) -> Option<i64> {
    let (time, _) = key.split_once('/')?;
    (time.len() == 20).then_some(())?;
    time.parse().ok()
}

/// The order released at `now_ms` and the share that moves from pending to the wallet, or
/// `None` when there is nothing to release: not captured (yet, or ever), released already, or
/// never held. So a second release of the same order changes nothing.
pub fn released(order: &Order, now_ms: i64) -> Option<(Order, u64)> {
    if order.status != ChargeStatus::Succeeded || order.escrow != Escrow::Held {
        return None;
    }
    let mut next = order.clone();
    next.escrow = Escrow::Released;
    next.released_at = Some(now_ms);
    next.updated_at = now_ms;
    Some((next, order.pending_share()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::model::ChargeKind;

    /// A captured order held in escrow, partly refunded (other modules' tests start from it).
    pub(crate) fn held_order() -> Order {
        let mut order = Order::opened(
            "ord_00000000000000ff".parse().unwrap(),
            ChargeKind::Order,
            "cus_00000000000000ff".parse().unwrap(),
            "card_00000000000000ff".parse().unwrap(),
            10_000,
            "USD",
            0,
            1_000,
        );
        order.seller_id = Some("sel_00000000000000ff".parse().unwrap());
        (order.fee, order.status, order.attempts) = (280, ChargeStatus::Succeeded, 1);
        (order.refunded, order.refund_pending) = (4_000, 1_000);
        (order.fee_refunded, order.fee_refund_pending) = (112, 28);
        (order.escrow, order.hold_period_s) = (Escrow::Held, 60);
        order.release_at = Some(61_000);
        order
    }

    #[test]
    fn a_release_happens_once_and_only_for_a_captured_held_order() {
        let order = held_order();
        let (released, share) = released(&order, 5_000).unwrap();
        assert_eq!(share, 10_000 - 280 - 4_000 - 1_000 + 112 + 28);
        assert_eq!(released.escrow, Escrow::Released);
        assert_eq!(released.released_at, Some(5_000));
        assert_eq!(super::released(&released, 6_000), None, "released twice");
        let mut processing = held_order();
        processing.status = ChargeStatus::Processing;
        assert_eq!(super::released(&processing, 5_000), None);
        let mut not_held = held_order();
        not_held.escrow = Escrow::NotHeld;
        assert_eq!(super::released(&not_held, 5_000), None);
    }

    /// An order stored before escrow existed has no escrow fields: it loads as not held, so
    /// its money counts as available, as it always did.
    #[test]
    fn orders_from_before_escrow_load_as_not_held() {
        let mut json = serde_json::to_value(held_order()).unwrap();
        let object = json.as_object_mut().unwrap();
        for field in ["escrow", "hold_period_s", "release_at", "released_at"] {
            object.remove(field);
        }
        let old: Order = serde_json::from_value(json).unwrap();
        assert_eq!(old.escrow, Escrow::NotHeld);
        assert_eq!(old.release_at, None);
        assert_eq!(released(&old, 5_000), None);
    }

    #[test]
    fn release_keys_sort_by_time_and_read_back() {
        let early = release_key(999, "ord_00000000000000ff");
        let late = release_key(1_000_000_000_000, "ord_0000000000000001");
        assert!(early < late);
        assert_eq!(release_time(&early), Some(999));
        assert_eq!(release_time(&late), Some(1_000_000_000_000));
        assert_eq!(release_time("12/ord_1"), None);
        assert_eq!(release_at(1_000, 2), 3_000);
        assert_eq!(release_at(0, HOLD_PERIOD_S_DEFAULT), 14 * 24 * 3600 * 1000);
    }
}
