//! FX rates: tally-pay quotes the PSP's published rates (and follows the market the sandbox
//! moves), or a configured table; a pair with no rate is a clear 422.

use serde_json::json;

use crate::env::{PayEnv, PSP_API_KEY};

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
