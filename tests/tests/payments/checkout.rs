//! A checkout with three orders for three sellers, a refund and a payout: every ledger balance
//! is exactly what the fee rule says.

use serde_json::json;
use tally_payments::domain::chart::code;

use crate::env::{fee, PayEnv, CARD_DECLINED, CARD_OK};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sellers_checkout_refund_and_payout_move_exact_amounts() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let sellers = [
        env.seller_with_bank("Alpha").await,
        env.seller_with_bank("Beta").await,
        env.seller_with_bank("Gamma").await,
    ];
    let amounts = [1250u64, 9999, 100_000];
    let orders: Vec<_> = sellers
        .iter()
        .zip(amounts)
        .map(|(s, a)| json!({"seller_id": s, "amount": a}))
        .collect();
    let payment = env
        .post(
            "/v1/payments",
            Some("checkout-1"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": orders}),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert_eq!(payment["amount"], amounts.iter().sum::<u64>());

    let fees: Vec<u64> = amounts.iter().map(|a| fee(*a)).collect();
    for ((seller, amount), fee) in sellers.iter().zip(amounts).zip(&fees) {
        let wallet = env.seller_wallet(seller).await;
        assert_eq!(
            wallet.net_credit(),
            i128::from(amount - fee),
            "wallet of {seller}"
        );
        assert_eq!(wallet.credits_pending + wallet.debits_pending, 0);
        let balance = env
            .get(&format!("/v1/sellers/{seller}/balance"))
            .await
            .expect(200);
        let usd = balance["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["currency"] == "USD")
            .unwrap()
            .clone();
        assert_eq!(usd["available"], amount - fee);
    }
    let total: u64 = amounts.iter().sum();
    assert_eq!(
        env.system(code::PLATFORM_REVENUE).await.net_credit(),
        i128::from(fees.iter().sum::<u64>())
    );
    assert_eq!(
        env.system(code::PSP_CLEARING).await.net_credit(),
        -i128::from(total)
    );
    // One PSP charge per order, each for the order's amount.
    let charges = env.psp_charges().await;
    assert_eq!(charges.len(), 3);
    for order in payment["orders"].as_array().unwrap() {
        let charge = charges
            .iter()
            .find(|c| c["reference"] == order["id"])
            .expect("a charge per order");
        assert_eq!(charge["amount"], order["amount"]);
        assert_eq!(charge["status"], "succeeded");
    }

    // Partial refund of Gamma's order: the seller gives back 400.00 and gets the fee share back.
    let gamma_order = payment["orders"][2]["id"].as_str().unwrap().to_string();
    let refund = env
        .post(
            "/v1/refunds",
            Some("refund-1"),
            &json!({"order_id": gamma_order, "amount": 40_000}),
        )
        .await
        .expect(201);
    assert_eq!(refund["status"], "succeeded", "{refund}");
    let fee_back = tally_payments::domain::money::pro_rata(fees[2], 40_000, 100_000);
    assert_eq!(refund["fee_returned"], fee_back);
    let gamma = env.seller_wallet(&sellers[2]).await;
    assert_eq!(
        gamma.net_credit(),
        i128::from(100_000 - fees[2] - 40_000 + fee_back)
    );
    assert_eq!(
        env.system(code::PSP_CLEARING).await.net_credit(),
        -i128::from(total) + 40_000
    );
    assert_eq!(env.system(code::REFUNDS_IN_TRANSIT).await.net_credit(), 0);

    // Pay Alpha out in full: the wallet is empty, the payout settles to `paid` asynchronously.
    let alpha_available = amounts[0] - fees[0];
    let payout = env
        .post(
            "/v1/payouts",
            Some("payout-1"),
            &json!({"seller_id": sellers[0], "currency": "USD", "amount": alpha_available}),
        )
        .await
        .expect(201);
    let payout_id = payout["id"].as_str().unwrap().to_string();
    crate::harness::eventually(
        std::time::Duration::from_secs(30),
        "the payout to be paid",
        || async {
            let p = env.get(&format!("/v1/payouts/{payout_id}")).await.body;
            (p["status"] == "paid").then_some(())
        },
    )
    .await;
    let alpha = env.seller_wallet(&sellers[0]).await;
    assert_eq!(alpha.net_credit(), 0);
    assert_eq!(alpha.debits_pending, 0);
    assert_eq!(env.system(code::PAYOUTS_IN_TRANSIT).await.net_credit(), 0);
    assert_eq!(
        env.system(code::PSP_CLEARING).await.net_credit(),
        -i128::from(total) + 40_000 + i128::from(alpha_available)
    );

    // A declined card: the order fails with the PSP's reason and nothing stays held.
    let (customer2, card2) = env.customer_with_card(CARD_DECLINED).await;
    let declined = env
        .post(
            "/v1/payments",
            Some("checkout-declined"),
            &json!({"customer_id": customer2, "card_id": card2, "currency": "USD",
                    "orders": [{"seller_id": sellers[1], "amount_decimal": "5.00"}]}),
        )
        .await
        .expect(201);
    assert_eq!(declined["status"], "failed");
    assert_eq!(declined["orders"][0]["failure"]["code"], "card_declined");
    let beta = env.seller_wallet(&sellers[1]).await;
    assert_eq!(beta.net_credit(), i128::from(amounts[1] - fees[1]));
    assert_eq!(beta.credits_pending, 0);
    env.verify_ledger();
}
