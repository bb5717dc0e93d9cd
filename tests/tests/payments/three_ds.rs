//! Strong customer authentication: the sandbox's 3-D Secure test card makes a payment
//! `requires_action` with the URL of the sandbox's challenge page. Completing the challenge
//! there (a real HTTP client reading the HTML and posting its form) lets the payment go on
//! exactly as a normal one; failing it, abandoning it past the sandbox's timeout, or leaving it
//! past tally-pay's own action timeout fails the payment and releases its hold, once.

use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::code;

use crate::env::{fee, PayEnv, CARD_OK};
use crate::harness::eventually;

/// The sandbox's 3-D Secure test card.
const CARD_3DS: &str = "4000000000003220";

/// Pays `amount` USD minor units to `seller` with the 3-D Secure card; checks that the payment
/// and its order wait for the customer and returns the payment.
async fn pay_3ds(env: &PayEnv, key: &str, seller: &str, amount: u64, capture: &str) -> Value {
    let (customer, card) = env.customer_with_card(CARD_3DS).await;
    let payment = env
        .post(
            "/v1/payments",
            Some(key),
            &json!({
                "customer_id": customer, "card_id": card, "currency": "USD", "capture": capture,
                "orders": [{"seller_id": seller, "amount": amount}]
            }),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "requires_action", "{payment}");
    assert_eq!(
        payment["next_action"]["type"], "redirect_to_url",
        "{payment}"
    );
    let url = payment["next_action"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/3ds/", env.psp_url)),
        "{url} is not a page of the sandbox PSP"
    );
    let order = &payment["orders"][0];
    assert_eq!(order["status"], "requires_action", "{order}");
    assert_eq!(order["next_action"], payment["next_action"], "{payment}");
    let types = env.event_types(order["id"].as_str().unwrap()).await;
    assert!(
        types.contains(&"payment_order.requires_action".to_string()),
        "{types:?}"
    );
    payment
}

/// The challenge page at `url`, as a browser gets it: HTML.
async fn challenge_page(env: &PayEnv, url: &str) -> String {
    let response = env.anonymous.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    response.text().await.unwrap()
}

/// Submits the page's form whose action ends with `/<button>` (`complete` or `fail`), as a
/// browser would (the action resolved against the page's URL); returns the answer page.
async fn submit(env: &PayEnv, url: &str, page: &str, button: &str) -> String {
    let suffix = format!("/{button}\"");
    let action = page
        .split("action=\"")
        .skip(1)
        .find_map(|rest| {
            let end = rest.find('"')?;
            rest[..=end]
                .ends_with(&suffix)
                .then(|| rest[..end].to_string())
        })
        .unwrap_or_else(|| panic!("no {button} form in the page: {page}"));
    let target = reqwest::Url::parse(url).unwrap().join(&action).unwrap();
    let response = env
        .anonymous
        .post(target)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Waits until the payment has `status` and returns it.
async fn wait_status(env: &PayEnv, payment_id: &str, status: &str, timeout: Duration) -> Value {
    eventually(
        timeout,
        &format!("payment {payment_id} to be {status}"),
        || async {
            let payment = env.get(&format!("/v1/payments/{payment_id}")).await.body;
            (payment["status"] == status).then_some(payment)
        },
    )
    .await
}

/// Checks that the payment failed with the `failure` code and left nothing in the ledger: the hold voided,
/// the seller's wallet and the PSP clearing account untouched (nothing else moved in `env`).
async fn assert_failed_and_released(env: &PayEnv, payment: &Value, seller: &str, failure: &str) {
    assert_eq!(payment["status"], "failed", "{payment}");
    assert!(payment.get("next_action").is_none(), "{payment}");
    let order = &payment["orders"][0];
    assert_eq!(order["status"], "failed", "{order}");
    assert_eq!(order["failure"]["code"], failure, "{order}");
    assert!(order["next_action"].is_null(), "{order}");
    let wallet = env.seller_wallet(seller).await;
    let clearing = env.system(code::PSP_CLEARING).await;
    for balance in [&wallet, &clearing] {
        assert_eq!(
            (
                balance.credits_posted,
                balance.debits_posted,
                balance.credits_pending,
                balance.debits_pending
            ),
            (0, 0, 0, 0)
        );
    }
    let types = env.event_types(order["id"].as_str().unwrap()).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "payment_order.failed")
            .count(),
        1,
        "{types:?}"
    );
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_challenge_lets_the_payment_succeed_and_balance_as_a_normal_one() {
    let env = PayEnv::start("", &[]).await;
    let (seller, plain_seller) = (env.seller("3ds").await, env.seller("plain").await);
    let amount = 1250;
    let payment = pay_3ds(&env, "3ds-ok", &seller, amount, "automatic").await;
    let id = payment["id"].as_str().unwrap();
    // While the customer decides, the money is held, not yet the seller's.
    let held = env.seller_wallet(&seller).await;
    assert_eq!((held.credits_pending, held.credits_posted), (1250, 0));

    let url = payment["next_action"]["url"].as_str().unwrap();
    let page = challenge_page(&env, url).await;
    assert!(page.contains("1250") && page.contains("USD"), "{page}");
    let answer = submit(&env, url, &page, "complete").await;
    assert!(answer.contains("succeeded"), "{answer}");
    let settled = wait_status(&env, id, "succeeded", Duration::from_secs(60)).await;
    assert!(settled.get("next_action").is_none(), "{settled}");
    let order = &settled["orders"][0];
    assert!(order["next_action"].is_null(), "{order}");
    assert_eq!(order["fee"], fee(amount), "{order}");
    let charge = env
        .psp_get(&format!("/v1/charges/{}", order["id"].as_str().unwrap()))
        .await;
    assert_eq!(charge["status"], "succeeded", "{charge}");

    // The same payment without 3-D Secure leaves the same balances.
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let plain = env
        .post(
            "/v1/payments",
            Some("plain"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                "orders": [{"seller_id": plain_seller, "amount": amount}]}),
        )
        .await
        .expect(201);
    let plain_id = plain["id"].as_str().unwrap();
    wait_status(&env, plain_id, "succeeded", Duration::from_secs(60)).await;
    let (with, without) = (
        env.seller_wallet(&seller).await,
        env.seller_wallet(&plain_seller).await,
    );
    let fields = |b: &crate::env::Balance| {
        (
            b.credits_posted,
            b.debits_posted,
            b.credits_pending,
            b.debits_pending,
        )
    };
    assert_eq!(fields(&with), fields(&without));
    assert_eq!(with.net_credit(), i128::from(amount - fee(amount)));
    // Answering again changes nothing.
    let again = submit(&env, url, &page, "fail").await;
    assert!(again.contains("succeeded"), "{again}");
    let after = env.get(&format!("/v1/payments/{id}")).await.body;
    assert_eq!(after["status"], "succeeded", "{after}");
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_challenge_fails_the_payment_after_the_timeout_and_releases_the_hold() {
    let env = PayEnv::start_with_psp_args("", &[], &["--three-ds-timeout-s", "2"]).await;
    let seller = env.seller("abandoned").await;
    let payment = pay_3ds(&env, "3ds-abandoned", &seller, 700, "automatic").await;
    let id = payment["id"].as_str().unwrap();
    let failed = wait_status(&env, id, "failed", Duration::from_secs(60)).await;
    assert_failed_and_released(&env, &failed, &seller, "authentication_failed").await;
    // The page says so, and offers nothing to answer any more.
    let url = payment["next_action"]["url"].as_str().unwrap();
    let page = challenge_page(&env, url).await;
    assert!(page.contains("failed") && !page.contains("<form"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_challenge_fails_the_payment() {
    let env = PayEnv::start("", &[]).await;
    let seller = env.seller("fails").await;
    let payment = pay_3ds(&env, "3ds-fail", &seller, 900, "automatic").await;
    let id = payment["id"].as_str().unwrap();
    let url = payment["next_action"]["url"].as_str().unwrap();
    let page = challenge_page(&env, url).await;
    let answer = submit(&env, url, &page, "fail").await;
    assert!(answer.contains("failed"), "{answer}");
    let failed = wait_status(&env, id, "failed", Duration::from_secs(60)).await;
    assert_failed_and_released(&env, &failed, &seller, "authentication_failed").await;
    // A late "complete" cannot revive it.
    let again = submit(&env, url, &page, "complete").await;
    assert!(again.contains("failed"), "{again}");
    let after = env.get(&format!("/v1/payments/{id}")).await.body;
    assert_eq!(after["status"], "failed", "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_challenge_of_a_manual_capture_waits_for_the_capture() {
    let env = PayEnv::start("", &[]).await;
    let seller = env.seller("manual").await;
    let payment = pay_3ds(&env, "3ds-manual", &seller, 2000, "manual").await;
    let id = payment["id"].as_str().unwrap();
    let url = payment["next_action"]["url"].as_str().unwrap();
    let page = challenge_page(&env, url).await;
    let answer = submit(&env, url, &page, "complete").await;
    assert!(answer.contains("authorized"), "{answer}");
    let authorized = wait_status(&env, id, "requires_capture", Duration::from_secs(60)).await;
    let order_id = authorized["orders"][0]["id"].as_str().unwrap();
    let captured = env
        .post(
            &format!("/v1/payment_orders/{order_id}/capture"),
            None,
            &json!({"amount": 1500}),
        )
        .await
        .expect(200);
    assert_eq!(captured["status"], "succeeded", "{captured}");
    let wallet = env.seller_wallet(&seller).await;
    assert_eq!(wallet.net_credit(), i128::from(1500 - fee(1500)));
    assert_eq!((wallet.credits_pending, wallet.debits_pending), (0, 0));
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn tally_pay_fails_a_challenge_left_past_its_action_timeout_and_cancels_it_at_the_psp() {
    // The sandbox would wait its default 10 minutes; tally-pay gives up after 2 s.
    let env = PayEnv::start("", &[("TALLY_PAY__PAY__ACTION_TIMEOUT_S", "2")]).await;
    let seller = env.seller("patience").await;
    let payment = pay_3ds(&env, "3ds-timeout", &seller, 800, "automatic").await;
    let id = payment["id"].as_str().unwrap();
    let failed = wait_status(&env, id, "failed", Duration::from_secs(60)).await;
    assert_failed_and_released(&env, &failed, &seller, "action_timeout").await;
    let order_id = failed["orders"][0]["id"].as_str().unwrap();
    let charge = env.psp_get(&format!("/v1/charges/{order_id}")).await;
    assert_eq!(charge["status"], "canceled", "{charge}");
    // The customer comes back too late: the page says so and the payment stays failed.
    let url = payment["next_action"]["url"].as_str().unwrap();
    let page = challenge_page(&env, url).await;
    assert!(
        page.contains("canceled") && !page.contains("<form"),
        "{page}"
    );
}
