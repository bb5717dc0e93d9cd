//! The HTTP JSON API (axum). Every handler is a thin shell over [`crate::flows::Pay`]; this
//! module owns request parsing, the `Idempotency-Key` protocol, card-data screening, errors and
//! the OpenAPI document.

pub mod access;
mod admin;
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
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::edges::auth::{Access, Scope};
use crate::edges::idempotency;
use crate::error::PayError;
use crate::flows::Pay;

pub use access::{RouteAccess, Routes};
pub use openapi::{document, ApiDoc};

/// Bytes of a request body.
pub const BODY_BYTES_MAX: usize = 256 * 1024;

/// The header that carries idempotency keys, and the one that marks a replayed response.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Every route with the access it requires: the one place a route and its scope are declared.
pub fn routes() -> Routes {
    use handlers as h;
    use Scope::*;
    let scope = Access::Scope;
    Routes::new()
        .get("/healthz", Access::Public, h::healthz)
        .get("/metrics", Access::Public, h::metrics)
        .get("/openapi.json", Access::Public, h::openapi)
        .post("/v1/customers", scope(CustomersWrite), h::create_customer)
        .get("/v1/customers/{id}", scope(CustomersRead), h::get_customer)
        .post(
            "/v1/customers/{id}/cards",
            scope(CustomersWrite),
            h::add_card,
        )
        .get(
            "/v1/customers/{id}/cards",
            scope(CustomersRead),
            h::list_cards,
        )
        .get(
            "/v1/customers/{id}/balance",
            scope(CustomersRead),
            h::customer_balance,
        )
        .post("/v1/sellers", scope(SellersWrite), h::create_seller)
        .get("/v1/sellers/{id}", scope(SellersRead), h::get_seller)
        .post(
            "/v1/sellers/{id}/bank_accounts",
            scope(BankAccountsWrite),
            h::add_bank_account,
        )
        .get(
            "/v1/sellers/{id}/bank_accounts",
            scope(SellersRead),
            h::list_bank_accounts,
        )
        .get(
            "/v1/sellers/{id}/balance",
            scope(SellersRead),
            h::seller_balance,
        )
        .post("/v1/payments", scope(PaymentsWrite), h::create_payment)
        .get("/v1/payments/{id}", scope(PaymentsRead), h::get_payment)
        .get("/v1/payment_orders/{id}", scope(PaymentsRead), h::get_order)
        .post("/v1/deposits", scope(PaymentsWrite), h::create_deposit)
        .get("/v1/deposits/{id}", scope(PaymentsRead), h::get_deposit)
        .post("/v1/refunds", scope(RefundsWrite), h::create_refund)
        .get("/v1/refunds/{id}", scope(RefundsRead), h::get_refund)
        .post("/v1/payouts", scope(PayoutsWrite), h::create_payout)
        .post(
            "/v1/payouts/run_daily",
            scope(PayoutsWrite),
            h::run_daily_payouts,
        )
        .get("/v1/payouts/{id}", scope(PayoutsRead), h::get_payout)
        .get(
            "/v1/dead_letters",
            scope(DeadLettersAdmin),
            h::list_dead_letters,
        )
        .post(
            "/v1/dead_letters/{id}/retry",
            scope(DeadLettersAdmin),
            h::retry_dead_letter,
        )
        .post("/v1/webhooks/psp", Access::Signed, h::psp_webhook)
        .merge(finance::routes())
        .merge(billing::routes())
        .merge(admin::routes())
}

pub fn router(pay: Arc<Pay>) -> Router {
    let guard = Arc::new(access::Guard::new(Arc::clone(&pay)));
    routes()
        .into_router()
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            access::authenticate,
        ))
        .with_state(pay)
}

/// Parses a JSON body after screening it for card data. The error names the field (a path of
/// the request type's own field names) and the kind of problem, never the value sent: serde's
/// messages quote values and unknown keys, which may be anything, a card number included.
fn parse_body<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, PayError> {
    serde_path_to_error::deserialize(body.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let problem = if inner.starts_with("missing field") {
            // The missing field's name is the request type's own, quoted in backticks.
            let name = inner.split('`').nth(1).unwrap_or("?");
            return PayError::invalid(
                "invalid_body",
                format!("request body: field `{name}` is required (at `{path}`)"),
            );
        } else if inner.starts_with("unknown field") {
            // The path ends with the client's key: name only the object that holds it.
            let holder = match path.rsplit_once('.') {
                Some((parent, _)) if !parent.is_empty() => format!("`{parent}`"),
                _ => "the body".to_string(),
            };
            return PayError::invalid(
                "invalid_body",
                format!("request body: {holder} has a field this request does not take; see /openapi.json for the schema"),
            );
        } else if inner.starts_with("invalid type") {
            "has a value of the wrong type"
        } else if inner.starts_with("unknown variant") {
            "is not one of the allowed values"
        } else {
            "is not valid"
        };
        PayError::invalid(
            "invalid_body",
            format!("request body: `{path}` {problem}; see /openapi.json for the schema"),
        )
    })
}

fn json_of(bytes: &Bytes) -> Result<serde_json::Value, PayError> {
    if bytes.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        PayError::invalid(
            "invalid_json",
            format!(
                "request body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
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

/// Runs a POST handler under the idempotency protocol. Every key and value is screened for card
/// numbers; with `screen_values` false the values of the bank number fields are not (they may
/// pass a Luhn check).
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
    let scan = if screen_values {
        screen::Scan::Everything
    } else {
        screen::Scan::ExceptBankNumbers
    };
    if let Err(e) = screen::reject_card_data(&body, scan) {
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
    // Stored under its hash: a key is client text and may be anything, a card number included.
    let record_key = idempotency::record_key(&key);
    let version = match idempotency::begin(
        &pay.store,
        &record_key,
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
    // Object ids derive from the key and the request together: a retry of the same request
    // finds what its first attempt made, while a different request under a key released after
    // a 5xx gets fresh ids, never the first request's object.
    let seed = idempotency::object_seed(&key, &fingerprint);
    let (status, value) = match run(body, Some(seed)).await {
        Ok((status, value)) => (status, serde_json::to_value(value).unwrap_or_default()),
        Err(e) => (
            e.status(),
            serde_json::to_value(e.body()).unwrap_or_default(),
        ),
    };
    let finished = idempotency::finish(&pay.store, &record_key, version, status.as_u16(), &value);
    if let Err(e) = finished.await {
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
    (status, axum::Json(value)).into_response()
}

fn respond<T: Serialize>(result: Result<(StatusCode, T), PayError>) -> Response {
    match result {
        Ok((status, value)) => (status, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    /// The scope table of `docs/SECURITY.md` is the code's, row for row.
    #[test]
    fn security_doc_table_matches_the_routes() {
        let doc = include_str!("../../../../docs/SECURITY.md");
        let table = doc
            .split("<!-- scope-table:begin -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- scope-table:end -->").next())
            .expect("docs/SECURITY.md has the scope table markers");
        let documented: Vec<(String, String, String)> = table
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<String> = line
                    .split('|')
                    .map(|cell| cell.trim().trim_matches('`').to_string())
                    .filter(|cell| !cell.is_empty())
                    .collect();
                (cells[0].clone(), cells[1].clone(), cells[2].clone())
            })
            .collect();
        let code: Vec<(String, String, String)> = super::routes()
            .table()
            .iter()
            .map(|r| {
                (
                    r.method.to_string(),
                    r.path.to_string(),
                    r.access.name().to_string(),
                )
            })
            .collect();
        assert_eq!(
            documented, code,
            "docs/SECURITY.md's scope table and the routes differ"
        );
    }
}
