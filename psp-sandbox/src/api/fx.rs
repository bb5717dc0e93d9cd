//! `GET /v1/fx_rates` (the rates the PSP quotes) and `POST /_sandbox/fx_rates` (the test's hand
//! on the market).

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::request::{json_ok, parse_body, Access};
use super::{Body, Shared};
use crate::error::ApiError;
use crate::fx::FxRate;

/// One rate (`?base=EUR&quote=GBP`), or every rate (no parameters).
pub(super) async fn get_rates(
    State(sandbox): Shared,
    headers: HeaderMap,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let latency = sandbox.admit(&headers, Access::Secret)?;
    let Query(params) =
        query.map_err(|_| ApiError::invalid("invalid_query", "the query string is malformed"))?;
    tokio::time::sleep(latency).await;
    let table = sandbox.fx();
    match (params.get("base"), params.get("quote")) {
        (None, None) if params.is_empty() => Ok(json_ok(&table.all())),
        (Some(base), Some(quote)) if params.len() == 2 => table
            .rate(base, quote)
            .map(|rate| json_ok(&rate))
            .ok_or_else(|| ApiError::not_found("fx_rate", &format!("{base}/{quote}"))),
        _ => Err(ApiError::invalid(
            "invalid_query",
            "give both `base` and `quote` (ISO 4217 codes), or neither for every rate",
        )),
    }
}

/// Sets rates (a JSON list of `{base, quote, rate}`; others stay); answers every rate.
pub(super) async fn set_rates(
    State(sandbox): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    sandbox.authenticate(&headers, Access::Secret)?;
    let (rates, _) = parse_body::<Vec<FxRate>>("POST /_sandbox/fx_rates", body)?;
    let mut table = sandbox.fx();
    table
        .set(&rates)
        .map_err(|message| ApiError::invalid("invalid_rates", message))?;
    tracing::info!(rates = rates.len(), "sandbox fx rates set");
    Ok(json_ok(&table.all()))
}
