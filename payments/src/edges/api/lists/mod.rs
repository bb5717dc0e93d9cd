//! The list routes: `GET /v1/<objects>` for every listed kind of object, newest first, with
//! cursor pagination and filters. This module owns the query syntax (parsed here into a
//! [`ListQuery`], every bad parameter a 400 naming it in `param`) and the page's wire form
//! ([`ListPage`]); what a page reads is `flows::lists`.
//!
//! Query: `limit` (1 to 100, default 10), `starting_after` (an object id: the page starts
//! after it), `created[gte]`, `created[gt]`, `created[lte]`, `created[lt]` (Unix milliseconds,
//! as `created_at`), and per list `status`, `seller`, `customer`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::access::Routes;
use super::respond;
use crate::domain::disputes::Dispute;
use crate::domain::lists::ListFilter;
use crate::domain::model::{Customer, Order, Payment, Payout, Refund, Seller};
use crate::edges::auth::{Access, Scope};
use crate::error::{ErrorBody, PayError};
use crate::flows::billing::{Invoice, Subscription};
use crate::flows::lists::{ListQuery, Listed, Page, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use crate::flows::{parse_id, Pay};

type PayState = State<Arc<Pay>>;
type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The list routes. A new list is one line here, one handler below and its `Listed` impl.
pub fn routes() -> Routes {
    use Scope::*;
    let scope = Access::Scope;
    Routes::new()
        .get("/v1/customers", scope(CustomersRead), list_customers)
        .get("/v1/sellers", scope(SellersRead), list_sellers)
        .get("/v1/payments", scope(PaymentsRead), list_payments)
        .get(
            "/v1/payment_orders",
            scope(PaymentsRead),
            list_payment_orders,
        )
        .get("/v1/refunds", scope(RefundsRead), list_refunds)
        .get("/v1/payouts", scope(PayoutsRead), list_payouts)
        .get("/v1/invoices", scope(BillingRead), list_invoices)
        .get("/v1/subscriptions", scope(BillingRead), list_subscriptions)
        .get("/v1/disputes", scope(DisputesRead), list_disputes)
}

#[derive(OpenApi)]
#[openapi(paths(
    list_customers,
    list_sellers,
    list_payments,
    list_payment_orders,
    list_refunds,
    list_payouts,
    list_invoices,
    list_subscriptions,
    list_disputes
))]
pub struct ListsDoc;

/// One page of a list, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage<T> {
    /// Always `list`.
    pub object: &'static str,
    /// The path listed, e.g. `/v1/payouts`.
    pub url: &'static str,
    pub data: Vec<T>,
    /// Whether there may be more objects after this page: pass `next_starting_after` as
    /// `starting_after` for them.
    pub has_more: bool,
    /// With `has_more`: the id to continue after. It is the last object of `data` when the
    /// page is full; when a filtered request read its bound of index entries first, it is the
    /// last object examined (not in `data`), and `data` may hold fewer than `limit` objects,
    /// even none. Absent when `has_more` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_starting_after: Option<String>,
}

impl<T> ListPage<T> {
    fn of(url: &'static str, page: Page<T>) -> ListPage<T> {
        ListPage {
            object: "list",
            url,
            data: page.data,
            has_more: page.has_more,
            next_starting_after: page.next_starting_after,
        }
    }
}

/// The query parameters every list takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read by the OpenAPI document only; `parse_query` parses the query.
struct CommonParams {
    /// Objects per page, 1 to 100 (default 10).
    #[param(example = 2)]
    limit: Option<u32>,
    /// The id of an object of this list: the page starts with the next older one.
    #[param(example = "po_0123456789abcdef")]
    starting_after: Option<String>,
    /// Created at or after this time (Unix milliseconds).
    #[param(rename = "created[gte]", example = 1764720000000_i64)]
    created_gte: Option<i64>,
    /// Created after this time (Unix milliseconds).
    #[param(rename = "created[gt]")]
    created_gt: Option<i64>,
    /// Created at or before this time (Unix milliseconds).
    #[param(rename = "created[lte]")]
    created_lte: Option<i64>,
    /// Created before this time (Unix milliseconds).
    #[param(rename = "created[lt]", example = 1764806400000_i64)]
    created_lt: Option<i64>,
}

/// The parameters a list takes, by name.
fn allowed(filters: &[ListFilter]) -> Vec<&'static str> {
    let mut names = vec![
        "limit",
        "starting_after",
        "created[gte]",
        "created[gt]",
        "created[lte]",
        "created[lt]",
    ];
    for filter in filters {
        names.push(filter_name(*filter));
    }
    names
}

fn filter_name(filter: ListFilter) -> &'static str {
    match filter {
        ListFilter::Status => "status",
        ListFilter::Seller => "seller",
        ListFilter::Customer => "customer",
    }
}

/// A parameter name that is safe to repeat back: a few lowercase letters, `_` and brackets
/// (no digits, so never a card number).
fn echoable(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'[' || b == b']')
}

/// The query of a list of `T`, checked: every problem is a 400 naming the parameter.
fn parse_query<T: Listed>(query: RawQuery) -> Result<ListQuery<T::Status>, PayError> {
    let Query(pairs) = query.map_err(|e| {
        PayError::invalid("invalid_query", format!("query string: {}", e.body_text()))
    })?;
    let allowed = allowed(T::KIND.filters());
    let mut query = ListQuery::new(LIST_LIMIT_DEFAULT);
    let mut seen: Vec<&str> = Vec::new();
    let mut created = Created::default();
    for (name, value) in &pairs {
        let Some(name) = allowed.iter().copied().find(|a| a == name) else {
            return Err(unknown_parameter(name, &allowed));
        };
        if seen.contains(&name) {
            return Err(PayError::invalid_param(
                "duplicate_parameter",
                name,
                format!("`{name}` is given twice; give it once"),
            ));
        }
        seen.push(name);
        match name {
            "limit" => query.limit = parse_limit(value)?,
            "starting_after" => query.starting_after = Some(value.clone()),
            "status" => query.status = Some(parse_status::<T>(value)?),
            "seller" => query.seller = Some(parse_id("seller", value)?),
            "customer" => query.customer = Some(parse_id("customer", value)?),
            created_bound => created.set(created_bound, parse_time(created_bound, value)?)?,
        }
    }
    (query.created_gte, query.created_lte) = created.inclusive();
    Ok(query)
}

fn unknown_parameter(name: &str, allowed: &[&str]) -> PayError {
    let what = if echoable(name) {
        format!("unknown query parameter `{name}`")
    } else {
        "unknown query parameter".to_string()
    };
    let message = if name == "ending_before" {
        "`ending_before` is not supported: lists page forward only, newest first, with \
         `starting_after`"
            .to_string()
    } else {
        format!("{what}; this list takes {}", allowed.join(", "))
    };
    let error = PayError::invalid("unknown_parameter", message);
    if echoable(name) {
        error.with_param(name)
    } else {
        error
    }
}

fn parse_limit(value: &str) -> Result<u32, PayError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|limit| (1..=LIST_LIMIT_MAX).contains(limit))
        .ok_or_else(|| {
            PayError::invalid_param(
                "invalid_limit",
                "limit",
                format!("`limit` must be an integer from 1 to {LIST_LIMIT_MAX}"),
            )
        })
}

fn parse_status<T: Listed>(value: &str) -> Result<T::Status, PayError> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        PayError::invalid_param(
            "invalid_status",
            "status",
            format!(
                "`status` is not a status of a {}; see /openapi.json for the statuses",
                T::KIND.name()
            ),
        )
    })
}

fn parse_time(name: &'static str, value: &str) -> Result<i64, PayError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| {
            PayError::invalid_param(
                "invalid_time",
                name,
                format!("`{name}` must be a time in Unix milliseconds (a non-negative integer)"),
            )
        })
}

/// The created bounds as given: at most one lower and one upper.
#[derive(Default)]
struct Created {
    lower: Option<(&'static str, i64)>,
    upper: Option<(&'static str, i64)>,
}

impl Created {
    fn set(&mut self, name: &'static str, ms: i64) -> Result<(), PayError> {
        let slot = if name.starts_with("created[g") {
            &mut self.lower
        } else {
            &mut self.upper
        };
        if let Some((other, _)) = slot {
            return Err(PayError::invalid_param(
                "conflicting_parameters",
                name,
                format!("`{name}` and `{other}` bound the same side; give one of them"),
            ));
        }
        *slot = Some((name, ms));
        Ok(())
    }

    /// Inclusive bounds: `gt` is `gte` one millisecond later, `lt` is `lte` one earlier.
    fn inclusive(&self) -> (Option<i64>, Option<i64>) {
        let lower = self.lower.map(|(name, ms)| match name {
            "created[gt]" => ms.saturating_add(1),
            _ => ms,
        });
        // `created[lt]=0` gives -1: nothing (the flow returns an empty page).
        let upper = self.upper.map(|(name, ms)| match name {
            "created[lt]" => ms - 1,
            _ => ms,
        });
        (lower, upper)
    }
}

async fn list<T: Listed + Serialize>(pay: &Pay, url: &'static str, query: RawQuery) -> Response {
    let page = async {
        let query = parse_query::<T>(query)?;
        let page = pay.list::<T>(&query).await?;
        Ok((StatusCode::OK, ListPage::of(url, page)))
    };
    respond(page.await)
}

#[utoipa::path(get, path = "/v1/customers", params(CommonParams),
    responses((status = 200, body = ListPage<Customer>, description = "Customers, newest first",
        example = json!({"object": "list", "url": "/v1/customers", "has_more": true,
            "next_starting_after": "cus_0123456789abcdef",
            "data": [{"id": "cus_0123456789abcdef", "name": "Ada", "email": "ada@example.com",
                "created_at": 1764765432109_i64}]})),
        (status = 400, body = ErrorBody, example = json!({"error": {"type": "invalid_request_error",
            "code": "invalid_limit", "message": "`limit` must be an integer from 1 to 100",
            "param": "limit"}}))))]
pub async fn list_customers(State(pay): PayState, query: RawQuery) -> Response {
    list::<Customer>(&pay, "/v1/customers", query).await
}

#[utoipa::path(get, path = "/v1/sellers", params(CommonParams),
    responses((status = 200, body = ListPage<Seller>, description = "Sellers, newest first",
        example = json!({"object": "list", "url": "/v1/sellers", "has_more": false,
            "data": [{"id": "sel_0123456789abcdef", "name": "Alpha", "email": "alpha@example.com",
                "payout_schedule": "manual", "default_bank_account": "ba_0123456789abcdef",
                "created_at": 1764765432109_i64}]})),
        (status = 400, body = ErrorBody)))]
pub async fn list_sellers(State(pay): PayState, query: RawQuery) -> Response {
    list::<Seller>(&pay, "/v1/sellers", query).await
}

#[utoipa::path(get, path = "/v1/payments", params(CommonParams,
        ("status" = Option<crate::domain::model::PaymentStatus>, Query, description = "The payment's current status"),
        ("customer" = Option<String>, Query, description = "The paying customer's id")),
    responses((status = 200, body = ListPage<Payment>, description = "Payments with their orders, newest first",
        example = json!({"object": "list", "url": "/v1/payments", "has_more": true,
            "next_starting_after": "pay_0123456789abcdef",
            "data": [{"id": "pay_0123456789abcdef", "status": "succeeded",
                "customer_id": "cus_0123456789abcdef", "card_id": "card_0123456789abcdef",
                "currency": "USD", "amount": 1250, "created_at": 1764765432109_i64,
                "orders": [{"id": "ord_0123456789abcdef", "kind": "order", "payment_id": "pay_0123456789abcdef",
                "seller_id": "sel_0123456789abcdef", "customer_id": "cus_0123456789abcdef",
                "card_id": "card_0123456789abcdef", "amount": 1250, "currency": "USD", "fee": 61,
                "psp_fee": 66, "status": "succeeded", "failure": null, "psp_id": "ch_1",
                "refunded": 0, "refund_pending": 0, "fee_refunded": 0, "fee_refund_pending": 0,
                "attempts": 1, "next_attempt_at": 1764765437109_i64,
                "created_at": 1764765432109_i64, "updated_at": 1764765432409_i64}]}]})),
        (status = 400, body = ErrorBody)))]
pub async fn list_payments(State(pay): PayState, query: RawQuery) -> Response {
    list::<Payment>(&pay, "/v1/payments", query).await
}

#[utoipa::path(get, path = "/v1/payment_orders", params(CommonParams,
        ("status" = Option<crate::domain::model::ChargeStatus>, Query, description = "The order's current status"),
        ("seller" = Option<String>, Query, description = "The seller paid"),
        ("customer" = Option<String>, Query, description = "The paying customer")),
    responses((status = 200, body = ListPage<Order>, description = "Payment orders (not deposits), newest first",
        example = json!({"object": "list", "url": "/v1/payment_orders", "has_more": false,
            "data": [{"id": "ord_0123456789abcdef", "kind": "order", "payment_id": "pay_0123456789abcdef",
                "seller_id": "sel_0123456789abcdef", "customer_id": "cus_0123456789abcdef",
                "card_id": "card_0123456789abcdef", "amount": 1250, "currency": "USD", "fee": 61,
                "psp_fee": 66, "status": "succeeded", "failure": null, "psp_id": "ch_1",
                "refunded": 0, "refund_pending": 0, "fee_refunded": 0, "fee_refund_pending": 0,
                "attempts": 1, "next_attempt_at": 1764765437109_i64,
                "created_at": 1764765432109_i64, "updated_at": 1764765432409_i64}]})),
        (status = 400, body = ErrorBody, example = json!({"error": {"type": "invalid_request_error",
            "code": "invalid_id", "message": "`seller` must be an id like sel_0123456789abcdef",
            "param": "seller"}}))))]
pub async fn list_payment_orders(State(pay): PayState, query: RawQuery) -> Response {
    list::<Order>(&pay, "/v1/payment_orders", query).await
}

#[utoipa::path(get, path = "/v1/refunds", params(CommonParams,
        ("status" = Option<crate::domain::model::RefundStatus>, Query, description = "The refund's current status"),
        ("seller" = Option<String>, Query, description = "The seller refunding"),
        ("customer" = Option<String>, Query, description = "The customer refunded")),
    responses((status = 200, body = ListPage<Refund>, description = "Refunds, newest first",
        example = json!({"object": "list", "url": "/v1/refunds", "has_more": false,
            "data": [{"id": "re_0123456789abcdef", "order_id": "ord_0123456789abcdef",
                "seller_id": "sel_0123456789abcdef", "amount": 500, "currency": "USD",
                "fee_returned": 24, "reason": null, "status": "succeeded", "failure": null,
                "psp_id": "re_psp_1", "attempts": 1, "next_attempt_at": 1764765437109_i64,
                "created_at": 1764765432109_i64, "updated_at": 1764765432409_i64}]})),
        (status = 400, body = ErrorBody)))]
pub async fn list_refunds(State(pay): PayState, query: RawQuery) -> Response {
    list::<Refund>(&pay, "/v1/refunds", query).await
}

#[utoipa::path(get, path = "/v1/payouts", params(CommonParams,
        ("status" = Option<crate::domain::model::PayoutStatus>, Query, description = "The payout's current status", example = "paid"),
        ("seller" = Option<String>, Query, description = "The seller paid out", example = "sel_0123456789abcdef")),
    responses((status = 200, body = ListPage<Payout>, description = "Payouts, newest first",
        example = json!({"object": "list", "url": "/v1/payouts", "has_more": false,
            "data": [{"id": "po_0123456789abcdef", "seller_id": "sel_0123456789abcdef",
                "bank_account_id": "ba_0123456789abcdef", "amount": 5000, "currency": "USD",
                "trigger": "on_demand", "status": "paid", "failure": null,
                "psp_id": "po_psp_1", "attempts": 1, "next_attempt_at": 1764765434109_i64,
                "created_at": 1764765432109_i64, "updated_at": 1764765433109_i64}]})),
        (status = 400, body = ErrorBody, example = json!({"error": {"type": "invalid_request_error",
            "code": "invalid_status", "message": "`status` is not a status of a payout; see /openapi.json for the statuses",
            "param": "status"}}))))]
pub async fn list_payouts(State(pay): PayState, query: RawQuery) -> Response {
    list::<Payout>(&pay, "/v1/payouts", query).await
}

#[utoipa::path(get, path = "/v1/invoices", params(CommonParams,
        ("status" = Option<crate::domain::billing::InvoiceStatus>, Query, description = "The invoice's current status"),
        ("customer" = Option<String>, Query, description = "The subscribing customer")),
    responses((status = 200, body = ListPage<Invoice>, description = "Invoices, newest first",
        example = json!({"object": "list", "url": "/v1/invoices", "has_more": false,
            "data": [{"id": "inv_0123456789abcdef", "subscription_id": "sub_0123456789abcdef",
                "kind": "period", "period_index": 0, "period_start": 1764765432109_i64,
                "period_end": 1767443832109_i64, "currency": "USD", "amount": 1500,
                "credit_applied": 0, "amount_due": 1500, "status": "paid",
                "attempts": [{"payment_id": "pay_0123456789abcdef", "at": 1764765432109_i64,
                    "failure": null}],
                "first_failed_at": null, "next_retry_at": null,
                "paid_by": "pay_0123456789abcdef", "created_at": 1764765432109_i64}]})),
        (status = 400, body = ErrorBody)))]
pub async fn list_invoices(State(pay): PayState, query: RawQuery) -> Response {
    list::<Invoice>(&pay, "/v1/invoices", query).await
}

#[utoipa::path(get, path = "/v1/subscriptions", params(CommonParams,
        ("status" = Option<crate::domain::billing::SubscriptionStatus>, Query, description = "The subscription's current status"),
        ("customer" = Option<String>, Query, description = "The subscribing customer")),
    responses((status = 200, body = ListPage<Subscription>, description = "Subscriptions, newest first",
        example = json!({"object": "list", "url": "/v1/subscriptions", "has_more": false,
            "data": [{"id": "sub_0123456789abcdef", "customer_id": "cus_0123456789abcdef",
                "card_id": "card_0123456789abcdef", "plan_id": "plan_0123456789abcdef",
                "status": "active", "period_index": 0, "current_period_start": 1764765432109_i64,
                "current_period_end": 1767443832109_i64, "cancel_at_period_end": false,
                "credit": 0, "open_invoice": null, "invoice_count": 1, "canceled_at": null,
                "created_at": 1764765432109_i64}]})),
        (status = 400, body = ErrorBody)))]
pub async fn list_subscriptions(State(pay): PayState, query: RawQuery) -> Response {
    list::<Subscription>(&pay, "/v1/subscriptions", query).await
}

#[cfg(test)]
mod tests;

#[utoipa::path(get, path = "/v1/disputes", params(CommonParams,
        ("status" = Option<crate::domain::disputes::DisputeStatus>, Query, description = "The dispute's current status", example = "needs_response"),
        ("seller" = Option<String>, Query, description = "The seller of the disputed order", example = "sel_0123456789abcdef"),
        ("customer" = Option<String>, Query, description = "The customer who paid")),
    responses((status = 200, body = ListPage<Dispute>, description = "Disputes, newest first",
        example = json!({"object": "list", "url": "/v1/disputes", "has_more": false,
            "data": [{"id": "dsp_0123456789abcdef", "psp_id": "dp_4Xk2", "order_id": "ord_0123456789abcdef",
                "seller_id": "sel_0123456789abcdef", "customer_id": "cus_0123456789abcdef",
                "amount": 1000, "currency": "USD", "fee": 1500, "reason": "fraudulent",
                "status": "needs_response",
                "taken": {"amount": {"pending": 945, "wallet": 55, "loss": 0},
                          "fee": {"pending": 0, "wallet": 200, "loss": 1300}},
                "created_at": 1764765432109_i64, "updated_at": 1764765432109_i64}]})),
        (status = 400, body = ErrorBody)))]
pub async fn list_disputes(State(pay): PayState, query: RawQuery) -> Response {
    list::<Dispute>(&pay, "/v1/disputes", query).await
}
