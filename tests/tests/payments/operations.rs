//! Deposits, automatic daily payouts, and the dead-letter queue (API and tallyctl).

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tally_payments::domain::chart::{self, code};
use tally_payments::domain::ids;

use crate::env::{usd, PayEnv, CARD_OK};
use crate::harness::{binary, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_credit_the_customer_wallet_once() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let body = json!({"customer_id": customer, "card_id": card, "currency": "USD", "amount_decimal": "50.00"});
    let deposit = env
        .post("/v1/deposits", Some("dep-1"), &body)
        .await
        .expect(201);
    assert_eq!(deposit["status"], "succeeded", "{deposit}");
    assert_eq!(deposit["fee"], 0);
    let again = env.post("/v1/deposits", Some("dep-1"), &body).await;
    assert!(again.replayed);
    let owner = ids::number(ids::CUSTOMER, &customer).unwrap();
    let wallet = env
        .account(chart::account_id(code::CUSTOMER_WALLET, usd(), owner))
        .await;
    assert_eq!(wallet.net_credit(), 5000);
    let balance = env
        .get(&format!("/v1/customers/{customer}/balance"))
        .await
        .expect(200);
    assert_eq!(balance["balances"][0]["available"], 5000, "{balance}");
    let id = deposit["id"].as_str().unwrap();
    assert_eq!(
        env.get(&format!("/v1/deposits/{id}")).await.expect(200)["amount"],
        5000
    );
    assert_eq!(env.psp_charges().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_payouts_pay_opted_in_sellers_once_a_day() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let daily = env
        .post(
            "/v1/sellers",
            None,
            &json!({"name": "Daily", "email": "daily@example.com", "payout_schedule": "daily"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.post(
        &format!("/v1/sellers/{daily}/bank_accounts"),
        None,
        &json!({"holder_name": "Daily", "account_number": "000123456789", "routing_number": "110000000"}),
    )
    .await
    .expect(201);
    let manual = env.seller_with_bank("Manual").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("daily-1"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": daily, "amount": 10_000}, {"seller_id": manual, "amount": 10_000}]}),
        )
        .await
        .expect(201);
    let payment = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(payment["status"], "succeeded");
    let available = 10_000 - payment["orders"][0]["fee"].as_u64().unwrap();

    let run = env
        .post(
            "/v1/payouts/run_daily",
            None,
            &json!({"date": "2026-11-26"}),
        )
        .await
        .expect(200);
    let created = run["created"].as_array().unwrap();
    assert_eq!(created.len(), 1, "{run}");
    assert_eq!(created[0]["seller_id"], daily.as_str());
    assert_eq!(created[0]["amount"], available);
    assert_eq!(created[0]["trigger"], "automatic");
    let payout = created[0]["id"].as_str().unwrap().to_string();
    // The same day again pays nothing more.
    let again = env
        .post(
            "/v1/payouts/run_daily",
            None,
            &json!({"date": "2026-11-26"}),
        )
        .await
        .expect(200);
    assert_eq!(again["created"].as_array().unwrap().len(), 0, "{again}");
    eventually(
        Duration::from_secs(30),
        "the daily payout to be paid",
        || async {
            let p = env.get(&format!("/v1/payouts/{payout}")).await.body;
            (p["status"] == "paid").then_some(())
        },
    )
    .await;
    assert_eq!(env.seller_wallet(&daily).await.net_credit(), 0);
    assert_eq!(
        env.seller_wallet(&manual).await.net_credit(),
        i128::from(available)
    );
    assert_eq!(
        env.psp_get("/v1/payouts").await.as_array().unwrap().len(),
        1
    );
    let bad_date = env
        .post(
            "/v1/payouts/run_daily",
            None,
            &json!({"date": "26/11/2026"}),
        )
        .await;
    assert_eq!((bad_date.status, bad_date.code()), (400, "invalid_date"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_land_in_dead_letters_and_can_be_retried() {
    let env = PayEnv::start("", &[("TALLY_PAY__WORKER__MAX_ATTEMPTS", "3")]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Patient").await;
    // Every PSP call fails with a 5xx before doing anything.
    env.set_faults("error_rate=1").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("dead-1"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 4200}]}),
        )
        .await
        .expect(201);
    let order = payment["orders"][0]["id"].as_str().unwrap().to_string();
    let letters = eventually(
        Duration::from_secs(60),
        "the order to be dead-lettered",
        || async {
            let letters = env.get("/v1/dead_letters").await.body;
            (letters["data"].as_array()?.len() == 1).then_some(letters)
        },
    )
    .await;
    let letter = &letters["data"][0];
    assert_eq!(letter["id"], order.as_str());
    assert_eq!(letter["kind"], "order");
    assert_eq!(letter["reason"]["code"], "retries_exhausted");
    assert!(!letter["reason"]["message"].as_str().unwrap().is_empty());
    let payment_now = env
        .get(&format!("/v1/payments/{}", payment["id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(payment_now["status"], "requires_attention");
    // The hold is still in place: nothing credited, nothing lost.
    let wallet = env.seller_wallet(&seller).await;
    assert_eq!((wallet.credits_posted, wallet.credits_pending), (0, 4200));

    // tallyctl reads the same queue straight from the cluster.
    let output = Command::new(binary("tallyctl"))
        .args(["--cluster", &env.cluster.cluster_arg(), "dead-letters"])
        .envs(env.cluster.certs.env("admin"))
        .output()
        .expect("run tallyctl");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&order) && text.contains("retries_exhausted"),
        "{text}"
    );

    // The PSP recovers; an operator retries; the order settles once.
    env.set_faults("").await;
    env.post(&format!("/v1/dead_letters/{order}/retry"), None, &json!({}))
        .await
        .expect(200);
    let settled = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(
        env.get("/v1/dead_letters").await.expect(200)["data"],
        json!([])
    );
    let fee = settled["orders"][0]["fee"].as_u64().unwrap();
    assert_eq!(
        env.seller_wallet(&seller).await.net_credit(),
        i128::from(4200 - fee)
    );
    assert_eq!(env.psp_charges().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payout_returns_the_money_and_a_retryable_card_error_is_retried() {
    let env = PayEnv::start("", &[]).await;
    // 4000000000000119: the PSP answers its first attempt with a retryable processing error.
    let (customer, card) = env.customer_with_card("4000000000000119").await;
    let seller = env.seller("Closed").await;
    // The sandbox fails payouts to this account number ("account_closed").
    env.post(
        &format!("/v1/sellers/{seller}/bank_accounts"),
        None,
        &json!({"holder_name": "Closed", "account_number": "000111111116", "routing_number": "110000000"}),
    )
    .await
    .expect(201);
    let payment = env
        .post(
            "/v1/payments",
            Some("retryable-1"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 8000}]}),
        )
        .await
        .expect(201);
    assert_eq!(
        payment["status"], "processing",
        "the first attempt is retryable: {payment}"
    );
    let settled = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert!(settled["orders"][0]["attempts"].as_u64().unwrap() >= 1);
    let charges = env.psp_charges().await;
    assert_eq!(charges.len(), 1, "one charge despite the retry");
    let available = 8000 - settled["orders"][0]["fee"].as_u64().unwrap();

    let payout = env
        .post(
            "/v1/payouts",
            Some("closed-1"),
            &json!({"seller_id": seller, "currency": "USD", "amount": available}),
        )
        .await
        .expect(201);
    let id = payout["id"].as_str().unwrap().to_string();
    let failed = eventually(Duration::from_secs(30), "the payout to fail", || async {
        let p = env.get(&format!("/v1/payouts/{id}")).await.body;
        (p["status"] == "failed").then_some(p)
    })
    .await;
    assert_eq!(failed["failure"]["code"], "account_closed", "{failed}");
    // Voided: the whole amount is available again, nothing in transit.
    let wallet = env.seller_wallet(&seller).await;
    assert_eq!(wallet.net_credit(), i128::from(available));
    assert_eq!(wallet.debits_pending, 0);
    assert_eq!(env.system(code::PAYOUTS_IN_TRANSIT).await.net_credit(), 0);
    env.verify_ledger();
}
