//! Routes of the finance API: reconciliation with the PSP's settlement report, the review
//! queue, and transaction reports (JSON, or CSV with `?format=csv`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::access::Routes;
use super::handlers::List;
use super::{respond, Key, Keyed, Reply};
use crate::domain::chart::system_code;
use crate::domain::ids::Unchecked;
use crate::domain::money::Currency;
use crate::edges::auth::{Access, Scope};
use crate::error::{ErrorBody, PayError};
use crate::flows::recon::{ReconItem, ReconReport};
use crate::flows::reports::{Holder, Period, RevenueReport, Statement, TransactionPage};
use crate::flows::Pay;

type PayState = State<Arc<Pay>>;
type RawQuery = Result<Query<BTreeMap<String, String>>, QueryRejection>;

pub fn routes() -> Routes {
    let recon = Access::Scope(Scope::ReconAdmin);
    let reports = Access::Scope(Scope::ReportsRead);
    Routes::new()
        .post_keyed(
            "/v1/reconciliations",
            recon,
            Keyed::optional(run_reconciliation),
        )
        .get("/v1/reconciliations/{date}", recon, get_reconciliation)
        .get("/v1/reviews", recon, list_reviews)
        .get(
            "/v1/sellers/{id}/transactions",
            reports,
            seller_transactions,
        )
        .get(
            "/v1/customers/{id}/transactions",
            reports,
            customer_transactions,
        )
        .get(
            "/v1/system_accounts/{name}/transactions",
            reports,
            system_transactions,
        )
        .get("/v1/sellers/{id}/statement", reports, seller_statement)
        .get("/v1/reports/revenue", reports, revenue)
}

#[derive(OpenApi)]
#[openapi(paths(
    run_reconciliation,
    get_reconciliation,
    list_reviews,
    seller_transactions,
    customer_transactions,
    system_transactions,
    seller_statement,
    revenue,
))]
pub struct FinanceDoc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationRequest {
    /// The UTC day of the PSP's settlement report (`YYYY-MM-DD`).
    pub date: String,
}

/// The query parameters, refusing any not in `allowed` so that a typo is not silently ignored.
fn params(query: RawQuery, allowed: &[&str]) -> Result<BTreeMap<String, String>, PayError> {
    let Query(params) = query.map_err(|e| {
        PayError::invalid("invalid_query", format!("query string: {}", e.body_text()))
    })?;
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(PayError::invalid(
            "unknown_parameter",
            format!(
                "unknown query parameter `{unknown}`; this route takes {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(params)
}

fn parse_date(field: &str, text: &str) -> Result<NaiveDate, PayError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        PayError::invalid_param(
            "invalid_date",
            field,
            format!("`{field}` is not a YYYY-MM-DD date"),
        )
    })
}

/// `json` (the default) or `csv`.
fn wants_csv(params: &BTreeMap<String, String>) -> Result<bool, PayError> {
    match params.get("format").map(String::as_str) {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(PayError::invalid_param(
            "invalid_format",
            "format",
            "`format` must be json or csv",
        )),
    }
}

fn csv_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        body,
    )
        .into_response()
}

fn number<T: std::str::FromStr>(
    params: &BTreeMap<String, String>,
    field: &str,
) -> Result<Option<T>, PayError> {
    params
        .get(field)
        .map(|text| {
            text.parse().map_err(|_| {
                PayError::invalid_param(
                    "invalid_number",
                    field,
                    format!("`{field}` is not a whole number"),
                )
            })
        })
        .transpose()
}

fn currency_param(pay: &Pay, params: &BTreeMap<String, String>) -> Result<Currency, PayError> {
    let code = params.get("currency").ok_or_else(|| {
        PayError::invalid_param(
            "currency_required",
            "currency",
            "give `currency`, e.g. ?currency=USD",
        )
    })?;
    pay.currency(code).map_err(|e| e.with_param("currency"))
}

fn period(params: &BTreeMap<String, String>) -> Result<Period, PayError> {
    Period::parse(
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
    )
}

#[utoipa::path(post, path = "/v1/reconciliations", request_body = ReconciliationRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the stored report")),
    responses((status = 200, body = ReconReport, description = "Runs reconciliation of the day: classifies every line of the PSP's settlement report and every Tally object of the day, settles the safe findings, queues the rest for review, and checks the ledger. Running it again changes nothing."),
        (status = 400, body = ErrorBody), (status = 502, body = ErrorBody, description = "The PSP's report could not be fetched")))]
pub async fn run_reconciliation(
    pay: Arc<Pay>,
    request: ReconciliationRequest,
    _key: Option<Key>,
) -> Reply<ReconReport> {
    let day = parse_date("date", &request.date)?;
    if day > chrono::Utc::now().date_naive() {
        return Err(PayError::invalid(
            "date_in_future",
            format!("{day} has not begun yet; the PSP has no report for it"),
        ));
    }
    Ok((StatusCode::OK, pay.reconcile(day).await?))
}

#[utoipa::path(get, path = "/v1/reconciliations/{date}",
    params(("date" = String, Path, description = "YYYY-MM-DD"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "The stored reconciliation of the day",
            content((ReconReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_reconciliation(
    State(pay): PayState,
    Path(date): Path<String>,
    query: RawQuery,
) -> Response {
    let result = async {
        let params = params(query, &["format"])?;
        let csv = wants_csv(&params)?;
        let report = pay.reconciliation(parse_date("date", &date)?).await?;
        Ok(if csv {
            csv_response(report.to_csv()?)
        } else {
            axum::Json(report).into_response()
        })
    };
    result.await.unwrap_or_else(|e: PayError| e.into_response())
}

#[utoipa::path(get, path = "/v1/reviews",
    params(("date" = Option<String>, Query, description = "Only the findings of this day (YYYY-MM-DD)")),
    responses((status = 200, body = List<ReconItem>, description = "Reconciliation findings a person must look at, with the evidence"),
        (status = 400, body = ErrorBody)))]
pub async fn list_reviews(State(pay): PayState, query: RawQuery) -> Response {
    let result = async {
        let params = params(query, &["date"])?;
        let day = params
            .get("date")
            .map(|d| parse_date("date", d))
            .transpose()?;
        let data = pay.reviews(day).await?;
        Ok((StatusCode::OK, List { data }))
    };
    respond(result.await)
}

const TRANSACTION_PARAMS: [&str; 6] = ["currency", "from", "to", "limit", "after", "format"];

async fn transactions(pay: &Pay, holder: Holder, query: RawQuery) -> Response {
    let result = async {
        let params = params(query, &TRANSACTION_PARAMS)?;
        let csv = wants_csv(&params)?;
        let currency = currency_param(pay, &params)?;
        let page = pay
            .transactions(
                &holder,
                currency.code,
                period(&params)?,
                number(&params, "limit")?,
                number(&params, "after")?,
            )
            .await?;
        Ok(if csv {
            csv_response(page.to_csv(currency)?)
        } else {
            axum::Json(page).into_response()
        })
    };
    result.await.unwrap_or_else(|e: PayError| e.into_response())
}

#[utoipa::path(get, path = "/v1/sellers/{id}/transactions",
    params(("id" = String, Path),
        ("currency" = String, Query, description = "ISO 4217 code"),
        ("from" = Option<String>, Query, description = "RFC 3339 time, or YYYY-MM-DD (from the start of that day)"),
        ("to" = Option<String>, Query, description = "RFC 3339 time (exclusive), or YYYY-MM-DD (to the end of that day)"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("after" = Option<u64>, Query, description = "The `next_after` of the previous page"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "The wallet's ledger entries, oldest first, read at a consistent cut",
            content((TransactionPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn seller_transactions(
    State(pay): PayState,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    transactions(&pay, Holder::Seller(Unchecked::new(id)), query).await
}

#[utoipa::path(get, path = "/v1/customers/{id}/transactions",
    params(("id" = String, Path),
        ("currency" = String, Query, description = "ISO 4217 code"),
        ("from" = Option<String>, Query, description = "RFC 3339 time, or YYYY-MM-DD"),
        ("to" = Option<String>, Query, description = "RFC 3339 time (exclusive), or YYYY-MM-DD (inclusive)"),
        ("limit" = Option<u32>, Query), ("after" = Option<u64>, Query),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "The wallet's ledger entries, oldest first",
            content((TransactionPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn customer_transactions(
    State(pay): PayState,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    transactions(&pay, Holder::Customer(Unchecked::new(id)), query).await
}

#[utoipa::path(get, path = "/v1/system_accounts/{name}/transactions",
    params(("name" = String, Path, description = "psp_clearing, bank, platform_revenue, payouts_in_transit or refunds_in_transit"),
        ("currency" = String, Query, description = "ISO 4217 code"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("limit" = Option<u32>, Query), ("after" = Option<u64>, Query),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "The platform account's ledger entries, oldest first",
            content((TransactionPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn system_transactions(
    State(pay): PayState,
    Path(name): Path<String>,
    query: RawQuery,
) -> Response {
    match system_code(&name) {
        Some(code) => transactions(&pay, Holder::System(code), query).await,
        None => PayError::not_found(
            "system account (the names are psp_clearing, bank, platform_revenue, \
             payouts_in_transit, refunds_in_transit)",
        )
        .into_response(),
    }
}

#[utoipa::path(get, path = "/v1/sellers/{id}/statement",
    params(("id" = String, Path),
        ("currency" = String, Query, description = "ISO 4217 code"),
        ("from" = String, Query, description = "RFC 3339 time, or YYYY-MM-DD (from the start of that day)"),
        ("to" = Option<String>, Query, description = "RFC 3339 time (exclusive), or YYYY-MM-DD (to the end of that day); default: now")),
    responses((status = 200, body = Statement, description = "Opening balance, pay-ins, fees, refunds, fee returns, payouts and closing balance, checked against the ledger's balance history (`adds_up`)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn seller_statement(
    State(pay): PayState,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    let result = async {
        let params = params(query, &["currency", "from", "to"])?;
        let currency = currency_param(&pay, &params)?;
        let statement = pay.statement(&id, currency.code, period(&params)?).await?;
        Ok((StatusCode::OK, statement))
    };
    respond(result.await)
}

#[utoipa::path(get, path = "/v1/reports/revenue",
    params(("currency" = String, Query, description = "ISO 4217 code"),
        ("from" = String, Query, description = "RFC 3339 time, or YYYY-MM-DD"),
        ("to" = Option<String>, Query, description = "RFC 3339 time (exclusive), or YYYY-MM-DD (inclusive); default: now"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "Platform fees less fee returns per UTC day, with totals",
            content((RevenueReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody)))]
pub async fn revenue(State(pay): PayState, query: RawQuery) -> Response {
    let result = async {
        let params = params(query, &["currency", "from", "to", "format"])?;
        let csv = wants_csv(&params)?;
        let currency = currency_param(&pay, &params)?;
        let report: RevenueReport = pay.revenue(currency.code, period(&params)?).await?;
        Ok(if csv {
            csv_response(report.to_csv(currency)?)
        } else {
            axum::Json(report).into_response()
        })
    };
    result.await.unwrap_or_else(|e: PayError| e.into_response())
}
