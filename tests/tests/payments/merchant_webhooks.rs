//! Events and webhooks to the merchant: every state change has its event, `GET /v1/events`
//! pages and filters them, and a receiver of the merchant's gets each event signed, in order of
//! creation after it recovers from an outage, from two tally-pay processes that never send the
//! same event at the same time.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use tally_payments::edges::psp::webhook;

use crate::env::{PayEnv, CARD_OK};
use crate::harness::eventually;

/// How long the deliveries of a handful of events may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// What the test receiver saw.
#[derive(Default)]
struct Seen {
    /// The signing secret, once the endpoint exists.
    secret: Option<String>,
    /// While true, every delivery is answered 503.
    failing: bool,
    /// Deliveries answered 503.
    refused: u32,
    /// Events accepted (2xx), in the order they arrived: (id, type, created_at).
    accepted: Vec<(String, String, i64)>,
    /// Deliveries whose signature did not verify.
    bad_signatures: u32,
    /// Event ids being handled right now, and whether one ever arrived while it was.
    in_flight: HashSet<String>,
    overlapped: bool,
}

type Receiver = Arc<Mutex<Seen>>;

async fn receive(State(seen): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = event["id"].as_str().unwrap_or("").to_string();
    {
        let mut seen = seen.lock().unwrap();
        if !seen.in_flight.insert(id.clone()) {
            seen.overlapped = true;
        }
    }
    // The receiver's own work: long enough for a second sender to overlap, were there one.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut seen = seen.lock().unwrap();
    seen.in_flight.remove(&id);
    let signature = headers
        .get("tally-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let secret = seen.secret.clone().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tolerance = Duration::from_secs(300);
    if webhook::verify(secret.as_bytes(), signature, &body, now, tolerance).is_err() {
        seen.bad_signatures += 1;
        return StatusCode::BAD_REQUEST;
    }
    if seen.failing {
        seen.refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let kind = event["type"].as_str().unwrap_or("").to_string();
    let created_at = event["created_at"].as_i64().unwrap_or(0);
    seen.accepted.push((id, kind, created_at));
    StatusCode::OK
}

/// Starts the receiver on loopback; returns its URL.
async fn start_receiver(seen: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(seen);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hooks")
}

/// Every event, newest first, paging with `limit` 2.
async fn all_events(env: &PayEnv) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/v1/events?limit=2".to_string();
    loop {
        let page = env.get(&path).await.expect(200);
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["has_more"] != true {
            return events;
        }
        let after = page["next_starting_after"].as_str().unwrap();
        path = format!("/v1/events?limit=2&starting_after={after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_merchant_signed_in_order_once_from_two_processes() {
    let mut env = PayEnv::start(
        "",
        &[
            ("TALLY_PAY__WEBHOOKS__ALLOW_HTTP", "true"),
            ("TALLY_PAY__WEBHOOKS__ALLOW_PRIVATE", "true"),
            ("TALLY_PAY__WEBHOOKS__RETRY_INITIAL_MS", "100"),
            ("TALLY_PAY__WEBHOOKS__RETRY_MAX_MS", "400"),
        ],
    )
    .await;
    env.start_another_pay().await;
    let seen: Receiver = Arc::new(Mutex::new(Seen {
        failing: true,
        ..Seen::default()
    }));
    let url = start_receiver(Arc::clone(&seen)).await;

    // An endpoint for every event: its secret is shown once, never in a read.
    let created = env
        .post(
            "/v1/webhook_endpoints",
            None,
            &json!({"url": url, "event_types": ["*"], "description": "test receiver"}),
        )
        .await
        .expect(201);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    let endpoint_id = created["id"].as_str().unwrap().to_string();
    let read = env
        .get(&format!("/v1/webhook_endpoints/{endpoint_id}"))
        .await
        .expect(200);
    assert!(read.get("secret").is_none() && !read.to_string().contains(&secret));
    seen.lock().unwrap().secret = Some(secret);

    // A checkout of two orders, a refund and a payout, while the receiver is down.
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let alpha = env.seller_with_bank("Alpha").await;
    let beta = env.seller_with_bank("Beta").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("events-checkout"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": alpha, "amount": 5000}, {"seller_id": beta, "amount": 7000}]}),
        )
        .await
        .expect(201);
    let payment = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let order = payment["orders"][0]["id"].as_str().unwrap().to_string();
    let refund = env
        .post(
            "/v1/refunds",
            Some("events-refund"),
            &json!({"order_id": payment["orders"][1]["id"], "amount": 1000}),
        )
        .await
        .expect(201);
    let refund_id = refund["id"].as_str().unwrap().to_string();
    let payout = env
        .post(
            "/v1/payouts",
            Some("events-payout"),
            &json!({"seller_id": alpha, "currency": "USD", "amount": 1000}),
        )
        .await
        .expect(201);
    let payout_id = payout["id"].as_str().unwrap().to_string();
    env.wait_payout_paid(&payout_id).await;

    // Every change has its event, in the order it happened.
    assert_eq!(
        env.event_types(&order).await,
        ["payment_order.created", "payment_order.succeeded"]
    );
    assert_eq!(
        env.event_types(&refund_id).await,
        ["refund.created", "refund.succeeded"]
    );
    assert_eq!(
        env.event_types(&payout_id).await,
        ["payout.created", "payout.in_transit", "payout.paid"]
    );
    let payment_id = payment["id"].as_str().unwrap();
    assert_eq!(
        env.event_types(payment_id).await,
        ["payment.created", "payment.succeeded"]
    );
    let filtered = env.get("/v1/events?type=payout.paid").await.expect(200);
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered["data"][0]["object_id"], payout_id.as_str());
    let bad = env.get("/v1/events?type=payout").await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_type"));
    let bad = env.get("/v1/events?limit=0").await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_limit"));

    // Paged newest first, each event once.
    let events = all_events(&env).await;
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert!(events
        .windows(2)
        .all(|w| w[0]["created_at"].as_i64() >= w[1]["created_at"].as_i64()));
    // payment created and succeeded; two orders created and succeeded; refund created,
    // succeeded; payout created, in transit, paid.
    assert_eq!(events.len(), 11, "{events:?}");

    // The receiver refused some attempts; once it recovers, the backlog arrives in order.
    eventually(DELIVERY_TIMEOUT, "deliveries to be refused", || async {
        (seen.lock().unwrap().refused >= 3).then_some(())
    })
    .await;
    seen.lock().unwrap().failing = false;
    let accepted = eventually(DELIVERY_TIMEOUT, "every event to be accepted", || async {
        let seen = seen.lock().unwrap();
        let got: HashSet<&str> = seen.accepted.iter().map(|(id, _, _)| id.as_str()).collect();
        ids.iter()
            .all(|id| got.contains(id))
            .then(|| seen.accepted.clone())
    })
    .await;
    let mut expected: Vec<(i64, &str)> = events
        .iter()
        .map(|e| (e["created_at"].as_i64().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    expected.sort();
    let order_received: Vec<(i64, &str)> = accepted
        .iter()
        .map(|(id, _, at)| (*at, id.as_str()))
        .collect();
    assert_eq!(order_received, expected, "deliveries out of order");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bad_signatures, 0);
        assert!(!seen.overlapped, "an event was sent twice at the same time");
    }

    // Every attempt is visible on the event, the refused ones included.
    let first = expected[0].1;
    let deliveries = env
        .get(&format!("/v1/events/{first}/deliveries"))
        .await
        .expect(200);
    let delivery = &deliveries["data"][0];
    assert_eq!(delivery["status"], "succeeded", "{deliveries}");
    let codes: Vec<u64> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes.last(), Some(&200), "{codes:?}");
    assert!(codes.contains(&503), "{codes:?}");

    // A resend delivers the event once more.
    let before = count(&seen, first);
    env.post(
        &format!("/v1/events/{first}/resend"),
        None,
        &json!({ "endpoint_id": endpoint_id }),
    )
    .await
    .expect(200);
    eventually(DELIVERY_TIMEOUT, "the resent event", || async {
        (count(&seen, first) == before + 1).then_some(())
    })
    .await;
    let audit = env.get("/v1/audit?limit=500").await.expect(200);
    let actions: BTreeMap<&str, usize> =
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut acc, e| {
                *acc.entry(e["action"].as_str().unwrap()).or_default() += 1;
                acc
            });
    assert_eq!(actions.get("webhook_endpoint.create"), Some(&1));
    assert_eq!(actions.get("event.resend"), Some(&1));
}

fn count(seen: &Receiver, id: &str) -> usize {
    seen.lock()
        .unwrap()
        .accepted
        .iter()
        .filter(|(e, _, _)| e == id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_refuse_bad_urls_and_types_and_disabled_ones_get_nothing() {
    let env = PayEnv::start("", &[]).await;
    let http = env
        .post(
            "/v1/webhook_endpoints",
            None,
            &json!({"url": "http://127.0.0.1:9/hooks", "event_types": ["*"]}),
        )
        .await;
    // Outside dev mode and without webhooks.allow_http, only https:// is accepted.
    assert_eq!(
        (http.status, http.code()),
        (400, "invalid_url"),
        "{}",
        http.body
    );
    let private = env
        .post(
            "/v1/webhook_endpoints",
            None,
            &json!({"url": "https://127.0.0.1:8443/hooks", "event_types": ["*"]}),
        )
        .await;
    // Nor the service's own network.
    assert_eq!(
        (private.status, private.code()),
        (400, "private_url"),
        "{}",
        private.body
    );
    let types = env
        .post(
            "/v1/webhook_endpoints",
            None,
            &json!({"url": "https://example.com/hooks", "event_types": ["order.paid"]}),
        )
        .await;
    assert_eq!((types.status, types.code()), (400, "invalid_event_types"));
    let created = env
        .post(
            "/v1/webhook_endpoints",
            None,
            &json!({"url": "https://example.com/hooks", "event_types": ["payout.paid"]}),
        )
        .await
        .expect(201);
    let id = created["id"].as_str().unwrap();
    let disabled = env
        .post(
            &format!("/v1/webhook_endpoints/{id}/disable"),
            None,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(disabled["disabled"], true);
    let listed = env.get("/v1/webhook_endpoints").await.expect(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("whsec_"));
    let missing = env.get("/v1/events/evt_00000000000000000000x").await;
    assert_eq!((missing.status, missing.code()), (400, "invalid_id"));

    // Billing's objects have their events too: a subscription whose first invoice is paid.
    let seller = env.seller("Streamer").await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let plan = env
        .post(
            "/v1/plans",
            None,
            &json!({"seller_id": seller, "name": "Box", "currency": "USD", "amount": 1500, "interval": "month"}),
        )
        .await
        .expect(201);
    let subscription = env
        .post(
            "/v1/subscriptions",
            Some("events-sub"),
            &json!({"customer_id": customer, "card_id": card, "plan_id": plan["id"]}),
        )
        .await
        .expect(201);
    let sub_id = subscription["id"].as_str().unwrap();
    assert_eq!(env.event_types(sub_id).await, ["subscription.created"]);
    let invoices = env
        .get(&format!("/v1/subscriptions/{sub_id}/invoices"))
        .await
        .expect(200);
    let invoice = invoices["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(invoices["data"][0]["status"], "paid", "{invoices}");
    assert_eq!(
        env.event_types(&invoice).await,
        ["invoice.created", "invoice.paid"]
    );
}
