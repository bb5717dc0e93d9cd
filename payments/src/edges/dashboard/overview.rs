//! The overview: today's volume, success rate and fees, the sellers' pending and available
//! balances, and a chart of the volume per day, from the most recent payments.

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::{Duration, Utc};
use maud::{html, Markup};

use super::view::{bar_chart, empty, money, word};
use super::{respond, DashState, SessionOf};
use crate::domain::model::{Payment, Seller};
use crate::error::PayError;
use crate::flows::lists::{ListQuery, LIST_LIMIT_MAX};
use crate::flows::{Balance, Pay};

/// Payments the overview reads, newest first (pages of [`LIST_LIMIT_MAX`]).
pub const OVERVIEW_PAYMENTS_MAX: usize = 300;
/// Sellers whose balances the overview adds up.
pub const OVERVIEW_SELLERS_MAX: u32 = 50;
/// Days in the volume chart.
const CHART_DAYS: i64 = 14;

pub async fn page(state: DashState, session: SessionOf) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let payments = recent_payments(pay).await?;
            let balances = seller_balances(pay).await?;
            Ok(super::view::page(
                "Overview",
                &session,
                "/dashboard",
                render(pay, &payments, &balances),
            ))
        }
        .await,
    )
}

async fn recent_payments(pay: &Pay) -> Result<Vec<Payment>, PayError> {
    let mut payments = Vec::new();
    let mut query = ListQuery::new(LIST_LIMIT_MAX);
    loop {
        let page = pay.list::<Payment>(&query).await?;
        payments.extend(page.data);
        match page.next_starting_after {
            Some(next) if page.has_more && payments.len() < OVERVIEW_PAYMENTS_MAX => {
                query.starting_after = Some(next);
            }
            _ => break,
        }
    }
    payments.truncate(OVERVIEW_PAYMENTS_MAX);
    Ok(payments)
}

/// Available and pending balances per currency, summed over the newest sellers.
async fn seller_balances(pay: &Pay) -> Result<BTreeMap<String, (u64, u64)>, PayError> {
    let sellers = pay
        .list::<Seller>(&ListQuery::new(OVERVIEW_SELLERS_MAX))
        .await?;
    let balances: Vec<Result<Vec<Balance>, PayError>> =
        futures::future::join_all(sellers.data.iter().map(|s| pay.balances(s.id.as_ref()))).await;
    let mut totals = BTreeMap::new();
    for balance in balances
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
    {
        let entry: &mut (u64, u64) = totals.entry(balance.currency).or_default();
        entry.0 = entry.0.saturating_add(balance.available);
        entry.1 = entry.1.saturating_add(balance.pending);
    }
    Ok(totals)
}

/// Today's figures of one currency.
#[derive(Default)]
struct Today {
    volume: u128,
    fees: u128,
    succeeded: u32,
    failed: u32,
}

fn render(pay: &Pay, payments: &[Payment], balances: &BTreeMap<String, (u64, u64)>) -> Markup {
    let today = Utc::now().date_naive();
    let day_of = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive());
    let mut by_currency: BTreeMap<&str, Today> = BTreeMap::new();
    let chart_currency = pay.currencies.first().map_or("USD", |c| c.code);
    let mut per_day: BTreeMap<String, u128> = (0..CHART_DAYS)
        .rev()
        .map(|back| ((today - Duration::days(back)).to_string(), 0))
        .collect();
    for order in payments.iter().flat_map(|p| &p.orders) {
        let status = word(&order.status);
        let succeeded = status == "succeeded";
        if succeeded && order.currency == chart_currency {
            if let Some(day) = day_of(order.created_at).map(|d| d.to_string()) {
                if let Some(total) = per_day.get_mut(&day) {
                    *total += u128::from(order.amount);
                }
            }
        }
        if day_of(order.created_at) != Some(today) {
            continue;
        }
        let figures = by_currency.entry(order.currency.as_str()).or_default();
        if succeeded {
            figures.volume += u128::from(order.amount);
            figures.fees += u128::from(order.fee);
            figures.succeeded += 1;
        } else if status == "failed" || status == "dead_letter" {
            figures.failed += 1;
        }
    }
    let bars: Vec<(String, u128)> = per_day.into_iter().collect();
    html! {
        section.cards {
            @if by_currency.is_empty() {
                div.card { h2 { "Today" } p.big { "No payments yet today" } }
            }
            @for (currency, t) in &by_currency {
                div.card { h2 { "Volume today" } p.big { (money(t.volume, currency)) } }
                div.card {
                    h2 { "Success rate" }
                    p.big { (success_rate(t.succeeded, t.failed)) }
                    p.small { (t.succeeded) " succeeded, " (t.failed) " failed" }
                }
                div.card { h2 { "Fees today" } p.big { (money(t.fees, currency)) } }
            }
            @for (currency, (available, pending)) in balances {
                div.card {
                    h2 { "Seller balances " (currency) }
                    p.big { (money(u128::from(*available), currency)) }
                    p.small { "available · " (money(u128::from(*pending), currency)) " pending" }
                }
            }
        }
        @if payments.is_empty() {
            (empty("No payments yet.", "Create one with POST /v1/payments (see docs/PAYMENTS.md); \
                it shows up here and under Payments."))
        } @else {
            (bar_chart(&format!("Succeeded volume per day, {chart_currency}, last {CHART_DAYS} days (from the {} most recent payments)", payments.len()),
                &bars, |v| money(v, chart_currency)))
        }
    }
}

/// The share of succeeded orders among those with an outcome, in whole percent.
fn success_rate(succeeded: u32, failed: u32) -> String {
    let total = succeeded + failed;
    if total == 0 {
        return "—".into();
    }
    format!("{}%", u64::from(succeeded) * 100 / u64::from(total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn success_rate_is_a_whole_percentage() {
        assert_eq!(super::success_rate(0, 0), "—");
        assert_eq!(super::success_rate(2, 1), "66%");
        assert_eq!(super::success_rate(5, 0), "100%");
    }
}
