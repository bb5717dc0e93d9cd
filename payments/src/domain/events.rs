//! Events: what happened to a payment object, as the merchant is told. Every state change of a
//! payment, order, deposit, refund, payout, invoice, subscription or dispute is one
//! [`Event`], written in the same `Txn` as the change, so an event can never be missing for a
//! change that happened, nor exist for one that did not.
//!
//! An event's type is `<object>.<what>`: `<what>` is `created` for a new object, else the
//! object's new status word (`payment_order.succeeded`, `payout.in_transit`, `invoice.paid`), or
//! for a payment order whose status stays, its new escrow word (`payment_order.released`).
//! The event holds the object as it was right after the change.
//!
//! Pure: the flows decide when to call [`changed`], and pass the time.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::ids::WebhookEndpointId;
use crate::domain::model::ns;

/// The objects that have events, by the record namespace they are stored in.
const OBJECTS: [(&str, &str); 7] = [
    (ns::PAYMENT, "payment"),
    (ns::REFUND, "refund"),
    (ns::PAYOUT, "payout"),
    (ns::INVOICE, "invoice"),
    (ns::SUBSCRIPTION, "subscription"),
    (ns::DISPUTE, "dispute"),
    // Orders and deposits share a namespace; the record's `kind` tells them apart.
    (ns::ORDER, "payment_order"),
];

/// Every object name an event type can start with.
pub const OBJECT_NAMES: [&str; 8] = [
    "payment",
    "payment_order",
    "deposit",
    "refund",
    "payout",
    "invoice",
    "subscription",
    "dispute",
];

/// Bytes of an event type accepted in a filter (`payment_order.succeeded` is 23).
pub const EVENT_TYPE_BYTES_MAX: usize = 64;

/// One event, as stored (namespace `pay.event`, keyed by id, newest first) and as
/// `GET /v1/events` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// `evt_…`; ids sort newest first.
    pub id: String,
    /// `<object>.<what>`, e.g. `payment_order.succeeded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The object's id (`ord_…`, `po_…`, …).
    pub object_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The object right after the change, as the API shows it.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The event of a write of `after` (previously `before`, `None` for a new object) to a record
/// in `namespace`: `None` when the namespace has no events or the status did not change.
pub fn changed<T: Serialize>(
    namespace: &str,
    before: Option<&T>,
    after: &T,
    at_ms: i64,
) -> Option<Event> {
    let (_, mut object) = OBJECTS.iter().find(|(n, _)| *n == namespace)?;
    let data = serde_json::to_value(after).ok()?;
    if namespace == ns::ORDER && data.get("kind").and_then(Value::as_str) == Some("deposit") {
        object = "deposit";
    }
    let what = match before {
        None => "created".to_string(),
        Some(before) => {
            let before = serde_json::to_value(before).ok()?;
            let word = |field: &str| {
                let now = data.get(field)?.as_str()?;
                (before.get(field).and_then(Value::as_str) != Some(now)).then_some(now)
            };
            word("status").or_else(|| word("escrow"))?.to_string()
        }
    };
    let object_id = data.get("id")?.as_str()?.to_string();
    Some(Event {
        id: event_id(at_ms),
        kind: format!("{object}.{what}"),
        object_id,
        created_at: at_ms,
        data,
    })
}

const LATEST_MS: i64 = 9_999_999_999_999;

/// Newest first: the time subtracted from a constant, then randomness so two events of one
/// millisecond do not collide.
fn event_id(at_ms: i64) -> String {
    let inverted = LATEST_MS.saturating_sub(at_ms).max(0);
    format!("evt_{inverted:013}{:08x}", rand::random::<u32>())
}

/// True when `text` is a well-formed event id.
pub fn is_event_id(text: &str) -> bool {
    text.strip_prefix("evt_").is_some_and(|rest| {
        rest.len() == 21
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b.is_ascii_hexdigit() && b.is_ascii_lowercase()))
    })
}

/// The outbox key of an event: oldest first (the event's time, then its id), so deliveries go
/// out in the order the events were created.
pub fn outbox_key(event: &Event) -> String {
    format!("{:013}/{}", event.created_at.max(0), event.id)
}

/// True when `kind` is a well-formed event type (`<object>.<word>`) of a known object, or `*`.
pub fn is_event_type(kind: &str) -> bool {
    if kind == "*" {
        return true;
    }
    if kind.len() > EVENT_TYPE_BYTES_MAX {
        return false;
    }
    let Some((object, what)) = kind.split_once('.') else {
        return false;
    };
    OBJECT_NAMES.contains(&object)
        && !what.is_empty()
        && what.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// True when an endpoint subscribed to `wanted` (types, or `*`) wants an event of type `kind`.
pub fn wants(wanted: &[String], kind: &str) -> bool {
    wanted.iter().any(|w| w == "*" || w == kind)
}

/// A URL of the merchant's that wants events, as stored. The signing secret is sealed with the
/// data key; the API shows it once, when the endpoint is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub url: String,
    /// Event types it wants, or `["*"]` for all.
    pub event_types: Vec<String>,
    /// `whsec_…`, sealed (`crypto::Sealer`).
    pub secret_sealed: String,
    pub description: Option<String>,
    /// A disabled endpoint gets no new deliveries; those queued are given up.
    pub disabled: bool,
    pub created_at: i64,
}

/// A webhook endpoint as the API shows it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    #[schema(value_type = String)]
    pub id: WebhookEndpointId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
}

impl From<&WebhookEndpoint> for EndpointView {
    fn from(e: &WebhookEndpoint) -> Self {
        EndpointView {
            id: e.id.clone(),
            url: e.url.clone(),
            event_types: e.event_types.clone(),
            description: e.description.clone(),
            disabled: e.disabled,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued or being retried.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Given up: `webhooks.retry_for_s` passed, or the endpoint was disabled.
    Failed,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    /// Unix milliseconds.
    pub at: i64,
    /// The HTTP status the endpoint answered, if it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed without an answer (timeout, connection refused, ...).
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// The attempts kept per delivery: the first ones and the latest ones.
pub const DELIVERY_ATTEMPTS_KEPT: usize = 50;

/// One event's delivery to one endpoint, with its attempts (namespace `pay.delivery`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub event_id: String,
    #[schema(value_type = String)]
    pub endpoint_id: WebhookEndpointId,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made, oldest first (at most `DELIVERY_ATTEMPTS_KEPT` kept; `attempt_count`
    /// counts them all).
    pub attempts: Vec<DeliveryAttempt>,
    pub attempt_count: u32,
    /// When the next attempt may be made (unix milliseconds).
    pub next_attempt_at: i64,
    pub created_at: i64,
}

impl Delivery {
    /// The record key: `<event id>/<endpoint id>`.
    pub fn key(&self) -> String {
        delivery_key(&self.event_id, &self.endpoint_id)
    }

    /// Adds `attempt`, dropping the oldest kept one past `DELIVERY_ATTEMPTS_KEPT`.
    pub fn record(&mut self, attempt: DeliveryAttempt) {
        if self.attempts.len() >= DELIVERY_ATTEMPTS_KEPT {
            self.attempts.remove(0);
        }
        self.attempts.push(attempt);
        self.attempt_count = self.attempt_count.saturating_add(1);
    }
}

pub fn delivery_key(event_id: &str, endpoint_id: &WebhookEndpointId) -> String {
    format!("{event_id}/{endpoint_id}")
}

/// The queue key of a delivery: the endpoint, then the event's outbox key (oldest first).
pub fn queue_key(endpoint_id: &WebhookEndpointId, event: &Event) -> String {
    format!("{endpoint_id}/{}", outbox_key(event))
}

/// Who delivers an endpoint's queue until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLease {
    /// A random id of the tally-pay process.
    pub holder: String,
    /// Unix milliseconds.
    pub until: i64,
}

/// The wait before attempt `attempt + 1` after `attempt` failures (1-based): doubling from
/// `initial_ms`, at most `max_ms`.
pub fn retry_wait_ms(attempt: u32, initial_ms: u64, max_ms: u64) -> u64 {
    let doublings = attempt.saturating_sub(1).min(40);
    initial_ms.saturating_mul(1u64 << doublings).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_object_is_created_and_a_status_change_is_named_by_the_new_status() {
        let order = json!({"id": "ord_1", "kind": "order", "status": "processing"});
        let event = changed(ns::ORDER, None, &order, 5).unwrap();
        assert_eq!(event.kind, "payment_order.created");
        assert_eq!(event.object_id, "ord_1");
        let done = json!({"id": "ord_1", "kind": "order", "status": "succeeded"});
        let event = changed(ns::ORDER, Some(&order), &done, 6).unwrap();
        assert_eq!(event.kind, "payment_order.succeeded");
        assert_eq!(event.data, done);
        assert!(changed(ns::ORDER, Some(&done), &done, 7).is_none());
        let released =
            json!({"id": "ord_1", "kind": "order", "status": "succeeded", "escrow": "released"});
        let held = json!({"id": "ord_1", "kind": "order", "status": "succeeded", "escrow": "held"});
        let event = changed(ns::ORDER, Some(&held), &released, 8).unwrap();
        assert_eq!(event.kind, "payment_order.released");
    }

    #[test]
    fn deposits_are_told_apart_and_other_records_have_no_events() {
        let deposit = json!({"id": "dep_1", "kind": "deposit", "status": "processing"});
        assert_eq!(
            changed(ns::ORDER, None, &deposit, 1).unwrap().kind,
            "deposit.created"
        );
        assert!(changed(ns::CUSTOMER, None, &json!({"id": "cus_1"}), 1).is_none());
    }

    #[test]
    fn ids_sort_newest_first_and_outbox_keys_oldest_first() {
        let a = json!({"id": "po_1", "status": "pending"});
        let older = changed(ns::PAYOUT, None, &a, 1_000).unwrap();
        let newer = changed(ns::PAYOUT, None, &a, 2_000).unwrap();
        assert!(newer.id < older.id);
        assert!(outbox_key(&older) < outbox_key(&newer));
        assert!(is_event_id(&older.id), "{}", older.id);
        assert!(!is_event_id("evt_x"));
    }

    #[test]
    fn retries_double_up_to_the_maximum() {
        assert_eq!(retry_wait_ms(1, 100, 1000), 100);
        assert_eq!(retry_wait_ms(2, 100, 1000), 200);
        assert_eq!(retry_wait_ms(4, 100, 1000), 800);
        assert_eq!(retry_wait_ms(5, 100, 1000), 1000);
        assert_eq!(retry_wait_ms(500, 100, 1000), 1000);
    }

    #[test]
    fn event_types_are_checked() {
        assert!(is_event_type("payment_order.succeeded"));
        assert!(is_event_type("*"));
        assert!(!is_event_type("order.succeeded"));
        assert!(!is_event_type("payout"));
        assert!(!is_event_type("payout.Paid"));
        assert!(wants(&["*".into()], "payout.paid"));
        assert!(!wants(&["payout.failed".into()], "payout.paid"));
    }
}
