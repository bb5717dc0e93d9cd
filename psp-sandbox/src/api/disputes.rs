//! The dispute routes: reading disputes and sending evidence (`/v1`, as a real PSP has them),
//! and opening and closing them (`/_sandbox`, what the card holder's bank would do).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::idempotent::{execute_idempotent, Executed};
use super::request::{json_ok, parse_body, path_parameter, Access};
use super::{list, lookup, Body, Reference, Shared};
use crate::error::ApiError;
use crate::model::{DisputeInput, EvidenceInput, Resolution};
use crate::sandbox::now;

pub(super) async fn get_dispute(
    State(sandbox): Shared,
    headers: HeaderMap,
    id: Reference,
) -> Result<Response, ApiError> {
    lookup(&sandbox, &headers, id, |model, id| {
        model
            .dispute(id)
            .map(json_ok)
            .ok_or_else(|| ApiError::not_found("dispute", id))
    })
    .await
}

pub(super) async fn list_disputes(
    State(sandbox): Shared,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list(&sandbox, &headers, |model| json_ok(&model.disputes())).await
}

pub(super) async fn submit_evidence(
    State(sandbox): Shared,
    headers: HeaderMap,
    id: Reference,
    body: Body,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let id = path_parameter(id)?;
    let route = format!("POST /v1/disputes/{id}/evidence");
    let (input, fingerprint) = parse_body::<EvidenceInput>(&route, body)?;
    execute_idempotent(sandbox, &headers, latency, fingerprint, |model| {
        Executed::ok(model.submit_evidence(&id, &input)?)
    })
    .await
}

/// Opens a dispute on a succeeded charge, as the card holder's bank would.
pub(super) async fn open_dispute(
    State(sandbox): Shared,
    headers: HeaderMap,
    reference: Reference,
    body: Body,
) -> Result<Response, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let reference = path_parameter(reference)?;
    let route = format!("POST /_sandbox/charges/{reference}/dispute");
    let (input, _) = parse_body::<DisputeInput>(&route, body)?;
    let outcome = sandbox.lock().open_dispute(&reference, &input, now())?;
    Arc::clone(&sandbox).apply(outcome.effects);
    Ok(json_ok(&outcome.object))
}

/// Closes a dispute `won` or `lost`.
pub(super) async fn resolve_dispute(
    State(sandbox): Shared,
    headers: HeaderMap,
    id: Reference,
    body: Body,
) -> Result<Response, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let id = path_parameter(id)?;
    let route = format!("POST /_sandbox/disputes/{id}/resolve");
    let (input, _) = parse_body::<Resolution>(&route, body)?;
    let outcome = sandbox.lock().resolve_dispute(&id, &input, now())?;
    Arc::clone(&sandbox).apply(outcome.effects);
    Ok(json_ok(&outcome.object))
}
