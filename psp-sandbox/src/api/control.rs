//! The `/_sandbox` routes, which a real PSP does not have: the faults in force, and the
//! adjustments that make the settlement report disagree with the truth.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::request::{json_ok, parse_body, Access};
use super::{Body, Shared};
use crate::constants::{ADJUSTMENTS_MAX, FAULT_SPEC_LENGTH_MAX};
use crate::error::ApiError;
use crate::faults::Faults;
use crate::sandbox::{now, with_seed};
use crate::settlement::Adjustment;

// ---- sandbox control ----

pub(super) async fn get_faults(
    State(sandbox): Shared,
    headers: HeaderMap,
) -> Result<String, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let faults = sandbox.lock().faults.to_string();
    Ok(faults)
}

/// Replaces the faults (and reseeds the fault RNG); answers the spec now in force.
pub(super) async fn set_faults(
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

pub(super) async fn get_adjustments(
    State(sandbox): Shared,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let model = sandbox.lock();
    Ok(json_ok(&model.adjustments()))
}

/// Replaces the settlement adjustments; answers them with generated ids and dates filled in.
pub(super) async fn set_adjustments(
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
