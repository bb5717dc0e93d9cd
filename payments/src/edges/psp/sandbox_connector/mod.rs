//! The connector for the built-in sandbox PSP (`tally-psp-sandbox`): its JSON API, its error
//! format and its webhook signatures. Pure: builds requests and parses responses, no IO.
//!
//! Every POST carries `Idempotency-Key: <our reference>` (a capture: `<reference>:capture`, a
//! cancel: `<reference>:cancel`; evidence: `<dispute id>:evidence`), so
//! a retry after a timeout can never create a second object. Errors come as
//! `{"error":{"type","code","message"}}` and map to [`PspError`] as follows: an error of type
//! `retryable` (whatever the status), 409 and 429 are `Retryable`; 402 is `Declined`; 404 is
//! `NotFound`; any other 4xx is `Invalid`; 5xx, 3xx and unreadable success bodies are `Unknown`.
//! A success body is read into this connector's own wire structs (`wire.rs`) and converted into
//! the gateway's types; a status word it does not know makes the body unreadable (`Unknown`).

mod dispute_wire;
mod wire;

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use self::wire::{
    CancelBody, CaptureBody, CardWire, ChargeBody, ChargeWire, ErrorEnvelope, ErrorKind, EventWire,
    FxRateWire, PayoutBody, PayoutWire, RefundBody, RefundWire, SettlementLineWire,
};
use super::webhook;
use super::{
    CardDetails, Charge, ChargeRequest, ChargeStatus, Connector, Dispute, Evidence, HttpMethod,
    HttpRequest, HttpResponse, Payout, PayoutRequest, PspError, QuotedRate, Refund, RefundRequest,
    SettlementLine, WebhookError, WebhookEvent,
};

/// Talks to the sandbox PSP; holds the secret its webhooks are signed with.
pub struct SandboxConnector {
    webhook_secret: Vec<u8>,
}

impl fmt::Debug for SandboxConnector {
    /// The webhook secret is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConnector")
            .field("webhook_secret", &"****")
            .finish()
    }
}

impl SandboxConnector {
    pub fn new(webhook_secret: Vec<u8>) -> SandboxConnector {
        SandboxConnector { webhook_secret }
    }
}

impl Connector for SandboxConnector {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn card_request(&self, token: &str) -> HttpRequest {
        get(format!("/v1/tokens/{}", encode_path_segment(token)))
    }

    fn card_response(&self, response: &HttpResponse) -> Result<CardDetails, PspError> {
        parse_object::<CardWire, _>(response, "card")
    }

    fn charge_request(&self, request: &ChargeRequest) -> HttpRequest {
        let body = ChargeBody::new(request, true);
        post("/v1/charges".to_owned(), &request.reference, &body)
    }

    fn charge_response(&self, response: &HttpResponse) -> Result<Charge, PspError> {
        let charge: Charge = parse_object::<ChargeWire, _>(response, "charge")?;
        match charge.status {
            ChargeStatus::Failed { code, message } => Err(PspError::Declined { code, message }),
            ChargeStatus::Authorized
            | ChargeStatus::Succeeded
            | ChargeStatus::Canceled
            | ChargeStatus::RequiresAction { .. } => Ok(charge),
        }
    }

    fn authorize_request(&self, request: &ChargeRequest) -> HttpRequest {
        let body = ChargeBody::new(request, false);
        post("/v1/charges".to_owned(), &request.reference, &body)
    }

    fn capture_request(&self, reference: &str, amount: u64) -> HttpRequest {
        let path = format!("/v1/charges/{}/capture", encode_path_segment(reference));
        post(
            path,
            &format!("{reference}:capture"),
            &CaptureBody { amount },
        )
    }

    fn cancel_request(&self, reference: &str) -> HttpRequest {
        let path = format!("/v1/charges/{}/cancel", encode_path_segment(reference));
        post(path, &format!("{reference}:cancel"), &CancelBody {})
    }

    fn charge_status_request(&self, reference: &str) -> HttpRequest {
        get(format!("/v1/charges/{}", encode_path_segment(reference)))
    }

    fn refund_request(&self, request: &RefundRequest) -> HttpRequest {
        let body = RefundBody::from(request);
        post("/v1/refunds".to_owned(), &request.reference, &body)
    }

    /// A refund comes back with whatever status it has; the sandbox refuses impossible refunds
    /// up front (400, so `Invalid`) rather than creating failed ones.
    fn refund_response(&self, response: &HttpResponse) -> Result<Refund, PspError> {
        parse_object::<RefundWire, _>(response, "refund")
    }

    fn refund_status_request(&self, reference: &str) -> HttpRequest {
        get(format!("/v1/refunds/{}", encode_path_segment(reference)))
    }

    fn payout_request(&self, request: &PayoutRequest) -> HttpRequest {
        let body = PayoutBody::from(request);
        post("/v1/payouts".to_owned(), &request.reference, &body)
    }

    /// A payout comes back `pending` and turns `paid` or `failed` later; a failed one is
    /// returned as `Ok` with its status, since the caller learns of it asynchronously anyway.
    fn payout_response(&self, response: &HttpResponse) -> Result<Payout, PspError> {
        parse_object::<PayoutWire, _>(response, "payout")
    }

    fn payout_status_request(&self, reference: &str) -> HttpRequest {
        get(format!("/v1/payouts/{}", encode_path_segment(reference)))
    }

    fn evidence_request(&self, psp_id: &str, key: &str, evidence: &Evidence) -> HttpRequest {
        let path = format!("/v1/disputes/{}/evidence", encode_path_segment(psp_id));
        post(path, key, &dispute_wire::EvidenceBody::from(evidence))
    }

    fn dispute_response(&self, response: &HttpResponse) -> Result<Dispute, PspError> {
        parse_object::<dispute_wire::DisputeWire, _>(response, "dispute")
    }

    fn settlement_request(&self, day: chrono::NaiveDate) -> HttpRequest {
        get(format!("/v1/settlements/{}", day.format("%Y-%m-%d")))
    }

    fn settlement_response(
        &self,
        response: &HttpResponse,
    ) -> Result<Vec<SettlementLine>, PspError> {
        if !is_success(response.status) {
            return Err(error_from_response(response));
        }
        let unreadable = |error: &dyn fmt::Display| PspError::Unknown {
            reason: format!("unreadable settlement report: {error}"),
        };
        csv::Reader::from_reader(response.body.as_slice())
            .deserialize::<SettlementLineWire>()
            .map(|row| {
                let row = row.map_err(|error| unreadable(&error))?;
                SettlementLine::try_from(row).map_err(|error| unreadable(&error))
            })
            .collect()
    }

    fn fx_rate_request(&self, base: &str, quote: &str) -> HttpRequest {
        get(format!(
            "/v1/fx_rates?base={}&quote={}",
            encode_path_segment(base),
            encode_path_segment(quote)
        ))
    }

    fn fx_rate_response(&self, response: &HttpResponse) -> Result<QuotedRate, PspError> {
        parse_object::<FxRateWire, _>(response, "fx rate")
    }

    fn verify_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now_unix: i64,
        tolerance: Duration,
    ) -> Result<WebhookEvent, WebhookError> {
        let signature = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(webhook::SIGNATURE_HEADER))
            .map(|(_, value)| value.as_str())
            .ok_or(WebhookError::MissingSignature)?;
        webhook::verify(&self.webhook_secret, signature, body, now_unix, tolerance)?;
        let event: EventWire = serde_json::from_slice(body)
            .map_err(|error| WebhookError::Malformed(error.to_string()))?;
        WebhookEvent::try_from(event).map_err(|error| WebhookError::Malformed(error.to_string()))
    }
}

fn get(path: String) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Get,
        path,
        headers: vec![("accept".to_owned(), "application/json".to_owned())],
        body: None,
    }
}

fn post(path: String, idempotency_key: &str, body: &impl Serialize) -> HttpRequest {
    let body = serde_json::to_vec(body).expect("a struct of strings and integers serializes");
    HttpRequest {
        method: HttpMethod::Post,
        path,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("idempotency-key".to_owned(), idempotency_key.to_owned()),
        ],
        body: Some(body),
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A 2xx body parsed as the wire struct `W` and converted into `T`, or the error the response
/// stands for. A 2xx that cannot be read or converted (say, a status word tally-pay does not
/// know) is `Unknown`: the PSP did something, we cannot tell what.
fn parse_object<W, T>(response: &HttpResponse, what: &str) -> Result<T, PspError>
where
    W: DeserializeOwned,
    T: TryFrom<W>,
    T::Error: fmt::Display,
{
    if !is_success(response.status) {
        return Err(error_from_response(response));
    }
    let unreadable = |error: &dyn fmt::Display| PspError::Unknown {
        reason: format!(
            "unreadable {what} in a {} response: {error}",
            response.status
        ),
    };
    let wire: W = serde_json::from_slice(&response.body).map_err(|error| unreadable(&error))?;
    T::try_from(wire).map_err(|error| unreadable(&error))
}

fn error_from_response(response: &HttpResponse) -> PspError {
    let detail = serde_json::from_slice::<ErrorEnvelope>(&response.body)
        .map(|envelope| envelope.error)
        .unwrap_or_default();
    let status = response.status;
    let described = if detail.message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}: {}", detail.code, detail.message)
    };
    if detail.kind == ErrorKind::Retryable || status == 409 || status == 429 {
        return PspError::Retryable { reason: described };
    }
    match status {
        402 => PspError::Declined {
            code: detail.code,
            message: detail.message,
        },
        404 => PspError::NotFound,
        400..=499 => PspError::Invalid { message: described },
        _ => PspError::Unknown { reason: described },
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a reference can never
/// change the path it is put in.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edges::psp::{
        BankDestination, PayoutStatus, RefundStatus, SettlementKind, SettlementStatus,
    };

    fn connector() -> SandboxConnector {
        SandboxConnector::new(b"whsec_test".to_vec())
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn body_json(request: &HttpRequest) -> serde_json::Value {
        serde_json::from_slice(request.body.as_deref().unwrap_or_default()).unwrap()
    }

    fn charge_request() -> ChargeRequest {
        ChargeRequest {
            reference: "ord_1".to_owned(),
            card_token: "tok_abc".to_owned(),
            amount: 1250,
            currency: "USD".to_owned(),
            description: "order 1".to_owned(),
        }
    }

    #[test]
    fn charge_request_is_an_idempotent_post() {
        let request = connector().charge_request(&charge_request());
        assert_eq!(request.method, HttpMethod::Post);
        assert_eq!(request.path, "/v1/charges");
        assert_eq!(header(&request, "idempotency-key"), Some("ord_1"));
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(
            body_json(&request),
            serde_json::json!({
                "reference": "ord_1", "card_token": "tok_abc", "amount": 1250,
                "currency": "USD", "description": "order 1", "capture": true
            })
        );
        let authorize = connector().authorize_request(&charge_request());
        assert_eq!(body_json(&authorize)["capture"], false);
    }

    #[test]
    fn capture_uses_its_own_idempotency_key() {
        let request = connector().capture_request("ord_1", 1000);
        assert_eq!(request.path, "/v1/charges/ord_1/capture");
        assert_eq!(header(&request, "idempotency-key"), Some("ord_1:capture"));
        assert_eq!(body_json(&request), serde_json::json!({"amount": 1000}));
    }

    #[test]
    fn lookups_encode_the_reference() {
        let connector = connector();
        let request = connector.charge_status_request("a/b c?d");
        assert_eq!(request.method, HttpMethod::Get);
        assert_eq!(request.path, "/v1/charges/a%2Fb%20c%3Fd");
        assert_eq!(request.body, None);
        assert_eq!(
            connector.refund_status_request("re_1").path,
            "/v1/refunds/re_1"
        );
        assert_eq!(
            connector.payout_status_request("po_1").path,
            "/v1/payouts/po_1"
        );
        assert_eq!(connector.card_request("tok_1").path, "/v1/tokens/tok_1");
        let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 7).unwrap();
        assert_eq!(
            connector.settlement_request(day).path,
            "/v1/settlements/2025-03-07"
        );
    }

    #[test]
    fn refund_and_payout_requests() {
        let connector = connector();
        let refund = connector.refund_request(&RefundRequest {
            reference: "rf_1".to_owned(),
            charge_reference: "ord_1".to_owned(),
            amount: 500,
            currency: "EUR".to_owned(),
        });
        assert_eq!(refund.path, "/v1/refunds");
        assert_eq!(header(&refund, "idempotency-key"), Some("rf_1"));
        assert_eq!(body_json(&refund)["charge_reference"], "ord_1");
        let payout = connector.payout_request(&PayoutRequest {
            reference: "pay_1".to_owned(),
            amount: 900,
            currency: "EUR".to_owned(),
            destination: BankDestination {
                holder_name: "Ada".to_owned(),
                country: "DE".to_owned(),
                iban: Some("DE89370400440532013000".to_owned()),
                account_number: None,
                routing_number: None,
            },
        });
        assert_eq!(payout.path, "/v1/payouts");
        assert_eq!(header(&payout, "idempotency-key"), Some("pay_1"));
        assert_eq!(
            body_json(&payout)["destination"]["iban"],
            "DE89370400440532013000"
        );
    }

    #[test]
    fn succeeded_charge_parses() {
        let body = r#"{"psp_id":"ch_1","reference":"ord_1","amount":1250,"currency":"USD",
            "status":"succeeded","fee":66,"created":1700000000,"amount_refunded":0}"#;
        let charge = connector().charge_response(&response(200, body)).unwrap();
        assert_eq!(charge.psp_id, "ch_1");
        assert_eq!(charge.status, ChargeStatus::Succeeded);
        assert_eq!(charge.fee, 66);
    }

    #[test]
    fn failed_charge_is_declined() {
        let body = r#"{"psp_id":"ch_1","reference":"ord_1","amount":1250,"currency":"USD",
            "status":"failed","code":"card_declined","message":"Your card was declined.",
            "fee":0,"created":1700000000}"#;
        let declined = PspError::Declined {
            code: "card_declined".to_owned(),
            message: "Your card was declined.".to_owned(),
        };
        assert_eq!(
            connector().charge_response(&response(200, body)),
            Err(declined)
        );
    }

    #[test]
    fn unknown_status_word_is_an_unknown_outcome() {
        let body = r#"{"psp_id":"ch_1","reference":"ord_1","amount":1250,"currency":"USD",
            "status":"disputed","fee":66,"created":1700000000}"#;
        assert_eq!(
            connector().charge_response(&response(200, body)),
            Err(PspError::Unknown {
                reason: r#"unreadable charge in a 200 response: unknown charge status "disputed""#
                    .to_owned()
            })
        );
        let event = br#"{"id":"evt_1","type":"payout.paid","created":1700000000,"data":{
            "object":"payout","psp_id":"po_1","reference":"pay_1","amount":900,
            "currency":"EUR","status":"bounced","created":1700000000}}"#;
        let headers = vec![(
            "psp-signature".to_owned(),
            webhook::sign(b"whsec_test", 1_700_000_000, event),
        )];
        assert_eq!(
            connector().verify_webhook(&headers, event, 1_700_000_000, Duration::from_secs(300)),
            Err(WebhookError::Malformed(
                r#"unknown payout status "bounced""#.to_owned()
            ))
        );
        let csv = "date,kind,psp_id,reference,amount,currency,fee,status\n\
                   2025-03-07,chargeback,dp_1,ord_1,1250,USD,0,succeeded\n";
        assert_eq!(
            connector().settlement_response(&response(200, csv)),
            Err(PspError::Unknown {
                reason:
                    r#"unreadable settlement report: unknown settlement line kind "chargeback""#
                        .to_owned()
            })
        );
    }

    #[test]
    fn errors_map_by_type_then_status() {
        let error = |kind: &str, code: &str| {
            format!(r#"{{"error":{{"type":"{kind}","code":"{code}","message":"m"}}}}"#)
        };
        let connector = connector();
        let parse = |status, body: &str| connector.charge_response(&response(status, body));
        assert_eq!(
            parse(402, &error("card_error", "insufficient_funds")),
            Err(PspError::Declined {
                code: "insufficient_funds".to_owned(),
                message: "m".to_owned()
            })
        );
        let cases = [
            (402, error("retryable", "processing_error"), "retryable"),
            (
                409,
                error("idempotency_error", "request_in_progress"),
                "retryable",
            ),
            (429, String::new(), "retryable"),
            (
                404,
                error("invalid_request_error", "resource_missing"),
                "not_found",
            ),
            (
                400,
                error("idempotency_error", "idempotency_key_reused"),
                "invalid",
            ),
            (
                401,
                error("authentication_error", "invalid_api_key"),
                "invalid",
            ),
            (500, error("api_error", "injected_fault"), "unknown"),
            (503, "<html>".to_owned(), "unknown"),
            (302, String::new(), "unknown"),
            (200, "not json".to_owned(), "unknown"),
        ];
        for (status, body, expected) in cases {
            let kind = match parse(status, &body) {
                Err(PspError::Retryable { .. }) => "retryable",
                Err(PspError::NotFound) => "not_found",
                Err(PspError::Invalid { .. }) => "invalid",
                Err(PspError::Unknown { .. }) => "unknown",
                other => panic!("{status} {body}: {other:?}"),
            };
            assert_eq!(kind, expected, "{status} {body}");
        }
    }

    #[test]
    fn refund_payout_and_card_parse() {
        let connector = connector();
        let refund = r#"{"psp_id":"re_1","reference":"rf_1","charge_reference":"ord_1",
            "amount":500,"currency":"USD","status":"succeeded","created":1}"#;
        let refund = connector.refund_response(&response(200, refund)).unwrap();
        assert_eq!(refund.status, RefundStatus::Succeeded);
        let payout = r#"{"psp_id":"po_1","reference":"pay_1","amount":900,"currency":"EUR",
            "status":"failed","code":"account_closed","message":"closed","created":1}"#;
        let payout = connector.payout_response(&response(200, payout)).unwrap();
        assert_eq!(
            payout.status,
            PayoutStatus::Failed {
                code: "account_closed".to_owned(),
                message: "closed".to_owned()
            }
        );
        let card = r#"{"token":"tok_1","brand":"visa","last4":"4242","exp_month":12,
            "exp_year":2040,"funding":"credit"}"#;
        assert_eq!(
            connector.card_response(&response(200, card)).unwrap().last4,
            "4242"
        );
    }

    #[test]
    fn settlement_report_parses() {
        let csv = "date,kind,psp_id,reference,amount,currency,fee,status\n\
                   2025-03-07,charge,ch_1,ord_1,1250,USD,66,succeeded\n\
                   2025-03-07,refund,re_1,rf_1,500,USD,0,succeeded\n\
                   2025-03-07,payout,po_1,pay_1,900,EUR,0,paid\n";
        let lines = connector()
            .settlement_response(&response(200, csv))
            .unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].kind, SettlementKind::Charge);
        assert_eq!(lines[0].fee, 66);
        assert_eq!(lines[2].status, SettlementStatus::Paid);
        let broken = "date,kind\n2025-03-07,charge\n";
        assert!(matches!(
            connector().settlement_response(&response(200, broken)),
            Err(PspError::Unknown { .. })
        ));
        assert_eq!(
            connector().settlement_response(&response(200, "")).unwrap(),
            Vec::new()
        );
    }

    #[test]
    fn webhook_is_verified_then_parsed() {
        let connector = connector();
        let body = br#"{"id":"evt_1","type":"payout.paid","created":1700000000,"data":{
            "object":"payout","psp_id":"po_1","reference":"pay_1","amount":900,
            "currency":"EUR","status":"paid","created":1700000000}}"#;
        let signature = webhook::sign(b"whsec_test", 1_700_000_000, body);
        let headers = vec![("Psp-Signature".to_owned(), signature)];
        let tolerance = Duration::from_secs(300);
        let event = connector
            .verify_webhook(&headers, body, 1_700_000_005, tolerance)
            .unwrap();
        assert_eq!(event.id, "evt_1");
        assert!(matches!(
            event.data,
            crate::edges::psp::PspObject::Payout(_)
        ));
        assert_eq!(
            connector.verify_webhook(&[], body, 1_700_000_005, tolerance),
            Err(WebhookError::MissingSignature)
        );
        let garbage = b"{}";
        let headers = vec![(
            "psp-signature".to_owned(),
            webhook::sign(b"whsec_test", 1_700_000_000, garbage),
        )];
        assert!(matches!(
            connector.verify_webhook(&headers, garbage, 1_700_000_000, tolerance),
            Err(WebhookError::Malformed(_))
        ));
    }
}
