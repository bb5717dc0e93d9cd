//! Authorize now, capture later: a payment made with `capture: "manual"` is only authorized;
//! a capture takes all or part of it (the rest released, the fee on what was captured, the
//! seller's share into escrow), a cancel releases it all, and an authorization not captured in
//! time is canceled by the worker, at the PSP and in the ledger, once, even when tally-pay was
//! down at the deadline.

use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::code;

use crate::env::{fee, PayEnv, CARD_OK, HOLD_A_DAY};
use crate::harness::eventually;

/// The authorization validity of the expiry test, in seconds: long enough to kill tally-pay
/// before it, short enough to wait for.
const VALIDITY_S: u64 = 4;

/// Pays `amount` USD minor units to `seller` with manual capture; returns the order.
async fn authorize(env: &PayEnv, key: &str, seller: &str, amount: u64) -> Value {
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let payment = env
        .post(
            "/v1/payments",
            Some(key),
            &json!({
                "customer_id": customer, "card_id": card, "currency": "USD", "capture": "manual",
                "orders": [{"seller_id": seller, "amount": amount}]
            }),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "requires_capture", "{payment}");
    let order = payment["orders"][0].clone();
    assert_eq!(order["status"], "requires_capture", "{order}");
    assert_eq!(order["capture"], "manual", "{order}");
    order
}

/// The PSP's charge of an order.
async fn psp_charge(env: &PayEnv, order_id: &str) -> Value {
    env.psp_get(&format!("/v1/charges/{order_id}")).await
}

/// How many audit entries of `action` name `object_id`.
async fn audited(env: &PayEnv, action: &str, object_id: &str) -> usize {
    let page = env.get("/v1/audit?limit=500").await.expect(200);
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["object_id"] == object_id)
        .count()
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_capture_posts_what_was_captured_and_releases_the_rest() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let seller = env.seller("Alpha").await;
    let order = authorize(&env, "manual-1", &seller, 10_000).await;
    let order_id = order["id"].as_str().unwrap().to_string();

    // Authorized: held in the ledger, nothing posted; the PSP holds the authorization.
    assert_eq!(psp_charge(&env, &order_id).await["status"], "authorized");
    let pending = env.seller_pending(&seller).await;
    assert_eq!((pending.credits_pending, pending.net_credit()), (10_000, 0));
    let clearing = env.system(code::PSP_CLEARING).await;
    assert_eq!(
        (clearing.debits_pending, clearing.net_credit()),
        (10_000, 0)
    );

    // More than authorized is refused, and changes nothing.
    let path = format!("/v1/payment_orders/{order_id}/capture");
    let too_much = env.post(&path, None, &json!({"amount": 10_001})).await;
    assert_eq!(too_much.status, 422, "{}", too_much.body);
    assert_eq!(too_much.code(), "capture_amount_too_large");
    assert_eq!(env.seller_pending(&seller).await.credits_pending, 10_000);

    // 70.00 of 100.00 captured: the rest released, the fee on 70.00, the share in escrow.
    let captured = env
        .post(
            &path,
            Some("capture-1"),
            &json!({"amount_decimal": "70.00"}),
        )
        .await
        .expect(200);
    assert_eq!(captured["status"], "succeeded", "{captured}");
    assert_eq!(captured["amount"], 7_000);
    assert_eq!(captured["amount_authorized"], 10_000);
    assert_eq!(captured["fee"], fee(7_000));
    assert_eq!(captured["escrow"], "held", "{captured}");
    let share = 7_000 - fee(7_000);
    let pending = env.seller_pending(&seller).await;
    assert_eq!(
        (pending.credits_pending, pending.net_credit()),
        (0, i128::from(share))
    );
    let clearing = env.system(code::PSP_CLEARING).await;
    assert_eq!(
        (clearing.debits_pending, clearing.net_credit()),
        (0, -7_000)
    );
    assert_eq!(
        env.system(code::PLATFORM_REVENUE).await.net_credit(),
        i128::from(fee(7_000))
    );
    let charge = psp_charge(&env, &order_id).await;
    assert_eq!(
        (&charge["status"], &charge["amount"]),
        (&json!("succeeded"), &json!(7_000))
    );
    let balance = env
        .get(&format!("/v1/sellers/{seller}/balance"))
        .await
        .expect(200);
    let usd_balance = &balance["balances"][0];
    assert_eq!(
        (&usd_balance["available"], &usd_balance["pending"]),
        (&json!(0), &json!(share)),
        "{balance}"
    );

    // The same request replays; another capture or a cancel is refused; nothing moves.
    let replay = env
        .post(
            &path,
            Some("capture-1"),
            &json!({"amount_decimal": "70.00"}),
        )
        .await;
    assert!(replay.replayed && replay.status == 200, "{}", replay.body);
    let again = env.post(&path, None, &json!({})).await;
    assert_eq!((again.status, again.code()), (422, "order_not_capturable"));
    let cancel = format!("/v1/payment_orders/{order_id}/cancel");
    let late = env.post(&cancel, None, &json!({})).await;
    assert_eq!((late.status, late.code()), (422, "order_not_cancelable"));
    assert_eq!(
        env.seller_pending(&seller).await.net_credit(),
        i128::from(share)
    );
    assert_eq!(
        env.event_types(&order_id).await,
        [
            "payment_order.created",
            "payment_order.requires_capture",
            "payment_order.succeeded"
        ]
    );
    assert_eq!(audited(&env, "payment_order.capture", &order_id).await, 1);
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_voids_the_hold_and_the_psp_authorization() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let seller = env.seller("Beta").await;
    let order = authorize(&env, "manual-2", &seller, 5_000).await;
    let order_id = order["id"].as_str().unwrap().to_string();
    let payment_id = order["payment_id"].as_str().unwrap().to_string();
    assert_eq!(env.seller_pending(&seller).await.credits_pending, 5_000);

    let path = format!("/v1/payment_orders/{order_id}/cancel");
    let canceled = env.post(&path, None, &json!({})).await.expect(200);
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    assert_eq!(canceled["cancellation"], "requested");
    let canceled_at = canceled["canceled_at"].as_i64().expect("canceled_at");
    let pending = env.seller_pending(&seller).await;
    assert_eq!((pending.credits_pending, pending.net_credit()), (0, 0));
    let clearing = env.system(code::PSP_CLEARING).await;
    assert_eq!((clearing.debits_pending, clearing.net_credit()), (0, 0));
    assert_eq!(psp_charge(&env, &order_id).await["status"], "canceled");

    // Again: the order as it is; a capture now is refused.
    let again = env.post(&path, None, &json!({})).await.expect(200);
    assert_eq!(again["canceled_at"], canceled_at);
    let capture = format!("/v1/payment_orders/{order_id}/capture");
    let refused = env.post(&capture, None, &json!({})).await;
    assert_eq!(
        (refused.status, refused.code()),
        (422, "order_not_capturable")
    );
    let payment = env
        .get(&format!("/v1/payments/{payment_id}"))
        .await
        .expect(200);
    assert_eq!(payment["status"], "canceled", "{payment}");
    assert_eq!(
        env.event_types(&payment_id).await,
        [
            "payment.created",
            "payment.requires_capture",
            "payment.canceled"
        ]
    );
    assert_eq!(
        env.event_types(&order_id).await,
        [
            "payment_order.created",
            "payment_order.requires_capture",
            "payment_order.canceled"
        ]
    );
    assert_eq!(audited(&env, "payment_order.cancel", &order_id).await, 1);
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_authorization_is_canceled_once_though_tally_pay_was_down_at_the_deadline() {
    let validity = VALIDITY_S.to_string();
    let mut env = PayEnv::start(
        "",
        &[
            HOLD_A_DAY,
            (
                "TALLY_PAY__PAY__AUTHORIZATION_VALIDITY_S",
                validity.as_str(),
            ),
        ],
    )
    .await;
    let seller = env.seller("Gamma").await;
    let order = authorize(&env, "manual-3", &seller, 2_500).await;
    let order_id = order["id"].as_str().unwrap().to_string();
    let expires_at = order["authorization_expires_at"].as_i64().expect("expiry");
    let validity_ms = i64::try_from(VALIDITY_S * 1000).unwrap();
    assert!(
        (order["updated_at"].as_i64().unwrap() + validity_ms - expires_at).abs() <= 1,
        "{order}"
    );

    // Down before the deadline; the deadline passes with nobody to cancel.
    env.kill_pay();
    assert!(now_ms() < expires_at, "killed before the deadline");
    eventually(
        Duration::from_secs(VALIDITY_S + 30),
        "the deadline to pass",
        || async { (now_ms() > expires_at).then_some(()) },
    )
    .await;
    assert_eq!(psp_charge(&env, &order_id).await["status"], "authorized");
    assert_eq!(env.seller_pending(&seller).await.credits_pending, 2_500);

    // Back up, two processes: their workers race for it; it is canceled at the PSP and in the
    // ledger, once.
    env.restart_pay().await;
    env.start_another_pay().await;
    let canceled = eventually(
        Duration::from_secs(60),
        "the expired authorization to be canceled",
        || async {
            let order = env
                .get(&format!("/v1/payment_orders/{order_id}"))
                .await
                .body;
            (order["status"] == "canceled").then_some(order)
        },
    )
    .await;
    assert_eq!(
        canceled["cancellation"], "authorization_expired",
        "{canceled}"
    );
    assert!(canceled["canceled_at"].as_i64().unwrap() >= expires_at);
    assert_eq!(psp_charge(&env, &order_id).await["status"], "canceled");
    let pending = env.seller_pending(&seller).await;
    assert_eq!((pending.credits_pending, pending.net_credit()), (0, 0));
    let clearing = env.system(code::PSP_CLEARING).await;
    assert_eq!((clearing.debits_pending, clearing.net_credit()), (0, 0));

    // Once: one event, one audit entry, no index entry left.
    assert!(env
        .record_versions("pay.authorization", "")
        .await
        .is_empty());
    let action = "payment_order.cancel_authorization_expired";
    assert_eq!(audited(&env, action, &order_id).await, 1);
    assert_eq!(
        env.event_types(&order_id).await,
        [
            "payment_order.created",
            "payment_order.requires_capture",
            "payment_order.canceled"
        ]
    );
    env.verify_ledger();
}
