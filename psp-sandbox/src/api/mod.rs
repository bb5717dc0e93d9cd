//! The sandbox's HTTP API. Every `/v1` call needs `Authorization: Bearer <secret key>`, except
//! `POST /v1/tokens`, which a buyer's browser calls with a publishable key (`pk_test_...`).
//! Bodies are JSON; errors are `{"error":{"type","code","message"}}`.
//!
//! - `POST /v1/tokens` `{number, exp_month, exp_year, cvc}` -> card details with `token`
//! - `GET /v1/tokens/{token}` -> brand, last4, expiry, funding (never the number)
//! - `POST /v1/charges` `{reference, card_token, amount, currency, description?, capture?}` ->
//!   the charge (`capture: false` only authorizes); a declined card is 402 `card_error` with
//!   the decline code, and the failed charge exists
//! - `POST /v1/charges/{reference}/capture` `{amount?}` -> the charge
//! - `POST /v1/refunds` `{reference, charge_reference, amount, currency}` -> the refund
//! - `POST /v1/payouts` `{reference, amount, currency, destination}` -> the payout, `pending`
//! - `GET /v1/{charges,refunds,payouts}/{reference}` -> the object; 404 `resource_missing`
//! - `GET /v1/{charges,refunds,payouts}` -> all of them, oldest first (sandbox only)
//! - `GET /v1/settlements/{YYYY-MM-DD}` -> the CSV settlement report of that UTC day
//! - `GET`, `POST /_sandbox/faults` (text spec) -> the faults in force
//! - `GET`, `POST /_sandbox/settlement_adjustments` (JSON list) -> the adjustments in force
//!
//! POSTs to charges, captures, refunds and payouts honour `Idempotency-Key`: see
//! `idempotency.rs`. A concurrent request with a key in use gets 409 (`retryable`); a reused
//! key with other parameters 400 `idempotency_error`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cards::CardInput;
use crate::constants::{
    ADJUSTMENTS_MAX, FAULT_SPEC_LENGTH_MAX, REFERENCE_LENGTH_MAX, REQUEST_BODY_SIZE_MAX,
};
use crate::error::{ApiError, ErrorKind};
use crate::faults::Faults;
use crate::idempotency::{Begin, StoredResponse};
use crate::model::{CaptureInput, ChargeInput, Effect, Model, Outcome, PayoutInput, RefundInput};
use crate::sandbox::{now, with_seed, Sandbox};
use crate::settlement::{self, Adjustment};
use crate::wire::ChargeStatus;

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
        .route("/v1/refunds", post(create_refund).get(list_refunds))
        .route("/v1/refunds/{reference}", get(get_refund))
        .route("/v1/payouts", post(create_payout).get(list_payouts))
        .route("/v1/payouts/{reference}", get(get_payout))
        .route("/v1/settlements/{day}", get(get_settlement))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
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

/// Which keys an endpoint accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Secret,
    /// The secret key or any publishable key (`pk_test_...`).
    Publishable,
}

impl Sandbox {
    fn authenticate(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        let publishable = access == Access::Publishable && key.starts_with("pk_test_");
        if publishable || constant_time_eq(key.as_bytes(), self.api_key.as_bytes()) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::AuthenticationError,
            "invalid_api_key",
            "missing or wrong API key: send Authorization: Bearer <key>",
        ))
    }

    /// Authenticates an API call and draws the injected 500 (answered before anything is
    /// looked at, so it has no effect). Returns the latency to add.
    fn admit(&self, headers: &HeaderMap, access: Access) -> Result<Duration, ApiError> {
        self.authenticate(headers, access)?;
        let mut model = self.lock();
        let error_rate = model.faults.error_rate;
        if model.draw(error_rate) {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::ApiError,
                "injected_fault",
                "injected error (error_rate); the request had no effect",
            ));
        }
        Ok(model.faults.latency)
    }
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0_u8, |difference, (l, r)| difference | (l ^ r))
            == 0
}

/// A request's result, as sent and (when it executed) stored under its idempotency key.
struct Executed {
    status: StatusCode,
    body: Vec<u8>,
    effects: Vec<Effect>,
}

impl Executed {
    fn ok<T: Serialize>(outcome: Outcome<T>) -> Result<Executed, ApiError> {
        Ok(Executed {
            status: StatusCode::OK,
            body: to_json(&outcome.object),
            effects: outcome.effects,
        })
    }
}

/// Releases an idempotency key reserved for a request that never finished (the client went
/// away during the injected latency and the handler was dropped).
struct Reservation {
    sandbox: Arc<Sandbox>,
    key: String,
    armed: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.armed {
            self.sandbox.lock().idempotency.abandon(&self.key);
        }
    }
}

/// Runs a money-moving POST under its idempotency key: replays a stored answer, refuses a
/// conflicting one, or executes `operation`, stores its answer, and starts its effects. The
/// `timeout_after_success` fault holds the answer back after everything is stored.
async fn execute_idempotent(
    sandbox: Arc<Sandbox>,
    headers: &HeaderMap,
    latency: Duration,
    fingerprint: String,
    operation: impl FnOnce(&mut Model) -> Result<Executed, ApiError>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(headers)?;
    let mut reservation = None;
    if let Some(key) = key {
        let begin = sandbox
            .lock()
            .idempotency
            .begin(&key, &fingerprint, now().timestamp());
        match begin {
            Begin::Reserved => {
                reservation = Some(Reservation {
                    sandbox: Arc::clone(&sandbox),
                    key,
                    armed: true,
                });
            }
            Begin::Replay(stored) => {
                tokio::time::sleep(latency).await;
                return Ok(replay(stored));
            }
            Begin::InFlight => return Err(key_in_use(&key)),
            Begin::Mismatch => return Err(key_mismatch(&key)),
            Begin::Full => return Err(keys_full()),
        }
    }
    tokio::time::sleep(latency).await;
    let (result, hang) = {
        let mut model = sandbox.lock();
        let result = operation(&mut model);
        if let Some(reservation) = reservation.as_mut() {
            match &result {
                Ok(executed) => {
                    let stored = StoredResponse {
                        status: executed.status.as_u16(),
                        body: executed.body.clone(),
                    };
                    let completed = now().timestamp();
                    model
                        .idempotency
                        .complete(&reservation.key, stored, completed);
                }
                Err(_) => model.idempotency.abandon(&reservation.key),
            }
            reservation.armed = false;
        }
        let hang_probability = model.faults.timeout_after_success;
        let hang = (result.is_ok() && model.draw(hang_probability)).then_some(model.faults.hang);
        (result, hang)
    };
    drop(reservation);
    let executed = result?;
    sandbox.apply(executed.effects);
    if let Some(hang) = hang {
        tracing::debug!(?hang, "holding a response back (timeout_after_success)");
        tokio::time::sleep(hang).await;
    }
    Ok(json_response(executed.status, executed.body))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > REFERENCE_LENGTH_MAX || !visible {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {REFERENCE_LENGTH_MAX} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

fn key_in_use(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorKind::Retryable,
        "idempotency_key_in_use",
        format!("another request with Idempotency-Key `{key}` is in progress; retry"),
    )
}

fn key_mismatch(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorKind::IdempotencyError,
        "idempotency_key_reused",
        format!("Idempotency-Key `{key}` was used with different parameters"),
    )
}

fn keys_full() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Retryable,
        "too_many_idempotency_keys",
        "the sandbox holds too many idempotency keys; retry later",
    )
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, stored.body);
    let replayed = HeaderValue::from_static("true");
    response
        .headers_mut()
        .insert("idempotent-replayed", replayed);
    response
}

/// Parses a JSON body into `T`; also returns the fingerprint of the request's parameters
/// (method, path, and the body with its keys sorted: `serde_json::Map` is sorted unless the
/// `preserve_order` feature is on, which a test below would catch).
fn parse_body<T: DeserializeOwned>(route: &str, body: Body) -> Result<(T, String), ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            ErrorKind::InvalidRequestError,
            "invalid_body",
            rejection.body_text(),
        )
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::invalid("invalid_json", format!("body is not JSON: {error}")))?;
    let canonical = format!("{route}\n{value}");
    let fingerprint = hex::encode(Sha256::digest(canonical.as_bytes()));
    let input = serde_json::from_value(value)
        .map_err(|error| ApiError::invalid("invalid_parameters", error.to_string()))?;
    Ok((input, fingerprint))
}

fn path_parameter(path: Reference) -> Result<String, ApiError> {
    let Path(value) = path.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            ErrorKind::InvalidRequestError,
            "invalid_path",
            rejection.body_text(),
        )
    })?;
    Ok(value)
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("API objects of strings and integers serialize")
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_ok(value: &impl Serialize) -> Response {
    json_response(StatusCode::OK, to_json(value))
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

// ---- sandbox control ----

async fn get_faults(State(sandbox): Shared, headers: HeaderMap) -> Result<String, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let faults = sandbox.lock().faults.to_string();
    Ok(faults)
}

/// Replaces the faults (and reseeds the fault RNG); answers the spec now in force.
async fn set_faults(
    State(sandbox): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<String, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let body =
        body.map_err(|rejection| ApiError::invalid("invalid_body", rejection.body_text()))?;
    if body.len() > FAULT_SPEC_LENGTH_MAX {
        return Err(ApiError::invalid(
            "invalid_faults",
            format!("a fault spec is at most {FAULT_SPEC_LENGTH_MAX} bytes"),
        ));
    }
    let spec = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("invalid_faults", "the fault spec is not UTF-8"))?;
    let faults =
        with_seed(Faults::parse(spec).map_err(|m| ApiError::invalid("invalid_faults", m))?);
    let spec = faults.to_string();
    sandbox.lock().set_faults(faults);
    tracing::info!(faults = %spec, "sandbox faults replaced");
    Ok(spec)
}

async fn get_adjustments(State(sandbox): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let model = sandbox.lock();
    Ok(json_ok(&model.adjustments()))
}

/// Replaces the settlement adjustments; answers them with generated ids and dates filled in.
async fn set_adjustments(
    State(sandbox): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let route = "POST /_sandbox/settlement_adjustments";
    let (adjustments, _) = parse_body::<Vec<Adjustment>>(route, body)?;
    if adjustments.len() > ADJUSTMENTS_MAX {
        return Err(ApiError::invalid(
            "too_many_adjustments",
            format!("at most {ADJUSTMENTS_MAX} adjustments"),
        ));
    }
    let mut model = sandbox.lock();
    let adjustments = model.set_adjustments(adjustments, now())?;
    Ok(json_ok(&adjustments))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(body: &str) -> String {
        let body: Body = Ok(Bytes::from(body.to_owned()));
        parse_body::<serde_json::Value>("POST /v1/charges", body)
            .unwrap()
            .1
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let reordered = fingerprint(r#"{"amount": 1, "currency": "USD"}"#);
        assert_eq!(reordered, fingerprint(r#"{"currency":"USD","amount":1}"#));
        assert_ne!(reordered, fingerprint(r#"{"currency":"USD","amount":2}"#));
    }

    #[test]
    fn bad_bodies_are_400_with_a_reason() {
        let parse = |body: &str| {
            let body: Body = Ok(Bytes::from(body.to_owned()));
            parse_body::<ChargeInput>("POST /v1/charges", body).unwrap_err()
        };
        assert_eq!(parse("{").code, "invalid_json");
        let missing = parse(r#"{"reference":"o1"}"#);
        assert_eq!(missing.code, "invalid_parameters");
        assert!(
            missing.message.contains("missing field"),
            "{}",
            missing.message
        );
        let unknown =
            parse(r#"{"reference":"o1","card_token":"t","amount":1,"currency":"USD","tip":1}"#);
        assert!(
            unknown.message.contains("unknown field"),
            "{}",
            unknown.message
        );
        assert_eq!(parse(r#"{"amount":-1}"#).status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn keys_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"sk_test_tally", b"sk_test_tally"));
        assert!(!constant_time_eq(b"sk_test_tally", b"sk_test_tallx"));
        assert!(!constant_time_eq(b"sk_test_tally", b"sk_test_tal"));
    }
}
