//! The payment API's security: every route but the public ones needs a key, scopes are enforced,
//! revoked and rotated-out keys are refused, limits answer 429/413, card numbers are refused in
//! any notation, money movements leave audit entries, and no secret reaches logs or storage.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::env::{PayEnv, CARD_OK, DATA_KEY, DATA_KEY_BYTES};
use crate::harness::eventually;

/// The routes that need no key: health, metrics, the document, and the PSP's signed webhooks.
const PUBLIC: [&str; 4] = [
    "GET /healthz",
    "GET /metrics",
    "GET /openapi.json",
    "POST /v1/webhooks/psp",
];

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    template
        .replace("{date}", "2026-01-01")
        .replace("{name}", "bank")
        .replace("{id}", "x_0000000000000001")
}

/// Every operation in the OpenAPI document: (method, path template, scope if any).
async fn operations(env: &PayEnv) -> Vec<(String, String, Option<String>)> {
    let doc = env.get_as("/openapi.json", None).await.expect(200);
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            let security = operation["security"]
                .as_array()
                .expect("security is declared");
            let scope = security
                .first()
                .and_then(|s| s["api_key"][0].as_str())
                .map(String::from);
            all.push((method.to_ascii_uppercase(), path.clone(), scope));
        }
    }
    all
}

async fn call(env: &PayEnv, method: &str, path: &str, key: Option<&str>) -> crate::env::Response {
    match method {
        "GET" => env.get_as(path, key).await,
        "POST" => env.post_as(path, Some("probe-1"), &json!({}), key).await,
        other => panic!("unexpected method {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_the_public_ones_needs_a_key_with_its_scope() {
    let env = PayEnv::start("", &[]).await;
    let operations = operations(&env).await;
    assert!(operations.len() > 40, "the document lists the API");
    let public: BTreeSet<String> = operations
        .iter()
        .filter(|(_, _, scope)| scope.is_none())
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert_eq!(public, PUBLIC.iter().map(|s| s.to_string()).collect());
    let (_, publishable) = env.api_key("publishable", &[]).await;
    for (method, template, scope) in &operations {
        let Some(scope) = scope else { continue };
        let path = concrete(template);
        for key in [None, Some("sk_0000000000000001_nope"), Some("garbage")] {
            let response = call(&env, method, &path, key).await;
            assert_eq!(
                response.status, 401,
                "{method} {template} with {key:?}: {}",
                response.body
            );
            assert_eq!(response.body["error"]["type"], "authentication_error");
        }
        let response = call(&env, method, &path, Some(&publishable)).await;
        assert_eq!(
            response.status, 403,
            "{method} {template}: {}",
            response.body
        );
        assert_eq!(response.body["error"]["type"], "permission_error");
        let message = response.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(scope.as_str()), "{message} names {scope}");
    }
    // The public routes answer without a key.
    env.get_as("/healthz", None).await.expect(200);
    env.get_as("/metrics", None).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_revoked_and_rotated_keys() {
    let env = PayEnv::start("", &[]).await;
    let (_, payouts) = env.api_key("restricted", &["payouts:write"]).await;
    let refund = env
        .post_as(
            "/v1/refunds",
            Some("r-1"),
            &json!({"order_id": "ord_0000000000000001", "amount": 1}),
            Some(&payouts),
        )
        .await;
    assert_eq!(refund.status, 403, "{}", refund.body);
    assert_eq!(refund.body["error"]["type"], "permission_error");
    assert!(refund.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("refunds:write"));
    let payout = env
        .post_as(
            "/v1/payouts",
            Some("p-1"),
            &json!({"seller_id": "sel_0000000000000001", "currency": "USD", "amount": 1}),
            Some(&payouts),
        )
        .await;
    assert!(
        payout.status != 401 && payout.status != 403,
        "{}",
        payout.body
    );

    // A restricted key cannot mint a key with more power than it has.
    let (_, admin) = env.api_key("restricted", &["keys:admin"]).await;
    let escalate = env
        .post_as(
            "/v1/api_keys",
            None,
            &json!({"name": "x", "kind": "secret"}),
            Some(&admin),
        )
        .await;
    assert_eq!(escalate.status, 403, "{}", escalate.body);

    // Revoked: refused (within the key cache time).
    let (reader_id, reader) = env.api_key("restricted", &["payments:read"]).await;
    let probe = "/v1/payments/pay_0000000000000001";
    assert_eq!(env.get_as(probe, Some(&reader)).await.status, 404);
    env.post(
        &format!("/v1/api_keys/{reader_id}/revoke"),
        None,
        &json!({}),
    )
    .await
    .expect(200);
    wait_refused(&env, probe, &reader).await;

    // Rotated: the new key works at once, the old one until its grace period ends.
    let (old_id, old) = env.api_key("restricted", &["payments:read"]).await;
    let rotated = env
        .post(
            &format!("/v1/api_keys/{old_id}/rotate"),
            None,
            &json!({"grace_period_s": 2}),
        )
        .await
        .expect(201);
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_eq!(env.get_as(probe, Some(&new)).await.status, 404);
    wait_refused(&env, probe, &old).await;
    assert_eq!(env.get_as(probe, Some(&new)).await.status, 404);

    // Listing shows prefix and last 4 only.
    let listed = env.get("/v1/api_keys").await.expect(200).to_string();
    for secret in [&payouts, &admin, &reader, &old, &new, &env.api_key] {
        assert!(!listed.contains(&secret[20..]), "a secret is listed");
    }
    assert!(listed.contains(&format!("…{}", &new[new.len() - 4..])));
    let statuses: Vec<String> = serde_json::from_str::<Value>(&listed).unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap().to_string())
        .collect();
    assert!(statuses.contains(&"revoked".to_string()) && statuses.contains(&"expired".to_string()));

    // The CLI sees the same keys and revokes too.
    let output = env.keys_cli(&["list"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && text.contains(&old_id), "{text}");
    let output = env.keys_cli(&["revoke", rotated["id"].as_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_refused(&env, probe, &new).await;
}

async fn wait_refused(env: &PayEnv, path: &str, key: &str) {
    eventually(Duration::from_secs(20), "the key to be refused", || async {
        let response = env.get_as(path, Some(key)).await;
        (response.status == 401).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_body_and_failed_login_limits() {
    let env = PayEnv::start(
        "",
        &[
            ("TALLY_PAY__API__RATE_PER_S", "1"),
            ("TALLY_PAY__API__RATE_BURST", "5"),
            ("TALLY_PAY__API__AUTH_FAILURES_PER_MINUTE", "5"),
        ],
    )
    .await;
    let url = format!("{}/v1/payments/pay_0000000000000001", env.pay_url);
    let limited = eventually(Duration::from_secs(30), "a 429", || async {
        let response = env.http.get(&url).send().await.ok()?;
        (response.status() == 429).then_some(response)
    })
    .await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let big = "x".repeat(300 * 1024);
    let response = env
        .anonymous
        .post(format!("{}/v1/customers", env.pay_url))
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");

    // Failed logins from one address are limited too; the log names neither key.
    let blocked = eventually(
        Duration::from_secs(30),
        "failed logins to be limited",
        || async {
            let response = env
                .get_as("/v1/payments/x", Some("sk_0000000000000002_wrong"))
                .await;
            (response.status == 429).then_some(response)
        },
    )
    .await;
    assert_eq!(blocked.body["error"]["type"], "rate_limit_error");
    let log = env.pay_log();
    assert!(log.contains("authentication failed"), "failures are logged");
    assert!(!log.contains("sk_0000000000000002_wrong") && !log.contains(&env.api_key));
}

/// Card numbers in any notation, in any field (holder names too), are refused; error bodies
/// name fields, never echo values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_are_refused_in_any_notation_and_never_echoed() {
    let env = PayEnv::start("", &[]).await;
    let seller = env.seller("Shop").await;
    let variants = [
        "4242 4242 4242 4242",
        "4242.4242.4242.4242",
        "4242/4242/4242/4242",
        "4242\u{a0}4242\u{a0}4242\u{a0}4242",
        "４２４２４２４２４２４２４２４２",
        "4242–4242–4242–4242",
    ];
    for variant in variants {
        let customer = env
            .post(
                "/v1/customers",
                None,
                &json!({"name": variant, "email": "a@example.com"}),
            )
            .await;
        assert_eq!(customer.code(), "card_data_not_accepted", "{variant:?}");
        let bank = env
            .post(
                &format!("/v1/sellers/{seller}/bank_accounts"),
                None,
                &json!({"holder_name": format!("Ada {variant}"), "iban": "DE89 3704 0044 0532 0130 00"}),
            )
            .await;
        assert_eq!(
            bank.code(),
            "card_data_not_accepted",
            "holder_name {variant:?}"
        );
    }
    let probes = [
        env.post(
            "/v1/customers",
            None,
            &json!({"name": "Ada", "email": "4242424242424241@@"}),
        )
        .await,
        env.post(
            "/v1/customers",
            None,
            &json!({"name": "Ada", "email": "a@example.com", "x4242424242424241": 1}),
        )
        .await,
        env.get("/v1/customers/4242424242424241").await,
        env.get("/v1/nope/4242424242424241").await,
        env.post(
            "/v1/payouts",
            Some("k-1"),
            &json!({"seller_id": seller, "currency": "4242424242424241", "amount": 1}),
        )
        .await,
    ];
    for probe in probes {
        assert!((400..500).contains(&probe.status), "{}", probe.body);
        assert!(
            !probe.body.to_string().contains("4242424242424241"),
            "echoed: {}",
            probe.body
        );
    }
}

/// Payments, refunds, payouts and bank-account links write audit entries naming the key and the
/// address; afterwards no card number, API secret, bank number or data key is in any log or
/// data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_audited_and_no_secret_reaches_logs_or_storage() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller_with_bank("Audited").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("4000056655665556"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 10_000}]}),
        )
        .await
        .expect(201);
    let payment = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let order = payment["orders"][0]["id"].as_str().unwrap();
    let refund = env
        .post(
            "/v1/refunds",
            Some("audit-refund"),
            &json!({"order_id": order, "amount": 1_000}),
        )
        .await
        .expect(201);
    let payout = env
        .post(
            "/v1/payouts",
            Some("audit-payout"),
            &json!({"seller_id": seller, "currency": "USD", "amount": 500}),
        )
        .await
        .expect(201);
    let mut entries = Vec::new();
    let mut after = String::new();
    loop {
        let page = env
            .get(&format!("/v1/audit?limit=2{after}"))
            .await
            .expect(200);
        entries.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    for (action, object) in [
        ("payment.create", payment["id"].as_str().unwrap()),
        ("refund.create", refund["id"].as_str().unwrap()),
        ("payout.create", payout["id"].as_str().unwrap()),
    ] {
        let entry = entries
            .iter()
            .find(|e| e["action"] == action && e["object_id"] == object)
            .unwrap_or_else(|| panic!("no audit entry for {action} {object}: {entries:?}"));
        assert_eq!(entry["actor"], env.api_key_id.as_str());
        assert!(entry["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    assert!(entries
        .iter()
        .any(|e| e["action"] == "bank_account.link_as_default"));
    assert!(
        entries.iter().any(|e| e["action"] == "api_key.create"),
        "the CLI's key"
    );

    // `tallyctl audit` reads the same trail straight from the cluster, tally-pay or not.
    let output = env.tallyctl(&["--json", "audit", "--action", "payout.", "--limit", "10"]);
    assert!(output.status.success(), "{output:?}");
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let listed = listed.as_array().expect("an array of entries");
    assert!(
        listed.iter().all(|e| e["action"] == "payout.create"),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|e| e["object_id"] == payout["id"]),
        "{listed:?}"
    );
    let table = env.tallyctl(&["audit", "--limit", "3"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert_eq!(
        table.lines().count(),
        4,
        "a header and three entries: {table}"
    );
    assert!(table.starts_with("id"), "{table}");

    let secrets = [
        CARD_OK,
        "4000056655665556",
        env.api_key.as_str(),
        &env.api_key[20..],
        DATA_KEY.split_once(':').unwrap().1,
        DATA_KEY_BYTES,
        "DE89370400440532013000",
    ];
    for file in env.stored_files() {
        // The sandbox PSP is the card holder's PSP: it is given card numbers by design.
        if file.file_name().is_some_and(|n| n == "psp.log") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret ({}…)",
                file.display(),
                &secret[..4]
            );
        }
    }
}

/// A payout whose bank number cannot be decrypted (the data key was replaced without keeping
/// the old one) is not a 500 forever: its attempts count and it reaches the dead letters with
/// the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_that_cannot_be_built_reaches_the_dead_letters() {
    let mut env = PayEnv::start("", &[("TALLY_PAY__WORKER__MAX_ATTEMPTS", "3")]).await;
    let seller = env.funded_seller("Rotated", "fund-1", 10_000).await;
    env.kill_pay();
    env.set_pay_env(
        "TALLY_PAY__PAY__ENCRYPTION_KEY",
        "other:b3RoZXItZGF0YS1rZXktMDEyMzQ1Njc4OWFiY2RlZmc=",
    );
    env.restart_pay().await;
    let payout = env
        .post(
            "/v1/payouts",
            Some("undecryptable"),
            &json!({"seller_id": seller, "currency": "USD", "amount": 700}),
        )
        .await
        .expect(201);
    let id = payout["id"].as_str().unwrap().to_string();
    let letter = eventually(
        Duration::from_secs(60),
        "the payout to be dead-lettered",
        || async {
            let letters = env.get("/v1/dead_letters").await.expect(200);
            letters["data"]
                .as_array()?
                .iter()
                .find(|l| l["id"] == id.as_str())
                .cloned()
        },
    )
    .await;
    let reason = letter["reason"]["message"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot build the PSP request"), "{letter}");
    assert_eq!(letter["attempts"], 3, "{letter}");
}

/// `tally-pay keys rotate-data-key` re-encrypts bank numbers under the new data key; a second
/// run has nothing left to do, and tally-pay then pays out with the new key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_key_rotates_without_losing_bank_numbers() {
    const NEW_KEY: &str = "test2:bmV3LXRhbGx5LXRlc3QtZGF0YS1rZXktMDEyMzQ1Njc=";
    let mut env = PayEnv::start("", &[]).await;
    let seller = env.funded_seller("Rekeyed", "fund-2", 10_000).await;
    let rotate = |env: &PayEnv| {
        let output = std::process::Command::new(crate::harness::binary("tally-pay"))
            .args(["keys", "rotate-data-key", "--json", "--page", "1"])
            .args(["--cluster", &env.cluster.cluster_arg()])
            .envs(env.cluster.certs.env("tally-pay"))
            .env("TALLY_PAY__PAY__ENCRYPTION_KEY", NEW_KEY)
            .env("TALLY_PAY__PAY__PREVIOUS_ENCRYPTION_KEYS", DATA_KEY)
            .output()
            .expect("run rotate-data-key");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).expect("a JSON report")
    };
    let first = rotate(&env);
    assert_eq!(first["reencrypted"], 1, "{first}");
    let second = rotate(&env);
    assert_eq!(second["reencrypted"], 0, "{second}");
    env.kill_pay();
    env.set_pay_env("TALLY_PAY__PAY__ENCRYPTION_KEY", NEW_KEY);
    env.restart_pay().await;
    let payout = env
        .post(
            "/v1/payouts",
            Some("after-rekey"),
            &json!({"seller_id": seller, "currency": "USD", "amount": 700}),
        )
        .await
        .expect(201);
    let id = payout["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the payout to be paid", || async {
        let payout = env.get(&format!("/v1/payouts/{id}")).await.expect(200);
        (payout["status"] == "paid").then_some(())
    })
    .await;
}

/// tally-pay reaches an `https://` PSP through rustls, trusting the PSP's CA from `psp.ca`: a
/// payment settles end to end. Without that CA the PSP's certificate is refused, and no charge
/// is sent, in plain text or otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_psp_is_reached_over_https_and_an_untrusted_certificate_is_refused() {
    let mut env = PayEnv::start_https_psp("", &[]).await;
    assert!(env.psp_url.starts_with("https://"), "{}", env.psp_url);
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Encrypted").await;
    let order = |amount: u64| {
        json!({"customer_id": customer, "card_id": card, "currency": "USD",
               "orders": [{"seller_id": seller, "amount": amount}]})
    };
    let payment = env
        .post("/v1/payments", Some("https-1"), &order(2_500))
        .await
        .expect(201);
    let settled = env
        .wait_payment_settled(payment["id"].as_str().unwrap())
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(env.psp_charges().await.len(), 1);

    // The same tally-pay without the PSP's CA: the handshake fails, so nothing reaches the PSP.
    env.kill_pay();
    env.set_pay_env("TALLY_PAY__PSP__CA", "");
    env.restart_pay().await;
    let refused = env
        .post("/v1/payments", Some("https-2"), &order(3_100))
        .await;
    assert_ne!(refused.body["status"], "succeeded", "{}", refused.body);
    assert_eq!(
        env.psp_charges().await.len(),
        1,
        "a PSP with an untrusted certificate received a charge"
    );
}
