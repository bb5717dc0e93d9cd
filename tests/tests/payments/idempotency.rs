//! The Idempotency-Key protocol: replay, different body, concurrent duplicate, and replay after
//! a tally-pay restart (keys live in the ledger cluster).

use serde_json::json;

use crate::env::{PayEnv, CARD_OK};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_replay_refuse_reuse_block_concurrency_and_survive_restarts() {
    // A PSP call may take 5 s here, so a slow request is still running when its duplicate arrives.
    let mut env = PayEnv::start("", &[("TALLY_PAY__PSP__TIMEOUT_MS", "5000")]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Idem").await;
    let body = json!({"customer_id": customer, "card_id": card, "currency": "USD",
                      "orders": [{"seller_id": seller, "amount": 777}]});
    let first = env.post("/v1/payments", Some("idem-1"), &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!first.replayed);

    // Same key, same body (keys in another order): the stored response, marked replayed.
    let reordered = json!({"orders": [{"amount": 777, "seller_id": seller}], "currency": "USD",
                           "card_id": card, "customer_id": customer});
    let replay = env.post("/v1/payments", Some("idem-1"), &reordered).await;
    assert_eq!(replay.status, 201);
    assert!(replay.replayed, "Idempotent-Replayed: true");
    assert_eq!(replay.body, first.body);
    assert_eq!(env.psp_charges().await.len(), 1, "charged once");

    // Same key, different body: 422.
    let mut changed = body.clone();
    changed["orders"][0]["amount"] = json!(778);
    let reused = env.post("/v1/payments", Some("idem-1"), &changed).await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "idempotency_key_reused"),
        "{}",
        reused.body
    );

    // Same key while the first request is still at the (slow) PSP: 409.
    env.set_faults("latency=2000ms").await;
    let slow_body = json!({"customer_id": customer, "card_id": card, "currency": "USD",
                           "orders": [{"seller_id": seller, "amount": 888}]});
    // Two requests with the same key at once: one runs, the other is told it is in use.
    let send = |handle: crate::env::Handle, body: serde_json::Value| async move {
        handle.post_once("/v1/payments", "idem-2", &body).await
    };
    let (a, b) = tokio::join!(
        send(env.handle(), slow_body.clone()),
        send(env.handle(), slow_body.clone())
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let conflict = if a.status == 409 { a } else { b };
    assert_eq!(conflict.code(), "idempotency_key_in_use");
    // Once the first has finished, the same key replays its answer.
    let replay2 = env.post("/v1/payments", Some("idem-2"), &slow_body).await;
    assert!(replay2.replayed);
    env.set_faults("").await;

    // After a restart of tally-pay the key is still there (it lives in the ledger cluster).
    env.kill_pay();
    env.restart_pay().await;
    let after = env.post("/v1/payments", Some("idem-1"), &body).await;
    assert_eq!(after.status, 201);
    assert!(after.replayed);
    assert_eq!(after.body, first.body);
    assert_eq!(env.psp_charges().await.len(), 2, "one charge per key");
}
