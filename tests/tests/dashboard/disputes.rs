//! The disputes page in a real browser: a dispute opened at the sandbox PSP shows up in the
//! list, and an operator submits its evidence, after the same form without the CSRF token or
//! from a read-only user was refused over plain HTTP.

use std::time::Duration;

use reqwest::header::COOKIE;
use serde_json::{json, Value};

use crate::access;
use crate::browser::{audited, operator_key, sign_in, LAPTOP};
use crate::env::{PayEnv, CARD_OK, PSP_API_KEY};
use crate::harness::eventually;

/// The dispute of `order` once tally-pay has it (the PSP's webhook arrived).
async fn dispute_of(env: &PayEnv, order: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("tally-pay to have the dispute of {order}"),
        || async {
            let page = env.get("/v1/disputes?limit=100").await.expect(200);
            page["data"]
                .as_array()?
                .iter()
                .find(|d| d["order_id"] == order)
                .cloned()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_a_disputes_evidence() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Dora").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("dashboard-dispute"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 8_000}]}),
        )
        .await
        .expect(201);
    let settled = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    let order = settled["orders"][0]["id"].as_str().unwrap().to_string();

    // The card holder's bank disputes $40.00 of it at the PSP.
    let opened = env
        .http
        .post(format!("{}/_sandbox/charges/{order}/dispute", env.psp_url))
        .bearer_auth(PSP_API_KEY)
        .json(&json!({"amount": 4_000, "reason": "product_not_received"}))
        .send()
        .await
        .unwrap();
    assert!(opened.status().is_success(), "{}", opened.status());
    let dispute = dispute_of(&env, &order).await;
    assert_eq!(dispute["status"], "needs_response", "{dispute}");
    let id = dispute["id"].as_str().unwrap().to_string();
    let evidence_url = format!("{}/dashboard/disputes/{id}/evidence", env.pay_url);
    let text = [("product_description", "Shipped 3 Dec, tracking 1Z999")];

    // Over plain HTTP: without the CSRF token, and from a read-only user, the form is refused.
    let http = access::client();
    let (_, operator_secret) = env
        .api_key("restricted", &["dashboard", "dashboard:operate"])
        .await;
    let (_, operator_cookie) = access::sign_in(&env, &operator_secret).await;
    let refused = http
        .post(&evidence_url)
        .header(COOKIE, operator_cookie.unwrap())
        .form(&text)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.text().await.unwrap().contains("CSRF"));
    let (_, reader) = env.api_key("restricted", &["dashboard"]).await;
    let reader_cookie = access::sign_in(&env, &reader).await.1.unwrap();
    let detail = format!("/dashboard/disputes/{id}");
    let reader_csrf = access::csrf_of(&env, &reader_cookie, &detail).await;
    let reader_page = http
        .get(format!("{}{detail}", env.pay_url))
        .header(COOKIE, &reader_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !reader_page.contains("Submit evidence"),
        "a read-only user gets no evidence form"
    );
    let refused = http
        .post(&evidence_url)
        .header(COOKIE, &reader_cookie)
        .form(&[
            ("csrf", reader_csrf.as_str()),
            ("product_description", text[0].1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let still = env.get(&format!("/v1/disputes/{id}")).await.expect(200);
    assert_eq!(still["status"], "needs_response", "nothing was submitted");

    // In the browser: the list, the dispute, its evidence.
    let (key_id, secret) = operator_key(&env).await;
    let browser = sign_in(&env, &secret, LAPTOP).await;
    browser.click("nav a[href='/dashboard/disputes']").await;
    let list = browser.wait_for_text(&id).await;
    assert!(
        list.contains("$40.00") && list.contains("needs response") && list.contains(&seller),
        "{list}"
    );
    browser.screenshot("disputes").await;
    browser
        .click(&format!("a[href='/dashboard/disputes/{id}']"))
        .await;
    let page = browser.wait_for_text(&format!("Dispute {id}")).await;
    assert!(
        page.contains("product_not_received") && page.contains(&order),
        "{page}"
    );
    browser.type_into("#product_description", text[0].1).await;
    browser
        .type_into(
            "#customer_communication",
            "The buyer confirmed delivery by email on 5 Dec.",
        )
        .await;
    browser.screenshot("dispute-evidence-form").await;
    browser.click("#submit-evidence").await;
    browser
        .wait_for_text("Evidence submitted; the dispute is under review.")
        .await;
    assert_eq!(browser.text("#dispute-status").await, "under review");
    let shown = browser.text("dl.evidence").await;
    assert!(shown.contains("tracking 1Z999"), "{shown}");
    browser.screenshot("dispute-under-review").await;

    // The API agrees, and the evidence is audited with the dashboard user.
    let now = env.get(&format!("/v1/disputes/{id}")).await.expect(200);
    assert_eq!(now["status"], "under_review", "{now}");
    assert_eq!(now["evidence"]["product_description"], text[0].1, "{now}");
    assert_eq!(audited(&env, "dispute.evidence", &key_id).await.len(), 1);
}
