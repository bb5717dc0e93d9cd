//! Payments: the list with search and filters, a payment's page (its orders, refunds, ledger
//! postings, PSP attempts, events and webhook deliveries), and the refund and capture actions,
//! each behind a confirmation page and idempotent (the form carries a random key made when the
//! page was shown, from which the flow derives the refund's id).

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::view::{badge, csrf_field, empty, money, page, time_ms, word};
use super::{done, respond, DashState, Flash, SessionOf};
use crate::domain::model::{Order, Payment, PaymentStatus, Refund, RefundStatus};
use crate::domain::money::{parse_amount, AmountInput, Currency};
use crate::error::PayError;
use crate::flows::events::EventFilter;
use crate::flows::lists::{ListQuery, LIST_LIMIT_MAX};
use crate::flows::reports::ObjectPosting;
use crate::flows::{NewRefund, Pay};

/// Payments per page of the list.
const PAGE_SIZE: u32 = 25;
/// Events shown per object on a payment's page.
const EVENTS_PER_OBJECT_MAX: u32 = 20;

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    status: Option<String>,
    seller: Option<String>,
    customer: Option<String>,
    after: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub async fn list(
    state: DashState,
    session: SessionOf,
    Query(params): Query<ListParams>,
) -> Response {
    let pay = &state.0.pay;
    // A search for an id goes straight to its payment.
    if let Some(q) = given(&params.q) {
        return match find(pay, q).await {
            Ok(id) => Redirect::to(&format!("/dashboard/payments/{id}")).into_response(),
            Err(error) => super::error_page(&error),
        };
    }
    respond(
        async {
            let mut query = ListQuery::<PaymentStatus>::new(PAGE_SIZE);
            query.status = given(&params.status).map(status_of).transpose()?;
            query.seller = given(&params.seller).map(|s| parse("seller", s)).transpose()?;
            query.customer = given(&params.customer).map(|c| parse("customer", c)).transpose()?;
            query.starting_after = given(&params.after).map(String::from);
            let found = pay.list::<Payment>(&query).await?;
            let filtered = query.status.is_some() || query.seller.is_some() || query.customer.is_some();
            let body = html! {
                (search_form(&params))
                @if found.data.is_empty() {
                    @if filtered {
                        (empty("No payments match these filters.", "Clear the filters to see every payment."))
                    } @else {
                        (empty("No payments yet.", "Payments created with POST /v1/payments show up here, newest first."))
                    }
                } @else {
                    (payments_table(&found.data))
                }
                @if let Some(next) = found.next_starting_after.filter(|_| found.has_more) {
                    p { a.button href=(next_page_link(&params, &next)) { "Older payments →" } }
                }
            };
            Ok(page("Payments", &session, "/dashboard/payments", body))
        }
        .await,
    )
}

fn parse<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, PayError> {
    text.parse().map_err(|_| {
        PayError::invalid_param(
            "invalid_id",
            field,
            format!("`{field}` is not a well-formed id"),
        )
    })
}

fn status_of(text: &str) -> Result<PaymentStatus, PayError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        PayError::invalid_param(
            "invalid_status",
            "status",
            "`status` is not a payment status",
        )
    })
}

/// The payment a search names: a payment id, or an order id (its payment).
async fn find(pay: &Pay, q: &str) -> Result<String, PayError> {
    if q.starts_with("pay_") {
        return Ok(pay.payment(q).await?.id.to_string());
    }
    if q.starts_with("ord_") {
        let order = pay.order(q).await?;
        if let Some(payment) = order.payment_id {
            return Ok(payment.to_string());
        }
    }
    Err(PayError::invalid_param(
        "invalid_search",
        "q",
        "search by a payment id (pay_…) or a payment order id (ord_…)",
    ))
}

fn next_page_link(params: &ListParams, next: &str) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("status", given(&params.status)),
        ("seller", given(&params.seller)),
        ("customer", given(&params.customer)),
        ("after", Some(next)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    format!(
        "/dashboard/payments?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

const STATUSES: &[&str] = &[
    "processing",
    "succeeded",
    "failed",
    "partially_succeeded",
    "requires_attention",
    "requires_capture",
    "canceled",
];

fn search_form(params: &ListParams) -> Markup {
    let status = given(&params.status).unwrap_or("");
    html! {
        form.filters method="get" action="/dashboard/payments" {
            input #search type="search" name="q" placeholder="Find by id: pay_… or ord_…" aria-label="payment or order id";
            button.primary type="submit" { "Find" }
        }
        form.filters method="get" action="/dashboard/payments" {
            select name="status" aria-label="status" {
                option value="" { "Any status" }
                @for s in STATUSES { option value=(s) selected[*s == status] { (s.replace('_', " ")) } }
            }
            input type="text" name="seller" placeholder="seller sel_…" value=[given(&params.seller)] aria-label="seller";
            input type="text" name="customer" placeholder="customer cus_…" value=[given(&params.customer)] aria-label="customer";
            button type="submit" { "Filter" }
        }
    }
}

fn payments_table(payments: &[Payment]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Payment" } th { "Created" } th.num { "Amount" } th { "Status" } th { "Customer" } th { "Orders" } } }
            tbody {
                @for p in payments {
                    tr {
                        td { a.mono href={ "/dashboard/payments/" (p.id) } { (p.id) } }
                        td { (time_ms(p.created_at)) }
                        td.num { (money(u128::from(p.amount), &p.currency)) }
                        td { (badge(&word(&p.status))) }
                        td.mono { (p.customer_id) }
                        td { (p.orders.len()) }
                    }
                }
            }
        } }
    }
}

pub async fn detail(
    state: DashState,
    session: SessionOf,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let payment = pay.payment(&id).await?;
            let mut postings = Vec::new();
            let mut refunds = Vec::new();
            for order in &payment.orders {
                postings.push((order.id.to_string(), pay.object_postings(order.id.as_str()).await?));
                refunds.extend(refunds_of(pay, order).await?);
            }
            let events = events_of(pay, &payment).await?;
            let title = format!("Payment {}", payment.id);
            let body = html! {
                (flash.show())
                (summary(&payment))
                h2 { "Orders" }
                (orders_table(&payment.orders))
                @if session.operator { (actions(&payment.orders, &session)) }
                h2 { "Refunds" }
                @if refunds.is_empty() { (empty("No refunds.", "Refund part or all of a succeeded order with its Refund button.")) }
                @else { (refunds_table(&refunds)) }
                h2 { "Ledger postings" }
                (postings_table(&postings))
                h2 { "PSP attempts" }
                (psp_table(&payment.orders))
                h2 { "Events and webhook deliveries" }
                (super::events::events_table(&events))
            };
            Ok(page(&title, &session, "/dashboard/payments", body))
        }
        .await,
    )
}

fn summary(payment: &Payment) -> Markup {
    html! {
        section.cards {
            div.card { h2 { "Amount" } p.big { (money(u128::from(payment.amount), &payment.currency)) } }
            div.card { h2 { "Status" } p.big { (badge(&word(&payment.status))) } }
            div.card { h2 { "Customer" } p.mono { (payment.customer_id) } p.small { "card " (payment.card_id) } }
            div.card { h2 { "Created" } p { (time_ms(payment.created_at)) } }
        }
    }
}

fn orders_table(orders: &[Order]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Order" } th { "Seller" } th.num { "Amount" } th.num { "Fee" } th.num { "Refunded" } th { "Status" } } }
            tbody {
                @for o in orders {
                    tr {
                        td.mono { (o.id) }
                        td { @if let Some(s) = &o.seller_id { a.mono href={ "/dashboard/sellers/" (s) } { (s) } } }
                        td.num { (money(u128::from(o.amount), &o.currency)) }
                        td.num { (money(u128::from(o.fee), &o.currency)) }
                        td.num.refunded { (money(u128::from(o.refunded), &o.currency)) }
                        td { (badge(&word(&o.status))) }
                    }
                }
            }
        } }
    }
}

/// What is left to refund of an order.
fn refundable(order: &Order) -> u64 {
    if word(&order.status) != "succeeded" {
        return 0;
    }
    order
        .amount
        .saturating_sub(order.refunded)
        .saturating_sub(order.refund_pending)
}

fn actions(orders: &[Order], session: &super::Session) -> Markup {
    let key = || hex::encode(rand::random::<[u8; 16]>());
    html! {
        @for o in orders {
            @let left = refundable(o);
            @if left > 0 {
                form.action method="post" action={ "/dashboard/orders/" (o.id) "/refund" } {
                    (csrf_field(session))
                    input type="hidden" name="key" value=(key());
                    input type="hidden" name="step" value="review";
                    label { "Refund " span.mono { (o.id) } " (up to " (money(u128::from(left), &o.currency)) ")" }
                    input.refund-amount type="text" name="amount" inputmode="decimal" placeholder="amount, blank for all" aria-label="refund amount";
                    input type="text" name="reason" placeholder="reason (optional)" aria-label="reason";
                    button.danger type="submit" { "Refund…" }
                }
            }
            @if word(&o.status) == "requires_capture" {
                form.action method="post" action={ "/dashboard/orders/" (o.id) "/capture" } {
                    (csrf_field(session))
                    input type="hidden" name="step" value="review";
                    label { "Capture " span.mono { (o.id) } }
                    input type="text" name="amount" inputmode="decimal" placeholder="amount, blank for all" aria-label="capture amount";
                    button.primary type="submit" { "Capture…" }
                }
            }
        }
    }
}

/// The refunds of `order`, from its seller's newest refunds.
async fn refunds_of(pay: &Pay, order: &Order) -> Result<Vec<Refund>, PayError> {
    let Some(seller) = &order.seller_id else {
        return Ok(Vec::new());
    };
    if order.refunded == 0 && order.refund_pending == 0 {
        return Ok(Vec::new());
    }
    let mut query = ListQuery::<RefundStatus>::new(LIST_LIMIT_MAX);
    query.seller = Some(seller.clone());
    let page = pay.list::<Refund>(&query).await?;
    Ok(page
        .data
        .into_iter()
        .filter(|r| r.order_id.as_str() == order.id.as_str())
        .collect())
}

fn refunds_table(refunds: &[Refund]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Refund" } th { "Order" } th.num { "Amount" } th { "Status" } th { "Created" } th { "Reason" } } }
            tbody {
                @for r in refunds {
                    tr {
                        td.mono { (r.id) } td.mono { (r.order_id) }
                        td.num { (money(u128::from(r.amount), &r.currency)) }
                        td { (badge(&word(&r.status))) }
                        td { (time_ms(r.created_at)) }
                        td { (r.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        } }
    }
}

fn postings_table(postings: &[(String, Vec<ObjectPosting>)]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Order" } th { "Leg" } th { "Kind" } th { "Debit" } th { "Credit" } th.num { "Minor units" } th { "Status" } th { "Time" } } }
            tbody {
                @for (order, list) in postings {
                    @for p in list {
                        tr {
                            td.mono { (order) } td { (p.leg) } td { (p.kind) }
                            td.mono { (p.debit_account) } td.mono { (p.credit_account) }
                            td.num { (p.amount) } td { (badge(&word(&p.status))) } td { (p.time) }
                        }
                    }
                }
            }
        } }
    }
}

fn psp_table(orders: &[Order]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Order" } th { "PSP charge" } th.num { "Attempts" } th.num { "PSP fee" } th { "Last update" } th { "Failure" } } }
            tbody {
                @for o in orders {
                    tr {
                        td.mono { (o.id) }
                        td.mono { (o.psp_id.as_deref().unwrap_or("—")) }
                        td.num { (o.attempts) }
                        td.num { (money(u128::from(o.psp_fee), &o.currency)) }
                        td { (time_ms(o.updated_at)) }
                        td { @if let Some(f) = &o.failure { code { (f.code) } " " (f.message) } }
                    }
                }
            }
        } }
    }
}

async fn events_of(pay: &Pay, payment: &Payment) -> Result<Vec<super::events::EventRow>, PayError> {
    let mut ids = vec![payment.id.to_string()];
    ids.extend(payment.orders.iter().map(|o| o.id.to_string()));
    let mut rows = Vec::new();
    for id in ids {
        let filter = EventFilter {
            kind: None,
            object_id: Some(id),
        };
        for event in pay
            .list_events(&filter, EVENTS_PER_OBJECT_MAX, None)
            .await?
            .data
        {
            let deliveries = pay.event_deliveries(&event.id).await?;
            rows.push(super::events::EventRow { event, deliveries });
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.event.created_at));
    Ok(rows)
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    step: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

impl ActionForm {
    fn amount_input(&self) -> Option<AmountInput> {
        let amount = self.amount.trim();
        (!amount.is_empty()).then(|| AmountInput {
            amount: None,
            amount_decimal: Some(amount.to_string()),
        })
    }
}

fn currency_of(order: &Order) -> Result<Currency, PayError> {
    Currency::by_code(&order.currency).ok_or_else(|| {
        PayError::Internal(format!(
            "order {} has currency {}",
            order.id, order.currency
        ))
    })
}

/// What the confirmation page says will be moved.
fn stated_amount(order: &Order, form: &ActionForm, all: u64) -> Result<String, PayError> {
    let minor = match form.amount_input() {
        Some(input) => parse_amount(&input, currency_of(order)?)
            .map_err(|e| PayError::invalid_param("invalid_amount", "amount", e.to_string()))?,
        None => all,
    };
    Ok(money(u128::from(minor), &order.currency))
}

pub async fn refund(
    state: DashState,
    session: SessionOf,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let pay = &state.0.pay;
    let order = match pay.order(&id).await {
        Ok(order) => order,
        Err(error) => return super::error_page(&error),
    };
    let back = order.payment_id.as_ref().map_or_else(
        || "/dashboard/payments".to_string(),
        |p| format!("/dashboard/payments/{p}"),
    );
    if form.key.len() != 32 || !form.key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return super::error_page(&PayError::invalid(
            "invalid_form",
            "the form is incomplete; reload the payment's page",
        ));
    }
    if form.step != "confirm" {
        return respond(
            stated_amount(&order, &form, refundable(&order)).map(|amount| {
                confirm_page(
                    &session,
                    "Refund",
                    &format!("Refund {amount} of order {}?", order.id),
                    "The money goes back to the customer's card; this cannot be undone.",
                    &format!("/dashboard/orders/{}/refund", order.id),
                    &form,
                    &back,
                )
            }),
        );
    }
    let mut request = serde_json::json!({ "order_id": order.id.to_string() });
    if let Some(input) = form.amount_input() {
        request["amount_decimal"] = serde_json::Value::from(input.amount_decimal);
    }
    if !form.reason.trim().is_empty() {
        request["reason"] = serde_json::Value::from(form.reason.trim());
    }
    let outcome = async {
        let request: NewRefund = serde_json::from_value(request)
            .map_err(|_| PayError::invalid("invalid_form", "the refund form is not valid"))?;
        pay.create_refund(request, &format!("dashboard/{}", form.key))
            .await
            .map(drop)
    }
    .await;
    done(&back, "refunded", outcome)
}

pub async fn capture(
    state: DashState,
    session: SessionOf,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let pay = &state.0.pay;
    let order = match pay.order(&id).await {
        Ok(order) => order,
        Err(error) => return super::error_page(&error),
    };
    let back = order.payment_id.as_ref().map_or_else(
        || "/dashboard/payments".to_string(),
        |p| format!("/dashboard/payments/{p}"),
    );
    if form.step != "confirm" {
        return respond(stated_amount(&order, &form, order.amount).map(|amount| {
            confirm_page(
                &session,
                "Capture",
                &format!("Capture {amount} of order {}?", order.id),
                "The rest of the authorization, if any, is released.",
                &format!("/dashboard/orders/{}/capture", order.id),
                &form,
                &back,
            )
        }));
    }
    let outcome = pay
        .capture_order(order.id.as_str(), form.amount_input().as_ref())
        .await
        .map(drop);
    done(&back, "captured", outcome)
}

fn confirm_page(
    session: &super::Session,
    title: &str,
    question: &str,
    consequence: &str,
    action: &str,
    form: &ActionForm,
    back: &str,
) -> Markup {
    let body = html! {
        form.card.confirm method="post" action=(action) {
            p.big { (question) }
            p { (consequence) }
            (csrf_field(session))
            input type="hidden" name="step" value="confirm";
            input type="hidden" name="key" value=(form.key);
            input type="hidden" name="amount" value=(form.amount.trim());
            input type="hidden" name="reason" value=(form.reason.trim());
            button.danger #confirm type="submit" { "Confirm " (title.to_lowercase()) }
            " "
            a.button href=(back) { "Cancel" }
        }
    };
    page(title, session, "/dashboard/payments", body)
}
