//! Routes of subscriptions and recurring billing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::access::Routes;
use super::handlers::List;
use super::{idempotent, parse_body, respond, KeyRule};
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
        .post("/v1/plans", write, create_plan)
        .get("/v1/plans/{id}", read, get_plan)
        .post("/v1/subscriptions", write, create_subscription)
        .get("/v1/subscriptions/{id}", read, get_subscription)
        .post("/v1/subscriptions/{id}", write, update_subscription)
        .post("/v1/subscriptions/{id}/change_plan", write, change_plan)
        .post("/v1/subscriptions/{id}/cancel", write, cancel_subscription)
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
pub async fn create_plan(State(pay): PayState, headers: HeaderMap, body: Bytes) -> Response {
    idempotent(
        &pay,
        &headers,
        "/v1/plans",
        &body,
        KeyRule::Optional,
        true,
        |p, request: NewPlan, key| async move {
            Ok((
                StatusCode::CREATED,
                p.create_plan(request, key.as_deref()).await?,
            ))
        },
    )
    .await
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
    State(pay): PayState,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotent(
        &pay,
        &headers,
        "/v1/subscriptions",
        &body,
        KeyRule::Required,
        true,
        |p, request: NewSubscription, key| async move {
            let key = key.expect("required");
            Ok((
                StatusCode::CREATED,
                p.create_subscription(request, &key).await?,
            ))
        },
    )
    .await
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
    State(pay): PayState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/subscriptions/{id}");
    idempotent(
        &pay,
        &headers,
        &path,
        &body,
        KeyRule::Optional,
        true,
        |p, request: UpdateSubscription, _| async move {
            Ok((StatusCode::OK, p.update_subscription(&id, request).await?))
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/subscriptions/{id}/change_plan", request_body = ChangePlan,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "Required: a proration may be charged")),
    responses((status = 200, body = PlanChange), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_plan(
    State(pay): PayState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/subscriptions/{id}/change_plan");
    idempotent(
        &pay,
        &headers,
        &path,
        &body,
        KeyRule::Required,
        true,
        |p, request: ChangePlan, key| async move {
            let key = key.expect("required");
            Ok((StatusCode::OK, p.change_plan(&id, request, &key).await?))
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancel", request_body = CancelSubscription,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn cancel_subscription(
    State(pay): PayState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/subscriptions/{id}/cancel");
    idempotent(
        &pay,
        &headers,
        &path,
        &body,
        KeyRule::Optional,
        true,
        |p, request: CancelSubscription, _| async move {
            Ok((StatusCode::OK, p.cancel_subscription(&id, request).await?))
        },
    )
    .await
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
