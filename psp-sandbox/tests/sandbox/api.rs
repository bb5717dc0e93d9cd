//! The sandbox's API answers, seen over plain HTTP.

use std::time::Duration;

use tally_psp_sandbox::Faults;

use crate::harness::{self, start};

const VISA: &str = "4242424242424242";
const NO_DELAY: Duration = Duration::ZERO;

mod cards {
    use super::*;

    #[tokio::test]
    async fn invalid_cards_are_refused_with_400() {
        let sandbox = start("", NO_DELAY).await;
        let cases = [
            ("4242424242424241", 12, 2040, "123", "incorrect_number"),
            ("4242424242424242", 13, 2040, "123", "invalid_expiry_month"),
            ("4242424242424242", 1, 2020, "123", "invalid_expiry_year"),
            ("4242424242424242", 12, 2040, "1", "invalid_cvc"),
        ];
        for (number, exp_month, exp_year, cvc, code) in cases {
            let card = serde_json::json!({
                "number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc
            });
            let (status, body) = sandbox.post_token(&card).await;
            assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
        }
        let (status, body) = sandbox
            .post_token(&serde_json::json!({"number": VISA}))
            .await;
        assert_eq!(status, 400, "{body}");
    }
}

mod faults {
    use super::*;

    #[tokio::test]
    async fn faults_can_be_read_and_replaced() {
        let sandbox = start("latency=0ms,seed=9", NO_DELAY).await;
        let read = sandbox
            .http
            .get(format!("{}/_sandbox/faults", sandbox.base_url))
            .bearer_auth(harness::API_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(Faults::parse(&read).unwrap().seed, Some(9));
        let (status, body) = sandbox
            .post_sandbox("/_sandbox/faults", "lost_webhooks=0.5".to_owned())
            .await;
        assert_eq!(status, 200, "{body}");
        let faults = Faults::parse(&body).unwrap();
        assert_eq!(faults.lost_webhooks, 0.5);
        assert!(faults.seed.is_some());
        let (status, body) = sandbox
            .post_sandbox("/_sandbox/faults", "lost_webhooks=2".to_owned())
            .await;
        assert_eq!(status, 400);
        assert!(body.contains("between 0 and 1"), "{body}");
    }
}

mod captures {
    use super::*;
    use serde_json::json;

    async fn authorize(sandbox: &harness::Harness, reference: &str) {
        let card = json!({"number": VISA, "exp_month": 12, "exp_year": 2040, "cvc": "123"});
        let (_, token) = sandbox.post_token(&card).await;
        let charge = json!({
            "reference": reference, "card_token": token["token"], "amount": 1000,
            "currency": "USD", "capture": false
        });
        let (status, body) = sandbox.post_keyed("/v1/charges", reference, &charge).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("authorized")),
            "{body}"
        );
    }

    /// A capture of less than authorized settles what was captured; a cancel releases it all
    /// and settles nothing; repeating either with its key changes nothing.
    #[tokio::test]
    async fn capture_part_or_cancel_an_authorization() {
        let sandbox = start("latency=0ms", NO_DELAY).await;
        authorize(&sandbox, "o1").await;
        authorize(&sandbox, "o2").await;
        let path = "/v1/charges/o1/capture";
        let (status, body) = sandbox
            .post_keyed(path, "c1", &json!({"amount": 1001}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("amount_too_large"))
        );
        let (status, body) = sandbox
            .post_keyed(path, "c2", &json!({"amount": 600}))
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("succeeded")),
            "{body}"
        );
        assert_eq!(body["amount"], 600);
        let (status, body) = sandbox
            .post_keyed(path, "c2", &json!({"amount": 600}))
            .await;
        assert_eq!(
            (status, body["amount"].as_u64()),
            (200, Some(600)),
            "{body}"
        );
        let cancel = |reference: &str| format!("/v1/charges/{reference}/cancel");
        let (status, body) = sandbox.post_keyed(&cancel("o1"), "x1", &json!({})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("charge_already_captured"))
        );
        for _ in 0..2 {
            let (status, body) = sandbox.post_keyed(&cancel("o2"), "x2", &json!({})).await;
            assert_eq!(
                (status, body["status"].as_str()),
                (200, Some("canceled")),
                "{body}"
            );
        }
        let (status, body) = sandbox
            .post_keyed("/v1/charges/o2/capture", "c3", &json!({}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("charge_canceled"))
        );
        let day = chrono::Utc::now().format("%Y-%m-%d");
        let report = sandbox.get_text(&format!("/v1/settlements/{day}")).await;
        let lines: Vec<&str> = report.lines().skip(1).collect();
        assert_eq!(lines.len(), 1, "{report}");
        assert!(lines[0].contains(",o1,600,USD,"), "{report}");
    }
}
