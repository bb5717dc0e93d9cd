//! The sandbox's disputes on the wire: the dispute object (in webhooks and in answers) and the
//! evidence body tally-pay sends. Converted into the gateway's types as `wire.rs` does.

use serde::{Deserialize, Serialize};

use super::wire::WireError;
use crate::domain::disputes::Evidence;
use crate::edges::psp::{Dispute, DisputeStatus};

/// A dispute; `status` is `needs_response`, `under_review`, `won` or `lost`.
#[derive(Debug, Deserialize)]
pub(super) struct DisputeWire {
    psp_id: String,
    charge_reference: String,
    amount: u64,
    currency: String,
    fee: u64,
    reason: String,
    status: String,
    created: i64,
}

impl TryFrom<DisputeWire> for Dispute {
    type Error = WireError;

    fn try_from(wire: DisputeWire) -> Result<Dispute, WireError> {
        let status = match wire.status.as_str() {
            "needs_response" => DisputeStatus::NeedsResponse,
            "under_review" => DisputeStatus::UnderReview,
            "won" => DisputeStatus::Won,
            "lost" => DisputeStatus::Lost,
            _ => {
                return Err(WireError::UnknownStatus {
                    object: "dispute",
                    word: wire.status,
                })
            }
        };
        Ok(Dispute {
            psp_id: wire.psp_id,
            charge_reference: wire.charge_reference,
            amount: wire.amount,
            currency: wire.currency,
            fee: wire.fee,
            reason: wire.reason,
            status,
            created: wire.created,
        })
    }
}

/// The body of `POST /v1/disputes/{id}/evidence`: the texts given, the others left out.
#[derive(Debug, Serialize)]
pub(super) struct EvidenceBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    product_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_communication: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uncategorized_text: Option<&'a str>,
}

impl<'a> From<&'a Evidence> for EvidenceBody<'a> {
    fn from(evidence: &'a Evidence) -> EvidenceBody<'a> {
        EvidenceBody {
            product_description: evidence.product_description.as_deref(),
            customer_communication: evidence.customer_communication.as_deref(),
            uncategorized_text: evidence.uncategorized_text.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispute_parses_and_an_unknown_status_is_an_error() {
        let json = |status: &str| {
            format!(
                r#"{{"psp_id":"dp_1","charge_reference":"ord_1","amount":700,"currency":"USD",
                "fee":1500,"reason":"fraudulent","status":"{status}","evidence_submitted":false,
                "created":7}}"#
            )
        };
        let wire: DisputeWire = serde_json::from_str(&json("won")).unwrap();
        let dispute = Dispute::try_from(wire).unwrap();
        assert_eq!(dispute.status, DisputeStatus::Won);
        assert_eq!((dispute.amount, dispute.fee), (700, 1500));
        let wire: DisputeWire = serde_json::from_str(&json("pending")).unwrap();
        assert!(Dispute::try_from(wire).is_err());
    }

    #[test]
    fn evidence_leaves_out_what_was_not_given() {
        let evidence = Evidence {
            product_description: Some("a lamp".into()),
            ..Evidence::default()
        };
        let body = serde_json::to_string(&EvidenceBody::from(&evidence)).unwrap();
        assert_eq!(body, r#"{"product_description":"a lamp"}"#);
    }
}
