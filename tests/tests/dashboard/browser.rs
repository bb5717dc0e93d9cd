//! What a finance or support person does in the dashboard, in a real browser.

use std::time::Duration;

use serde_json::{json, Value};

use crate::env::{today, PayEnv, CARD_OK};
use crate::harness::eventually;
use crate::webdriver::Browser;

/// A laptop's window, and a phone's.
pub(crate) const LAPTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// A restricted key holding both dashboard roles; returns (id, secret).
pub(crate) async fn operator_key(env: &PayEnv) -> (String, String) {
    env.api_key("restricted", &["dashboard", "dashboard:operate"])
        .await
}

/// Opens the dashboard, which sends the browser to sign in, and signs in with `secret`.
pub(crate) async fn sign_in(env: &PayEnv, secret: &str, size: (u32, u32)) -> Browser {
    let browser = Browser::start(size.0, size.1).await;
    browser.goto(&format!("{}/dashboard", env.pay_url)).await;
    let url = browser.url().await;
    assert!(
        url.ends_with("/dashboard/login"),
        "not sent to sign in: {url}"
    );
    browser.type_into("#key", secret).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Overview").await;
    browser
}

/// The seller's (available, pending) USD balance in minor units, after checking that the
/// seller's page shows exactly what the API says.
async fn shown_balance(env: &PayEnv, browser: &Browser, page: &str, seller: &str) -> (u64, u64) {
    browser.goto(page).await;
    browser.wait_for_text("Balance USD").await;
    let api = env
        .get(&format!("/v1/sellers/{seller}/balance"))
        .await
        .expect(200);
    let usd = api["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == "USD")
        .cloned()
        .unwrap_or_else(|| panic!("no USD balance: {api}"));
    let (available, pending) = (
        usd["available"].as_u64().unwrap(),
        usd["pending"].as_u64().unwrap(),
    );
    let dollars = |minor: u64| format!("${}.{:02}", minor / 100, minor % 100);
    let card = "div.balance[data-currency=USD]";
    assert_eq!(
        browser.text(&format!("{card} .available")).await,
        dollars(available)
    );
    assert_eq!(
        browser.text(&format!("{card} .pending")).await,
        dollars(pending)
    );
    (available, pending)
}

/// Audit entries of `action` by `actor`.
pub(crate) async fn audited(env: &PayEnv, action: &str, actor: &str) -> Vec<Value> {
    let trail = env.get("/v1/audit?limit=100").await.expect(200);
    trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["actor"] == actor)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_find_a_payment_and_refund_part_of_it() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Greta").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("dashboard-refund"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 12_000}]}),
        )
        .await
        .expect(201);
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let payment_id = payment["id"].as_str().unwrap();
    let order_id = payment["orders"][0]["id"].as_str().unwrap();
    let (key_id, secret) = operator_key(&env).await;

    let browser = sign_in(&env, &secret, LAPTOP).await;
    let overview = browser.wait_for_text("Volume today").await;
    assert!(overview.contains("$120.00"), "{overview}");
    browser.screenshot("overview").await;

    // Find the payment by its id.
    browser
        .goto(&format!("{}/dashboard/payments", env.pay_url))
        .await;
    browser.type_into("#search", payment_id).await;
    browser.click("form.filters button.primary").await;
    let page = browser
        .wait_for_text(&format!("Payment {payment_id}"))
        .await;
    assert!(
        page.contains(order_id) && page.contains("$120.00"),
        "{page}"
    );
    assert!(
        page.contains("Ledger postings") && page.contains("payin"),
        "{page}"
    );
    browser.screenshot("payment").await;

    // The seller's balance before the refund, as the page and the API show it.
    let seller_page = format!("{}/dashboard/sellers/{seller}", env.pay_url);
    let before = shown_balance(&env, &browser, &seller_page, &seller).await;

    // Refund $25.00 of it, through the confirmation page.
    browser
        .goto(&format!("{}/dashboard/payments/{payment_id}", env.pay_url))
        .await;
    browser.type_into(".refund-amount", "25.00").await;
    browser.click("form.action button.danger").await;
    let confirm = browser.wait_for_text("Refund $25.00 of order").await;
    assert!(confirm.contains(order_id), "{confirm}");
    browser.screenshot("refund-confirm").await;
    browser.click("#confirm").await;
    browser.wait_for_text("Refund created.").await;
    let payment_page = format!("{}/dashboard/payments/{payment_id}", env.pay_url);
    eventually(
        Duration::from_secs(30),
        "the order shown refunded",
        || async {
            browser.goto(&payment_page).await;
            (browser.text("td.refunded").await == "$25.00").then_some(())
        },
    )
    .await;

    // The seller's balance moved: the refund came out of it.
    let after = shown_balance(&env, &browser, &seller_page, &seller).await;
    assert!(
        after.0 + after.1 < before.0 + before.1,
        "{before:?} -> {after:?}"
    );
    browser.screenshot("seller-after-refund").await;

    // One refund, audited with the dashboard user.
    let order = env
        .get(&format!("/v1/payment_orders/{order_id}"))
        .await
        .expect(200);
    assert_eq!(order["refunded"], 2_500, "{order}");
    assert_eq!(audited(&env, "refund.create", &key_id).await.len(), 1);
    assert_eq!(audited(&env, "dashboard.login", &key_id).await.len(), 1);

    // The same page at a phone's width.
    drop(browser);
    let phone = sign_in(&env, &secret, PHONE).await;
    phone
        .goto(&format!("{}/dashboard/payments/{payment_id}", env.pay_url))
        .await;
    phone.wait_for_text(&format!("Payment {payment_id}")).await;
    phone.screenshot("payment-phone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_a_review_item() {
    let env = PayEnv::start("", &[]).await;
    let ghost = "ord_00000000deadbeef";
    env.set_settlement_adjustments(&json!([
        {"extra": {"kind": "charge", "reference": ghost, "amount": 777, "currency": "USD",
                   "status": "succeeded"}},
    ]))
    .await;
    env.post("/v1/reconciliations", None, &json!({ "date": today() }))
        .await
        .expect(200);
    let reviews = env.get("/v1/reviews").await.expect(200);
    assert_eq!(reviews["data"].as_array().unwrap().len(), 1, "{reviews}");
    let (key_id, secret) = operator_key(&env).await;

    let browser = sign_in(&env, &secret, LAPTOP).await;
    browser
        .goto(&format!("{}/dashboard/reviews", env.pay_url))
        .await;
    let queue = browser.wait_for_text(ghost).await;
    assert!(queue.contains("missing in tally"), "{queue}");
    browser.screenshot("reviews").await;
    browser
        .type_into(
            "tr.review input[name=note]",
            "PSP test line, no money moved",
        )
        .await;
    browser.click("tr.review button").await;
    browser.wait_for_text("Review item resolved.").await;
    browser.wait_for_text("The review queue is empty.").await;
    browser.screenshot("reviews-resolved").await;

    let reviews = env.get("/v1/reviews").await.expect(200);
    assert_eq!(reviews["data"], json!([]), "{reviews}");
    let entries = audited(&env, "recon.review.resolve", &key_id).await;
    assert_eq!(entries.len(), 1, "resolving is audited with the user");
    assert_eq!(entries[0]["route"], "POST /dashboard/reviews/resolve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_a_dead_letter() {
    let env = PayEnv::start(
        "",
        &[
            ("TALLY_PAY__WORKER__MAX_ATTEMPTS", "3"),
            ("TALLY_PAY__WORKER__BACKOFF_INITIAL_MS", "100"),
            ("TALLY_PAY__WORKER__BACKOFF_MAX_MS", "200"),
        ],
    )
    .await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Patient").await;
    env.set_faults("error_rate=1").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("dashboard-dead"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 4_200}]}),
        )
        .await
        .expect(201);
    let order = payment["orders"][0]["id"].as_str().unwrap().to_string();
    eventually(
        Duration::from_secs(60),
        "the order to be dead-lettered",
        || async {
            let letters = env.get("/v1/dead_letters").await.body;
            (letters["data"].as_array()?.len() == 1).then_some(())
        },
    )
    .await;
    env.set_faults("").await;
    let (key_id, secret) = operator_key(&env).await;

    let browser = sign_in(&env, &secret, LAPTOP).await;
    browser
        .goto(&format!("{}/dashboard/dead_letters", env.pay_url))
        .await;
    browser.wait_for_text(&order).await;
    browser.screenshot("dead-letters").await;
    browser.click("tr.dead-letter button").await;
    browser
        .wait_for_text("Dead letter handed back to the worker.")
        .await;
    let settled = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    browser
        .goto(&format!("{}/dashboard/dead_letters", env.pay_url))
        .await;
    browser.wait_for_text("No dead letters.").await;
    browser.screenshot("dead-letters-retried").await;
    assert_eq!(audited(&env, "dead_letter.retry", &key_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_shows_down_on_the_cluster_page() {
    let mut env = PayEnv::start("", &[]).await;
    let (_, secret) = operator_key(&env).await;
    let browser = sign_in(&env, &secret, LAPTOP).await;
    let cluster = format!("{}/dashboard/cluster", env.pay_url);
    browser.goto(&cluster).await;
    browser.wait_for_text("3 of 3").await;
    assert!(browser.text("tr.node[data-state=down]").await.is_empty());

    let leader = env.cluster.leader().await;
    let victim = env
        .cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .find(|id| *id != leader)
        .unwrap();
    let victim_addr = env.cluster.node(victim).addr.clone();
    env.cluster.kill(victim);
    eventually(
        Duration::from_secs(30),
        "the killed node shown down",
        || async {
            browser.goto(&cluster).await;
            let down = browser.text("tr.node[data-state=down]").await;
            (down.contains(&victim_addr) && browser.text("body").await.contains("2 of 3"))
                .then_some(())
        },
    )
    .await;
    let page = browser.text("body").await;
    assert!(page.contains("leader"), "{page}");
    browser.screenshot("cluster-node-down").await;
}
