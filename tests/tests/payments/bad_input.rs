//! Bad requests get a clear 4xx with a stable code, and nothing moves: no PSP call, no posting.

use serde_json::json;
use tally_payments::domain::chart::code;

use crate::env::{PayEnv, CARD_OK};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_clearly_and_move_nothing() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller_with_bank("Solid").await;
    let unbanked = env.seller("Unbanked").await;
    let other = env.seller_with_bank("Other").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("ok-1"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 10_000}, {"seller_id": unbanked, "amount": 5_000}]}),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "succeeded");
    let order = payment["orders"][0]["id"].as_str().unwrap().to_string();
    let charges_before = env.psp_charges().await.len();
    let wallet_before = env.seller_wallet(&seller).await;
    let clearing_before = env.system(code::PSP_CLEARING).await;

    let pay_body = |orders: serde_json::Value, currency: &str| json!({"customer_id": customer, "card_id": card, "currency": currency, "orders": orders});
    let cases: Vec<(&str, &str, serde_json::Value, u16, &str)> = vec![
        (
            "refund over captured",
            "/v1/refunds",
            json!({"order_id": order, "amount": 10_001}),
            422,
            "refund_exceeds_captured",
        ),
        (
            "payout over the wallet",
            "/v1/payouts",
            json!({"seller_id": seller, "currency": "USD", "amount": 1_000_000}),
            422,
            "insufficient_funds",
        ),
        (
            "payout without a bank account",
            "/v1/payouts",
            json!({"seller_id": unbanked, "currency": "USD", "amount": 100}),
            422,
            "bank_account_not_linked",
        ),
        (
            "payout to another seller's account",
            "/v1/payouts",
            json!({"seller_id": seller, "currency": "USD", "amount": 100, "bank_account_id": "ba_00000000000000ff"}),
            422,
            "bank_account_not_linked",
        ),
        (
            "negative amount",
            "/v1/payments",
            pay_body(json!([{"seller_id": seller, "amount": -5}]), "USD"),
            400,
            "invalid_amount",
        ),
        (
            "fractional minor units",
            "/v1/payments",
            pay_body(json!([{"seller_id": seller, "amount": 12.345}]), "USD"),
            400,
            "invalid_amount",
        ),
        (
            "mis-scaled decimal 12.345 USD",
            "/v1/payments",
            pay_body(
                json!([{"seller_id": seller, "amount_decimal": "12.345"}]),
                "USD",
            ),
            400,
            "invalid_amount",
        ),
        (
            "unknown currency",
            "/v1/payments",
            pay_body(json!([{"seller_id": seller, "amount": 100}]), "XYZ"),
            400,
            "unknown_currency",
        ),
        (
            "a card number in a payment",
            "/v1/payments",
            json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": [{"seller_id": seller, "amount": 100}], "description": "card 4242 4242 4242 4242"}),
            400,
            "card_data_not_accepted",
        ),
        (
            "no orders",
            "/v1/payments",
            pay_body(json!([]), "USD"),
            400,
            "invalid_orders",
        ),
        (
            "unknown seller",
            "/v1/payments",
            pay_body(
                json!([{"seller_id": "sel_00000000000000ee", "amount": 100}]),
                "USD",
            ),
            422,
            "seller_not_found",
        ),
    ];
    for (i, (what, path, body, status, code)) in cases.into_iter().enumerate() {
        let response = env.post(path, Some(&format!("bad-{i}")), &body).await;
        assert_eq!(response.status, status, "{what}: {}", response.body);
        assert_eq!(response.code(), code, "{what}: {}", response.body);
        assert!(
            !response.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{what}: a message"
        );
    }
    // A card number sent to tally-pay's card endpoint is refused and never logged.
    let raw_card = env
        .post(
            &format!("/v1/customers/{customer}/cards"),
            None,
            &json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}),
        )
        .await;
    assert_eq!(raw_card.status, 400);
    assert_eq!(raw_card.code(), "card_data_not_accepted");
    assert!(
        !env.pay_log().contains("4242424242424242"),
        "a card number reached the log"
    );
    // Money-moving POSTs need an Idempotency-Key; malformed JSON and bad bank accounts are named.
    let no_key = env
        .post(
            "/v1/payouts",
            None,
            &json!({"seller_id": seller, "currency": "USD", "amount": 1}),
        )
        .await;
    assert_eq!(no_key.code(), "idempotency_key_required");
    let bad_iban = env
        .post(
            &format!("/v1/sellers/{seller}/bank_accounts"),
            None,
            &json!({"holder_name": "X", "iban": "DE89370400440532013001"}),
        )
        .await;
    assert_eq!(
        (bad_iban.status, bad_iban.code()),
        (400, "invalid_bank_account")
    );
    let bad_routing = env
        .post(&format!("/v1/sellers/{seller}/bank_accounts"), None, &json!({"holder_name": "X", "account_number": "000123456789", "routing_number": "021000022"}))
        .await;
    assert_eq!(
        (bad_routing.status, bad_routing.code()),
        (400, "invalid_bank_account")
    );
    let garbage = env
        .http
        .post(format!("{}/v1/customers", env.pay_url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);

    // Nothing moved.
    assert_eq!(env.psp_charges().await.len(), charges_before);
    assert_eq!(
        env.psp_get("/v1/refunds").await.as_array().unwrap().len(),
        0
    );
    assert_eq!(
        env.psp_get("/v1/payouts").await.as_array().unwrap().len(),
        0
    );
    assert_eq!(env.seller_wallet(&seller).await, wallet_before);
    assert_eq!(env.system(code::PSP_CLEARING).await, clearing_before);
    assert_eq!(env.seller_wallet(&other).await.net_credit(), 0);
    env.verify_ledger();
}
