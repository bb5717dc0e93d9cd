//! Sellers with their balances and statements (shown, and as a CSV download), and payouts.

use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::view::{badge, empty, money, page, time_ms, word};
use super::{respond, DashState, SessionOf};
use crate::domain::model::{Payout, PayoutStatus, Seller};
use crate::domain::money::Currency;
use crate::error::PayError;
use crate::flows::lists::{ListQuery, NoStatus};
use crate::flows::reports::Period;

/// Sellers and payouts per page.
const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct After {
    after: Option<String>,
}

pub async fn list(state: DashState, session: SessionOf, Query(params): Query<After>) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let mut query = ListQuery::<NoStatus>::new(PAGE_SIZE);
            query.starting_after = params.after.filter(|a| !a.is_empty());
            let found = pay.list::<Seller>(&query).await?;
            let body = html! {
                @if found.data.is_empty() {
                    (empty("No sellers yet.", "Create one with POST /v1/sellers; it shows up here with its balances and statements."))
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Seller" } th { "Name" } th { "Payout schedule" } th { "Created" } } }
                        tbody { @for s in &found.data { tr {
                            td { a.mono href={ "/dashboard/sellers/" (s.id) } { (s.id) } }
                            td { (s.name) }
                            td { (word(&s.payout_schedule)) }
                            td { (time_ms(s.created_at)) }
                        } } }
                    } }
                }
                @if let Some(next) = found.next_starting_after.filter(|_| found.has_more) {
                    p { a.button href={ "/dashboard/sellers?after=" (next) } { "More sellers →" } }
                }
            };
            Ok(page("Sellers", &session, "/dashboard/sellers", body))
        }
        .await,
    )
}

pub async fn detail(state: DashState, session: SessionOf, Path(id): Path<String>) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let seller = pay.seller(&id).await?;
            let balances = pay.balances(&id).await?;
            let mut query = ListQuery::<PayoutStatus>::new(PAGE_SIZE);
            query.seller = Some(seller.id.clone());
            let payouts = pay.list::<Payout>(&query).await?;
            let today = chrono::Utc::now().date_naive();
            let month_ago = today - chrono::Duration::days(30);
            let body = html! {
                section.cards {
                    div.card { h2 { "Name" } p.big { (seller.name) } p.small { (seller.email) } }
                    @for b in &balances {
                        div.card.balance data-currency=(b.currency) {
                            h2 { "Balance " (b.currency) }
                            p.big.available { (money(u128::from(b.available), &b.currency)) }
                            p.small { "available · " span.pending { (money(u128::from(b.pending), &b.currency)) } " pending · "
                                (money(u128::from(b.incoming), &b.currency)) " incoming · "
                                (money(u128::from(b.held), &b.currency)) " held" }
                        }
                    }
                }
                h2 { "Statement" }
                form.filters method="get" action={ "/dashboard/sellers/" (seller.id) "/statement.csv" } {
                    select name="currency" aria-label="currency" {
                        @for c in &pay.currencies { option value=(c.code) { (c.code) } }
                    }
                    input type="date" name="from" value=(month_ago) aria-label="from";
                    input type="date" name="to" value=(today) aria-label="to";
                    button type="submit" { "Download CSV" }
                }
                h2 { "Payouts" }
                (payouts_table(&payouts.data))
            };
            Ok(page(&format!("Seller {}", seller.id), &session, "/dashboard/sellers", body))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct StatementParams {
    currency: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn statement(
    state: DashState,
    _session: SessionOf,
    Path(id): Path<String>,
    Query(params): Query<StatementParams>,
) -> Response {
    let pay = &state.0.pay;
    let result = async {
        let code = params.currency.as_deref().unwrap_or("");
        let currency: Currency = pay.currency(code)?;
        let period = Period::parse(params.from.as_deref(), params.to.as_deref())?;
        let statement = pay.statement(&id, currency.code, period).await?;
        statement.to_csv(currency)
    }
    .await;
    match result {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    // The id was checked by the flow: a well-formed id is safe in a header.
                    format!(
                        "attachment; filename=\"statement-{}.csv\"",
                        id_for_file(&id)
                    ),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(error) => super::error_page(&error),
    }
}

fn id_for_file(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn payouts_table(payouts: &[Payout]) -> maud::Markup {
    if payouts.is_empty() {
        return empty(
            "No payouts yet.",
            "Payouts run daily from available balances, or on POST /v1/payouts.",
        );
    }
    html! {
        div.scroll { table {
            thead { tr { th { "Payout" } th { "Seller" } th.num { "Amount" } th { "Status" } th { "Created" } th { "Failure" } } }
            tbody { @for p in payouts { tr {
                td.mono { (p.id) }
                td { a.mono href={ "/dashboard/sellers/" (p.seller_id) } { (p.seller_id) } }
                td.num { (money(u128::from(p.amount), &p.currency)) }
                td { (badge(&word(&p.status))) }
                td { (time_ms(p.created_at)) }
                td { @if let Some(f) = &p.failure { code { (f.code) } " " (f.message) } }
            } } }
        } }
    }
}

pub async fn payouts(
    state: DashState,
    session: SessionOf,
    Query(params): Query<After>,
) -> Response {
    let pay = &state.0.pay;
    let result: Result<_, PayError> = async {
        let mut query = ListQuery::<PayoutStatus>::new(PAGE_SIZE);
        query.starting_after = params.after.filter(|a| !a.is_empty());
        let found = pay.list::<Payout>(&query).await?;
        let body = html! {
            (payouts_table(&found.data))
            @if let Some(next) = found.next_starting_after.filter(|_| found.has_more) {
                p { a.button href={ "/dashboard/payouts?after=" (next) } { "Older payouts →" } }
            }
        };
        Ok(page("Payouts", &session, "/dashboard/payouts", body))
    }
    .await;
    respond(result)
}
