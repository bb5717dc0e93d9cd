//! Reconciliation over a day where the sandbox PSP's settlement report disagrees with Tally in
//! every way it can: each line gets its class, the safe finding is settled exactly once, the rest
//! wait in the review queue with the evidence, the ledger checks pass, and a second run (through
//! the `tally-pay recon` CLI) changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::{self, code};
use tally_payments::domain::money::FeeRule;

use crate::env::{today, usd, Balance, PayEnv, CARD_OK};
use crate::harness::eventually;

/// A worker that waits ten minutes before asking the PSP again: only reconciliation can settle
/// an order whose answer was lost.
const SLOW_WORKER: [(&str, &str); 2] = [
    ("TALLY_PAY__WORKER__BACKOFF_INITIAL_MS", "600000"),
    ("TALLY_PAY__WORKER__BACKOFF_MAX_MS", "600000"),
];

/// tally-pay's default platform fee (2.5 % + 30) and the sandbox PSP's fee (2.9 % + 30).
fn platform_fee(amount: u64) -> u64 {
    FeeRule {
        percent: "2.5".parse().unwrap(),
        fixed: 30,
    }
    .fee(amount)
}

fn psp_fee(amount: u64) -> u64 {
    FeeRule {
        percent: "2.9".parse().unwrap(),
        fixed: 30,
    }
    .fee(amount)
}

/// The item of `reference` in a report (exactly one).
fn item<'a>(report: &'a Value, reference: &str) -> &'a Value {
    let found: Vec<&Value> = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["reference"] == reference)
        .collect();
    assert_eq!(found.len(), 1, "one item for {reference}: {report:#}");
    found[0]
}

/// Versions of every record reconciliation could touch, and every balance.
async fn snapshot(
    env: &PayEnv,
    day: &str,
    wallets: &[u128],
) -> (BTreeMap<String, u64>, Vec<Balance>) {
    let mut versions = BTreeMap::new();
    for (namespace, prefix) in [
        ("pay.recon_item", format!("{day}/")),
        ("pay.review", format!("{day}/")),
        ("pay.recon_run", day.to_string()),
        ("pay.order", String::new()),
        ("pay.refund", String::new()),
        ("pay.payout", String::new()),
        ("pay.inflight", String::new()),
    ] {
        for (key, version) in env.record_versions(namespace, &prefix).await {
            versions.insert(format!("{namespace}/{key}"), version);
        }
    }
    let mut balances = Vec::new();
    for id in chart::SYSTEM_CODES
        .iter()
        .map(|c| chart::system_account(*c, usd()))
        .chain(wallets.iter().copied())
    {
        balances.push(env.account(id).await);
    }
    (versions, balances)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_classifies_resolves_queues_and_is_idempotent() {
    let env = PayEnv::start("", &SLOW_WORKER).await;
    let day = today();
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let names = ["Ok", "Amount", "Fee", "Status", "Dropped"];
    let mut sellers = Vec::new();
    for name in names {
        sellers.push(env.seller_with_bank(name).await);
    }
    let amounts = [10_000u64, 4_000, 3_000, 2_500, 1_500];
    let orders: Vec<Value> = sellers
        .iter()
        .zip(amounts)
        .map(|(s, a)| json!({"seller_id": s, "amount": a}))
        .collect();
    let payment = env
        .post(
            "/v1/payments",
            Some("recon-checkout"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": orders}),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let order_ids: Vec<String> = payment["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    let [ord_ok, ord_amount, ord_fee, ord_status, ord_dropped] =
        <[String; 5]>::try_from(order_ids).unwrap();

    // A refund, a payout and a deposit that the report lists correctly.
    let refund = env
        .post(
            "/v1/refunds",
            Some("recon-refund"),
            &json!({"order_id": ord_ok, "amount": 2_000}),
        )
        .await
        .expect(201);
    assert_eq!(refund["status"], "succeeded", "{refund}");
    let refund_id = refund["id"].as_str().unwrap().to_string();
    let payout = env
        .post(
            "/v1/payouts",
            Some("recon-payout"),
            &json!({"seller_id": sellers[0], "currency": "USD", "amount": 3_000}),
        )
        .await
        .expect(201);
    let payout_id = payout["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the payout to be paid", || async {
        let p = env.get(&format!("/v1/payouts/{payout_id}")).await.body;
        (p["status"] == "paid").then_some(())
    })
    .await;
    let deposit = env
        .post(
            "/v1/deposits",
            Some("recon-deposit"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD", "amount": 5_000}),
        )
        .await
        .expect(201);
    assert_eq!(deposit["status"], "succeeded", "{deposit}");
    let deposit_id = deposit["id"].as_str().unwrap().to_string();
    assert_eq!(env.customer_wallet(&customer).await.net_credit(), 5_000);

    // The PSP charges, but its answer and its webhook are lost: the order stays processing.
    let lost_seller = env.seller("Lost").await;
    env.set_faults("timeout_after_success=1,hang=3s,lost_webhooks=1")
        .await;
    let lost = env
        .post(
            "/v1/payments",
            Some("recon-lost"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": lost_seller, "amount": 6_000}]}),
        )
        .await
        .expect(201);
    env.set_faults("").await;
    assert_eq!(lost["status"], "processing", "{lost}");
    let ord_lost = lost["orders"][0]["id"].as_str().unwrap().to_string();

    let ghost = "ord_00000000deadbeef";
    env.set_settlement_adjustments(&json!([
        {"reference": ord_amount, "amount": 4_001},
        {"reference": ord_fee, "fee": 1},
        {"reference": ord_status, "status": "failed"},
        {"reference": ord_dropped, "drop": true},
        {"extra": {"kind": "charge", "reference": ghost, "amount": 777, "currency": "USD",
                   "status": "succeeded"}},
    ]))
    .await;
    let order = env.get(&format!("/v1/payment_orders/{ord_lost}")).await;
    assert_eq!(order.body["status"], "processing", "{}", order.body);

    let first = env
        .post("/v1/reconciliations", None, &json!({ "date": day }))
        .await
        .expect(200);

    // Every line and the dropped order, classified.
    let expected = [
        (ord_ok.as_str(), "matched", "none"),
        (refund_id.as_str(), "matched", "none"),
        (payout_id.as_str(), "matched", "none"),
        (deposit_id.as_str(), "matched", "none"),
        (ord_amount.as_str(), "amount_mismatch", "review"),
        (ord_fee.as_str(), "fee_mismatch", "review"),
        (ord_status.as_str(), "status_mismatch", "review"),
        (ord_dropped.as_str(), "missing_at_psp", "review"),
        (ghost, "missing_in_tally", "review"),
        (ord_lost.as_str(), "status_mismatch", "resolved"),
    ];
    for (reference, class, resolution) in expected {
        let i = item(&first, reference);
        assert_eq!(i["class"], class, "{reference}: {i:#}");
        assert_eq!(i["resolution"], resolution, "{reference}: {i:#}");
    }
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), expected.len(), "{first:#}");
    let summary = &first["summary"];
    assert_eq!(summary["lines"], 9);
    assert_eq!(summary["matched"], 4);
    assert_eq!(summary["status_mismatch"], 2);
    assert_eq!(summary["resolved"], 1);
    assert_eq!(summary["queued"], 5);
    assert_eq!(summary["new_items"], 10);
    assert_eq!(summary["ok"], false);

    // The safe one: settled through the ordinary path, with the PSP's id and fee.
    let resolved = item(&first, &ord_lost);
    assert_eq!(resolved["action"], "settle_order_succeeded");
    assert_eq!(resolved["status_after"], "succeeded");
    assert_eq!(
        resolved["tally"]["status"], "processing",
        "evidence as found"
    );
    let order = env
        .get(&format!("/v1/payment_orders/{ord_lost}"))
        .await
        .expect(200);
    assert_eq!(order["status"], "succeeded");
    assert_eq!(order["psp_fee"], psp_fee(6_000));
    assert_eq!(order["psp_id"], resolved["psp"]["psp_id"]);
    let wallet = env.seller_wallet(&lost_seller).await;
    assert_eq!(wallet.net_credit(), i128::from(6_000 - platform_fee(6_000)));
    assert_eq!(wallet.credits_pending + wallet.debits_pending, 0);
    let entries = env
        .get(&format!(
            "/v1/sellers/{lost_seller}/transactions?currency=USD"
        ))
        .await
        .expect(200);
    let payins: Vec<&Value> = entries["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "payin" && t["status"] == "posted")
        .collect();
    assert_eq!(payins.len(), 1, "credited exactly once: {entries:#}");
    assert_eq!(payins[0]["amount"], 6_000);

    // The rest wait for a person, with both sides' evidence.
    let reviews = env
        .get(&format!("/v1/reviews?date={day}"))
        .await
        .expect(200);
    let queued: Vec<&str> = reviews["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    let mut wanted = vec![
        ord_amount.as_str(),
        ord_fee.as_str(),
        ord_status.as_str(),
        ord_dropped.as_str(),
        ghost,
    ];
    let mut got = queued.clone();
    wanted.sort();
    got.sort();
    assert_eq!(got, wanted, "{reviews:#}");
    let amount = item(&first, &ord_amount);
    assert_eq!(
        (&amount["psp"]["amount"], &amount["tally"]["amount"]),
        (&json!(4_001), &json!(4_000))
    );
    let fee = item(&first, &ord_fee);
    assert_eq!(fee["psp"]["fee"], 1);
    assert_eq!(fee["tally"]["psp_fee"], psp_fee(3_000));
    let status = item(&first, &ord_status);
    assert_eq!(
        (&status["psp"]["status"], &status["tally"]["status"]),
        (&json!("failed"), &json!("succeeded"))
    );
    let dropped = item(&first, &ord_dropped);
    assert!(dropped["psp"].is_null() && dropped["tally"]["status"] == "succeeded");
    let extra = item(&first, ghost);
    assert!(extra["tally"].is_null() && extra["psp"]["amount"] == 777);

    // The ledger itself is consistent, for every enabled currency.
    assert_eq!(summary["ledger_ok"], true, "{:#}", summary["ledger"]);
    let usd_checks = summary["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "USD")
        .expect("USD is checked");
    assert_eq!(usd_checks["psp_clearing"]["stable"], true);
    assert!(usd_checks["wallets"]["wallets"].as_u64().unwrap() >= 7);
    let clearing = env.system(code::PSP_CLEARING).await;
    assert_eq!(
        usd_checks["psp_clearing"]["balance"],
        json!(-clearing.net_credit())
    );
    env.verify_ledger();

    // A second run, through the CLI: the same findings, nothing new, nothing written or moved.
    let owners: Vec<u128> = sellers
        .iter()
        .chain([&lost_seller])
        .map(|s| {
            let owner = tally_payments::domain::ids::number(tally_payments::domain::ids::SELLER, s)
                .unwrap();
            chart::account_id(code::SELLER_WALLET, usd(), owner)
        })
        .collect();
    let before = snapshot(&env, &day, &owners).await;
    let output = env.tally_pay_cli(&["recon", "--date", &day, "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "findings are queued: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let second: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(second["items"], first["items"], "the same items");
    assert_eq!(second["summary"]["new_items"], 0);
    let mut same = second["summary"].clone();
    same["new_items"] = first["summary"]["new_items"].clone();
    assert_eq!(same, first["summary"], "the same classification");
    let after = snapshot(&env, &day, &owners).await;
    assert_eq!(before, after, "a second run changes nothing");

    let text = env.tally_pay_cli(&["recon", "--date", &day]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("amount_mismatch") && text.contains(&ord_dropped),
        "{text}"
    );

    // The stored result, as JSON and CSV; and tallyctl reads it with no tally-pay involved.
    let stored = env
        .get(&format!("/v1/reconciliations/{day}"))
        .await
        .expect(200);
    assert_eq!(stored["items"], first["items"]);
    assert_eq!(stored["summary"], first["summary"]);
    let csv = env
        .get(&format!("/v1/reconciliations/{day}?format=csv"))
        .await
        .expect(200);
    let csv = csv.as_str().expect("CSV text");
    assert!(
        csv.starts_with("date,reference,kind,class,resolution,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + expected.len());
    assert!(csv.contains(&format!("{day},{ghost},charge,missing_in_tally,review")));
    let tallyctl = env.tallyctl(&["recon", &day]);
    assert_eq!(tallyctl.status.code(), Some(1));
    let listing = String::from_utf8_lossy(&tallyctl.stdout);
    for (reference, class, _) in expected {
        assert!(
            listing.contains(reference) && listing.contains(class),
            "{listing}"
        );
    }
    let json_listing = env.tallyctl(&["--json", "recon", &day]);
    let json_listing: Value = serde_json::from_slice(&json_listing.stdout).unwrap();
    assert_eq!(json_listing["items"], first["items"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_refuses_bad_input() {
    let env = PayEnv::start("", &[]).await;
    for (body, code) in [
        (json!({"date": "2025-13-01"}), "invalid_date"),
        (json!({"date": "yesterday"}), "invalid_date"),
        (json!({"date": "2999-01-01"}), "date_in_future"),
        (json!({"day": "2025-01-01"}), "invalid_body"),
    ] {
        let response = env.post("/v1/reconciliations", None, &body).await;
        assert_eq!((response.status, response.code()), (400, code), "{body}");
    }
    let response = env.get("/v1/reconciliations/2001-01-01").await;
    assert_eq!(response.status, 404, "{}", response.body);
    let response = env.get("/v1/reconciliations/01-01-2001").await;
    assert_eq!((response.status, response.code()), (400, "invalid_date"));
    let response = env.get("/v1/reconciliations/2001-01-01?format=xml").await;
    assert_eq!((response.status, response.code()), (400, "invalid_format"));
    let response = env.get("/v1/reviews?day=2001-01-01").await;
    assert_eq!(
        (response.status, response.code()),
        (400, "unknown_parameter")
    );

    // An empty day reconciles to nothing, and the ledger checks pass.
    let quiet = env
        .post("/v1/reconciliations", None, &json!({"date": "2001-01-01"}))
        .await
        .expect(200);
    assert_eq!(quiet["items"], json!([]));
    assert_eq!(quiet["summary"]["ok"], true, "{quiet:#}");
    let output = env.tally_pay_cli(&["recon", "--date", "2001-01-01"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = env.tallyctl(&["recon", "2001-13-01"]);
    assert!(!output.status.success());
}
