//! tally-pay's `SandboxConnector` + `HttpExecutor` against the sandbox PSP (`tally-psp-sandbox`,
//! a dev-dependency), over real HTTP on loopback: each test starts its own sandbox (and a webhook
//! receiver that checks signatures) on ephemeral ports, in process. The sandbox's own tests,
//! which need no connector, are in `psp-sandbox/tests/`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_payments::edges::psp::{
    BankDestination, ChargeRequest, ChargeStatus, Gateway, HttpExecutor, PayoutRequest,
    PayoutStatus, PspError, PspObject, RefundRequest, RefundStatus, SandboxConnector,
    SettlementKind, WebhookEvent,
};
use tally_psp_sandbox::{self as sandbox, Faults, SandboxConfig};

mod harness {
    use super::*;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use tally_payments::edges::psp::Connector;

    pub const API_KEY: &str = "sk_test_tally";
    pub const PUBLISHABLE_KEY: &str = "pk_test_browser";
    pub const WEBHOOK_SECRET: &[u8] = b"whsec_tally_dev";
    pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
    const WAIT_MAX: Duration = Duration::from_secs(10);

    /// What the webhook receiver got: verified events, and how many deliveries it refused.
    #[derive(Default)]
    pub struct Received {
        pub events: Vec<WebhookEvent>,
        pub rejected: usize,
    }

    pub struct Harness {
        pub base_url: String,
        pub gateway: Gateway,
        pub http: reqwest::Client,
        pub received: Arc<Mutex<Received>>,
    }

    /// Starts a sandbox with `faults`, payouts settling after `payout_delay`, webhooks going
    /// to a receiver that verifies them with `SandboxConnector::verify_webhook`.
    pub async fn start(faults: &str, payout_delay: Duration) -> Harness {
        let received = Arc::new(Mutex::new(Received::default()));
        let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!("http://{}/webhooks", receiver.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/webhooks", axum::routing::post(receive_webhook))
            .with_state(Arc::clone(&received));
        tokio::spawn(async move { axum::serve(receiver, router).await });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let config = SandboxConfig {
            listen: address,
            webhook_url: Some(webhook_url),
            faults: Faults::parse(faults).unwrap(),
            payout_delay,
            ..SandboxConfig::default()
        };
        tokio::spawn(sandbox::serve(config, listener));
        let base_url = format!("http://{address}");
        Harness {
            gateway: gateway(&base_url, CALL_TIMEOUT),
            base_url,
            http: reqwest::Client::new(),
            received,
        }
    }

    pub fn gateway(base_url: &str, timeout: Duration) -> Gateway {
        let connector = SandboxConnector::new(WEBHOOK_SECRET.to_vec());
        Gateway::new(
            Arc::new(connector),
            HttpExecutor::new(base_url, API_KEY, timeout, None).expect("an HTTP client"),
        )
    }

    async fn receive_webhook(
        State(received): State<Arc<Mutex<Received>>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or_default().to_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let connector = SandboxConnector::new(WEBHOOK_SECRET.to_vec());
        let now = chrono::Utc::now().timestamp();
        let tolerance = Duration::from_secs(300);
        let mut received = received.lock().unwrap();
        match connector.verify_webhook(&headers, &body, now, tolerance) {
            Ok(event) => {
                received.events.push(event);
                StatusCode::OK
            }
            Err(_) => {
                received.rejected += 1;
                StatusCode::BAD_REQUEST
            }
        }
    }

    impl Harness {
        /// Tokenizes a card the way a buyer's browser does (publishable key).
        pub async fn tokenize(&self, number: &str) -> String {
            let card = serde_json::json!({
                "number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"
            });
            let (status, body) = self.post_token(&card).await;
            assert_eq!(status, 200, "{body}");
            body["token"].as_str().unwrap().to_owned()
        }

        pub async fn post_token(&self, card: &serde_json::Value) -> (u16, serde_json::Value) {
            let response = self
                .http
                .post(format!("{}/v1/tokens", self.base_url))
                .bearer_auth(PUBLISHABLE_KEY)
                .json(card)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        }

        /// A sandbox-only listing (`/v1/charges`, ...).
        pub async fn list(&self, path: &str) -> Vec<serde_json::Value> {
            let response = self
                .http
                .get(format!("{}{path}", self.base_url))
                .bearer_auth(API_KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json().await.unwrap()
        }

        pub async fn post_sandbox(&self, path: &str, body: String) -> (u16, String) {
            let response = self
                .http
                .post(format!("{}{path}", self.base_url))
                .bearer_auth(API_KEY)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }

        pub async fn set_faults(&self, spec: &str) {
            let (status, body) = self.post_sandbox("/_sandbox/faults", spec.to_owned()).await;
            assert_eq!(status, 200, "{body}");
        }

        /// Waits (with a deadline) until `count` events for `reference` have arrived.
        pub async fn events_for(&self, reference: &str, count: usize) -> Vec<WebhookEvent> {
            let deadline = tokio::time::Instant::now() + WAIT_MAX;
            let mut poll = tokio::time::interval(Duration::from_millis(10));
            loop {
                poll.tick().await;
                let events: Vec<WebhookEvent> = {
                    let received = self.received.lock().unwrap();
                    assert_eq!(received.rejected, 0, "a webhook failed verification");
                    let events = received.events.iter();
                    events
                        .filter(|event| object_reference(event) == reference)
                        .cloned()
                        .collect()
                };
                if events.len() >= count {
                    return events;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "waited {WAIT_MAX:?} for {count} webhooks about `{reference}`, got {events:?}"
                );
            }
        }
    }

    fn object_reference(event: &WebhookEvent) -> &str {
        match &event.data {
            PspObject::Charge(charge) => &charge.reference,
            PspObject::Refund(refund) => &refund.reference,
            PspObject::Dispute(dispute) => &dispute.charge_reference,
            PspObject::Payout(payout) => &payout.reference,
        }
    }

    pub fn charge(reference: &str, token: &str, amount: u64) -> ChargeRequest {
        ChargeRequest {
            reference: reference.to_owned(),
            card_token: token.to_owned(),
            amount,
            currency: "USD".to_owned(),
            description: format!("order {reference}"),
        }
    }

    pub fn refund(reference: &str, charge_reference: &str, amount: u64) -> RefundRequest {
        RefundRequest {
            reference: reference.to_owned(),
            charge_reference: charge_reference.to_owned(),
            amount,
            currency: "USD".to_owned(),
        }
    }

    pub fn payout_to_iban(reference: &str, iban: &str) -> PayoutRequest {
        PayoutRequest {
            reference: reference.to_owned(),
            amount: 900,
            currency: "EUR".to_owned(),
            destination: BankDestination {
                holder_name: "Ada Lovelace".to_owned(),
                country: "DE".to_owned(),
                iban: Some(iban.to_owned()),
                account_number: None,
                routing_number: None,
            },
        }
    }
}

use harness::{charge, payout_to_iban, refund, start};

const VISA: &str = "4242424242424242";
const NO_DELAY: Duration = Duration::ZERO;

mod cards {
    use super::*;

    #[tokio::test]
    async fn tokenized_card_details_never_include_the_number() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        assert!(token.starts_with("tok_"));
        let card = sandbox.gateway.card(&token).await.unwrap();
        assert_eq!(
            (
                card.brand.as_str(),
                card.last4.as_str(),
                card.exp_month,
                card.exp_year
            ),
            ("visa", "4242", 12, 2040)
        );
        assert_eq!(card.funding, "credit");
        let raw = sandbox
            .http
            .get(format!("{}/v1/tokens/{token}", sandbox.base_url))
            .bearer_auth(harness::API_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!raw.contains(VISA) && !raw.contains("number"), "{raw}");
        let master = sandbox.tokenize("5555555555554444").await;
        assert_eq!(
            sandbox.gateway.card(&master).await.unwrap().brand,
            "mastercard"
        );
        assert_eq!(
            sandbox.gateway.card("tok_nope").await,
            Err(PspError::NotFound)
        );
    }

    #[tokio::test]
    async fn secret_endpoints_need_the_secret_key() {
        let sandbox = start("", NO_DELAY).await;
        for key in ["", harness::PUBLISHABLE_KEY, "sk_test_wrong"] {
            let response = sandbox
                .http
                .get(format!("{}/v1/charges", sandbox.base_url))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "key `{key}`");
        }
        let wrong = Gateway::new(
            Arc::new(SandboxConnector::new(harness::WEBHOOK_SECRET.to_vec())),
            HttpExecutor::new(
                &sandbox.base_url,
                "sk_test_wrong",
                harness::CALL_TIMEOUT,
                None,
            )
            .expect("an HTTP client"),
        );
        assert!(matches!(
            wrong.charge_status("o1").await,
            Err(PspError::Invalid { .. })
        ));
    }
}

mod charges {
    use super::*;

    #[tokio::test]
    async fn charge_succeeds_with_the_fee() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        let charged = sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        assert_eq!(charged.status, ChargeStatus::Succeeded);
        assert_eq!(charged.fee, 29 + 30);
        assert!(charged.psp_id.starts_with("ch_"));
        assert_eq!(sandbox.gateway.charge_status("o1").await, Ok(charged));
        assert_eq!(
            sandbox.gateway.charge_status("o2").await,
            Err(PspError::NotFound)
        );
    }

    #[tokio::test]
    async fn decline_cards_are_declined_and_stay_declined() {
        let sandbox = start("", NO_DELAY).await;
        let cases = [
            ("4000000000000002", "card_declined"),
            ("4000000000009995", "insufficient_funds"),
            ("4000000000000069", "expired_card"),
            ("4000000000000127", "incorrect_cvc"),
        ];
        for (number, code) in cases {
            let token = sandbox.tokenize(number).await;
            let reference = format!("o-{code}");
            let declined = sandbox
                .gateway
                .charge(&charge(&reference, &token, 1000))
                .await;
            let Err(PspError::Declined { code: got, .. }) = declined else {
                panic!("{number}: {declined:?}");
            };
            assert_eq!(got, code);
            let status = sandbox.gateway.charge_status(&reference).await;
            assert!(matches!(status, Err(PspError::Declined { code: got, .. }) if got == code));
            let replay = sandbox
                .gateway
                .charge(&charge(&reference, &token, 1000))
                .await;
            assert!(matches!(replay, Err(PspError::Declined { code: got, .. }) if got == code));
            sandbox.events_for(&reference, 1).await;
        }
        assert_eq!(sandbox.list("/v1/charges").await.len(), cases.len());
    }

    #[tokio::test]
    async fn processing_error_creates_nothing_and_the_retry_succeeds() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize("4000000000000119").await;
        let first = sandbox.gateway.charge(&charge("o1", &token, 1000)).await;
        assert!(
            matches!(first, Err(PspError::Retryable { .. })),
            "{first:?}"
        );
        assert_eq!(
            sandbox.gateway.charge_status("o1").await,
            Err(PspError::NotFound)
        );
        let retried = sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        assert_eq!(retried.status, ChargeStatus::Succeeded);
        assert_eq!(sandbox.list("/v1/charges").await.len(), 1);
    }

    #[tokio::test]
    async fn same_reference_replays_same_parameters_and_refuses_others() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        let first = sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        let again = sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        assert_eq!(again.psp_id, first.psp_id);
        let other = sandbox.gateway.charge(&charge("o1", &token, 2000)).await;
        let Err(PspError::Invalid { message }) = other else {
            panic!("{other:?}");
        };
        assert!(message.contains("idempotency_key_reused"), "{message}");
        assert_eq!(sandbox.list("/v1/charges").await.len(), 1);
        sandbox.events_for("o1", 1).await;
    }

    #[tokio::test]
    async fn concurrent_requests_with_one_key_conflict() {
        let sandbox = start("latency=300ms", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        let request = charge("o1", &token, 1000);
        let (left, right) = tokio::join!(
            sandbox.gateway.charge(&request),
            sandbox.gateway.charge(&request)
        );
        let (succeeded, conflicted) = match (left, right) {
            (Ok(charge), Err(error)) | (Err(error), Ok(charge)) => (charge, error),
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(conflicted, PspError::Retryable { .. }),
            "{conflicted:?}"
        );
        let retried = sandbox.gateway.charge(&request).await.unwrap();
        assert_eq!(retried.psp_id, succeeded.psp_id);
    }

    #[tokio::test]
    async fn timeout_after_success_is_unknown_then_found() {
        let sandbox = start("timeout_after_success=1,hang=10s", NO_DELAY).await;
        let impatient = harness::gateway(&sandbox.base_url, Duration::from_millis(300));
        let token = sandbox.tokenize(VISA).await;
        let request = charge("o1", &token, 1000);
        let timed_out = impatient.charge(&request).await;
        assert!(
            matches!(timed_out, Err(PspError::Unknown { .. })),
            "{timed_out:?}"
        );
        let status = impatient.charge_status("o1").await.unwrap();
        assert_eq!(status.status, ChargeStatus::Succeeded);
        let replayed = impatient.charge(&request).await.unwrap();
        assert_eq!(replayed.psp_id, status.psp_id);
        assert_eq!(sandbox.list("/v1/charges").await.len(), 1);
    }

    #[tokio::test]
    async fn authorize_then_capture_part() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        let request = charge("o1", &token, 1000);
        let authorized = sandbox.gateway.authorize(&request).await.unwrap();
        assert_eq!(
            (authorized.status, authorized.fee),
            (ChargeStatus::Authorized, 0)
        );
        let too_much = sandbox.gateway.capture("o1", 1001).await;
        assert!(
            matches!(too_much, Err(PspError::Invalid { .. })),
            "{too_much:?}"
        );
        let captured = sandbox.gateway.capture("o1", 800).await.unwrap();
        assert_eq!(captured.status, ChargeStatus::Succeeded);
        assert_eq!((captured.amount, captured.fee), (800, 23 + 30));
        assert_eq!(sandbox.gateway.capture("o1", 800).await.unwrap(), captured);
        let events = sandbox.events_for("o1", 1).await;
        assert_eq!(events[0].kind, "charge.succeeded");
        assert_eq!(
            sandbox.gateway.capture("o9", 1).await,
            Err(PspError::NotFound)
        );
    }

    #[tokio::test]
    async fn authorize_then_cancel() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        sandbox
            .gateway
            .authorize(&charge("o1", &token, 1000))
            .await
            .unwrap();
        let canceled = sandbox.gateway.cancel("o1").await.unwrap();
        assert_eq!(
            (&canceled.status, canceled.fee),
            (&ChargeStatus::Canceled, 0)
        );
        // Again (as after a lost answer): the same charge, canceled once.
        assert_eq!(sandbox.gateway.cancel("o1").await.unwrap(), canceled);
        let capture = sandbox.gateway.capture("o1", 1000).await;
        assert!(
            matches!(capture, Err(PspError::Invalid { .. })),
            "{capture:?}"
        );
        let status = sandbox.gateway.charge_status("o1").await.unwrap();
        assert_eq!(status.status, ChargeStatus::Canceled);
        assert_eq!(sandbox.gateway.cancel("o9").await, Err(PspError::NotFound));
    }
}

mod refunds {
    use super::*;

    #[tokio::test]
    async fn refunds_add_up_to_at_most_the_charge() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        let first = sandbox
            .gateway
            .refund(&refund("r1", "o1", 600))
            .await
            .unwrap();
        assert_eq!(first.status, RefundStatus::Succeeded);
        assert!(first.psp_id.starts_with("re_"));
        let replay = sandbox
            .gateway
            .refund(&refund("r1", "o1", 600))
            .await
            .unwrap();
        assert_eq!(replay.psp_id, first.psp_id);
        let over = sandbox.gateway.refund(&refund("r2", "o1", 401)).await;
        let Err(PspError::Invalid { message }) = over else {
            panic!("{over:?}");
        };
        assert!(message.contains("amount_too_large"), "{message}");
        sandbox
            .gateway
            .refund(&refund("r2", "o1", 400))
            .await
            .unwrap();
        assert_eq!(
            sandbox.gateway.refund_status("r2").await.unwrap().amount,
            400
        );
        assert_eq!(
            sandbox.gateway.refund_status("r3").await,
            Err(PspError::NotFound)
        );
        let unknown = sandbox.gateway.refund(&refund("r3", "o9", 1)).await;
        assert!(
            matches!(unknown, Err(PspError::Invalid { .. })),
            "{unknown:?}"
        );
        let charges = sandbox.list("/v1/charges").await;
        assert_eq!(charges[0]["amount_refunded"], 1000);
        assert_eq!(sandbox.list("/v1/refunds").await.len(), 2);
        let events = sandbox.events_for("r2", 1).await;
        assert_eq!(events[0].kind, "refund.succeeded");
    }
}

mod payouts {
    use super::*;

    #[tokio::test]
    async fn payout_is_pending_then_paid_by_webhook() {
        let sandbox = start("", Duration::from_millis(50)).await;
        let request = payout_to_iban("p1", "DE89370400440532013000");
        let payout = sandbox.gateway.payout(&request).await.unwrap();
        assert_eq!(payout.status, PayoutStatus::Pending);
        let events = sandbox.events_for("p1", 1).await;
        assert_eq!(events[0].kind, "payout.paid");
        let PspObject::Payout(paid) = &events[0].data else {
            panic!("{events:?}");
        };
        assert_eq!(
            (paid.status.clone(), &paid.psp_id),
            (PayoutStatus::Paid, &payout.psp_id)
        );
        let status = sandbox.gateway.payout_status("p1").await.unwrap();
        assert_eq!(status.status, PayoutStatus::Paid);
    }

    #[tokio::test]
    async fn payouts_to_closed_accounts_fail_by_webhook() {
        let sandbox = start("", Duration::from_millis(50)).await;
        let closed_iban = payout_to_iban("p1", "DE14370400440000000002");
        sandbox.gateway.payout(&closed_iban).await.unwrap();
        let mut closed_account = payout_to_iban("p2", "");
        closed_account.destination.iban = None;
        closed_account.destination.account_number = Some(sandbox::CLOSED_ACCOUNT_NUMBER.into());
        closed_account.destination.routing_number = Some("110000000".to_owned());
        sandbox.gateway.payout(&closed_account).await.unwrap();
        for reference in ["p1", "p2"] {
            let events = sandbox.events_for(reference, 1).await;
            assert_eq!(events[0].kind, "payout.failed");
            let status = sandbox.gateway.payout_status(reference).await.unwrap();
            let PayoutStatus::Failed { code, .. } = status.status else {
                panic!("{reference}: {status:?}");
            };
            assert_eq!(code, "account_closed");
        }
        let invalid = sandbox
            .gateway
            .payout(&payout_to_iban("p3", "DE00370400440532013000"))
            .await;
        assert!(
            matches!(invalid, Err(PspError::Invalid { .. })),
            "{invalid:?}"
        );
    }
}

mod webhooks {
    use super::*;

    #[tokio::test]
    async fn duplicated_webhooks_share_the_event_id() {
        let sandbox = start("duplicate_webhooks=1", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        let events = sandbox.events_for("o1", 2).await;
        assert_eq!(events[0].id, events[1].id);
        assert_eq!(events[0], events[1]);
        assert!(events[0].id.starts_with("evt_"));
    }

    #[tokio::test]
    async fn reordered_webhook_is_overtaken() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        sandbox.set_faults("reorder_webhooks=1").await;
        sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        sandbox.set_faults("").await;
        sandbox
            .gateway
            .charge(&charge("o2", &token, 1000))
            .await
            .unwrap();
        sandbox.events_for("o1", 1).await;
        let received = sandbox.received.lock().unwrap();
        let order: Vec<&str> = received
            .events
            .iter()
            .map(|event| match &event.data {
                PspObject::Charge(charge) => charge.reference.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(order, ["o2", "o1"]);
    }
}

mod settlement {
    use super::*;

    async fn fetch(sandbox: &harness::Harness, day: chrono::NaiveDate) -> Vec<(String, String)> {
        let lines = sandbox.gateway.settlement(day).await.unwrap();
        lines
            .iter()
            .map(|line| {
                let kind = serde_json::to_value(line.kind).unwrap();
                let summary = format!(
                    "{} {} {} {} {}",
                    kind.as_str().unwrap(),
                    line.amount,
                    line.currency,
                    line.fee,
                    line.status
                );
                (line.reference.clone(), summary)
            })
            .collect()
    }

    #[tokio::test]
    async fn report_lists_the_day_and_applies_adjustments() {
        let sandbox = start("", Duration::from_secs(3600)).await;
        let visa = sandbox.tokenize(VISA).await;
        let declined = sandbox.tokenize("4000000000000002").await;
        let charged = sandbox
            .gateway
            .charge(&charge("o1", &visa, 1000))
            .await
            .unwrap();
        sandbox
            .gateway
            .charge(&charge("o2", &declined, 500))
            .await
            .unwrap_err();
        sandbox
            .gateway
            .charge(&charge("o3", &visa, 2000))
            .await
            .unwrap();
        sandbox
            .gateway
            .refund(&refund("r1", "o1", 300))
            .await
            .unwrap();
        let payout = payout_to_iban("p1", "DE89370400440532013000");
        sandbox.gateway.payout(&payout).await.unwrap();
        let day = chrono::DateTime::from_timestamp(charged.created, 0)
            .unwrap()
            .date_naive();

        let lines = sandbox.gateway.settlement(day).await.unwrap();
        assert!(lines.iter().all(|line| line.date == day));
        assert_eq!(lines[0].psp_id, charged.psp_id);
        assert_eq!(lines[3].kind, SettlementKind::Refund);
        let expected = [
            ("o1", "charge 1000 USD 59 succeeded"),
            ("o2", "charge 500 USD 0 failed"),
            ("o3", "charge 2000 USD 88 succeeded"),
            ("r1", "refund 300 USD 0 succeeded"),
            ("p1", "payout 900 EUR 0 pending"),
        ];
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(fetch(&sandbox, day).await, owned(&expected));

        let adjustments = serde_json::json!([
            {"reference": "o1", "amount": 999},
            {"reference": "o3", "fee": 1},
            {"reference": "r1", "status": "failed"},
            {"reference": "o2", "drop": true},
            {"extra": {"kind": "charge", "reference": "ghost", "amount": 42,
                       "currency": "USD", "fee": 2, "status": "succeeded"}}
        ]);
        let (status, body) = sandbox
            .post_sandbox("/_sandbox/settlement_adjustments", adjustments.to_string())
            .await;
        assert_eq!(status, 200, "{body}");
        let adjusted = [
            ("o1", "charge 999 USD 59 succeeded"),
            ("o3", "charge 2000 USD 1 succeeded"),
            ("r1", "refund 300 USD 0 failed"),
            ("p1", "payout 900 EUR 0 pending"),
            ("ghost", "charge 42 USD 2 succeeded"),
        ];
        assert_eq!(fetch(&sandbox, day).await, owned(&adjusted));
        let other_day = day.succ_opt().unwrap();
        assert_eq!(fetch(&sandbox, other_day).await, Vec::new());

        let bad = serde_json::json!([{"reference": "o1"}]).to_string();
        let (status, body) = sandbox
            .post_sandbox("/_sandbox/settlement_adjustments", bad)
            .await;
        assert_eq!(status, 400, "{body}");
    }
}

mod faults {
    use super::*;

    #[tokio::test]
    async fn injected_errors_have_no_effect() {
        let sandbox = start("", NO_DELAY).await;
        let token = sandbox.tokenize(VISA).await;
        sandbox.set_faults("error_rate=1").await;
        let failed = sandbox.gateway.charge(&charge("o1", &token, 1000)).await;
        assert!(
            matches!(failed, Err(PspError::Unknown { .. })),
            "{failed:?}"
        );
        sandbox.set_faults("").await;
        assert_eq!(sandbox.list("/v1/charges").await.len(), 0);
        sandbox
            .gateway
            .charge(&charge("o1", &token, 1000))
            .await
            .unwrap();
        assert_eq!(sandbox.list("/v1/charges").await.len(), 1);
    }

    #[tokio::test]
    async fn refused_connection_is_retryable() {
        let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", unused.local_addr().unwrap());
        drop(unused);
        let gateway = harness::gateway(&base_url, harness::CALL_TIMEOUT);
        let refused = gateway.charge_status("o1").await;
        assert!(
            matches!(refused, Err(PspError::Retryable { .. })),
            "{refused:?}"
        );
    }
}
