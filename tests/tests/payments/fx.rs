//! FX rates: tally-pay quotes the PSP's published rates (and follows the market the sandbox
//! moves), or a configured table; a pair with no rate is a clear 422. FX conversion: an EUR
//! checkout paid out to sellers in GBP and JPY at the rate fixed at capture, which the order
//! keeps whatever the market does later; every currency's ledger balances by itself.

use serde_json::{json, Value};
use tally_payments::domain::chart::{self, code};
use tally_payments::domain::ids;
use tally_payments::domain::money::{pro_rata, Currency};

use crate::env::{fee, today, PayEnv, CARD_OK, HOLD_A_DAY, PSP_API_KEY};

fn currency(code: &str) -> Currency {
    Currency::by_code(code).unwrap()
}

/// Moves the sandbox's market: `(base, quote, rate)`.
async fn set_psp_rates(env: &PayEnv, rates: &[(&str, &str, &str)]) {
    let body: Vec<Value> = rates
        .iter()
        .map(|(base, quote, rate)| json!({"base": base, "quote": quote, "rate": rate}))
        .collect();
    let moved = env
        .http
        .post(format!("{}/_sandbox/fx_rates", env.psp_url))
        .bearer_auth(PSP_API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success(), "{}", moved.status());
}

/// A seller paid out in `payout_currency`, with a bank account.
async fn seller_paid_in(env: &PayEnv, name: &str, payout_currency: &str) -> String {
    let body = json!({"name": name, "email": format!("{}@example.com", name.to_lowercase()),
                      "payout_currency": payout_currency});
    let seller = env.post("/v1/sellers", None, &body).await.expect(201);
    assert_eq!(seller["payout_currency"], payout_currency, "{seller}");
    let id = seller["id"].as_str().unwrap().to_string();
    env.post(
        &format!("/v1/sellers/{id}/bank_accounts"),
        None,
        &json!({"holder_name": name, "iban": "DE89 3704 0044 0532 0130 00"}),
    )
    .await
    .expect(201);
    id
}

/// An EUR checkout of `orders` (seller, EUR minor units) by a new customer, under `key`.
async fn pay_eur(env: &PayEnv, key: &str, orders: &[(&str, u64)], manual: bool) -> Value {
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let orders: Vec<Value> = orders
        .iter()
        .map(|(seller, amount)| json!({"seller_id": seller, "amount": amount}))
        .collect();
    let mut body = json!({"customer_id": customer, "card_id": card, "currency": "EUR",
                          "orders": orders});
    if manual {
        body["capture"] = json!("manual");
    }
    env.post("/v1/payments", Some(key), &body).await.expect(201)
}

/// The seller's balance in `code` as the API shows it: (available, pending).
async fn api_balance(env: &PayEnv, seller: &str, code: &str) -> (u64, u64) {
    let balance = env
        .get(&format!("/v1/sellers/{seller}/balance"))
        .await
        .expect(200);
    let entry = balance["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == code)
        .unwrap_or_else(|| panic!("a {code} balance: {balance}"))
        .clone();
    (
        entry["available"].as_u64().unwrap(),
        entry["pending"].as_u64().unwrap(),
    )
}

/// Net posted credit of one of the seller's accounts in `code`'s ledger.
async fn seller_account(env: &PayEnv, seller: &str, account_code: u16, code: &str) -> i128 {
    let owner = ids::number(ids::SELLER, seller).unwrap();
    env.account(chart::account_id(account_code, currency(code), owner))
        .await
        .net_credit()
}

/// Net posted credit of the FX position of `base`/`quote` in the ledger of `code`.
async fn fx_position(env: &PayEnv, code: &str, base: &str, quote: &str) -> i128 {
    let id = chart::fx_position_id(currency(code), currency(base), currency(quote));
    env.account(id).await.net_credit()
}

/// `share` EUR minor units at `rate`, rounded half away from zero to the quote's minor unit,
/// computed here by hand in integers: `share * rate_num / rate_den` with `quote_scale` digits.
fn by_hand(share: u64, rate_num: u64, rate_den: u64, quote_unit: u64) -> u64 {
    // share / 100 * rate * quote_unit, i.e. share * rate_num * quote_unit / (100 * rate_den).
    let numerator = u128::from(share) * u128::from(rate_num) * u128::from(quote_unit);
    let denominator = 100 * u128::from(rate_den);
    u64::try_from((2 * numerator + denominator) / (2 * denominator)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_come_from_the_psp_or_a_table() {
    let env = PayEnv::start("", &[]).await;
    let rate = env.get("/v1/fx_rates?base=EUR&quote=GBP").await.expect(200);
    assert_eq!(
        rate,
        json!({"base": "EUR", "quote": "GBP", "rate": "0.856", "source": "psp"})
    );
    // The sandbox moves its market: the next quote follows.
    let moved = env
        .http
        .post(format!("{}/_sandbox/fx_rates", env.psp_url))
        .bearer_auth(PSP_API_KEY)
        .json(&json!([{"base": "EUR", "quote": "GBP", "rate": "0.9012"}]))
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success());
    let rate = env.get("/v1/fx_rates?base=EUR&quote=GBP").await.expect(200);
    assert_eq!(rate["rate"], "0.9012");
    let missing = env.get("/v1/fx_rates?base=GBP&quote=JPY").await;
    assert_eq!(
        (missing.status, missing.code()),
        (422, "fx_rate_unavailable")
    );
    for bad in [
        "/v1/fx_rates?base=EUR",
        "/v1/fx_rates?base=EUR&quote=EUR",
        "/v1/fx_rates?base=EUR&quote=XYZ",
        "/v1/fx_rates?base=EUR&quote=GBP&at=now",
    ] {
        let answer = env.get(bad).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }

    let table = PayEnv::start(
        "",
        &[
            ("TALLY_PAY__FX__SOURCE", "table"),
            ("TALLY_PAY__FX__RATES", "EUR/JPY=162.4, USD/GBP=0.79"),
        ],
    )
    .await;
    let rate = table
        .get("/v1/fx_rates?base=EUR&quote=JPY")
        .await
        .expect(200);
    assert_eq!(
        rate,
        json!({"base": "EUR", "quote": "JPY", "rate": "162.4", "source": "table"})
    );
    let missing = table.get("/v1/fx_rates?base=EUR&quote=GBP").await;
    assert_eq!(
        (missing.status, missing.code()),
        (422, "fx_rate_unavailable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eur_checkout_is_paid_out_in_gbp_and_jpy_at_the_rate_fixed_at_capture() {
    let env = PayEnv::start("", &[HOLD_A_DAY]).await;
    set_psp_rates(&env, &[("EUR", "GBP", "0.856"), ("EUR", "JPY", "162.4")]).await;
    let british = seller_paid_in(&env, "British", "GBP").await;
    let japanese = seller_paid_in(&env, "Japanese", "JPY").await;

    // 100.00 EUR to the British seller, 123.45 EUR to the Japanese one, captured at once.
    let payment = pay_eur(
        &env,
        "fx-checkout",
        &[(british.as_str(), 10_000), (japanese.as_str(), 12_345)],
        false,
    )
    .await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let gbp_order = payment["orders"][0].clone();
    let jpy_order = payment["orders"][1].clone();
    let gbp_share = 10_000 - fee(10_000);
    let jpy_share = 12_345 - fee(12_345);
    // 97.20 EUR at 0.856 = 83.2032 GBP -> 83.20; 120.06 EUR at 162.4 = 19497.744 JPY -> 19498.
    let gbp_converted = by_hand(gbp_share, 856, 1000, 100);
    let jpy_converted = by_hand(jpy_share, 1624, 10, 1);
    assert_eq!((gbp_converted, jpy_converted), (8_320, 19_498));
    for (order, quote, rate, share, converted) in [
        (&gbp_order, "GBP", "0.856", gbp_share, gbp_converted),
        (&jpy_order, "JPY", "162.4", jpy_share, jpy_converted),
    ] {
        assert_eq!(order["payout_currency"], quote, "{order}");
        let fx = &order["fx"];
        assert_eq!(
            (&fx["base"], &fx["quote"], &fx["rate"], &fx["source"]),
            (&json!("EUR"), &json!(quote), &json!(rate), &json!("psp")),
            "{order}"
        );
        assert_eq!(
            (fx["share"].as_u64(), fx["share_converted"].as_u64()),
            (Some(share), Some(converted))
        );
        assert!(fx["fixed_at"].as_i64().unwrap() >= order["created_at"].as_i64().unwrap());
    }
    assert_eq!(api_balance(&env, &british, "GBP").await, (0, gbp_converted));
    assert_eq!(
        api_balance(&env, &japanese, "JPY").await,
        (0, jpy_converted)
    );
    for seller in [&british, &japanese] {
        assert_eq!(
            api_balance(&env, seller, "EUR").await,
            (0, 0),
            "nothing left in EUR"
        );
    }

    // The market moves; the captured orders keep their rate.
    set_psp_rates(&env, &[("EUR", "GBP", "0.9012"), ("EUR", "JPY", "170")]).await;
    let rate = env.get("/v1/fx_rates?base=EUR&quote=GBP").await.expect(200);
    assert_eq!(rate["rate"], "0.9012");

    // A partial refund of 25.00 EUR: the seller gives back the converted proportion at 0.856.
    let gbp_order_id = gbp_order["id"].as_str().unwrap();
    let refund = env
        .post(
            "/v1/refunds",
            Some("fx-refund"),
            &json!({"order_id": gbp_order_id, "amount": 2_500}),
        )
        .await
        .expect(201);
    assert_eq!(refund["status"], "succeeded", "{refund}");
    let fee_back = pro_rata(fee(10_000), 2_500, 10_000);
    let refund_gbp = by_hand(2_500 - fee_back, 856, 1000, 100);
    assert_eq!(refund["converted"], refund_gbp, "{refund}");
    assert_eq!(refund["currency"], "EUR");
    let gbp_left = gbp_converted - refund_gbp;
    assert_eq!(api_balance(&env, &british, "GBP").await, (0, gbp_left));
    assert_eq!(api_balance(&env, &british, "EUR").await, (0, 0));

    // Released: what is left of the converted share becomes available, in GBP and JPY.
    for order in [&gbp_order, &jpy_order] {
        let id = order["id"].as_str().unwrap();
        let released = env
            .post(
                &format!("/v1/payment_orders/{id}/release"),
                None,
                &json!({}),
            )
            .await
            .expect(200);
        assert_eq!(released["escrow"], "released", "{released}");
        assert_eq!(
            released["fx"]["rate"], order["fx"]["rate"],
            "the rate fixed at capture"
        );
    }
    assert_eq!(api_balance(&env, &british, "GBP").await, (gbp_left, 0));
    assert_eq!(
        api_balance(&env, &japanese, "JPY").await,
        (jpy_converted, 0)
    );

    // A new order captured now takes the new rate: authorized at 170, captured in part.
    let later = pay_eur(&env, "fx-later", &[(japanese.as_str(), 10_000)], true).await;
    let later_id = later["orders"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(later["orders"][0]["status"], "requires_capture", "{later}");
    set_psp_rates(&env, &[("EUR", "JPY", "171.25")]).await;
    let captured = env
        .post(
            &format!("/v1/payment_orders/{later_id}/capture"),
            None,
            &json!({"amount": 6_000}),
        )
        .await
        .expect(200);
    let later_share = 6_000 - fee(6_000);
    let later_converted = by_hand(later_share, 17_125, 100, 1);
    assert_eq!(
        captured["fx"]["rate"], "171.25",
        "fixed at capture, not at authorization"
    );
    assert_eq!(
        captured["fx"]["share_converted"], later_converted,
        "{captured}"
    );
    assert_eq!(
        api_balance(&env, &japanese, "JPY").await,
        (jpy_converted, later_converted)
    );

    // Paid out in the sellers' currencies.
    for (seller, code, amount, key) in [
        (&british, "GBP", gbp_left, "fx-po-gbp"),
        (&japanese, "JPY", jpy_converted, "fx-po-jpy"),
    ] {
        let payout = env
            .post(
                "/v1/payouts",
                Some(key),
                &json!({"seller_id": seller, "currency": code, "amount": amount}),
            )
            .await
            .expect(201);
        env.wait_payout_paid(payout["id"].as_str().unwrap()).await;
        let (available, _) = api_balance(&env, seller, code).await;
        assert_eq!(available, 0, "{code}");
    }

    // The ledger by hand: each seller's EUR accounts are empty, the FX positions hold the pair.
    for seller in [&british, &japanese] {
        for account_code in [code::SELLER_WALLET, code::SELLER_PENDING] {
            assert_eq!(seller_account(&env, seller, account_code, "EUR").await, 0);
        }
    }
    assert_eq!(
        seller_account(&env, &japanese, code::SELLER_PENDING, "JPY").await,
        i128::from(later_converted)
    );
    let eur_in = gbp_share - (2_500 - fee_back);
    assert_eq!(
        fx_position(&env, "EUR", "EUR", "GBP").await,
        i128::from(eur_in)
    );
    assert_eq!(
        fx_position(&env, "GBP", "EUR", "GBP").await,
        -i128::from(gbp_left)
    );
    assert_eq!(
        fx_position(&env, "EUR", "EUR", "JPY").await,
        i128::from(jpy_share + later_share)
    );
    assert_eq!(
        fx_position(&env, "JPY", "EUR", "JPY").await,
        -i128::from(jpy_converted + later_converted)
    );

    // Conservation per currency: reconciliation's ledger check, and every replica's ledgers.
    let recon = env
        .post("/v1/reconciliations", None, &json!({ "date": today() }))
        .await
        .expect(200);
    assert_eq!(
        recon["summary"]["ledger_ok"], true,
        "{:#}",
        recon["summary"]["ledger"]
    );
    for code in ["EUR", "GBP", "JPY"] {
        let checks = recon["summary"]["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["currency"] == code)
            .unwrap_or_else(|| panic!("{code} is checked"))
            .clone();
        assert_eq!(checks["conservation"]["passed"], true, "{code}: {checks:#}");
    }
    env.verify_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_rate_converts_and_a_missing_pair_refuses_the_checkout() {
    let env = PayEnv::start(
        "",
        &[
            ("TALLY_PAY__FX__SOURCE", "table"),
            ("TALLY_PAY__FX__RATES", "EUR/GBP=0.8567"),
        ],
    )
    .await;
    let british = seller_paid_in(&env, "Table", "GBP").await;
    let japanese = seller_paid_in(&env, "NoRate", "JPY").await;
    let refused = env
        .post(
            "/v1/sellers",
            None,
            &json!({"name": "X", "email": "x@example.com", "payout_currency": "XYZ"}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "unknown_currency"),
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["param"], "payout_currency");

    // No EUR/JPY rate in the table: the checkout is refused before anything is made.
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let body = json!({"customer_id": customer, "card_id": card, "currency": "EUR",
                      "orders": [{"seller_id": japanese, "amount": 1_000}]});
    let missing = env.post("/v1/payments", Some("fx-no-rate"), &body).await;
    assert_eq!(
        (missing.status, missing.code()),
        (422, "fx_rate_unavailable"),
        "{}",
        missing.body
    );
    assert!(env.psp_charges().await.is_empty(), "nothing charged");

    // Hold period 0 (the tests' default): converted straight into the GBP wallet.
    let payment = pay_eur(&env, "fx-table", &[(british.as_str(), 3_333)], false).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let share = 3_333 - fee(3_333);
    // 32.20 EUR at 0.8567 = 27.58574 GBP -> 27.59.
    let converted = by_hand(share, 8_567, 10_000, 100);
    assert_eq!(payment["orders"][0]["fx"]["share_converted"], converted);
    assert_eq!(payment["orders"][0]["fx"]["source"], "table");
    assert_eq!(api_balance(&env, &british, "GBP").await, (converted, 0));
    let statement = env
        .get(&format!(
            "/v1/sellers/{british}/statement?currency=GBP&from={}",
            today()
        ))
        .await
        .expect(200);
    assert_eq!(statement["adds_up"], true, "{statement:#}");
    assert_eq!(statement["conversions"], converted, "{statement:#}");

    // Paid out in GBP, the seller cannot give the converted share back for a refund.
    let payout = env
        .post(
            "/v1/payouts",
            Some("fx-table-po"),
            &json!({"seller_id": british, "currency": "GBP", "amount": converted}),
        )
        .await
        .expect(201);
    env.wait_payout_paid(payout["id"].as_str().unwrap()).await;
    let order_id = payment["orders"][0]["id"].as_str().unwrap();
    let refused = env
        .post(
            "/v1/refunds",
            Some("fx-table-refund"),
            &json!({"order_id": order_id, "amount": 1_000}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (422, "seller_balance_insufficient"),
        "{}",
        refused.body
    );

    // Back to each order's own currency: a later checkout is paid in EUR.
    let updated = env
        .post(
            &format!("/v1/sellers/{british}"),
            None,
            &json!({"payout_currency": null}),
        )
        .await
        .expect(200);
    assert!(updated.get("payout_currency").is_none(), "{updated}");
    let plain = pay_eur(&env, "fx-plain", &[(british.as_str(), 1_000)], false).await;
    assert!(plain["orders"][0].get("fx").is_none(), "{plain}");
    assert_eq!(
        api_balance(&env, &british, "EUR").await,
        (1_000 - fee(1_000), 0)
    );
    env.verify_ledger();
}
