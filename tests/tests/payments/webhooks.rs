//! Webhooks: forged signatures and stale timestamps are refused, duplicates are applied once,
//! and a late contradicting event does not change a settled order.

use serde_json::json;
use tally_payments::edges::psp::webhook;
// The events are forged as the sandbox PSP sends them, in its own wire types.
use tally_psp_sandbox::wire::{
    Charge, ChargeStatus, Event as WebhookEvent, EventObject as PspObject,
};

use crate::env::{PayEnv, CARD_OK, WEBHOOK_SECRET};

/// The worker waits a minute between attempts, so within the test only webhooks settle orders.
const SLOW_WORKER: [(&str, &str); 3] = [
    ("TALLY_PAY__WORKER__BACKOFF_INITIAL_MS", "60000"),
    ("TALLY_PAY__WORKER__BACKOFF_MAX_MS", "60000"),
    crate::env::SHORT_PSP_TIMEOUT,
];

async fn send(env: &PayEnv, body: &[u8], signature: &str) -> crate::env::Response {
    let response = env
        .http
        .post(format!("{}/v1/webhooks/psp", env.pay_url))
        .header(webhook::SIGNATURE_HEADER, signature)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("tally-pay answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or_default();
    crate::env::Response {
        status,
        body,
        replayed: false,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_deduplicated_and_applied_once() {
    let env = PayEnv::start("", &SLOW_WORKER).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Hooked").await;
    // The PSP charges but its answer times out and its own webhook is lost.
    env.set_faults("timeout_after_success=1,hang=3s,lost_webhooks=1")
        .await;
    let payment = env
        .post(
            "/v1/payments",
            Some("hooked-1"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 2000}]}),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "processing");
    let order_id = payment["orders"][0]["id"].as_str().unwrap().to_string();
    let fee = payment["orders"][0]["fee"].as_u64().unwrap();
    env.set_faults("").await;
    let charge_json = env
        .psp_charges()
        .await
        .into_iter()
        .find(|c| c["reference"] == order_id.as_str())
        .expect("the PSP charged");
    let charge = Charge {
        psp_id: charge_json["psp_id"].as_str().unwrap().to_string(),
        reference: order_id.clone(),
        amount: 2000,
        currency: "USD".into(),
        status: ChargeStatus::Succeeded,
        fee: 0,
        created: now(),
    };
    let event = WebhookEvent {
        id: "evt_test_1".into(),
        kind: "charge.succeeded".into(),
        created: now(),
        data: PspObject::Charge(charge.clone()),
    };
    let body = serde_json::to_vec(&event).unwrap();

    // Forged: signed with another secret.
    let forged = send(&env, &body, &webhook::sign(b"not-the-secret", now(), &body)).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    // Stale: the right secret, ten minutes old.
    let stale = send(
        &env,
        &body,
        &webhook::sign(WEBHOOK_SECRET.as_bytes(), now() - 600, &body),
    )
    .await;
    assert_eq!(stale.status, 401, "{}", stale.body);
    assert_eq!(stale.body["error"]["code"], "stale_timestamp");
    // Tampered body under a valid signature of the original.
    let signature = webhook::sign(WEBHOOK_SECRET.as_bytes(), now(), &body);
    let mut tampered = body.clone();
    let at = tampered.len() - 2;
    tampered[at] = b' ';
    assert_eq!(send(&env, &tampered, &signature).await.status, 401);
    let order = env
        .get(&format!("/v1/payment_orders/{order_id}"))
        .await
        .expect(200);
    assert_eq!(
        order["status"], "processing",
        "rejected webhooks change nothing"
    );
    assert_eq!(env.seller_wallet(&seller).await.net_credit(), 0);

    // Valid: applied once; the same event again is a duplicate.
    let first = send(&env, &body, &signature).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["result"], "applied");
    let again = send(
        &env,
        &body,
        &webhook::sign(WEBHOOK_SECRET.as_bytes(), now(), &body),
    )
    .await;
    assert_eq!(again.body["result"], "duplicate");
    let order = env
        .get(&format!("/v1/payment_orders/{order_id}"))
        .await
        .expect(200);
    assert_eq!(order["status"], "succeeded");
    assert_eq!(
        env.seller_wallet(&seller).await.net_credit(),
        i128::from(2000 - fee)
    );

    // Out of order: an older event saying the charge failed arrives late. Nothing changes.
    let late = WebhookEvent {
        id: "evt_test_0".into(),
        kind: "charge.failed".into(),
        created: now() - 30,
        data: PspObject::Charge(Charge {
            status: ChargeStatus::Failed {
                code: "card_declined".into(),
                message: "late".into(),
            },
            ..charge
        }),
    };
    let late_body = serde_json::to_vec(&late).unwrap();
    let late_reply = send(
        &env,
        &late_body,
        &webhook::sign(WEBHOOK_SECRET.as_bytes(), now(), &late_body),
    )
    .await;
    assert_eq!(late_reply.status, 200, "{}", late_reply.body);
    let order = env
        .get(&format!("/v1/payment_orders/{order_id}"))
        .await
        .expect(200);
    assert_eq!(order["status"], "succeeded");
    let wallet = env.seller_wallet(&seller).await;
    assert_eq!(wallet.net_credit(), i128::from(2000 - fee));
    assert_eq!(wallet.credits_pending, 0);

    // A webhook about something Tally never created is acknowledged and ignored.
    let unknown = WebhookEvent {
        id: "evt_test_2".into(),
        kind: "charge.succeeded".into(),
        created: now(),
        data: PspObject::Charge(Charge {
            reference: "ord_00000000000000aa".into(),
            psp_id: "ch_unknown".into(),
            amount: 1,
            currency: "USD".into(),
            status: ChargeStatus::Succeeded,
            fee: 0,
            created: now(),
        }),
    };
    let unknown_body = serde_json::to_vec(&unknown).unwrap();
    let reply = send(
        &env,
        &unknown_body,
        &webhook::sign(WEBHOOK_SECRET.as_bytes(), now(), &unknown_body),
    )
    .await;
    assert_eq!(reply.body["result"], "ignored", "{}", reply.body);
    env.verify_ledger();
}
