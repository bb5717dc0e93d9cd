//! The HTTP JSON API (axum). Every handler is a thin shell over [`crate::flows::Pay`]; this
//! module owns the route declarations ([`routes`]: one per route), request parsing, the
//! `Idempotency-Key` wrapper (`keyed`), card-data screening, errors and the OpenAPI document.

pub mod access;
mod admin;
mod billing;
mod disputes;
mod events;
mod finance;
mod fx;
mod handlers;
mod keyed;
mod lists;
mod openapi;
mod screen;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::edges::auth::{Access, Scope};
use crate::error::PayError;
use crate::flows::Pay;

pub use access::{RouteAccess, Routes};
pub use keyed::{Idempotency, Key, KeyArgument, Keyed, KeyedFn, Reply};
pub use openapi::{document, ApiDoc};

/// Bytes of a request body.
pub const BODY_BYTES_MAX: usize = 256 * 1024;

/// The header that carries idempotency keys, and the one that marks a replayed response.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Every route, each declared once: method, path, access, the Idempotency-Key form of a POST
/// (`post_keyed`: required or optional; `post`: none), and handler. The order is the order of
/// `docs/SECURITY.md`'s scope table.
pub fn routes() -> Routes {
    use handlers as h;
    use Scope::*;
    let scope = Access::Scope;
    Routes::new()
        .get("/healthz", Access::Public, h::healthz)
        .get("/metrics", Access::Public, h::metrics)
        .get("/openapi.json", Access::Public, h::openapi)
        .post_keyed(
            "/v1/customers",
            scope(CustomersWrite),
            Keyed::optional(h::create_customer),
        )
        .get("/v1/customers/{id}", scope(CustomersRead), h::get_customer)
        .post_keyed(
            "/v1/customers/{id}/cards",
            scope(CustomersWrite),
            Keyed::optional(h::add_card),
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
        .post_keyed(
            "/v1/sellers",
            scope(SellersWrite),
            Keyed::optional(h::create_seller),
        )
        .get("/v1/sellers/{id}", scope(SellersRead), h::get_seller)
        .post_keyed(
            "/v1/sellers/{id}",
            scope(SellersWrite),
            Keyed::optional(h::update_seller),
        )
        // Bank account numbers may pass a Luhn check: only card field names are screened there.
        .post_keyed(
            "/v1/sellers/{id}/bank_accounts",
            scope(BankAccountsWrite),
            Keyed::optional(h::add_bank_account).scan(screen::Scan::ExceptBankNumbers),
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
        .post_keyed(
            "/v1/payments",
            scope(PaymentsWrite),
            Keyed::required(h::create_payment),
        )
        .get("/v1/payments/{id}", scope(PaymentsRead), h::get_payment)
        .get("/v1/payment_orders/{id}", scope(PaymentsRead), h::get_order)
        .post_keyed(
            "/v1/payment_orders/{id}/release",
            scope(PaymentsWrite),
            Keyed::optional(h::release_order),
        )
        .post_keyed(
            "/v1/payment_orders/{id}/capture",
            scope(PaymentsWrite),
            Keyed::optional(h::capture_order),
        )
        .post_keyed(
            "/v1/payment_orders/{id}/cancel",
            scope(PaymentsWrite),
            Keyed::optional(h::cancel_order),
        )
        .post_keyed(
            "/v1/deposits",
            scope(PaymentsWrite),
            Keyed::required(h::create_deposit),
        )
        .get("/v1/deposits/{id}", scope(PaymentsRead), h::get_deposit)
        .post_keyed(
            "/v1/refunds",
            scope(RefundsWrite),
            Keyed::required(h::create_refund),
        )
        .get("/v1/refunds/{id}", scope(RefundsRead), h::get_refund)
        .post_keyed(
            "/v1/payouts",
            scope(PayoutsWrite),
            Keyed::required(h::create_payout),
        )
        .post_keyed(
            "/v1/payouts/run_daily",
            scope(PayoutsWrite),
            Keyed::optional(h::run_daily_payouts),
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
        .merge(events::routes())
        .merge(fx::routes())
        .merge(lists::routes())
        .merge(disputes::routes())
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
            let field = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            return PayError::invalid_param(
                "invalid_body",
                field,
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
        // The path is made of the request type's own field names and indexes: safe to name.
        let param = (path != ".").then(|| path.clone());
        let error = PayError::invalid(
            "invalid_body",
            format!("request body: `{path}` {problem}; see /openapi.json for the schema"),
        );
        match param {
            Some(param) => error.with_param(param),
            None => error,
        }
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

fn respond<T: Serialize>(result: Result<(StatusCode, T), PayError>) -> Response {
    match result {
        Ok((status, value)) => (status, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    /// A body error names the field at fault in `param` (never a client's unknown key).
    #[test]
    fn body_errors_name_the_field() {
        use serde_json::json;
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Line {
            amount: u64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            name: String,
            lines: Vec<Line>,
        }
        let param = |body: serde_json::Value| {
            let error = super::parse_body::<Body>(&body).unwrap_err();
            error.param().map(str::to_string)
        };
        assert_eq!(param(json!({"lines": []})), Some("name".into()));
        assert_eq!(
            param(json!({"name": "a", "lines": [{"amount": "x"}]})),
            Some("lines[0].amount".into())
        );
        assert_eq!(
            param(json!({"name": "a", "lines": [{}]})),
            Some("lines[0].amount".into())
        );
        assert_eq!(param(json!({"name": "a", "lines": [], "4242": 1})), None);
    }

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
