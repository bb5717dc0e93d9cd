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
mod tests;
