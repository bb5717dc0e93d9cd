//! Reports on a consistent cut: a seller's statement over a period with pay-ins, a refund and a
//! payout adds up to the wallet's ledger balance, also while payments keep flowing; the
//! transaction list pages through every entry; platform revenue nets fee returns.

use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::code;
use tally_payments::domain::money::{pro_rata, FeeRule};

use crate::env::{now_rfc3339, today, PayEnv, CARD_OK};
use crate::harness::eventually;

fn platform_fee(amount: u64) -> u64 {
    FeeRule {
        percent: "2.5".parse().unwrap(),
        fixed: 30,
    }
    .fee(amount)
}

/// A checkout of one order per (seller, amount); returns the order ids.
async fn checkout(
    env: &PayEnv,
    key: &str,
    customer: &str,
    card: &str,
    orders: &[(&str, u64)],
) -> Vec<String> {
    let orders: Vec<Value> = orders
        .iter()
        .map(|(s, a)| json!({"seller_id": s, "amount": a}))
        .collect();
    let payment = env
        .post(
            "/v1/payments",
            Some(key),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": orders}),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "succeeded", "{payment}");
    payment["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn int(value: &Value) -> i128 {
    value
        .as_i64()
        .map(i128::from)
        .unwrap_or_else(|| panic!("an integer, got {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seller_statement_adds_up_to_the_ledger_balance() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller_with_bank("Stella").await;
    let other = env.seller("Other").await;
    checkout(&env, "stmt-before", &customer, &card, &[(&seller, 10_000)]).await;
    let opening = 10_000 - platform_fee(10_000);

    // The period: a pay-in, a partial refund with its fee share, a payout.
    let from = now_rfc3339();
    let ids = checkout(
        &env,
        "stmt-during",
        &customer,
        &card,
        &[(&seller, 20_000), (&other, 1_000)],
    )
    .await;
    let refund = env
        .post(
            "/v1/refunds",
            Some("stmt-refund"),
            &json!({"order_id": ids[0], "amount": 5_000}),
        )
        .await
        .expect(201);
    assert_eq!(refund["status"], "succeeded", "{refund}");
    let fee_back = pro_rata(platform_fee(20_000), 5_000, 20_000);
    assert_eq!(refund["fee_returned"], fee_back);
    let payout = env
        .post(
            "/v1/payouts",
            Some("stmt-payout"),
            &json!({"seller_id": seller, "currency": "USD", "amount": 3_000}),
        )
        .await
        .expect(201);
    let payout_id = payout["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the payout to be paid", || async {
        let p = env.get(&format!("/v1/payouts/{payout_id}")).await.body;
        (p["status"] == "paid").then_some(())
    })
    .await;

    let day = today();
    let statement = env
        .get(&format!(
            "/v1/sellers/{seller}/statement?currency=USD&from={from}&to={day}"
        ))
        .await
        .expect(200);
    assert_eq!(statement["adds_up"], true, "{statement:#}");
    assert_eq!(int(&statement["opening_balance"]), i128::from(opening));
    assert_eq!(
        int(&statement["ledger_opening_balance"]),
        i128::from(opening)
    );
    assert_eq!(int(&statement["pay_ins"]), 20_000);
    assert_eq!(int(&statement["fees"]), -i128::from(platform_fee(20_000)));
    assert_eq!(int(&statement["refunds"]), -5_000);
    assert_eq!(int(&statement["fee_returns"]), i128::from(fee_back));
    assert_eq!(int(&statement["payouts"]), -3_000);
    assert_eq!(int(&statement["other"]), 0);
    let closing = i128::from(opening) + 20_000 - i128::from(platform_fee(20_000)) - 5_000
        + i128::from(fee_back)
        - 3_000;
    assert_eq!(int(&statement["closing_balance"]), closing);
    let wallet = env.seller_wallet(&seller).await;
    assert_eq!(wallet.net_credit(), closing, "the ledger's own balance");
    assert_eq!(int(&statement["ledger_closing_balance"]), closing);
    assert_eq!(statement["movements"], 5, "{statement:#}");

    // Every entry of the wallet, page by page; posted entries sum to the balance.
    let mut entries = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let cursor = after.map_or(String::new(), |a| format!("&after={a}"));
        let page = env
            .get(&format!(
                "/v1/sellers/{seller}/transactions?currency=USD&limit=3{cursor}"
            ))
            .await
            .expect(200);
        entries.extend(page["data"].as_array().unwrap().clone());
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let posted: i128 = entries
        .iter()
        .filter(|e| e["status"] == "posted")
        .map(|e| {
            let amount = int(&e["amount"]);
            if e["direction"] == "credit" {
                amount
            } else {
                -amount
            }
        })
        .sum();
    assert_eq!(posted, closing, "{entries:#?}");
    let timestamps: Vec<u64> = entries
        .iter()
        .map(|e| e["timestamp"].as_u64().unwrap())
        .collect();
    assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "oldest first");
    // Holds of two pay-ins, their posts and fees, the refund's fee return, hold and post,
    // the payout's hold and post.
    assert_eq!(entries.len(), 11, "{entries:#?}");
    let csv = env
        .get(&format!(
            "/v1/sellers/{seller}/transactions?currency=USD&format=csv&from={from}"
        ))
        .await
        .expect(200);
    let csv = csv.as_str().expect("CSV text");
    assert!(csv.starts_with("transfer_id,timestamp,time,kind,direction,amount,currency,status"));
    assert_eq!(csv.lines().count(), 1 + 8, "{csv}");
    assert!(
        csv.contains(",payin,credit,200.00,USD,posted,psp_clearing,"),
        "{csv}"
    );

    // Revenue: fees less the fee returned, per day and in total, equal to the account.
    let revenue = env
        .get(&format!(
            "/v1/reports/revenue?currency=USD&from={day}&to={day}"
        ))
        .await
        .expect(200);
    let fees = platform_fee(10_000) + platform_fee(20_000) + platform_fee(1_000);
    assert_eq!(int(&revenue["total"]["fees"]), i128::from(fees));
    assert_eq!(int(&revenue["total"]["fee_returns"]), i128::from(fee_back));
    let net = env.system(code::PLATFORM_REVENUE).await.net_credit();
    assert_eq!(int(&revenue["total"]["net"]), net);
    let days = revenue["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["date"], day.as_str());
    let csv = env
        .get(&format!(
            "/v1/reports/revenue?currency=USD&from={day}&format=csv"
        ))
        .await
        .expect(200);
    let csv = csv.as_str().expect("CSV text");
    assert!(
        csv.starts_with("date,currency,fees,fee_returns,other,net\n"),
        "{csv}"
    );
    assert!(
        csv.lines().last().unwrap().starts_with("total,USD,"),
        "{csv}"
    );

    // While payments flow, every statement still adds up and revenue days sum to the total.
    let handle = env.handle();
    let (flow_customer, flow_seller) = (customer.clone(), seller.clone());
    let flow_card = card.clone();
    let flow = tokio::spawn(async move {
        for i in 0..12u64 {
            let body = json!({"customer_id": flow_customer, "card_id": flow_card,
                "currency": "USD", "orders": [{"seller_id": flow_seller, "amount": 700 + i}]});
            let response = handle
                .post_until_settled("/v1/payments", &format!("stmt-flow-{i}"), &body)
                .await;
            assert_eq!(response.status, 201, "{}", response.body);
        }
    });
    let mut checks = 0u32;
    while checks == 0 || !flow.is_finished() {
        checks += 1;
        let statement = env
            .get(&format!(
                "/v1/sellers/{seller}/statement?currency=USD&from={day}"
            ))
            .await
            .expect(200);
        assert_eq!(statement["adds_up"], true, "{statement:#}");
        let revenue = env
            .get(&format!("/v1/reports/revenue?currency=USD&from={day}"))
            .await
            .expect(200);
        let sum: i128 = revenue["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| int(&d["net"]))
            .sum();
        assert_eq!(sum, int(&revenue["total"]["net"]));
    }
    flow.await.expect("the payments go through");
    let statement = env
        .get(&format!(
            "/v1/sellers/{seller}/statement?currency=USD&from={day}"
        ))
        .await
        .expect(200);
    assert_eq!(statement["adds_up"], true, "{statement:#}");
    assert_eq!(
        int(&statement["closing_balance"]),
        env.seller_wallet(&seller).await.net_credit()
    );
    assert_eq!(int(&statement["opening_balance"]), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_refuse_bad_input() {
    let env = PayEnv::start("", &[]).await;
    let seller = env.seller("Bad").await;
    let day = today();
    for (path, status, code) in [
        (
            format!("/v1/sellers/{seller}/statement?from={day}"),
            400,
            "currency_required",
        ),
        (
            format!("/v1/sellers/{seller}/statement?currency=XXX&from={day}"),
            400,
            "unknown_currency",
        ),
        (
            format!("/v1/sellers/{seller}/statement?currency=USD"),
            400,
            "invalid_period",
        ),
        (
            format!("/v1/sellers/{seller}/statement?currency=USD&from=soon"),
            400,
            "invalid_time",
        ),
        (
            format!("/v1/sellers/{seller}/statement?currency=USD&from={day}&to=2001-01-01"),
            400,
            "invalid_period",
        ),
        (
            format!("/v1/sellers/{seller}/statement?currency=USD&from={day}&colour=red"),
            400,
            "unknown_parameter",
        ),
        (
            format!("/v1/sellers/sel_00000000000000ff/statement?currency=USD&from={day}"),
            404,
            "not_found",
        ),
        (
            format!("/v1/sellers/{seller}/transactions?currency=USD&limit=0"),
            400,
            "invalid_limit",
        ),
        (
            format!("/v1/sellers/{seller}/transactions?currency=USD&limit=lots"),
            400,
            "invalid_number",
        ),
        (
            format!("/v1/sellers/{seller}/transactions?currency=USD&format=pdf"),
            400,
            "invalid_format",
        ),
        (
            "/v1/customers/nobody/transactions?currency=USD".to_string(),
            400,
            "invalid_id",
        ),
        (
            "/v1/system_accounts/vault/transactions?currency=USD".to_string(),
            404,
            "not_found",
        ),
        (
            "/v1/reports/revenue?currency=USD".to_string(),
            400,
            "invalid_period",
        ),
    ] {
        let response = env.get(&path).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "{path}: {}",
            response.body
        );
    }
    // An empty wallet's statement adds up to zero; a system account lists its entries.
    let statement = env
        .get(&format!(
            "/v1/sellers/{seller}/statement?currency=USD&from={day}"
        ))
        .await
        .expect(200);
    assert_eq!(statement["adds_up"], true);
    assert_eq!(int(&statement["closing_balance"]), 0);
    let page = env
        .get("/v1/system_accounts/psp_clearing/transactions?currency=USD")
        .await
        .expect(200);
    assert_eq!(page["account"], "psp_clearing");
    assert_eq!(page["data"], json!([]));
}
