//! Disputes (chargebacks), opened and closed by the sandbox PSP's signed webhooks: won (the
//! amount comes back, the fee does not), lost (the money stays out), lost with a seller who
//! cannot cover it (the platform's loss account pays, later pay-ins repay it), and
//! reconciliation matching the dispute lines of the settlement report. Balances exact in the
//! API and the ledger.

use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::{self, code};
use tally_payments::domain::ids;

use crate::env::{fee, today, usd, PayEnv, CARD_OK, HOLD_A_DAY};
use crate::harness::eventually;

/// The sandbox's dispute fee (`psp-sandbox` `DISPUTE_FEE`).
const DISPUTE_FEE: u64 = 1500;
/// The sandbox's test card whose capture opens a dispute of the whole amount.
const CARD_DISPUTED: &str = "4000000000000259";

/// Pays one order of `amount` USD minor units to `seller` with a new customer's card, waits
/// for it to settle; returns the order id.
async fn paid_order(env: &PayEnv, key: &str, card: &str, seller: &str, amount: u64) -> String {
    let (customer, card) = env.customer_with_card(card).await;
    let payment = env
        .post(
            "/v1/payments",
            Some(key),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": amount}]}),
        )
        .await
        .expect(201);
    let settled = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    settled["orders"][0]["id"].as_str().unwrap().to_string()
}

/// The dispute of `order` once tally-pay has it in `status`.
async fn dispute_of(env: &PayEnv, order: &str, status: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("the dispute of {order} to be {status}"),
        || async {
            let page = env.get("/v1/disputes?limit=100").await.expect(200);
            let found = page["data"]
                .as_array()?
                .iter()
                .find(|d| d["order_id"] == order)?
                .clone();
            (found["status"] == status).then_some(found)
        },
    )
    .await
}

/// The seller's USD balance as the API shows it: (available, pending, recovery).
async fn balance(env: &PayEnv, seller: &str) -> (u64, u64, u64) {
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
    let field = |name: &str| usd[name].as_u64().unwrap();
    (field("available"), field("pending"), field("recovery"))
}

/// The seller's platform loss account: (debits, credits) posted.
async fn loss_account(env: &PayEnv, seller: &str) -> (u128, u128) {
    let owner = ids::number(ids::SELLER, seller).unwrap();
    let account = env
        .account(chart::account_id(code::DISPUTE_LOSS, usd(), owner))
        .await;
    (account.debits_posted, account.credits_posted)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_won_dispute_returns_the_amount_but_not_the_fee() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let seller = env.seller_with_bank("Won").await;
    let order = paid_order(&env, "won-1", CARD_OK, &seller, 10_000).await;
    let share = 10_000 - fee(10_000);
    assert_eq!(balance(&env, &seller).await, (0, share, 0));

    env.psp_post(
        &format!("/_sandbox/charges/{order}/dispute"),
        &json!({"amount": 4_000, "reason": "product_not_received"}),
    )
    .await;
    let dispute = dispute_of(&env, &order, "needs_response").await;
    let id = dispute["id"].as_str().unwrap().to_string();
    assert_eq!(dispute["amount"], 4_000, "{dispute}");
    assert_eq!(dispute["fee"], DISPUTE_FEE, "{dispute}");
    assert_eq!(dispute["reason"], "product_not_received");
    assert_eq!(dispute["seller_id"], seller.as_str());
    // Amount and fee come out of the order's pending share.
    assert_eq!(dispute["taken"]["amount"]["pending"], 4_000, "{dispute}");
    assert_eq!(dispute["taken"]["fee"]["pending"], DISPUTE_FEE, "{dispute}");
    let after_open = share - 4_000 - DISPUTE_FEE;
    assert_eq!(balance(&env, &seller).await, (0, after_open, 0));
    assert_eq!(env.system(code::DISPUTES_OPEN).await.net_credit(), 4_000);

    // Evidence: bounded, then forwarded and stored, once.
    let long = json!({"product_description": "x".repeat(5_001)});
    let refused = env
        .post(&format!("/v1/disputes/{id}/evidence"), None, &long)
        .await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_evidence"));
    assert_eq!(refused.body["error"]["param"], "product_description");
    let evidence = json!({"product_description": "Shipped 3 Dec, tracking 1Z999"});
    let reviewed = env
        .post(&format!("/v1/disputes/{id}/evidence"), None, &evidence)
        .await
        .expect(200);
    assert_eq!(reviewed["status"], "under_review", "{reviewed}");
    let psp_id = dispute["psp_id"].as_str().unwrap();
    let at_psp = env.psp_get(&format!("/v1/disputes/{psp_id}")).await;
    assert_eq!(at_psp["status"], "under_review", "{at_psp}");
    assert_eq!(
        at_psp["evidence"]["product_description"], evidence["product_description"],
        "the PSP has the evidence: {at_psp}"
    );
    let other = json!({"uncategorized_text": "more"});
    let again = env
        .post(&format!("/v1/disputes/{id}/evidence"), None, &other)
        .await;
    assert_eq!(
        (again.status, again.code()),
        (422, "dispute_not_open_for_evidence")
    );

    env.psp_post(
        &format!("/_sandbox/disputes/{psp_id}/resolve"),
        &json!({"outcome": "won"}),
    )
    .await;
    let won = dispute_of(&env, &order, "won").await;
    assert_eq!(
        won["returned"],
        json!({"loss": 0, "wallet": 4_000}),
        "{won}"
    );
    // The amount is back, available; the fee is gone.
    assert_eq!(balance(&env, &seller).await, (4_000, after_open, 0));
    assert_eq!(env.system(code::DISPUTES_OPEN).await.net_credit(), 0);
    assert_eq!(
        env.event_types(&id).await,
        ["dispute.created", "dispute.under_review", "dispute.won"]
    );
    let got = env.get(&format!("/v1/disputes/{id}")).await.expect(200);
    assert_eq!(got, won);
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_dispute_keeps_the_money_out() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let seller = env.seller_with_bank("Lost").await;
    let first = paid_order(&env, "lost-1", CARD_OK, &seller, 10_000).await;
    env.post(
        &format!("/v1/payment_orders/{first}/release"),
        None,
        &json!({}),
    )
    .await
    .expect(200);
    let wallet = 10_000 - fee(10_000);
    // The disputed test card: its capture opens a dispute of the whole order.
    let order = paid_order(&env, "lost-2", CARD_DISPUTED, &seller, 2_000).await;
    let share = 2_000 - fee(2_000);
    let dispute = dispute_of(&env, &order, "needs_response").await;
    assert_eq!(dispute["reason"], "fraudulent");
    assert_eq!(
        dispute["taken"],
        json!({"amount": {"pending": share, "wallet": 2_000 - share, "loss": 0},
               "fee": {"pending": 0, "wallet": DISPUTE_FEE, "loss": 0}}),
        "pending first, then available"
    );
    let available = wallet - (2_000 - share) - DISPUTE_FEE;
    assert_eq!(balance(&env, &seller).await, (available, 0, 0));
    let clearing_before = env.system(code::PSP_CLEARING).await.net_credit();

    let psp_id = dispute["psp_id"].as_str().unwrap();
    env.psp_post(
        &format!("/_sandbox/disputes/{psp_id}/resolve"),
        &json!({"outcome": "lost"}),
    )
    .await;
    let lost = dispute_of(&env, &order, "lost").await;
    assert!(lost.get("returned").is_none(), "{lost}");
    assert_eq!(balance(&env, &seller).await, (available, 0, 0));
    assert_eq!(env.system(code::DISPUTES_OPEN).await.net_credit(), 0);
    // The PSP took the amount.
    let clearing_after = env.system(code::PSP_CLEARING).await.net_credit();
    assert_eq!(clearing_after - clearing_before, 2_000);
    let id = lost["id"].as_str().unwrap();
    assert_eq!(
        env.event_types(id).await,
        ["dispute.created", "dispute.lost"]
    );
    // The list finds it by status and seller.
    let listed = env
        .get(&format!("/v1/disputes?status=lost&seller={seller}"))
        .await
        .expect(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_the_seller_cannot_cover_is_recovered_from_later_pay_ins() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let seller = env.seller_with_bank("Short").await;
    let order = paid_order(&env, "short-1", CARD_OK, &seller, 1_000).await;
    let share = 1_000 - fee(1_000);
    env.psp_post(&format!("/_sandbox/charges/{order}/dispute"), &json!({}))
        .await;
    let dispute = dispute_of(&env, &order, "needs_response").await;
    let owed = 1_000 + DISPUTE_FEE - share;
    assert_eq!(
        dispute["taken"],
        json!({"amount": {"pending": share, "wallet": 0, "loss": 1_000 - share},
               "fee": {"pending": 0, "wallet": 0, "loss": DISPUTE_FEE}}),
        "what the seller cannot cover comes from the platform's loss account"
    );
    assert_eq!(balance(&env, &seller).await, (0, 0, owed));
    assert_eq!(loss_account(&env, &seller).await, (u128::from(owed), 0));
    let psp_id = dispute["psp_id"].as_str().unwrap();
    env.psp_post(
        &format!("/_sandbox/disputes/{psp_id}/resolve"),
        &json!({"outcome": "lost"}),
    )
    .await;
    dispute_of(&env, &order, "lost").await;
    assert_eq!(balance(&env, &seller).await, (0, 0, owed));

    // A later pay-in repays the recovery first, in its capture.
    let later = paid_order(&env, "short-2", CARD_OK, &seller, 2_000).await;
    let later_share = 2_000 - fee(2_000);
    assert!(later_share > owed);
    let got = env
        .get(&format!("/v1/payment_orders/{later}"))
        .await
        .expect(200);
    assert_eq!(got["recovery_repaid"], owed, "{got}");
    assert_eq!(balance(&env, &seller).await, (0, later_share - owed, 0));
    let (debits, credits) = loss_account(&env, &seller).await;
    assert_eq!((debits, credits), (u128::from(owed), u128::from(owed)));
    // Its release moves the rest of its share to the wallet.
    env.post(
        &format!("/v1/payment_orders/{later}/release"),
        None,
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(balance(&env, &seller).await, (later_share - owed, 0, 0));
    // The next pay-in repays nothing.
    let third = paid_order(&env, "short-3", CARD_OK, &seller, 500).await;
    let got = env
        .get(&format!("/v1/payment_orders/{third}"))
        .await
        .expect(200);
    assert_eq!(got["recovery_repaid"], 0, "{got}");
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_matches_dispute_lines() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    let seller = env.seller_with_bank("Recon").await;
    let mut disputes = Vec::new();
    for (key, outcome) in [("recon-1", "won"), ("recon-2", "lost"), ("recon-3", "")] {
        let order = paid_order(&env, key, CARD_DISPUTED, &seller, 3_000).await;
        let dispute = dispute_of(&env, &order, "needs_response").await;
        let psp_id = dispute["psp_id"].as_str().unwrap().to_string();
        if !outcome.is_empty() {
            env.psp_post(
                &format!("/_sandbox/disputes/{psp_id}/resolve"),
                &json!({ "outcome": outcome }),
            )
            .await;
            dispute_of(&env, &order, outcome).await;
        }
        disputes.push((
            psp_id,
            if outcome.is_empty() {
                "needs_response"
            } else {
                outcome
            },
        ));
    }
    let report = env
        .post("/v1/reconciliations", None, &json!({ "date": today() }))
        .await
        .expect(200);
    let items = report["items"].as_array().unwrap();
    for (psp_id, status) in &disputes {
        let item = items
            .iter()
            .find(|i| i["reference"] == psp_id.as_str())
            .unwrap_or_else(|| panic!("an item for dispute {psp_id}: {report:#}"));
        assert_eq!(item["class"], "matched", "{item:#}");
        assert_eq!(item["kind"], "dispute", "{item:#}");
        assert_eq!(item["psp"]["status"], *status, "{item:#}");
        assert_eq!(item["psp"]["fee"], DISPUTE_FEE, "{item:#}");
        assert_eq!(item["tally"]["object"], "dispute", "{item:#}");
    }
    let summary = &report["summary"];
    assert_eq!(summary["ledger_ok"], true, "{:#}", summary["ledger"]);
    assert_eq!(summary["ok"], true, "no exceptions: {report:#}");
    assert_eq!(summary["matched"], summary["lines"], "{summary:#}");
    env.verify_ledger();
}
