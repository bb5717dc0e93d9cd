//! The dispute routes: one dispute, and its evidence (the list is `GET /v1/disputes`, in
//! `lists/`). Disputes are opened and closed by the PSP's webhooks (`flows/disputes.rs`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use utoipa::OpenApi;

use super::access::Routes;
use super::keyed::Keyed;
use super::{respond, Key, Reply};
use crate::domain::disputes::{Dispute, Evidence};
use crate::edges::auth::{Access, Scope};
use crate::error::ErrorBody;
use crate::flows::Pay;

type PayState = State<Arc<Pay>>;

pub fn routes() -> Routes {
    Routes::new()
        .get(
            "/v1/disputes/{id}",
            Access::Scope(Scope::DisputesRead),
            get_dispute,
        )
        .post_keyed(
            "/v1/disputes/{id}/evidence",
            Access::Scope(Scope::DisputesWrite),
            Keyed::optional(submit_evidence),
        )
}

#[derive(OpenApi)]
#[openapi(paths(get_dispute, submit_evidence))]
pub struct DisputesDoc;

#[utoipa::path(get, path = "/v1/disputes/{id}", params(("id" = String, Path)),
    description = "A dispute (chargeback) of a payment order, as the PSP's webhooks opened and \
                   closed it: where its amount and the PSP's fee were taken from (`taken`: the \
                   order's pending share, the seller's wallet, the platform's loss account), and \
                   where a won dispute's amount went back to (`returned`).",
    responses((status = 200, body = Dispute, example = json!({"id": "dsp_0123456789abcdef",
            "psp_id": "dp_4Xk2", "order_id": "ord_0123456789abcdef",
            "seller_id": "sel_0123456789abcdef", "customer_id": "cus_0123456789abcdef",
            "amount": 1000, "currency": "USD", "fee": 1500, "reason": "fraudulent", "status": "won",
            "taken": {"amount": {"pending": 1000, "wallet": 0, "loss": 0},
                      "fee": {"pending": 0, "wallet": 1500, "loss": 0}},
            "returned": {"loss": 0, "wallet": 1000},
            "evidence": {"product_description": "Shipped 3 Dec, tracking 1Z999"},
            "evidence_submitted_at": 1764765532109_i64,
            "created_at": 1764765432109_i64, "updated_at": 1764765632109_i64})),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_dispute(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.dispute(&id).await.map(|d| (StatusCode::OK, d)))
}

#[utoipa::path(post, path = "/v1/disputes/{id}/evidence",
    request_body(content = Evidence, example = json!({
        "product_description": "Shipped 3 Dec, tracking 1Z999",
        "customer_communication": "The buyer confirmed delivery by email on 5 Dec."})),
    description = "Sends the merchant's evidence to the PSP and stores it: the dispute becomes \
                   `under_review`. Once only, while the dispute `needs_response` (the same \
                   evidence again returns the dispute as it is). Each text is at most 5000 bytes \
                   (`EVIDENCE_TEXT_BYTES_MAX`); at least one must be given.",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Dispute),
        (status = 400, body = ErrorBody, example = json!({"error": {"type": "invalid_request_error",
            "code": "invalid_evidence", "message": "`product_description` is longer than 5000 bytes",
            "param": "product_description"}})),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`dispute_not_open_for_evidence`: not \
            `needs_response`; `evidence_refused`: the PSP refused it"),
        (status = 502, body = ErrorBody, description = "The PSP did not answer; retry")))]
pub async fn submit_evidence(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    evidence: Evidence,
    _key: Option<Key>,
) -> Reply<Dispute> {
    Ok((StatusCode::OK, pay.submit_evidence(&id, evidence).await?))
}
