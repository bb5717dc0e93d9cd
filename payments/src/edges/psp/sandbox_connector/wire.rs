//! The sandbox PSP's HTTP wire format, as tally-pay writes and reads it: the request bodies it
//! sends, and the cards, charges, refunds, payouts, webhook events and settlement lines it gets
//! back. These structs are this connector's alone; the gateway's own types (`psp/mod.rs`) know no
//! wire format, and each wire struct converts into one of them with `From` (nothing can go wrong)
//! or `TryFrom` (a status or kind word tally-pay does not know is a [`WireError`], never a
//! panic).
//!
//! The sandbox's side of this contract is `tally-psp-sandbox`'s `wire.rs`; tally-pay does not
//! depend on it, so the tests below pin the shapes.

use serde::{Deserialize, Serialize};

use crate::edges::psp::{
    CardDetails, Charge, ChargeRequest, ChargeStatus, Payout, PayoutRequest, PayoutStatus,
    PspObject, QuotedRate, Refund, RefundRequest, RefundStatus, SettlementKind, SettlementLine,
    SettlementStatus, WebhookEvent,
};

/// Why a well-formed body does not convert into the gateway's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum WireError {
    #[error("unknown {object} status {word:?}")]
    UnknownStatus { object: &'static str, word: String },
    #[error("a failed {object} without its {field}")]
    FailureWithout {
        object: &'static str,
        field: &'static str,
    },
    #[error("a {object} without its {field}")]
    MissingField {
        object: &'static str,
        field: &'static str,
    },
    #[error("unknown settlement line kind {word:?}")]
    UnknownKind { word: String },
    #[error("an FX rate that is not a decimal: {word:?}")]
    BadRate { word: String },
}

/// The body of `POST /v1/charges`.
#[derive(Debug, Serialize)]
pub(super) struct ChargeBody<'a> {
    reference: &'a str,
    card_token: &'a str,
    amount: u64,
    currency: &'a str,
    description: &'a str,
    /// `false` only authorizes; `POST /v1/charges/{reference}/capture` completes it.
    capture: bool,
}

impl<'a> ChargeBody<'a> {
    pub(super) fn new(request: &'a ChargeRequest, capture: bool) -> ChargeBody<'a> {
        ChargeBody {
            reference: &request.reference,
            card_token: &request.card_token,
            amount: request.amount,
            currency: &request.currency,
            description: &request.description,
            capture,
        }
    }
}

/// The body of `POST /v1/charges/{reference}/capture`.
#[derive(Debug, Serialize)]
pub(super) struct CaptureBody {
    pub(super) amount: u64,
}

/// The body of `POST /v1/charges/{reference}/cancel`: `{}`.
#[derive(Debug, Serialize)]
pub(super) struct CancelBody {}

/// The body of `POST /v1/refunds`.
#[derive(Debug, Serialize)]
pub(super) struct RefundBody<'a> {
    reference: &'a str,
    charge_reference: &'a str,
    amount: u64,
    currency: &'a str,
}

impl<'a> From<&'a RefundRequest> for RefundBody<'a> {
    fn from(request: &'a RefundRequest) -> RefundBody<'a> {
        RefundBody {
            reference: &request.reference,
            charge_reference: &request.charge_reference,
            amount: request.amount,
            currency: &request.currency,
        }
    }
}

/// The body of `POST /v1/payouts`. Not `Debug`: it carries account numbers.
#[derive(Serialize)]
pub(super) struct PayoutBody<'a> {
    reference: &'a str,
    amount: u64,
    currency: &'a str,
    destination: DestinationBody<'a>,
}

/// A payout's bank account; the fields not given go over the wire as `null`.
#[derive(Serialize)]
struct DestinationBody<'a> {
    holder_name: &'a str,
    country: &'a str,
    iban: Option<&'a str>,
    account_number: Option<&'a str>,
    routing_number: Option<&'a str>,
}

impl<'a> From<&'a PayoutRequest> for PayoutBody<'a> {
    fn from(request: &'a PayoutRequest) -> PayoutBody<'a> {
        let destination = &request.destination;
        PayoutBody {
            reference: &request.reference,
            amount: request.amount,
            currency: &request.currency,
            destination: DestinationBody {
                holder_name: &destination.holder_name,
                country: &destination.country,
                iban: destination.iban.as_deref(),
                account_number: destination.account_number.as_deref(),
                routing_number: destination.routing_number.as_deref(),
            },
        }
    }
}

/// The sandbox's error envelope. Every field is optional so that a half-formed error body still
/// yields the status-based mapping.
#[derive(Deserialize)]
pub(super) struct ErrorEnvelope {
    pub(super) error: ErrorDetail,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ErrorDetail {
    #[serde(rename = "type")]
    pub(super) kind: ErrorKind,
    pub(super) code: String,
    pub(super) message: String,
}

/// The error's `type`: only `retryable` changes the mapping; any other (or none) leaves it to
/// the HTTP status.
#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum ErrorKind {
    Retryable,
    #[default]
    #[serde(other)]
    Other,
}

/// A tokenized card, as `GET /v1/tokens/{token}` shows it.
#[derive(Debug, Deserialize)]
pub(super) struct CardWire {
    token: String,
    brand: String,
    last4: String,
    exp_month: u32,
    exp_year: u32,
    funding: String,
}

impl From<CardWire> for CardDetails {
    fn from(wire: CardWire) -> CardDetails {
        CardDetails {
            token: wire.token,
            brand: wire.brand,
            last4: wire.last4,
            exp_month: wire.exp_month,
            exp_year: wire.exp_year,
            funding: wire.funding,
        }
    }
}

/// `code` and `message` of a failed object: the sandbox sends both with every `failed`.
fn failure(
    object: &'static str,
    code: Option<String>,
    message: Option<String>,
) -> Result<(String, String), WireError> {
    let code = code.ok_or(WireError::FailureWithout {
        object,
        field: "code",
    })?;
    let message = message.ok_or(WireError::FailureWithout {
        object,
        field: "message",
    })?;
    Ok((code, message))
}

/// A charge; `status` is `authorized`, `succeeded`, `canceled`, `failed` (then with `code` and
/// `message`) or `requires_action` (then with `next_action_url`, the 3-D Secure page).
#[derive(Debug, Deserialize)]
pub(super) struct ChargeWire {
    psp_id: String,
    reference: String,
    amount: u64,
    currency: String,
    status: String,
    code: Option<String>,
    message: Option<String>,
    next_action_url: Option<String>,
    fee: u64,
    created: i64,
}

impl TryFrom<ChargeWire> for Charge {
    type Error = WireError;

    fn try_from(wire: ChargeWire) -> Result<Charge, WireError> {
        let status = match wire.status.as_str() {
            "authorized" => ChargeStatus::Authorized,
            "canceled" => ChargeStatus::Canceled,
            "succeeded" => ChargeStatus::Succeeded,
            "requires_action" => ChargeStatus::RequiresAction {
                url: wire.next_action_url.ok_or(WireError::MissingField {
                    object: "charge",
                    field: "next_action_url",
                })?,
            },
            "failed" => {
                let (code, message) = failure("charge", wire.code, wire.message)?;
                ChargeStatus::Failed { code, message }
            }
            _ => {
                return Err(WireError::UnknownStatus {
                    object: "charge",
                    word: wire.status,
                })
            }
        };
        Ok(Charge {
            psp_id: wire.psp_id,
            reference: wire.reference,
            amount: wire.amount,
            currency: wire.currency,
            status,
            fee: wire.fee,
            created: wire.created,
        })
    }
}

/// A refund; `status` is `pending`, `succeeded` or `failed` (then with `code` and `message`).
#[derive(Debug, Deserialize)]
pub(super) struct RefundWire {
    psp_id: String,
    reference: String,
    charge_reference: String,
    amount: u64,
    currency: String,
    status: String,
    code: Option<String>,
    message: Option<String>,
    created: i64,
}

impl TryFrom<RefundWire> for Refund {
    type Error = WireError;

    fn try_from(wire: RefundWire) -> Result<Refund, WireError> {
        let status = match wire.status.as_str() {
            "pending" => RefundStatus::Pending,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => {
                let (code, message) = failure("refund", wire.code, wire.message)?;
                RefundStatus::Failed { code, message }
            }
            _ => {
                return Err(WireError::UnknownStatus {
                    object: "refund",
                    word: wire.status,
                })
            }
        };
        Ok(Refund {
            psp_id: wire.psp_id,
            reference: wire.reference,
            charge_reference: wire.charge_reference,
            amount: wire.amount,
            currency: wire.currency,
            status,
            created: wire.created,
        })
    }
}

/// A payout; `status` is `pending`, `paid` or `failed` (then with `code` and `message`).
#[derive(Debug, Deserialize)]
pub(super) struct PayoutWire {
    psp_id: String,
    reference: String,
    amount: u64,
    currency: String,
    status: String,
    code: Option<String>,
    message: Option<String>,
    created: i64,
}

impl TryFrom<PayoutWire> for Payout {
    type Error = WireError;

    fn try_from(wire: PayoutWire) -> Result<Payout, WireError> {
        let status = match wire.status.as_str() {
            "pending" => PayoutStatus::Pending,
            "paid" => PayoutStatus::Paid,
            "failed" => {
                let (code, message) = failure("payout", wire.code, wire.message)?;
                PayoutStatus::Failed { code, message }
            }
            _ => {
                return Err(WireError::UnknownStatus {
                    object: "payout",
                    word: wire.status,
                })
            }
        };
        Ok(Payout {
            psp_id: wire.psp_id,
            reference: wire.reference,
            amount: wire.amount,
            currency: wire.currency,
            status,
            created: wire.created,
        })
    }
}

/// The signed body of a webhook delivery.
#[derive(Debug, Deserialize)]
pub(super) struct EventWire {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventObjectWire,
}

/// The object an event is about, tagged `"object"`.
#[derive(Debug, Deserialize)]
#[serde(tag = "object", rename_all = "snake_case")]
enum EventObjectWire {
    Charge(ChargeWire),
    Refund(RefundWire),
    Payout(PayoutWire),
    Dispute(super::dispute_wire::DisputeWire),
}

impl TryFrom<EventWire> for WebhookEvent {
    type Error = WireError;

    fn try_from(wire: EventWire) -> Result<WebhookEvent, WireError> {
        let data = match wire.data {
            EventObjectWire::Charge(charge) => PspObject::Charge(charge.try_into()?),
            EventObjectWire::Refund(refund) => PspObject::Refund(refund.try_into()?),
            EventObjectWire::Payout(payout) => PspObject::Payout(payout.try_into()?),
            EventObjectWire::Dispute(dispute) => PspObject::Dispute(dispute.try_into()?),
        };
        Ok(WebhookEvent {
            id: wire.id,
            kind: wire.kind,
            created: wire.created,
            data,
        })
    }
}

/// A row of `GET /v1/settlements/{day}` (CSV with a header row). The status word is kept as
/// given (see [`SettlementStatus`]); the kind must be one tally-pay knows.
#[derive(Debug, Deserialize)]
pub(super) struct SettlementLineWire {
    date: chrono::NaiveDate,
    kind: String,
    psp_id: String,
    reference: String,
    amount: u64,
    currency: String,
    fee: u64,
    status: String,
}

impl TryFrom<SettlementLineWire> for SettlementLine {
    type Error = WireError;

    fn try_from(wire: SettlementLineWire) -> Result<SettlementLine, WireError> {
        let kind = match wire.kind.as_str() {
            "charge" => SettlementKind::Charge,
            "refund" => SettlementKind::Refund,
            "payout" => SettlementKind::Payout,
            "dispute" => SettlementKind::Dispute,
            _ => return Err(WireError::UnknownKind { word: wire.kind }),
        };
        Ok(SettlementLine {
            date: wire.date,
            kind,
            psp_id: wire.psp_id,
            reference: wire.reference,
            amount: wire.amount,
            currency: wire.currency,
            fee: wire.fee,
            status: SettlementStatus::from(wire.status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edges::psp::BankDestination;

    fn charge(status: &str, extra: &str) -> Result<Charge, WireError> {
        let body = format!(
            r#"{{"psp_id":"ch_1","reference":"ord_1","amount":1250,"currency":"USD",
                "status":"{status}"{extra},"fee":66,"created":7}}"#
        );
        Charge::try_from(serde_json::from_str::<ChargeWire>(&body).unwrap())
    }

    #[test]
    fn charge_statuses_convert() {
        assert_eq!(
            charge("authorized", "").unwrap().status,
            ChargeStatus::Authorized
        );
        assert_eq!(
            charge("canceled", "").unwrap().status,
            ChargeStatus::Canceled
        );
        let succeeded = charge("succeeded", "").unwrap();
        assert_eq!(succeeded.status, ChargeStatus::Succeeded);
        assert_eq!((succeeded.fee, succeeded.created), (66, 7));
        assert_eq!(
            charge("failed", r#","code":"card_declined","message":"no""#)
                .unwrap()
                .status,
            ChargeStatus::Failed {
                code: "card_declined".to_owned(),
                message: "no".to_owned()
            }
        );
    }

    #[test]
    fn a_charge_requiring_action_carries_its_url() {
        let url = r#","next_action_url":"https://psp.test/3ds/3ds_1""#;
        assert_eq!(
            charge("requires_action", url).unwrap().status,
            ChargeStatus::RequiresAction {
                url: "https://psp.test/3ds/3ds_1".to_owned()
            }
        );
        let error = charge("requires_action", "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "a charge without its next_action_url".to_owned()
        );
    }

    #[test]
    fn unknown_status_words_are_errors() {
        let error = charge("refunded", "").unwrap_err();
        assert_eq!(
            error,
            WireError::UnknownStatus {
                object: "charge",
                word: "refunded".to_owned()
            }
        );
        assert_eq!(error.to_string(), r#"unknown charge status "refunded""#);
        assert_eq!(
            charge("failed", r#","code":"card_declined""#).unwrap_err(),
            WireError::FailureWithout {
                object: "charge",
                field: "message"
            }
        );
        let refund: RefundWire = serde_json::from_str(
            r#"{"psp_id":"re_1","reference":"rf_1","charge_reference":"ord_1","amount":5,
                "currency":"USD","status":"paid","created":1}"#,
        )
        .unwrap();
        assert!(matches!(
            Refund::try_from(refund),
            Err(WireError::UnknownStatus {
                object: "refund",
                ..
            })
        ));
        let payout: PayoutWire = serde_json::from_str(
            r#"{"psp_id":"po_1","reference":"pay_1","amount":5,"currency":"USD",
                "status":"succeeded","created":1}"#,
        )
        .unwrap();
        assert!(matches!(
            Payout::try_from(payout),
            Err(WireError::UnknownStatus {
                object: "payout",
                ..
            })
        ));
    }

    #[test]
    fn request_bodies_keep_the_sandbox_field_order() {
        let request = ChargeRequest {
            reference: "ord_1".to_owned(),
            card_token: "tok_1".to_owned(),
            amount: 1250,
            currency: "USD".to_owned(),
            description: "d".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&ChargeBody::new(&request, true)).unwrap(),
            r#"{"reference":"ord_1","card_token":"tok_1","amount":1250,"currency":"USD","#
                .to_owned()
                + r#""description":"d","capture":true}"#
        );
        let payout = PayoutRequest {
            reference: "pay_1".to_owned(),
            amount: 900,
            currency: "USD".to_owned(),
            destination: BankDestination {
                holder_name: "Ada".to_owned(),
                country: "US".to_owned(),
                iban: None,
                account_number: Some("000123456789".to_owned()),
                routing_number: Some("110000000".to_owned()),
            },
        };
        assert_eq!(
            serde_json::to_string(&PayoutBody::from(&payout)).unwrap(),
            r#"{"reference":"pay_1","amount":900,"currency":"USD","destination":{"#.to_owned()
                + r#""holder_name":"Ada","country":"US","iban":null,"#
                + r#""account_number":"000123456789","routing_number":"110000000"}}"#
        );
    }

    #[test]
    fn settlement_kinds_must_be_known_and_statuses_are_kept() {
        let line = |kind: &str, status: &str| SettlementLineWire {
            date: chrono::NaiveDate::from_ymd_opt(2025, 3, 7).unwrap(),
            kind: kind.to_owned(),
            psp_id: "ch_1".to_owned(),
            reference: "ord_1".to_owned(),
            amount: 1,
            currency: "USD".to_owned(),
            fee: 0,
            status: status.to_owned(),
        };
        let kept = SettlementLine::try_from(line("charge", "refused")).unwrap();
        assert_eq!(kept.kind, SettlementKind::Charge);
        assert_eq!(kept.status, SettlementStatus::Other("refused".to_owned()));
        let dispute = SettlementLine::try_from(line("dispute", "lost")).unwrap();
        assert_eq!(
            (dispute.kind, dispute.status),
            (SettlementKind::Dispute, SettlementStatus::Lost)
        );
        assert_eq!(
            SettlementLine::try_from(line("chargeback", "succeeded")),
            Err(WireError::UnknownKind {
                word: "chargeback".to_owned()
            })
        );
    }
}

/// `GET /v1/fx_rates?base=&quote=`: one rate, the rate as a decimal string.
#[derive(Debug, Deserialize)]
pub(super) struct FxRateWire {
    base: String,
    quote: String,
    rate: String,
}

impl TryFrom<FxRateWire> for QuotedRate {
    type Error = WireError;

    fn try_from(wire: FxRateWire) -> Result<QuotedRate, WireError> {
        let rate = wire
            .rate
            .parse()
            .map_err(|_| WireError::BadRate { word: wire.rate })?;
        Ok(QuotedRate {
            base: wire.base,
            quote: wire.quote,
            rate,
        })
    }
}
