//! `GET /v1/fx_rates`: the rate the configured source quotes now for a currency pair.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::access::Routes;
use super::respond;
use crate::domain::fx::RateView;
use crate::edges::auth::{Access, Scope};
use crate::error::{ErrorBody, PayError};
use crate::flows::Pay;

type PayState = State<Arc<Pay>>;

pub fn routes() -> Routes {
    Routes::new().get("/v1/fx_rates", Access::Scope(Scope::PaymentsRead), get_rate)
}

#[derive(OpenApi)]
#[openapi(paths(get_rate))]
pub struct FxDoc;

/// A rate and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotedRateView {
    #[serde(flatten)]
    pub rate: RateView,
    /// `psp` or `table` (`fx.source`).
    pub source: String,
}

#[utoipa::path(get, path = "/v1/fx_rates",
    params(("base" = String, Query, description = "ISO 4217 code of the currency sold, e.g. EUR"),
        ("quote" = String, Query, description = "ISO 4217 code of the currency bought, e.g. GBP")),
    responses((status = 200, body = QuotedRateView, description = "Units of `quote` per unit of `base`",
            example = json!({"base": "EUR", "quote": "GBP", "rate": "0.856", "source": "psp"})),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody, description = "fx_rate_unavailable")))]
pub async fn get_rate(
    State(pay): PayState,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(params) = query
            .map_err(|_| PayError::invalid("invalid_query", "the query string is malformed"))?;
        if params.keys().any(|k| k != "base" && k != "quote") {
            return Err(PayError::invalid(
                "unknown_parameter",
                "this route takes the query parameters base and quote",
            ));
        }
        let code = |name: &str| -> Result<_, PayError> {
            let code = params.get(name).map(String::as_str).unwrap_or("");
            pay.currency(code).map_err(|_| {
                PayError::invalid(
                    "invalid_currency",
                    format!("`{name}` must be an enabled currency's ISO 4217 code"),
                )
            })
        };
        let (base, quote) = (code("base")?, code("quote")?);
        if base == quote {
            return Err(PayError::invalid(
                "invalid_currency",
                "`base` and `quote` must differ",
            ));
        }
        let rate = pay.rates.rate(base, quote).await?;
        Ok((
            StatusCode::OK,
            QuotedRateView {
                rate: rate.view(),
                source: pay.rates.name().to_string(),
            },
        ))
    };
    respond(result.await)
}
