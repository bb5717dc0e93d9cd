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
