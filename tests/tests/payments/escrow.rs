//! Escrow: a captured order's money waits in the seller's pending balance until the platform
//! confirms delivery or the hold period is over; payouts wait for it, a refund before release
//! comes out of pending, and every balance is exact in the API and in the ledger.

use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::code;
use tally_payments::domain::money::pro_rata;

use crate::env::{fee, today, PayEnv, CARD_DECLINED, CARD_OK, HOLD_A_DAY};
use crate::harness::eventually;

/// A seller with a bank account and, when given, its own hold period in seconds.
async fn seller(env: &PayEnv, name: &str, hold_period_s: Option<u64>) -> String {
    let mut body = json!({"name": name, "email": format!("{}@example.com", name.to_lowercase())});
    if let Some(seconds) = hold_period_s {
        body["hold_period_s"] = json!(seconds);
    }
    let seller = env.post("/v1/sellers", None, &body).await.expect(201);
    assert_eq!(seller["hold_period_s"], json!(hold_period_s), "{seller}");
    let id = seller["id"].as_str().unwrap().to_string();
    env.post(
        &format!("/v1/sellers/{id}/bank_accounts"),
        None,
        &json!({"holder_name": name, "iban": "DE89 3704 0044 0532 0130 00"}),
    )
    .await
    .expect(201);
    id
}

/// Pays `orders` (seller, USD minor units) with a new customer's card under `key`; returns the
/// payment as the API answered it.
async fn pay(env: &PayEnv, key: &str, card_number: &str, orders: &[(&str, u64)]) -> Value {
    let (customer, card) = env.customer_with_card(card_number).await;
    let orders: Vec<Value> = orders
        .iter()
        .map(|(seller, amount)| json!({"seller_id": seller, "amount": amount}))
        .collect();
    env.post(
        "/v1/payments",
        Some(key),
        &json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": orders}),
    )
    .await
    .expect(201)
}

/// The seller's USD balance as the API shows it: (available, pending).
async fn api_balance(env: &PayEnv, seller: &str) -> (u64, u64) {
    let balance = env
        .get(&format!("/v1/sellers/{seller}/balance"))
        .await
        .expect(200);
    let usd = balance["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == "USD")
        .unwrap_or_else(|| panic!("a USD balance: {balance}"))
        .clone();
    (
        usd["available"].as_u64().unwrap(),
        usd["pending"].as_u64().unwrap(),
    )
}

/// Both of the seller's accounts, posted, with nothing held on either: (wallet, pending).
async fn ledger_balances(env: &PayEnv, seller: &str) -> (i128, i128) {
    let wallet = env.seller_wallet(seller).await;
    let pending = env.seller_pending(seller).await;
    for account in [wallet, pending] {
        assert_eq!(account.debits_pending + account.credits_pending, 0);
    }
    (wallet.net_credit(), pending.net_credit())
}

/// Every audit entry of this (fresh) installation.
async fn audit_entries(env: &PayEnv) -> Vec<Value> {
    let page = env.get("/v1/audit?limit=500").await.expect(200);
    assert!(page["next_after"].is_null(), "one page holds them all");
    page["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_wait_for_the_release_by_delivery() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let alpha = seller(&env, "Alpha", None).await;
    let payment = pay(&env, "escrow-1", CARD_OK, &[(alpha.as_str(), 10_000)]).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let order = &payment["orders"][0];
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!(order["escrow"], "held", "{order}");
    assert_eq!(order["hold_period_s"], 86_400);
    assert_eq!(
        order["release_at"].as_i64().unwrap() - order["updated_at"].as_i64().unwrap(),
        86_400_000,
        "released a day after capture: {order}"
    );
    let share = 10_000 - fee(10_000);

    // Captured: all of it pending, nothing available; the platform has its fee already.
    assert_eq!(api_balance(&env, &alpha).await, (0, share));
    assert_eq!(ledger_balances(&env, &alpha).await, (0, i128::from(share)));
    assert_eq!(
        env.system(code::PLATFORM_REVENUE).await.net_credit(),
        i128::from(fee(10_000))
    );

    // Payouts draw on available funds only.
    for (key, amount) in [("po-all", share), ("po-one", 1)] {
        let refused = env
            .post(
                "/v1/payouts",
                Some(key),
                &json!({"seller_id": alpha, "currency": "USD", "amount": amount}),
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(refused.code(), "insufficient_funds", "{}", refused.body);
    }
    assert_eq!(ledger_balances(&env, &alpha).await, (0, i128::from(share)));

    // Delivery confirmed: the share moves to the wallet, once.
    let path = format!("/v1/payment_orders/{order_id}/release");
    let released = env
        .post(&path, Some("release-1"), &json!({}))
        .await
        .expect(200);
    assert_eq!(released["escrow"], "released", "{released}");
    let released_at = released["released_at"].as_i64().expect("released_at");
    assert_eq!(api_balance(&env, &alpha).await, (share, 0));
    assert_eq!(ledger_balances(&env, &alpha).await, (i128::from(share), 0));
    let replay = env.post(&path, Some("release-1"), &json!({})).await;
    assert!(replay.replayed);
    let again = env.post(&path, None, &json!({})).await.expect(200);
    assert_eq!(
        again["released_at"], released_at,
        "a second release changes nothing"
    );
    assert_eq!(ledger_balances(&env, &alpha).await, (i128::from(share), 0));
    let audit = audit_entries(&env).await;
    let releases: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "payment_order.release" && e["object_id"] == order_id.as_str())
        .collect();
    assert_eq!(releases.len(), 1, "one audited release: {audit:?}");
    assert_eq!(releases[0]["actor"], env.api_key_id.as_str());

    // Now the payout goes through and empties the wallet.
    let payout = env
        .post(
            "/v1/payouts",
            Some("po-after-release"),
            &json!({"seller_id": alpha, "currency": "USD", "amount": share}),
        )
        .await
        .expect(201);
    env.wait_payout_paid(payout["id"].as_str().unwrap()).await;
    assert_eq!(api_balance(&env, &alpha).await, (0, 0));
    assert_eq!(ledger_balances(&env, &alpha).await, (0, 0));
    assert_eq!(
        env.system(code::PSP_CLEARING).await.net_credit(),
        -i128::from(10_000 - share)
    );

    // An order that was never captured cannot be released.
    let declined = pay(
        &env,
        "escrow-declined",
        CARD_DECLINED,
        &[(alpha.as_str(), 500)],
    )
    .await;
    assert_eq!(declined["status"], "failed", "{declined}");
    let declined_order = declined["orders"][0]["id"].as_str().unwrap();
    let refused = env
        .post(
            &format!("/v1/payment_orders/{declined_order}/release"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.code(), "order_not_captured");
    assert_eq!(ledger_balances(&env, &alpha).await, (0, 0));

    // The seller's statement shows the release as the wallet's only credit.
    let statement = env
        .get(&format!(
            "/v1/sellers/{alpha}/statement?currency=USD&from={}",
            today()
        ))
        .await
        .expect(200);
    assert_eq!(statement["adds_up"], true, "{statement:#}");
    assert_eq!(statement["releases"], share, "{statement:#}");
    assert_eq!(statement["pay_ins"], 0, "counted in the release, not again");
    assert_eq!(statement["fees"], 0, "taken from pending at capture");
    assert_eq!(statement["payouts"], -i64::try_from(share).unwrap());
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hold_period_releases_by_itself_once() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    // Beta's own hold period is 10 s; Gamma has the service's day.
    let beta = seller(&env, "Beta", Some(10)).await;
    let gamma = seller(&env, "Gamma", None).await;
    // A seller's hold period can be changed, and reset to the service's with `null`.
    let path = format!("/v1/sellers/{gamma}");
    let changed = env
        .post(&path, None, &json!({"hold_period_s": 3600}))
        .await
        .expect(200);
    assert_eq!(changed["hold_period_s"], 3600, "{changed}");
    let too_long = env
        .post(&path, None, &json!({"hold_period_s": 200 * 24 * 3600}))
        .await;
    assert_eq!(too_long.code(), "invalid_hold_period", "{}", too_long.body);
    let reset = env
        .post(&path, None, &json!({"hold_period_s": null}))
        .await
        .expect(200);
    assert!(reset["hold_period_s"].is_null(), "{reset}");
    let payment = pay(
        &env,
        "escrow-hold",
        CARD_OK,
        &[(beta.as_str(), 4_000), (gamma.as_str(), 6_000)],
    )
    .await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let beta_order = &payment["orders"][0];
    let beta_order_id = beta_order["id"].as_str().unwrap().to_string();
    assert_eq!(beta_order["hold_period_s"], 10);
    assert_eq!(
        beta_order["release_at"].as_i64().unwrap() - beta_order["updated_at"].as_i64().unwrap(),
        10_000
    );
    let gamma_order = &payment["orders"][1];
    assert_eq!(
        gamma_order["hold_period_s"], 86_400,
        "the service's: {gamma_order}"
    );
    let beta_share = 4_000 - fee(4_000);
    let gamma_share = 6_000 - fee(6_000);
    assert_eq!(api_balance(&env, &beta).await, (0, beta_share));
    assert_eq!(api_balance(&env, &gamma).await, (0, gamma_share));

    // The worker releases Beta's order when its hold period is over; nobody asks it to.
    eventually(
        Duration::from_secs(90),
        "Beta's order to be released by its hold period",
        || async {
            let order = env
                .get(&format!("/v1/payment_orders/{beta_order_id}"))
                .await
                .body;
            (order["escrow"] == "released").then_some(())
        },
    )
    .await;
    let order = env
        .get(&format!("/v1/payment_orders/{beta_order_id}"))
        .await
        .expect(200);
    assert!(
        order["released_at"].as_i64().unwrap() >= order["release_at"].as_i64().unwrap(),
        "not before its time: {order}"
    );
    assert_eq!(api_balance(&env, &beta).await, (beta_share, 0));
    assert_eq!(
        ledger_balances(&env, &beta).await,
        (i128::from(beta_share), 0)
    );
    // Gamma's day is not over: its money is still pending.
    assert_eq!(api_balance(&env, &gamma).await, (0, gamma_share));
    assert_eq!(
        ledger_balances(&env, &gamma).await,
        (0, i128::from(gamma_share))
    );

    // Exactly once: the audit names the worker once, and a late confirmation of delivery
    // finds the order released and moves nothing.
    let audit = audit_entries(&env).await;
    let releases: Vec<&Value> = audit
        .iter()
        .filter(|e| {
            e["object_id"] == beta_order_id.as_str()
                && e["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("payment_order.release"))
        })
        .collect();
    assert_eq!(releases.len(), 1, "{audit:?}");
    assert_eq!(releases[0]["action"], "payment_order.release_hold_expired");
    assert_eq!(releases[0]["actor"], "system:worker");
    let late = env
        .post(
            &format!("/v1/payment_orders/{beta_order_id}/release"),
            None,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(late["released_at"], order["released_at"]);
    assert_eq!(
        ledger_balances(&env, &beta).await,
        (i128::from(beta_share), 0)
    );

    // Beta can be paid out now, Gamma not yet.
    let payout = env
        .post(
            "/v1/payouts",
            Some("po-beta"),
            &json!({"seller_id": beta, "currency": "USD", "amount": beta_share}),
        )
        .await
        .expect(201);
    env.wait_payout_paid(payout["id"].as_str().unwrap()).await;
    let refused = env
        .post(
            "/v1/payouts",
            Some("po-gamma"),
            &json!({"seller_id": gamma, "currency": "USD", "amount": gamma_share}),
        )
        .await;
    assert_eq!(refused.code(), "insufficient_funds", "{}", refused.body);
    assert_eq!(ledger_balances(&env, &beta).await, (0, 0));
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_before_release_comes_out_of_pending() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let delta = seller(&env, "Delta", None).await;
    let payment = pay(&env, "escrow-refund", CARD_OK, &[(delta.as_str(), 10_000)]).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let order_id = payment["orders"][0]["id"].as_str().unwrap().to_string();
    let order_fee = fee(10_000);
    let share = 10_000 - order_fee;

    // Refund 40.00 before release: pending gives it back, with the fee share it gets back.
    let refund = env
        .post(
            "/v1/refunds",
            Some("refund-pending"),
            &json!({"order_id": order_id, "amount": 4_000}),
        )
        .await
        .expect(201);
    assert_eq!(refund["status"], "succeeded", "{refund}");
    assert_eq!(refund["from_pending"], true, "{refund}");
    let fee_back = pro_rata(order_fee, 4_000, 10_000);
    assert_eq!(refund["fee_returned"], fee_back);
    let pending_after_refund = share - 4_000 + fee_back;
    assert_eq!(api_balance(&env, &delta).await, (0, pending_after_refund));
    assert_eq!(
        ledger_balances(&env, &delta).await,
        (0, i128::from(pending_after_refund))
    );
    assert_eq!(env.system(code::REFUNDS_IN_TRANSIT).await.net_credit(), 0);
    assert_eq!(
        env.system(code::PLATFORM_REVENUE).await.net_credit(),
        i128::from(order_fee - fee_back)
    );
    assert_eq!(
        env.system(code::PSP_CLEARING).await.net_credit(),
        -i128::from(10_000 - 4_000)
    );

    // The release moves what is left of the order's share, no more.
    env.post(
        &format!("/v1/payment_orders/{order_id}/release"),
        None,
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(api_balance(&env, &delta).await, (pending_after_refund, 0));
    assert_eq!(
        ledger_balances(&env, &delta).await,
        (i128::from(pending_after_refund), 0)
    );

    // A refund after release comes out of the wallet, as before escrow.
    let refund = env
        .post(
            "/v1/refunds",
            Some("refund-available"),
            &json!({"order_id": order_id, "amount": 1_000}),
        )
        .await
        .expect(201);
    assert_eq!(refund["status"], "succeeded", "{refund}");
    assert_eq!(refund["from_pending"], false, "{refund}");
    let fee_back_2 = pro_rata(order_fee, 1_000, 10_000);
    let available = pending_after_refund - 1_000 + fee_back_2;
    assert_eq!(api_balance(&env, &delta).await, (available, 0));
    assert_eq!(
        ledger_balances(&env, &delta).await,
        (i128::from(available), 0)
    );
    assert_eq!(
        env.system(code::PLATFORM_REVENUE).await.net_credit(),
        i128::from(order_fee - fee_back - fee_back_2)
    );

    // Reconciliation's ledger check holds with the pending accounts counted.
    let recon = env
        .post("/v1/reconciliations", None, &json!({ "date": today() }))
        .await
        .expect(200);
    assert_eq!(
        recon["summary"]["ledger_ok"], true,
        "{:#}",
        recon["summary"]["ledger"]
    );
    env.verify_ledger();
}
