//! Route handlers. The `#[utoipa::path]` attributes are the OpenAPI document's source.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{respond, Key, Reply};
use crate::domain::model::{
    BankAccount, Card, Customer, DeadLetter, Order, Payment, Payout, Refund, Seller,
};
use crate::domain::money::AmountInput;
use crate::error::{ErrorBody, PayError};
use crate::flows::{
    Balance, DailyPayoutRun, NewBankAccount, NewCard, NewCustomer, NewDeposit, NewPayment,
    NewPayout, NewRefund, NewSeller, Pay, UpdateSeller,
};

type PayState = State<Arc<Pay>>;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Balances {
    pub id: String,
    pub balances: Vec<Balance>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyRunRequest {
    /// UTC day (`YYYY-MM-DD`); defaults to today.
    pub date: Option<String>,
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(pay): PayState) -> String {
    pay.metrics.render()
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "This document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::document())
}

/// The path is not echoed: it may hold anything a client typed.
pub async fn not_found() -> Response {
    PayError::not_found("route; see /openapi.json for the API").into_response()
}

#[utoipa::path(post, path = "/v1/customers", request_body = NewCustomer,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = Customer), (status = 400, body = ErrorBody)))]
pub async fn create_customer(
    pay: Arc<Pay>,
    request: NewCustomer,
    key: Option<Key>,
) -> Reply<Customer> {
    Ok((
        StatusCode::CREATED,
        pay.create_customer(request, key.as_deref()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/customers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody)))]
pub async fn get_customer(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.customer(&id).await.map(|c| (StatusCode::OK, c)))
}

#[utoipa::path(post, path = "/v1/customers/{id}/cards", request_body = NewCard,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Card), (status = 400, body = ErrorBody, description = "Also when the body carries a card number or CVV"), (status = 422, body = ErrorBody)))]
pub async fn add_card(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: NewCard,
    key: Option<Key>,
) -> Reply<Card> {
    Ok((
        StatusCode::CREATED,
        pay.add_card(&id, request, key.as_deref()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/customers/{id}/cards", params(("id" = String, Path)),
    responses((status = 200, body = List<Card>), (status = 404, body = ErrorBody)))]
pub async fn list_cards(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.cards(&id)
            .await
            .map(|data| (StatusCode::OK, List { data })),
    )
}

#[utoipa::path(get, path = "/v1/customers/{id}/balance", params(("id" = String, Path)),
    responses((status = 200, body = Balances), (status = 404, body = ErrorBody)))]
pub async fn customer_balance(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.balances(&id)
            .await
            .map(|balances| (StatusCode::OK, Balances { id, balances })),
    )
}

#[utoipa::path(post, path = "/v1/sellers",
    request_body(content = NewSeller, example = json!({"name": "Alpine Prints Ltd",
        "email": "accounts@alpineprints.example", "payout_currency": "GBP"})),
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Seller), (status = 400, body = ErrorBody)))]
pub async fn create_seller(pay: Arc<Pay>, request: NewSeller, key: Option<Key>) -> Reply<Seller> {
    Ok((
        StatusCode::CREATED,
        pay.create_seller(request, key.as_deref()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/sellers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Seller), (status = 404, body = ErrorBody)))]
pub async fn get_seller(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.seller(&id).await.map(|s| (StatusCode::OK, s)))
}

#[utoipa::path(post, path = "/v1/sellers/{id}",
    request_body(content = UpdateSeller, example = json!({"payout_currency": "JPY"})),
    description = "Changes a seller's escrow hold period or payout currency (`null`: back to \
                   the default), for the orders made from now on.",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Seller), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_seller(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: UpdateSeller,
    _key: Option<Key>,
) -> Reply<Seller> {
    Ok((StatusCode::OK, pay.update_seller(&id, request).await?))
}

#[utoipa::path(post, path = "/v1/sellers/{id}/bank_accounts", request_body = NewBankAccount,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = BankAccount), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_bank_account(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: NewBankAccount,
    key: Option<Key>,
) -> Reply<BankAccount> {
    Ok((
        StatusCode::CREATED,
        pay.add_bank_account(&id, request, key.as_deref()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/sellers/{id}/bank_accounts", params(("id" = String, Path)),
    responses((status = 200, body = List<BankAccount>), (status = 404, body = ErrorBody)))]
pub async fn list_bank_accounts(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.bank_accounts(&id)
            .await
            .map(|data| (StatusCode::OK, List { data })),
    )
}

#[utoipa::path(get, path = "/v1/sellers/{id}/balance", params(("id" = String, Path)),
    responses((status = 200, body = Balances), (status = 404, body = ErrorBody)))]
pub async fn seller_balance(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.balances(&id)
            .await
            .map(|balances| (StatusCode::OK, Balances { id, balances })),
    )
}

#[utoipa::path(post, path = "/v1/payments", request_body = NewPayment,
    params(("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 201, body = Payment, description = "Orders are `succeeded`, `failed`, `requires_capture` (`capture: \"manual\"`), `requires_action` (the card needs 3-D Secure: send the customer's browser to the payment's `next_action.url`; the payment goes on when the PSP reports the outcome), or still `processing` when the PSP's answer is not known yet"),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_payment(pay: Arc<Pay>, request: NewPayment, key: Key) -> Reply<Payment> {
    Ok((
        StatusCode::CREATED,
        pay.create_payment(request, &key).await?,
    ))
}

#[utoipa::path(get, path = "/v1/payments/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Payment, description = "The payment; `next_action` while an order `requires_action`"), (status = 404, body = ErrorBody)))]
pub async fn get_payment(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.payment(&id).await.map(|p| (StatusCode::OK, p)))
}

#[utoipa::path(get, path = "/v1/payment_orders/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
pub async fn get_order(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.order(&id).await.map(|o| (StatusCode::OK, o)))
}

/// The body of `POST /v1/payment_orders/{id}/release`: no fields (empty, or `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {}

#[utoipa::path(post, path = "/v1/payment_orders/{id}/release", request_body = ReleaseRequest,
    description = "Releases a captured order's seller share from the seller's pending balance to \
                   the available one (the platform confirms delivery), before its hold period is \
                   over. An order already released, or never held, is returned unchanged.",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Order), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`order_not_captured`: the order has not succeeded")))]
pub async fn release_order(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    _request: ReleaseRequest,
    _key: Option<Key>,
) -> Reply<Order> {
    Ok((StatusCode::OK, pay.release_order(&id).await?))
}

/// The body of `POST /v1/payment_orders/{id}/capture`: the amount to capture (`amount` in minor
/// units or `amount_decimal`), at most the authorized amount; none (or `{}`): all of it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    #[serde(flatten)]
    pub amount: AmountInput,
}

#[utoipa::path(post, path = "/v1/payment_orders/{id}/capture", request_body = CaptureRequest,
    description = "Captures an order authorized with `capture: \"manual\"` (status \
                   `requires_capture`), in full or in part: the rest of the authorization is \
                   released, the platform fee is taken on the captured amount. The same \
                   capture again (the same amount, or none after a full capture) returns the \
                   captured order unchanged, so a client may retry one whose answer it lost.",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Order), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`order_not_capturable`: the order is not \
            `requires_capture`; `capture_amount_too_large`: more than was authorized")))]
pub async fn capture_order(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: CaptureRequest,
    _key: Option<Key>,
) -> Reply<Order> {
    Ok((
        StatusCode::OK,
        pay.capture_order(&id, Some(&request.amount)).await?,
    ))
}

/// The body of `POST /v1/payment_orders/{id}/cancel`: no fields (empty, or `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {}

#[utoipa::path(post, path = "/v1/payment_orders/{id}/cancel", request_body = CancelRequest,
    description = "Cancels an authorized order (`requires_capture`): the authorization is \
                   released at the PSP and the ledger hold voided; the order is `canceled`. An \
                   order canceled already is returned unchanged.",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Order), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`order_not_cancelable`: the order is not \
            `requires_capture`")))]
pub async fn cancel_order(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    _request: CancelRequest,
    _key: Option<Key>,
) -> Reply<Order> {
    Ok((StatusCode::OK, pay.cancel_order(&id).await?))
}

#[utoipa::path(post, path = "/v1/deposits", request_body = NewDeposit,
    params(("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 201, body = Order), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_deposit(pay: Arc<Pay>, request: NewDeposit, key: Key) -> Reply<Order> {
    Ok((
        StatusCode::CREATED,
        pay.create_deposit(request, &key).await?,
    ))
}

#[utoipa::path(get, path = "/v1/deposits/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
pub async fn get_deposit(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.order(&id).await.map(|o| (StatusCode::OK, o)))
}

#[utoipa::path(post, path = "/v1/refunds", request_body = NewRefund,
    params(("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 201, body = Refund), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_refund(pay: Arc<Pay>, request: NewRefund, key: Key) -> Reply<Refund> {
    Ok((StatusCode::CREATED, pay.create_refund(request, &key).await?))
}

#[utoipa::path(get, path = "/v1/refunds/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Refund), (status = 404, body = ErrorBody)))]
pub async fn get_refund(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.refund(&id).await.map(|r| (StatusCode::OK, r)))
}

#[utoipa::path(post, path = "/v1/payouts", request_body = NewPayout,
    params(("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 201, body = Payout), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_payout(pay: Arc<Pay>, request: NewPayout, key: Key) -> Reply<Payout> {
    Ok((StatusCode::CREATED, pay.create_payout(request, &key).await?))
}

#[utoipa::path(get, path = "/v1/payouts/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Payout), (status = 404, body = ErrorBody)))]
pub async fn get_payout(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.payout(&id).await.map(|p| (StatusCode::OK, p)))
}

#[utoipa::path(post, path = "/v1/payouts/run_daily", request_body = DailyRunRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = DailyPayoutRun), (status = 400, body = ErrorBody)))]
pub async fn run_daily_payouts(
    pay: Arc<Pay>,
    request: DailyRunRequest,
    _key: Option<Key>,
) -> Reply<DailyPayoutRun> {
    let date = match request.date {
        None => chrono::Utc::now().date_naive(),
        Some(text) => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
            PayError::invalid_param("invalid_date", "date", "`date` is not a YYYY-MM-DD date")
        })?,
    };
    Ok((StatusCode::OK, pay.run_daily_payouts(date).await?))
}

#[utoipa::path(get, path = "/v1/dead_letters",
    responses((status = 200, body = List<DeadLetter>)))]
pub async fn list_dead_letters(State(pay): PayState) -> Response {
    respond(
        pay.dead_letters()
            .await
            .map(|data| (StatusCode::OK, List { data })),
    )
}

#[utoipa::path(post, path = "/v1/dead_letters/{id}/retry", params(("id" = String, Path)),
    responses((status = 200, body = DeadLetter), (status = 404, body = ErrorBody)))]
pub async fn retry_dead_letter(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.retry_dead_letter(&id)
            .await
            .map(|d| (StatusCode::OK, d)),
    )
}

#[utoipa::path(post, path = "/v1/webhooks/psp",
    params(("psp-signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    responses((status = 200, body = crate::flows::WebhookReceipt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn psp_webhook(State(pay): PayState, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    respond(
        pay.receive_webhook(&pairs, &body)
            .await
            .map(|r| (StatusCode::OK, r)),
    )
}
