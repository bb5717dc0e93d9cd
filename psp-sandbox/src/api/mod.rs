//! The sandbox's HTTP API. Every `/v1` call needs `Authorization: Bearer <secret key>`, except
//! `POST /v1/tokens`, which a buyer's browser calls with a publishable key (`pk_test_...`).
//! Bodies are JSON; errors are `{"error":{"type","code","message"}}`.
//!
//! - `POST /v1/tokens` `{number, exp_month, exp_year, cvc}` -> card details with `token`
//! - `GET /v1/tokens/{token}` -> brand, last4, expiry, funding (never the number)
//! - `POST /v1/charges` `{reference, card_token, amount, currency, description?, capture?}` ->
//!   the charge (`capture: false` only authorizes); a declined card is 402 `card_error` with
//!   the decline code, and the failed charge exists
//! - `POST /v1/charges/{reference}/capture` `{amount?}` -> the charge, `succeeded` with the
//!   captured amount (at most the authorized one; the rest is released)
//! - `POST /v1/charges/{reference}/cancel` `{}` -> the charge, `canceled` (only an authorized
//!   one; again: the same answer); a canceled charge is on no settlement report
//! - `POST /v1/refunds` `{reference, charge_reference, amount, currency}` -> the refund
//! - `POST /v1/payouts` `{reference, amount, currency, destination}` -> the payout, `pending`
//! - `GET /v1/{charges,refunds,payouts}/{reference}` -> the object; 404 `resource_missing`
//! - `GET /v1/{charges,refunds,payouts}` -> all of them, oldest first (sandbox only)
//! - `GET /v1/disputes/{id}` -> the dispute (`dp_...`); `GET /v1/disputes` -> all of them
//! - `POST /v1/disputes/{id}/evidence` `{product_description?, customer_communication?,
//!   uncategorized_text?}` -> the dispute, `under_review` (once, while it `needs_response`)
//! - `GET /v1/settlements/{YYYY-MM-DD}` -> the CSV settlement report of that UTC day
//! - `GET`, `POST /_sandbox/faults` (text spec) -> the faults in force
//! - `GET`, `POST /_sandbox/settlement_adjustments` (JSON list) -> the adjustments in force
//! - `POST /_sandbox/charges/{reference}/dispute` `{amount?, reason?}` -> a dispute opened on a
//!   succeeded charge (webhook `charge.dispute.created`)
//! - `POST /_sandbox/disputes/{id}/resolve` `{outcome: "won"|"lost"}` -> the dispute, closed
//!   (webhook `charge.dispute.closed`)
//! - `GET /3ds/{challenge}`, `POST /3ds/{challenge}/complete`, `POST /3ds/{challenge}/fail`:
//!   the 3-D Secure challenge pages a `requires_action` charge's `next_action_url` names, for
//!   the customer's browser (HTML, no API key; `three_ds.rs`)
//!
//! POSTs to charges, captures, cancels, refunds, payouts and evidence honour `Idempotency-Key`: see
//! `idempotency.rs`. A concurrent request with a key in use gets 409 (`retryable`); a reused
//! key with other parameters 400 `idempotency_error`.
//!
//! Authentication, injected errors and request parsing are in `request.rs`, the idempotent
//! execution of money-moving POSTs in `idempotent.rs`, the `/_sandbox` control routes in
//! `control.rs`.

mod control;
mod disputes;
mod fx;
mod idempotent;
mod request;
mod three_ds;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::cards::CardInput;
use crate::constants::REQUEST_BODY_SIZE_MAX;
use crate::error::{ApiError, ErrorKind};
use crate::model::{CancelInput, CaptureInput, ChargeInput, Model, PayoutInput, RefundInput};
use crate::sandbox::{now, Sandbox};
use crate::settlement;
use crate::wire::ChargeStatus;

use control::{get_adjustments, get_faults, set_adjustments, set_faults};
use idempotent::{execute_idempotent, Executed};
use request::{json_ok, parse_body, path_parameter, Access};

type Shared = State<Arc<Sandbox>>;
type Body = Result<Bytes, BytesRejection>;
type Reference = Result<Path<String>, PathRejection>;

pub(crate) fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .route("/v1/tokens", post(create_token).options(token_preflight))
        .route("/v1/tokens/{token}", get(get_token))
        .route("/v1/charges", post(create_charge).get(list_charges))
        .route("/v1/charges/{reference}", get(get_charge))
        .route("/v1/charges/{reference}/capture", post(capture_charge))
        .route("/v1/charges/{reference}/cancel", post(cancel_charge))
        .route("/v1/refunds", post(create_refund).get(list_refunds))
        .route("/v1/refunds/{reference}", get(get_refund))
        .route("/v1/payouts", post(create_payout).get(list_payouts))
        .route("/v1/payouts/{reference}", get(get_payout))
        .route("/v1/disputes", get(disputes::list_disputes))
        .route("/v1/disputes/{id}", get(disputes::get_dispute))
        .route(
            "/v1/disputes/{id}/evidence",
            post(disputes::submit_evidence),
        )
        .route("/v1/settlements/{day}", get(get_settlement))
        .route("/v1/fx_rates", get(fx::get_rates))
        .route("/3ds/{challenge}", get(three_ds::show))
        .route("/3ds/{challenge}/complete", post(three_ds::complete))
        .route("/3ds/{challenge}/fail", post(three_ds::fail))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route("/_sandbox/fx_rates", post(fx::set_rates))
        .route(
            "/_sandbox/charges/{reference}/dispute",
            post(disputes::open_dispute),
        )
        .route(
            "/_sandbox/disputes/{id}/resolve",
            post(disputes::resolve_dispute),
        )
        .route(
            "/_sandbox/settlement_adjustments",
            get(get_adjustments).post(set_adjustments),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&sandbox),
            save_after_change,
        ))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_SIZE_MAX))
        .with_state(sandbox)
}

/// Saves the books after every request that may have changed them (every POST), before the
/// answer goes out: what a client was told survives a restart.
async fn save_after_change(
    State(sandbox): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let changes = request.method() == Method::POST;
    let response = next.run(request).await;
    if changes && sandbox.state_path.is_some() {
        let sandbox = Arc::clone(&sandbox);
        let _ = tokio::task::spawn_blocking(move || sandbox.save()).await;
    }
    response
}

// ---- tokens ----

async fn create_token(State(sandbox): Shared, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let latency = sandbox.admit(&headers, Access::Publishable)?;
        let (input, _) = parse_body::<CardInput>("POST /v1/tokens", body)?;
        tokio::time::sleep(latency).await;
        let details = sandbox.lock().tokenize(&input, now())?;
        Ok::<_, ApiError>(json_ok(&details))
    }
    .await;
    with_cors(result.unwrap_or_else(IntoResponse::into_response))
}

/// Browsers ask before a cross-origin POST with an `Authorization` header.
async fn token_preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    with_cors(response)
}

fn with_cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

async fn get_token(
    State(sandbox): Shared,
    headers: HeaderMap,
    token: Reference,
) -> Result<Response, ApiError> {
    lookup(&sandbox, &headers, token, |model, token| {
        model
            .card(token)
            .map(json_ok)
            .ok_or_else(|| ApiError::not_found("token", token))
    })
    .await
}

/// A read of one object by a path parameter.
async fn lookup(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    parameter: Reference,
    read: impl FnOnce(&Model, &str) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(headers, Access::Secret)?;
    let parameter = path_parameter(parameter)?;
    tokio::time::sleep(latency).await;
    let model = sandbox.lock();
    read(&model, &parameter)
}

/// A read of everything of one kind.
async fn list(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    read: impl FnOnce(&Model) -> Response,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(headers, Access::Secret)?;
    tokio::time::sleep(latency).await;
    let model = sandbox.lock();
    Ok(read(&model))
}

// ---- charges ----

async fn create_charge(
    State(sandbox): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let (input, fingerprint) = parse_body::<ChargeInput>("POST /v1/charges", body)?;
    execute_idempotent(sandbox, &headers, latency, fingerprint, |model| {
        let outcome = model.create_charge(&input, now())?;
        let ChargeStatus::Failed { code, message } = &outcome.object.charge.status else {
            return Executed::ok(outcome);
        };
        // As at Stripe: a declined charge is a 402 card error naming the failed charge.
        let error = ApiError {
            charge: Some(outcome.object.charge.psp_id.clone()),
            ..ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                ErrorKind::CardError,
                code.clone(),
                message.clone(),
            )
        };
        Ok(Executed {
            status: error.status,
            body: error.body(),
            effects: outcome.effects,
        })
    })
    .await
}

async fn capture_charge(
    State(sandbox): Shared,
    headers: HeaderMap,
    reference: Reference,
    body: Body,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let reference = path_parameter(reference)?;
    let route = format!("POST /v1/charges/{reference}/capture");
    let (input, fingerprint) = parse_body::<CaptureInput>(&route, body)?;
    execute_idempotent(sandbox, &headers, latency, fingerprint, |model| {
        Executed::ok(model.capture(&reference, &input, now())?)
    })
    .await
}

async fn cancel_charge(
    State(sandbox): Shared,
    headers: HeaderMap,
    reference: Reference,
    body: Body,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let reference = path_parameter(reference)?;
    let route = format!("POST /v1/charges/{reference}/cancel");
    let (CancelInput {}, fingerprint) = parse_body::<CancelInput>(&route, body)?;
    execute_idempotent(sandbox, &headers, latency, fingerprint, |model| {
        Executed::ok(model.cancel(&reference, now())?)
    })
    .await
}

async fn get_charge(
    State(sandbox): Shared,
    headers: HeaderMap,
    reference: Reference,
) -> Result<Response, ApiError> {
    lookup(&sandbox, &headers, reference, |model, reference| {
        model
            .charge(reference)
            .map(json_ok)
            .ok_or_else(|| ApiError::not_found("charge", reference))
    })
    .await
}

async fn list_charges(State(sandbox): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    list(&sandbox, &headers, |model| json_ok(&model.charges())).await
}

// ---- refunds ----

async fn create_refund(
    State(sandbox): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let (input, fingerprint) = parse_body::<RefundInput>("POST /v1/refunds", body)?;
    execute_idempotent(sandbox, &headers, latency, fingerprint, |model| {
        Executed::ok(model.create_refund(&input, now())?)
    })
    .await
}

async fn get_refund(
    State(sandbox): Shared,
    headers: HeaderMap,
    reference: Reference,
) -> Result<Response, ApiError> {
    lookup(&sandbox, &headers, reference, |model, reference| {
        model
            .refund(reference)
            .map(json_ok)
            .ok_or_else(|| ApiError::not_found("refund", reference))
    })
    .await
}

async fn list_refunds(State(sandbox): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    list(&sandbox, &headers, |model| json_ok(&model.refunds())).await
}

// ---- payouts ----

async fn create_payout(
    State(sandbox): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let (input, fingerprint) = parse_body::<PayoutInput>("POST /v1/payouts", body)?;
    execute_idempotent(sandbox, &headers, latency, fingerprint, |model| {
        Executed::ok(model.create_payout(&input, now())?)
    })
    .await
}

async fn get_payout(
    State(sandbox): Shared,
    headers: HeaderMap,
    reference: Reference,
) -> Result<Response, ApiError> {
    lookup(&sandbox, &headers, reference, |model, reference| {
        model
            .payout(reference)
            .map(json_ok)
            .ok_or_else(|| ApiError::not_found("payout", reference))
    })
    .await
}

async fn list_payouts(State(sandbox): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    list(&sandbox, &headers, |model| json_ok(&model.payouts())).await
}

// ---- settlement ----

async fn get_settlement(
    State(sandbox): Shared,
    headers: HeaderMap,
    day: Reference,
) -> Result<Response, ApiError> {
    lookup(&sandbox, &headers, day, |model, day| {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid("invalid_date", format!("`{day}` is not a YYYY-MM-DD date"))
        })?;
        let csv = settlement::render_csv(&model.settlement(day)).map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::ApiError,
                "report_failed",
                format!("settlement report: {error}"),
            )
        })?;
        let content_type = [(header::CONTENT_TYPE, "text/csv; charset=utf-8")];
        Ok((StatusCode::OK, content_type, csv).into_response())
    })
    .await
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::InvalidRequestError,
        "unknown_route",
        format!("no route {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::InvalidRequestError,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
