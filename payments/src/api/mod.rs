//! The HTTP JSON API (axum). Every handler is a thin shell over [`crate::service::Pay`]; this
//! module owns request parsing, the `Idempotency-Key` protocol, card-data screening, errors and
//! the OpenAPI document.

mod billing;
mod finance;
mod handlers;
mod openapi;
mod screen;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::PayError;
use crate::idempotency;
use crate::service::Pay;

pub use openapi::{document, ApiDoc};

/// Bytes of a request body.
pub const BODY_BYTES_MAX: usize = 256 * 1024;

/// The header that carries idempotency keys, and the one that marks a replayed response.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

pub fn router(pay: Arc<Pay>) -> Router {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi))
        .route("/v1/customers", post(handlers::create_customer))
        .route("/v1/customers/{id}", get(handlers::get_customer))
        .route(
            "/v1/customers/{id}/cards",
            post(handlers::add_card).get(handlers::list_cards),
        )
        .route(
            "/v1/customers/{id}/balance",
            get(handlers::customer_balance),
        )
        .route("/v1/sellers", post(handlers::create_seller))
        .route("/v1/sellers/{id}", get(handlers::get_seller))
        .route(
            "/v1/sellers/{id}/bank_accounts",
            post(handlers::add_bank_account).get(handlers::list_bank_accounts),
        )
        .route("/v1/sellers/{id}/balance", get(handlers::seller_balance))
        .route("/v1/payments", post(handlers::create_payment))
        .route("/v1/payments/{id}", get(handlers::get_payment))
        .route("/v1/payment_orders/{id}", get(handlers::get_order))
        .route("/v1/deposits", post(handlers::create_deposit))
        .route("/v1/deposits/{id}", get(handlers::get_deposit))
        .route("/v1/refunds", post(handlers::create_refund))
        .route("/v1/refunds/{id}", get(handlers::get_refund))
        .route("/v1/payouts", post(handlers::create_payout))
        .route("/v1/payouts/run_daily", post(handlers::run_daily_payouts))
        .route("/v1/payouts/{id}", get(handlers::get_payout))
        .route("/v1/dead_letters", get(handlers::list_dead_letters))
        .route(
            "/v1/dead_letters/{id}/retry",
            post(handlers::retry_dead_letter),
        )
        .route("/v1/webhooks/psp", post(handlers::psp_webhook))
        .merge(finance::routes())
        .merge(billing::routes())
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(pay)
}

/// Parses a JSON body after screening it for card data; errors name the problem.
fn parse_body<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, PayError> {
    serde_json::from_value(body.clone())
        .map_err(|e| PayError::invalid("invalid_body", format!("request body: {e}")))
}

fn json_of(bytes: &Bytes) -> Result<serde_json::Value, PayError> {
    if bytes.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| PayError::invalid("invalid_json", format!("request body is not JSON: {e}")))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a POST needs an `Idempotency-Key`: required where money moves, optional elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRule {
    Required,
    Optional,
}

/// Runs a POST handler under the idempotency protocol. `screen_values` turns on the scan for card
/// numbers in string values (off only where bank account numbers are expected).
///
/// The body is parsed into the request type `R` (a malformed body is answered, and stored under
/// the key, like any other 4xx); `run` gets the service, the request and the key.
async fn idempotent<R, T, F, Fut>(
    pay: &Arc<Pay>,
    headers: &HeaderMap,
    path: &str,
    bytes: &Bytes,
    rule: KeyRule,
    screen_values: bool,
    run: F,
) -> Response
where
    R: DeserializeOwned,
    T: Serialize,
    F: FnOnce(Arc<Pay>, R, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, T), PayError>>,
{
    let run = |body: serde_json::Value, key: Option<String>| async move {
        let request: R = parse_body(&body)?;
        run(Arc::clone(pay), request, key).await
    };
    let body = match json_of(bytes) {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = screen::reject_card_data(&body, screen_values) {
        pay.metrics.inc("tally_pay_card_data_rejected_total");
        return e.into_response();
    }
    let key = header(headers, IDEMPOTENCY_KEY).map(str::to_string);
    let Some(key) = key else {
        if rule == KeyRule::Required {
            return PayError::invalid(
                "idempotency_key_required",
                "this request moves money: send an Idempotency-Key header (e.g. a UUID) and reuse \
                 it when you retry",
            )
            .into_response();
        }
        return respond(run(body, None).await);
    };
    if let Err(e) = idempotency::check_key(&key) {
        return e.into_response();
    }
    let fingerprint = idempotency::fingerprint("POST", path, &body);
    let version = match idempotency::begin(
        &pay.store,
        &key,
        &fingerprint,
        pay.idempotency_lease_ms(),
    )
    .await
    {
        Ok(idempotency::Begin::Run { version }) => version,
        Ok(idempotency::Begin::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            return response;
        }
        Err(e) => return e.into_response(),
    };
    let (status, value) = match run(body, Some(key.clone())).await {
        Ok((status, value)) => (status, serde_json::to_value(value).unwrap_or_default()),
        Err(e) => (
            e.status(),
            serde_json::to_value(e.body()).unwrap_or_default(),
        ),
    };
    if let Err(e) = idempotency::finish(&pay.store, &key, version, status.as_u16(), &value).await {
        tracing::warn!(%key, error = %e, "could not store the idempotent response");
    }
    (status, axum::Json(value)).into_response()
}

fn respond<T: Serialize>(result: Result<(StatusCode, T), PayError>) -> Response {
    match result {
        Ok((status, value)) => (status, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}
