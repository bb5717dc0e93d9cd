//! Money-moving POSTs under their `Idempotency-Key`: a stored answer is replayed, a key in use
//! or reused with other parameters is refused, and otherwise the request executes and its
//! answer is stored, all under the one lock.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::request::{json_response, to_json};
use crate::constants::REFERENCE_LENGTH_MAX;
use crate::error::{ApiError, ErrorKind};
use crate::idempotency::{Begin, StoredResponse};
use crate::model::{Effect, Model, Outcome};
use crate::sandbox::{now, Sandbox};

/// A request's result, as sent and (when it executed) stored under its idempotency key.
pub(super) struct Executed {
    pub(super) status: StatusCode,
    pub(super) body: Vec<u8>,
    pub(super) effects: Vec<Effect>,
}

impl Executed {
    pub(super) fn ok<T: Serialize>(outcome: Outcome<T>) -> Result<Executed, ApiError> {
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
pub(super) async fn execute_idempotent(
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
