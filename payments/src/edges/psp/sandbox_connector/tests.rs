//! The sandbox connector's requests and parsing, against the sandbox's wire format.

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
            reason: r#"unreadable settlement report: unknown settlement line kind "chargeback""#
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
