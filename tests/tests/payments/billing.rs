//! Subscriptions over a manual billing clock: 13 months with a plan change (proration), a failed
//! charge recovered by dunning and one that exhausts it; and a `kill -9` during a billing run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::env::{fee, PayEnv, CARD_DECLINED, CARD_OK};
use crate::harness::eventually;

const MANUAL_CLOCK: (&str, &str) = ("TALLY_PAY__BILLING__CLOCK", "manual");

async fn set_clock(env: &PayEnv, time: &str) {
    env.post("/v1/billing/clock", None, &json!({ "time": time }))
        .await
        .expect(200);
}

async fn run_billing(env: &PayEnv) {
    let run = env
        .post("/v1/billing/run", None, &json!({}))
        .await
        .expect(200);
    assert_eq!(run["errors"], json!([]), "{run}");
}

async fn plan(env: &PayEnv, seller: &str, name: &str, amount: u64) -> String {
    let plan = env
        .post(
            "/v1/plans",
            None,
            &json!({"seller_id": seller, "name": name, "currency": "USD", "amount": amount, "interval": "month"}),
        )
        .await
        .expect(201);
    plan["id"].as_str().unwrap().to_string()
}

async fn use_card(env: &PayEnv, subscription: &str, card: &str) {
    env.post(
        &format!("/v1/subscriptions/{subscription}"),
        None,
        &json!({ "card_id": card }),
    )
    .await
    .expect(200);
}

async fn status(env: &PayEnv, subscription: &str) -> String {
    env.get(&format!("/v1/subscriptions/{subscription}"))
        .await
        .expect(200)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirteen_months_with_a_plan_change_and_dunning_bill_exactly() {
    let env = PayEnv::start("", &[MANUAL_CLOCK]).await;
    set_clock(&env, "2026-01-01T00:00:00Z").await;
    let seller = env.seller("Streamer").await;
    let (customer, good) = env.customer_with_card(CARD_OK).await;
    let bad = env.add_card(&customer, CARD_DECLINED).await;
    let basic = plan(&env, &seller, "Basic", 1000).await;
    let pro = plan(&env, &seller, "Pro", 3000).await;

    let subscription = env
        .post(
            "/v1/subscriptions",
            Some("sub-1"),
            &json!({"customer_id": customer, "card_id": good, "plan_id": basic}),
        )
        .await
        .expect(201);
    assert_eq!(subscription["status"], "active", "{subscription}");
    let sub = subscription["id"].as_str().unwrap().to_string();

    let months = [
        "2026-02-01",
        "2026-03-01",
        "2026-04-01",
        "2026-05-01",
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
        "2026-09-01",
        "2026-10-01",
        "2026-11-01",
        "2026-12-01",
        "2027-01-01",
    ];
    for month in months {
        if month == "2026-07-01" || month == "2026-12-01" {
            use_card(&env, &sub, &bad).await;
        }
        set_clock(&env, &format!("{month}T00:00:00Z")).await;
        run_billing(&env).await;
        match month {
            "2026-04-01" => {
                // Mid-April (15 of 30 days left): Basic -> Pro.
                set_clock(&env, "2026-04-16T00:00:00Z").await;
                let change = env
                    .post(
                        &format!("/v1/subscriptions/{sub}/change_plan"),
                        Some("change-1"),
                        &json!({ "plan_id": pro }),
                    )
                    .await
                    .expect(200);
                assert_eq!(change["credit"], 500, "{change}");
                assert_eq!(change["charge"], 1500);
                assert_eq!(change["invoice"]["amount_due"], 1000);
                assert_eq!(change["invoice"]["status"], "paid");
            }
            "2026-07-01" => {
                assert_eq!(status(&env, &sub).await, "past_due");
                // The customer fixes the card; the retry one day later succeeds.
                use_card(&env, &sub, &good).await;
                set_clock(&env, "2026-07-02T00:00:00Z").await;
                run_billing(&env).await;
                assert_eq!(status(&env, &sub).await, "active");
            }
            "2026-12-01" => {
                assert_eq!(status(&env, &sub).await, "past_due");
                for retry in ["2026-12-02", "2026-12-04", "2026-12-05", "2026-12-06"] {
                    set_clock(&env, &format!("{retry}T00:00:00Z")).await;
                    run_billing(&env).await;
                }
                assert_eq!(status(&env, &sub).await, "canceled");
            }
            "2027-01-01" => assert_eq!(status(&env, &sub).await, "canceled"),
            _ => assert_eq!(status(&env, &sub).await, "active", "{month}"),
        }
    }

    let invoices = env
        .get(&format!("/v1/subscriptions/{sub}/invoices"))
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone();
    let summary: Vec<(String, u64, String, usize)> = invoices
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["amount_due"].as_u64().unwrap(),
                i["status"].as_str().unwrap().to_string(),
                i["attempts"].as_array().unwrap().len(),
            )
        })
        .collect();
    let period = |amount: u64, status: &str, attempts: usize| {
        ("period".to_string(), amount, status.to_string(), attempts)
    };
    let expected = vec![
        period(1000, "paid", 1), // Jan
        period(1000, "paid", 1), // Feb
        period(1000, "paid", 1), // Mar
        period(1000, "paid", 1), // Apr, on Basic
        ("proration".to_string(), 1000, "paid".to_string(), 1),
        period(3000, "paid", 1),          // May
        period(3000, "paid", 1),          // Jun
        period(3000, "paid", 2),          // Jul: declined, then paid by the retry
        period(3000, "paid", 1),          // Aug
        period(3000, "paid", 1),          // Sep
        period(3000, "paid", 1),          // Oct
        period(3000, "paid", 1),          // Nov
        period(3000, "uncollectible", 4), // Dec: declined 4 times
    ];
    assert_eq!(summary, expected);

    // The PSP's view: one successful charge per paid invoice, the declines, nothing else.
    let charges = env.psp_charges().await;
    let succeeded: Vec<u64> = charges
        .iter()
        .filter(|c| c["status"] == "succeeded")
        .map(|c| c["amount"].as_u64().unwrap())
        .collect();
    assert_eq!(succeeded.len(), 12);
    assert_eq!(succeeded.iter().sum::<u64>(), 4 * 1000 + 1000 + 7 * 3000);
    assert_eq!(
        charges.iter().filter(|c| c["status"] == "failed").count(),
        5
    );
    let wallet: u64 = succeeded.iter().map(|a| a - fee(*a)).sum();
    assert_eq!(
        env.seller_wallet(&seller).await.net_credit(),
        i128::from(wallet)
    );
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_tally_pay_during_a_billing_run_bills_nobody_twice() {
    let mut env = PayEnv::start(
        "",
        &[
            MANUAL_CLOCK,
            ("TALLY_PAY__PAY__IDEMPOTENCY_LEASE_MS", "3000"),
            crate::env::SHORT_PSP_TIMEOUT,
        ],
    )
    .await;
    set_clock(&env, "2026-01-01T00:00:00Z").await;
    let seller = env.seller("Boxes").await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let basic = plan(&env, &seller, "Monthly box", 1000).await;
    let mut subscriptions = Vec::new();
    for i in 0..24 {
        let s = env
            .post(
                "/v1/subscriptions",
                Some(&format!("box-{i}")),
                &json!({"customer_id": customer, "card_id": card, "plan_id": basic}),
            )
            .await
            .expect(201);
        subscriptions.push(s["id"].as_str().unwrap().to_string());
    }
    assert_eq!(env.psp_charges().await.len(), 24);

    // A slow PSP stretches February's run; kill tally-pay in the middle of it.
    env.set_faults("latency=400ms").await;
    set_clock(&env, "2026-02-01T00:00:00Z").await;
    let handle = env.handle();
    let run = tokio::spawn(async move { handle.post_once_raw("/v1/billing/run").await });
    let at_kill = eventually(
        Duration::from_secs(60),
        "February's run to start charging",
        || async {
            let n = env.psp_charges().await.len();
            (n >= 28).then_some(n)
        },
    )
    .await;
    env.kill_pay();
    let _ = run.await;
    assert!(
        at_kill < 48,
        "the kill came after the run finished ({at_kill} charges)"
    );
    env.set_faults("").await;
    env.restart_pay().await;
    // Billing again (as the worker would) finishes the job; nobody is charged twice.
    eventually(
        Duration::from_secs(120),
        "every February invoice paid",
        || async {
            let run = env.post("/v1/billing/run", None, &json!({})).await;
            if run.status != 200 {
                return None;
            }
            for sub in &subscriptions {
                let invoices = env
                    .get(&format!("/v1/subscriptions/{sub}/invoices"))
                    .await
                    .body;
                let paid = invoices["data"]
                    .as_array()?
                    .iter()
                    .filter(|i| i["status"] == "paid")
                    .count();
                if paid != 2 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let charges = env.psp_charges().await;
    let mut per_reference: BTreeMap<&str, usize> = BTreeMap::new();
    for charge in &charges {
        *per_reference
            .entry(charge["reference"].as_str().unwrap())
            .or_default() += 1;
    }
    assert!(per_reference.values().all(|n| *n == 1));
    assert_eq!(
        charges
            .iter()
            .filter(|c| c["status"] == "succeeded")
            .count(),
        48
    );
    for sub in &subscriptions {
        let invoices = env
            .get(&format!("/v1/subscriptions/{sub}/invoices"))
            .await
            .expect(200);
        let invoices = invoices["data"].as_array().unwrap();
        assert_eq!(invoices.len(), 2, "{sub}: one invoice per period");
        for invoice in invoices {
            assert_eq!(
                invoice["attempts"].as_array().unwrap().len(),
                1,
                "{invoice}"
            );
        }
    }
    assert_eq!(
        env.seller_wallet(&seller).await.net_credit(),
        48 * i128::from(1000 - fee(1000))
    );
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trials_and_cancellations_bill_only_what_they_should() {
    let env = PayEnv::start("", &[MANUAL_CLOCK]).await;
    set_clock(&env, "2026-03-01T00:00:00Z").await;
    let seller = env.seller("Trials").await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let trial_plan = env
        .post(
            "/v1/plans",
            None,
            &json!({"seller_id": seller, "name": "Trial", "currency": "USD", "amount": 2000,
                    "interval": "month", "trial_days": 14}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let basic = plan(&env, &seller, "Basic", 1000).await;
    let trial = env
        .post(
            "/v1/subscriptions",
            Some("trial-1"),
            &json!({"customer_id": customer, "card_id": card, "plan_id": trial_plan}),
        )
        .await
        .expect(201);
    assert_eq!(trial["status"], "trialing");
    let trial_id = trial["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.psp_charges().await.len(),
        0,
        "nothing charged during the trial"
    );

    let at_end = env
        .post(
            "/v1/subscriptions",
            Some("at-end-1"),
            &json!({"customer_id": customer, "card_id": card, "plan_id": basic}),
        )
        .await
        .expect(201);
    let at_end_id = at_end["id"].as_str().unwrap().to_string();
    let now = env
        .post(
            "/v1/subscriptions",
            Some("now-1"),
            &json!({"customer_id": customer, "card_id": card, "plan_id": basic}),
        )
        .await
        .expect(201);
    let now_id = now["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.psp_charges().await.len(),
        2,
        "the two plain subscriptions' first months"
    );
    env.post(
        &format!("/v1/subscriptions/{at_end_id}/cancel"),
        None,
        &json!({"at_period_end": true}),
    )
    .await
    .expect(200);
    let canceled = env
        .post(
            &format!("/v1/subscriptions/{now_id}/cancel"),
            None,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(canceled["status"], "canceled");

    // The trial ends on March 15: the first charge, and the subscription is active.
    set_clock(&env, "2026-03-15T00:00:00Z").await;
    run_billing(&env).await;
    assert_eq!(status(&env, &trial_id).await, "active");
    assert_eq!(
        status(&env, &at_end_id).await,
        "active",
        "runs to the end of its period"
    );
    // April 1: the period of the one canceled at period end is over; nothing more is billed
    // for it or for the one canceled at once.
    set_clock(&env, "2026-04-01T00:00:00Z").await;
    run_billing(&env).await;
    assert_eq!(status(&env, &at_end_id).await, "canceled");
    assert_eq!(status(&env, &now_id).await, "canceled");
    let invoices = |id: String| {
        let env = &env;
        async move {
            env.get(&format!("/v1/subscriptions/{id}/invoices"))
                .await
                .expect(200)["data"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(invoices(trial_id.clone()).await, 1);
    assert_eq!(invoices(at_end_id.clone()).await, 1);
    assert_eq!(invoices(now_id).await, 1);
    let amounts: Vec<u64> = env
        .psp_charges()
        .await
        .iter()
        .map(|c| c["amount"].as_u64().unwrap())
        .collect();
    assert_eq!(amounts, vec![1000, 1000, 2000]);
    // Billing is audited: the clock and the cancellation by the key that asked for them, and
    // every invoice issued and subscription ended by a run (the key's run, or the worker's).
    let trail = env.get("/v1/audit?limit=500").await.expect(200);
    let trail = trail["data"].as_array().unwrap();
    let entry = |action: &str, object: &str| {
        trail
            .iter()
            .find(|e| e["action"] == action && e["object_id"] == object)
            .unwrap_or_else(|| panic!("no audit entry {action} {object}: {trail:?}"))
    };
    assert_eq!(
        entry("subscription.cancel", &at_end_id)["actor"],
        env.api_key_id
    );
    assert_eq!(
        entry("billing_clock.set", "billing")["actor"],
        env.api_key_id
    );
    let actor = &entry("subscription.end", &at_end_id)["actor"];
    assert!(
        *actor == env.api_key_id || *actor == "system:worker",
        "{actor}"
    );
    let issued = trail
        .iter()
        .filter(|e| e["action"] == "invoice.issue")
        .count();
    assert!(issued >= 3, "{trail:?}");
    let bad = env
        .post(
            "/v1/billing/clock",
            None,
            &json!({"time": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "clock_backwards"));
}
