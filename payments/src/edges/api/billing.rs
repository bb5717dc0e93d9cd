//! Routes of subscriptions and recurring billing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::access::Routes;
use super::handlers::List;
use super::{parse_body, respond, Key, Keyed, Reply};
use crate::edges::auth::{Access, Scope};
use crate::error::ErrorBody;
use crate::flows::billing::{
    BillingClock, BillingRun, CancelSubscription, ChangePlan, Invoice, NewPlan, NewSubscription,
    Plan, PlanChange, Subscription, UpdateSubscription,
};
use crate::flows::Pay;

type PayState = State<Arc<Pay>>;

pub fn routes() -> Routes {
    let read = Access::Scope(Scope::BillingRead);
    let write = Access::Scope(Scope::BillingWrite);
    let admin = Access::Scope(Scope::BillingAdmin);
    Routes::new()
        .post_keyed("/v1/plans", write, Keyed::optional(create_plan))
        .get("/v1/plans/{id}", read, get_plan)
        .post_keyed(
            "/v1/subscriptions",
            write,
            Keyed::required(create_subscription),
        )
        .get("/v1/subscriptions/{id}", read, get_subscription)
        .post_keyed(
            "/v1/subscriptions/{id}",
            write,
            Keyed::optional(update_subscription),
        )
        .post_keyed(
            "/v1/subscriptions/{id}/change_plan",
            write,
            Keyed::required(change_plan),
        )
        .post_keyed(
            "/v1/subscriptions/{id}/cancel",
            write,
            Keyed::optional(cancel_subscription),
        )
        .get("/v1/subscriptions/{id}/invoices", read, list_invoices)
        .get("/v1/invoices/{id}", read, get_invoice)
        .post("/v1/billing/run", admin, run_billing)
        .get("/v1/billing/clock", read, get_clock)
        .post("/v1/billing/clock", admin, set_clock)
}

#[derive(OpenApi)]
#[openapi(paths(
    create_plan,
    get_plan,
    create_subscription,
    get_subscription,
    update_subscription,
    change_plan,
    cancel_subscription,
    list_invoices,
    get_invoice,
    run_billing,
    get_clock,
    set_clock
))]
pub struct BillingDoc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetClock {
    /// RFC 3339, e.g. `2026-02-01T00:00:00Z`; never earlier than the clock.
    pub time: String,
}

#[utoipa::path(post, path = "/v1/plans", request_body = NewPlan,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Plan), (status = 400, body = ErrorBody)))]
pub async fn create_plan(pay: Arc<Pay>, request: NewPlan, key: Option<Key>) -> Reply<Plan> {
    Ok((
        StatusCode::CREATED,
        pay.create_plan(request, key.as_deref()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/plans/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Plan), (status = 404, body = ErrorBody)))]
pub async fn get_plan(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.plan(&id).await.map(|p| (StatusCode::OK, p)))
}

#[utoipa::path(post, path = "/v1/subscriptions", request_body = NewSubscription,
    params(("Idempotency-Key" = String, Header, description = "Required: the first invoice is charged at once")),
    responses((status = 201, body = Subscription), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_subscription(
    pay: Arc<Pay>,
    request: NewSubscription,
    key: Key,
) -> Reply<Subscription> {
    Ok((
        StatusCode::CREATED,
        pay.create_subscription(request, &key).await?,
    ))
}

#[utoipa::path(get, path = "/v1/subscriptions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn get_subscription(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.subscription(&id).await.map(|s| (StatusCode::OK, s)))
}

#[utoipa::path(post, path = "/v1/subscriptions/{id}", request_body = UpdateSubscription,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_subscription(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: UpdateSubscription,
    _key: Option<Key>,
) -> Reply<Subscription> {
    Ok((StatusCode::OK, pay.update_subscription(&id, request).await?))
}

#[utoipa::path(post, path = "/v1/subscriptions/{id}/change_plan", request_body = ChangePlan,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "Required: a proration may be charged")),
    responses((status = 200, body = PlanChange), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_plan(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: ChangePlan,
    key: Key,
) -> Reply<PlanChange> {
    Ok((StatusCode::OK, pay.change_plan(&id, request, &key).await?))
}

#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancel", request_body = CancelSubscription,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn cancel_subscription(
    pay: Arc<Pay>,
    Path(id): Path<String>,
    request: CancelSubscription,
    _key: Option<Key>,
) -> Reply<Subscription> {
    Ok((StatusCode::OK, pay.cancel_subscription(&id, request).await?))
}

#[utoipa::path(get, path = "/v1/subscriptions/{id}/invoices", params(("id" = String, Path)),
    responses((status = 200, body = List<Invoice>), (status = 404, body = ErrorBody)))]
pub async fn list_invoices(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.invoices(&id)
            .await
            .map(|data| (StatusCode::OK, List { data })),
    )
}

#[utoipa::path(get, path = "/v1/invoices/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Invoice), (status = 404, body = ErrorBody)))]
pub async fn get_invoice(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.invoice(&id).await.map(|i| (StatusCode::OK, i)))
}

#[utoipa::path(post, path = "/v1/billing/run",
    responses((status = 200, body = BillingRun)))]
pub async fn run_billing(State(pay): PayState) -> Response {
    respond(pay.run_billing().await.map(|r| (StatusCode::OK, r)))
}

#[utoipa::path(get, path = "/v1/billing/clock",
    responses((status = 200, body = BillingClock)))]
pub async fn get_clock(State(pay): PayState) -> Response {
    respond(pay.billing_clock().await.map(|c| (StatusCode::OK, c)))
}

#[utoipa::path(post, path = "/v1/billing/clock", request_body = SetClock,
    responses((status = 200, body = BillingClock), (status = 422, body = ErrorBody, description = "Not a manual clock, or the time is earlier than the clock")))]
pub async fn set_clock(State(pay): PayState, body: Bytes) -> Response {
    let result = async {
        let request: SetClock = parse_body(&super::json_of(&body)?)?;
        pay.set_billing_clock(&request.time).await
    }
    .await;
    respond(result.map(|c| (StatusCode::OK, c)))
}
