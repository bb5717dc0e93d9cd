//! The list endpoints: pages of two through `starting_after` see every object once, newest
//! first; the status, seller, customer and created filters select exactly their objects; bad
//! query parameters, and bad ids in existing requests, are 400s naming the field in `param`.

use std::time::Duration;

use serde_json::{json, Value};
use tally_client::{RecordKey, RecordOp, TxnOutcome};

use crate::env::{PayEnv, CARD_DECLINED, CARD_OK};
use crate::harness::eventually;

/// Pages one walk through a list may take before the test gives up.
const PAGES_MAX: usize = 50;

/// Every object of the list at `path`, read `limit` at a time with `starting_after`, checking
/// each page's shape on the way.
async fn page_through(env: &PayEnv, path: &str, limit: usize) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES_MAX {
        let url = match &cursor {
            None => format!("{path}{separator}limit={limit}"),
            Some(after) => format!("{path}{separator}limit={limit}&starting_after={after}"),
        };
        let page = env.get(&url).await.expect(200);
        assert_eq!(page["object"], "list", "{page}");
        let data = page["data"].as_array().expect("a data array").clone();
        assert!(data.len() <= limit, "{url}: {page}");
        all.extend(data.iter().cloned());
        if page["has_more"] == json!(true) {
            // Small lists: a page with more after it is full and continues after its last.
            assert_eq!(data.len(), limit, "{url}: {page}");
            let next = page["next_starting_after"]
                .as_str()
                .expect("a cursor with has_more");
            assert_eq!(Some(next), data.last().and_then(|o| o["id"].as_str()));
            cursor = Some(next.to_string());
        } else {
            assert_eq!(page["has_more"], json!(false), "{url}: {page}");
            assert!(page.get("next_starting_after").is_none(), "{page}");
            return all;
        }
    }
    panic!("{path}: still has_more after {PAGES_MAX} pages");
}

fn ids(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["id"].as_str().expect("an id").to_string())
        .collect()
}

/// The ids of `objects`, newest first (`created_at` descending, then id ascending).
fn newest_first<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut sorted: Vec<(i64, String)> = objects
        .into_iter()
        .map(|o| {
            (
                o["created_at"].as_i64().expect("created_at"),
                o["id"].as_str().expect("an id").to_string(),
            )
        })
        .collect();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    sorted.into_iter().map(|(_, id)| id).collect()
}

/// The ids of the `objects` that `keep` keeps, newest first.
fn matching(objects: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    newest_first(objects.iter().filter(|&o| keep(o)))
}

/// Each object by id, as `GET {path}/{id}` shows it.
async fn fetch(env: &PayEnv, path: &str, ids: &[String]) -> Vec<Value> {
    let mut objects = Vec::new();
    for id in ids {
        objects.push(env.get(&format!("{path}/{id}")).await.expect(200));
    }
    objects
}

async fn pay(env: &PayEnv, key: &str, customer: &str, card: &str, orders: Value) -> String {
    let payment = env
        .post(
            "/v1/payments",
            Some(key),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": orders}),
        )
        .await
        .expect(201);
    let id = payment["id"].as_str().unwrap().to_string();
    env.wait_payment_settled(&id).await;
    id
}

async fn create(env: &PayEnv, path: &str, key: &str, body: Value) -> String {
    let object = env.post(path, Some(key), &body).await.expect(201);
    object["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_newest_first_and_filter_exactly() {
    let mut env = PayEnv::start("", &[]).await;
    let (c1, card1) = env.customer_with_card(CARD_OK).await;
    let (c2, card2) = env.customer_with_card(CARD_OK).await;
    let (c3, card3) = env.customer_with_card(CARD_DECLINED).await;
    let s1 = env.seller_with_bank("Alpha").await;
    let s2 = env.seller_with_bank("Beta").await;
    let s3 = env.seller_with_bank("Gamma").await;
    let order = |seller: &str, amount: u64| json!({"seller_id": seller, "amount": amount});
    let payment_ids = vec![
        pay(
            &env,
            "list-pay-1",
            &c1,
            &card1,
            json!([order(&s1, 10_000), order(&s2, 2_000)]),
        )
        .await,
        pay(&env, "list-pay-2", &c2, &card2, json!([order(&s1, 5_000)])).await,
        pay(&env, "list-pay-3", &c3, &card3, json!([order(&s3, 700)])).await,
        pay(&env, "list-pay-4", &c1, &card1, json!([order(&s3, 3_000)])).await,
        pay(&env, "list-pay-5", &c2, &card2, json!([order(&s2, 4_000)])).await,
    ];
    let payments = fetch(&env, "/v1/payments", &payment_ids).await;
    assert_eq!(payments[2]["status"], "failed", "{}", payments[2]);
    let orders: Vec<Value> = payments
        .iter()
        .flat_map(|p| p["orders"].as_array().unwrap().clone())
        .collect();
    assert_eq!(orders.len(), 6);
    let order_of = |payment: usize, index: usize| {
        payments[payment]["orders"][index]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let refund_ids = vec![
        create(
            &env,
            "/v1/refunds",
            "list-refund-1",
            json!({"order_id": order_of(0, 0), "amount": 1_000}),
        )
        .await,
        create(
            &env,
            "/v1/refunds",
            "list-refund-2",
            json!({"order_id": order_of(3, 0), "amount": 500}),
        )
        .await,
    ];
    let payout = |seller: &str, amount: u64| json!({"seller_id": seller, "currency": "USD", "amount": amount});
    let payout_ids = vec![
        create(&env, "/v1/payouts", "list-payout-1", payout(&s1, 1_000)).await,
        create(&env, "/v1/payouts", "list-payout-2", payout(&s1, 500)).await,
        create(&env, "/v1/payouts", "list-payout-3", payout(&s2, 1_000)).await,
    ];

    // Every list, two at a time: each object exactly once, newest first.
    let customers = fetch(&env, "/v1/customers", &[c1.clone(), c2.clone(), c3.clone()]).await;
    let sellers = fetch(&env, "/v1/sellers", &[s1.clone(), s2.clone(), s3.clone()]).await;
    let refunds = fetch(&env, "/v1/refunds", &refund_ids).await;
    let payouts = fetch(&env, "/v1/payouts", &payout_ids).await;
    let everything = [
        ("/v1/customers", &customers),
        ("/v1/sellers", &sellers),
        ("/v1/payments", &payments),
        ("/v1/payment_orders", &orders),
        ("/v1/refunds", &refunds),
        ("/v1/payouts", &payouts),
    ];
    for (path, objects) in everything {
        let listed = page_through(&env, path, 2).await;
        assert_eq!(ids(&listed), newest_first(objects.iter()), "{path}");
    }
    let listed_payments = page_through(&env, "/v1/payments", 2).await;
    for listed in &listed_payments {
        let fetched = payments.iter().find(|p| p["id"] == listed["id"]).unwrap();
        assert_eq!(listed["status"], fetched["status"]);
        assert_eq!(
            listed["orders"].as_array().unwrap().len(),
            fetched["orders"].as_array().unwrap().len()
        );
    }

    // Filters: exactly the matching objects, still newest first.
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("/v1/payments?customer={c1}"),
            matching(&payments, |p| p["customer_id"] == json!(c1)),
        ),
        (
            "/v1/payments?status=failed".into(),
            vec![payment_ids[2].clone()],
        ),
        (
            "/v1/payments?status=succeeded".into(),
            matching(&payments, |p| p["status"] == "succeeded"),
        ),
        (
            format!("/v1/payment_orders?seller={s1}"),
            matching(&orders, |o| o["seller_id"] == json!(s1)),
        ),
        (
            format!("/v1/payment_orders?customer={c2}&status=succeeded"),
            matching(&orders, |o| {
                o["customer_id"] == json!(c2) && o["status"] == "succeeded"
            }),
        ),
        (
            "/v1/payment_orders?status=failed".into(),
            vec![order_of(2, 0)],
        ),
        (
            format!("/v1/refunds?seller={s3}"),
            vec![refund_ids[1].clone()],
        ),
        (
            format!("/v1/refunds?customer={c1}"),
            newest_first(refunds.iter()),
        ),
        (format!("/v1/refunds?customer={c2}"), vec![]),
        (
            format!("/v1/payouts?seller={s1}"),
            matching(&payouts, |p| p["seller_id"] == json!(s1)),
        ),
        (format!("/v1/payouts?seller={s3}"), vec![]),
    ];
    for (path, expected) in &cases {
        let listed = page_through(&env, path, 1).await;
        assert_eq!(&ids(&listed), expected, "{path}");
    }
    assert_eq!(cases[0].1.len(), 2);
    assert_eq!(cases[3].1.len(), 2);

    // The created range, around the middle payment: bounds are inclusive for gte and lte.
    let by_time = newest_first(payments.iter());
    let middle = payments
        .iter()
        .find(|p| p["id"] == json!(by_time[2]))
        .unwrap();
    let mid = middle["created_at"].as_i64().unwrap();
    let created = |p: &Value| p["created_at"].as_i64().unwrap();
    let older = matching(&payments, |p| created(p) < mid);
    let newer_or_same = matching(&payments, |p| created(p) >= mid);
    assert!(newer_or_same.contains(&by_time[2]));
    let listed = page_through(&env, &format!("/v1/payments?created[lt]={mid}"), 2).await;
    assert_eq!(ids(&listed), older);
    let listed = page_through(&env, &format!("/v1/payments?created%5Bgte%5D={mid}"), 2).await;
    assert_eq!(ids(&listed), newer_or_same);
    let listed = page_through(
        &env,
        &format!("/v1/payments?created[gte]={mid}&created[lte]={mid}"),
        2,
    )
    .await;
    assert_eq!(ids(&listed), matching(&payments, |p| created(p) == mid));

    // Subscriptions and invoices: an active one (invoiced at once) and one in its trial.
    let plan = |name: &str, trial_days: u32| {
        json!({"seller_id": s1, "name": name, "currency": "USD", "amount": 1_500,
               "interval": "month", "trial_days": trial_days})
    };
    let basic = env
        .post("/v1/plans", None, &plan("Basic", 0))
        .await
        .expect(201);
    let trial = env
        .post("/v1/plans", None, &plan("Trial", 14))
        .await
        .expect(201);
    let (basic_id, trial_id) = (basic["id"].clone(), trial["id"].clone());
    let active = env
        .post(
            "/v1/subscriptions",
            Some("list-sub-1"),
            &json!({"customer_id": c1, "card_id": card1, "plan_id": basic_id}),
        )
        .await
        .expect(201);
    let trialing = env
        .post(
            "/v1/subscriptions",
            Some("list-sub-2"),
            &json!({"customer_id": c2, "card_id": card2, "plan_id": trial_id}),
        )
        .await
        .expect(201);
    assert_eq!(active["status"], "active", "{active}");
    assert_eq!(trialing["status"], "trialing", "{trialing}");
    let subscriptions = [active.clone(), trialing.clone()];
    let listed = page_through(&env, "/v1/subscriptions", 1).await;
    assert_eq!(ids(&listed), newest_first(subscriptions.iter()));
    let listed = page_through(&env, "/v1/subscriptions?status=trialing", 2).await;
    assert_eq!(ids(&listed), ids(std::slice::from_ref(&trialing)));
    let listed = page_through(&env, &format!("/v1/subscriptions?customer={c1}"), 2).await;
    assert_eq!(ids(&listed), ids(std::slice::from_ref(&active)));
    let invoices = page_through(&env, &format!("/v1/invoices?customer={c1}"), 2).await;
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["subscription_id"], active["id"]);
    assert!(
        page_through(&env, &format!("/v1/invoices?customer={c2}"), 2)
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&page_through(&env, "/v1/invoices", 2).await),
        ids(&invoices)
    );

    // A store from before the index: the payments' entries and the backfill marker removed.
    // A restarted tally-pay files the payments again, each once.
    let before = ids(&page_through(&env, "/v1/payments", 2).await);
    let entries = env.record_versions("pay.list_index", "payment/").await;
    assert_eq!(entries.len(), before.len());
    let mut forget = tally_client::Txn::default();
    for (key, _) in &entries {
        let key = RecordKey::new("pay.list_index", key.as_bytes().to_vec());
        forget.record_ops.push(RecordOp::Delete { key });
    }
    let marker = RecordKey::new("pay.list_index_backfill", b"done".to_vec());
    forget.record_ops.push(RecordOp::Delete { key: marker });
    let result = env
        .cluster
        .client
        .submit_txn(&forget)
        .await
        .expect("the cluster answers");
    assert!(
        matches!(result.outcome, TxnOutcome::Committed),
        "{result:?}"
    );
    assert!(page_through(&env, "/v1/payments", 2).await.is_empty());
    env.kill_pay();
    env.restart_pay().await;
    eventually(
        Duration::from_secs(60),
        "the list index backfill",
        || async {
            let done = env.record_versions("pay.list_index_backfill", "").await;
            (!done.is_empty()).then_some(())
        },
    )
    .await;
    assert_eq!(ids(&page_through(&env, "/v1/payments", 2).await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_parameters_and_bad_ids_name_their_param() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller_with_bank("Solid").await;
    pay(
        &env,
        "param-pay-1",
        &customer,
        &card,
        json!([{"seller_id": seller, "amount": 1_000}]),
    )
    .await;

    let cases = [
        ("/v1/payouts?limit=0", "invalid_limit", "limit"),
        ("/v1/payouts?limit=101", "invalid_limit", "limit"),
        ("/v1/payments?limit=ten", "invalid_limit", "limit"),
        (
            "/v1/payouts?starting_after=po_nothex",
            "invalid_id",
            "starting_after",
        ),
        (
            "/v1/payouts?starting_after=po_00000000000000ff",
            "invalid_cursor",
            "starting_after",
        ),
        (
            "/v1/payments?starting_after=cus_00000000000000ff",
            "invalid_id",
            "starting_after",
        ),
        ("/v1/payouts?status=lost", "invalid_status", "status"),
        (
            "/v1/payments?created[gte]=yesterday",
            "invalid_time",
            "created[gte]",
        ),
        ("/v1/refunds?created[lt]=-1", "invalid_time", "created[lt]"),
        (
            "/v1/payments?created[gt]=1&created[gte]=2",
            "conflicting_parameters",
            "created[gte]",
        ),
        ("/v1/payment_orders?seller=bob", "invalid_id", "seller"),
        (
            "/v1/invoices?customer=sel_00000000000000ff",
            "invalid_id",
            "customer",
        ),
        ("/v1/customers?status=active", "unknown_parameter", "status"),
        (
            "/v1/payouts?customer=cus_00000000000000ff",
            "unknown_parameter",
            "customer",
        ),
        (
            "/v1/refunds?ending_before=re_00000000000000ff",
            "unknown_parameter",
            "ending_before",
        ),
        (
            "/v1/sellers?limit=1&limit=2",
            "duplicate_parameter",
            "limit",
        ),
    ];
    for (path, code, param) in cases {
        let answer = env.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.code(), code, "{path}: {}", answer.body);
        assert_eq!(answer.body["error"]["type"], "invalid_request_error");
        assert_eq!(
            answer.body["error"]["param"], param,
            "{path}: {}",
            answer.body
        );
    }

    // Existing requests: the same codes and messages as before, now with `param`.
    let bad_customer = env
        .post(
            "/v1/payments",
            Some("param-pay-2"),
            &json!({"customer_id": "nope", "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 1_000}]}),
        )
        .await;
    assert_eq!(bad_customer.status, 400, "{}", bad_customer.body);
    assert_eq!(bad_customer.code(), "invalid_id");
    assert_eq!(
        bad_customer.body["error"]["message"],
        "`customer_id` must be an id like cus_0123456789abcdef"
    );
    assert_eq!(bad_customer.body["error"]["param"], "customer_id");
    let bad_seller = env
        .post(
            "/v1/payments",
            Some("param-pay-3"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": "sel_x", "amount": 1_000}]}),
        )
        .await;
    assert_eq!(bad_seller.code(), "invalid_id", "{}", bad_seller.body);
    assert_eq!(bad_seller.body["error"]["param"], "orders[].seller_id");
    let bad_currency = env
        .post(
            "/v1/payouts",
            Some("param-payout-1"),
            &json!({"seller_id": seller, "currency": "XXQ", "amount": 100}),
        )
        .await;
    assert_eq!(
        bad_currency.code(),
        "unknown_currency",
        "{}",
        bad_currency.body
    );
    assert_eq!(bad_currency.body["error"]["param"], "currency");
    let bad_email = env
        .post(
            "/v1/customers",
            None,
            &json!({"name": "Eve", "email": "not-an-address"}),
        )
        .await;
    assert_eq!(bad_email.code(), "invalid_email", "{}", bad_email.body);
    assert_eq!(bad_email.body["error"]["param"], "email");

    // No single field is at fault: no `param`.
    let missing = env.get("/v1/payouts/po_00000000000000ff").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(
        missing.body["error"].get("param").is_none(),
        "{}",
        missing.body
    );

    // A list needs its object's read scope.
    let (_, reader) = env.api_key("restricted", &["customers:read"]).await;
    let customers = env.get_as("/v1/customers?limit=1", Some(&reader)).await;
    assert_eq!(customers.status, 200, "{}", customers.body);
    assert_eq!(
        ids(customers.body["data"].as_array().unwrap()),
        vec![customer.clone()]
    );
    let payouts = env.get_as("/v1/payouts", Some(&reader)).await;
    assert_eq!(payouts.status, 403, "{}", payouts.body);
}
