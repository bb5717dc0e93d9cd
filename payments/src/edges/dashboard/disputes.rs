//! Disputes (chargebacks): the list filtered by status, a dispute's page (where its amount and
//! fee were taken from, what came back, the evidence), and the evidence form, which calls the
//! same flow as `POST /v1/disputes/{id}/evidence` (`Pay::submit_evidence`); the flow audits it
//! (`dispute.evidence`) as the signed-in key, which the session layer makes the audit actor.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::view::{badge, csrf_field, empty, money, page, time_ms, word};
use super::{done, respond, DashState, Flash, SessionOf};
use crate::domain::disputes::{Dispute, DisputeStatus, Evidence, Sources, EVIDENCE_TEXT_BYTES_MAX};
use crate::error::PayError;

/// Disputes per page of the list.
const PAGE_SIZE: u32 = 25;

/// The statuses the list's filter offers, in their order of life.
const STATUSES: &[&str] = &["needs_response", "under_review", "won", "lost"];

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    after: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn status_of(text: &str) -> Result<DisputeStatus, PayError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        PayError::invalid_param(
            "invalid_status",
            "status",
            "`status` is not a dispute status",
        )
    })
}

pub async fn list(
    state: DashState,
    session: SessionOf,
    Query(params): Query<ListParams>,
) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let mut query = crate::flows::lists::ListQuery::<DisputeStatus>::new(PAGE_SIZE);
            query.status = given(&params.status).map(status_of).transpose()?;
            query.starting_after = given(&params.after).map(String::from);
            let found = pay.list::<Dispute>(&query).await?;
            let body = html! {
                (filter_form(&params))
                @if found.data.is_empty() {
                    @if query.status.is_some() {
                        (empty("No disputes with this status.", "Choose another status, or any status, to see the other disputes."))
                    } @else {
                        (empty("No disputes.", "A dispute appears here when a card holder's bank disputes a succeeded charge and the PSP tells Tally by its webhook; the disputed amount and the PSP's fee are then taken from the seller."))
                    }
                } @else {
                    (disputes_table(&found.data))
                }
                @if let Some(next) = found.next_starting_after.filter(|_| found.has_more) {
                    p { a.button href=(next_page_link(&params, &next)) { "Older disputes →" } }
                }
            };
            Ok(page("Disputes", &session, "/dashboard/disputes", body))
        }
        .await,
    )
}

fn next_page_link(params: &ListParams, next: &str) -> String {
    let pairs: Vec<(&str, &str)> = [("status", given(&params.status)), ("after", Some(next))]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    format!(
        "/dashboard/disputes?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

fn filter_form(params: &ListParams) -> Markup {
    let status = given(&params.status).unwrap_or("");
    html! {
        form.filters method="get" action="/dashboard/disputes" {
            select name="status" aria-label="status" {
                option value="" { "Any status" }
                @for s in STATUSES { option value=(s) selected[*s == status] { (s.replace('_', " ")) } }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// A link to the payment of an order: the payments page's search opens it.
fn order_link(dispute: &Dispute) -> Markup {
    html! { a.mono href={ "/dashboard/payments?q=" (dispute.order_id) } { (dispute.order_id) } }
}

/// The sources something was taken from, in one line, naming only those that gave.
fn sources_line(sources: &Sources, currency: &str) -> String {
    let parts: Vec<String> = [
        ("pending", sources.pending),
        ("wallet", sources.wallet),
        ("loss", sources.loss),
    ]
    .into_iter()
    .filter(|(_, amount)| *amount > 0)
    .map(|(name, amount)| format!("{name} {}", money(u128::from(amount), currency)))
    .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(" · ")
    }
}

fn disputes_table(disputes: &[Dispute]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Dispute" } th { "Opened" } th.num { "Amount" } th { "Status" } th { "Reason" } th { "Seller" } th { "Order" } th { "Taken from" } } }
            tbody {
                @for d in disputes {
                    tr.dispute {
                        td { a.mono href={ "/dashboard/disputes/" (d.id) } { (d.id) } }
                        td { (time_ms(d.created_at)) }
                        td.num { (money(u128::from(d.amount), &d.currency)) }
                        td { (badge(&word(&d.status))) }
                        td { (d.reason) }
                        td { a.mono href={ "/dashboard/sellers/" (d.seller_id) } { (d.seller_id) } }
                        td { (order_link(d)) }
                        td.small {
                            (sources_line(&d.taken.amount, &d.currency))
                            @if d.taken.loss() > 0 {
                                " " span.badge.red title="what the seller could not cover, owed back as its recovery" {
                                    "seller short " (money(u128::from(d.taken.loss()), &d.currency))
                                }
                            }
                        }
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
            let dispute = pay.dispute(&id).await?;
            let title = format!("Dispute {}", dispute.id);
            let open = dispute.status == DisputeStatus::NeedsResponse;
            let body = html! {
                (flash.show())
                (summary(&dispute))
                h2 { "Taken from the seller" }
                (taken_table(&dispute))
                @if let Some(returned) = &dispute.returned {
                    h2 { "Returned" }
                    p { "To the loss account " (money(u128::from(returned.loss), &dispute.currency))
                        ", to the seller's wallet " (money(u128::from(returned.wallet), &dispute.currency)) "." }
                }
                h2 { "Evidence" }
                @match &dispute.evidence {
                    Some(evidence) => { (evidence_shown(evidence, dispute.evidence_submitted_at)) }
                    None => {
                        @if open && session.operator {
                            (evidence_form(&dispute, &session))
                        } @else if open {
                            (empty("No evidence yet.", "An operator (dashboard:operate) can submit the merchant's evidence while the dispute needs a response."))
                        } @else {
                            (empty("No evidence was submitted.", "Evidence is taken only while a dispute needs a response."))
                        }
                    }
                }
                p { a href="/dashboard/disputes" { "← All disputes" } }
            };
            Ok(page(&title, &session, "/dashboard/disputes", body))
        }
        .await,
    )
}

fn summary(d: &Dispute) -> Markup {
    html! {
        section.cards {
            div.card { h2 { "Amount" } p.big { (money(u128::from(d.amount), &d.currency)) } p.small { "PSP fee " (money(u128::from(d.fee), &d.currency)) } }
            div.card { h2 { "Status" } p.big #dispute-status { (badge(&word(&d.status))) } p.small { "reason: " (d.reason) } }
            div.card { h2 { "Seller" } p { a.mono href={ "/dashboard/sellers/" (d.seller_id) } { (d.seller_id) } } p.small { "customer " span.mono { (d.customer_id) } } }
            div.card { h2 { "Order" } p { (order_link(d)) } p.small { "PSP dispute " span.mono { (d.psp_id) } } }
            div.card { h2 { "Opened" } p { (time_ms(d.created_at)) } p.small { "updated " (time_ms(d.updated_at)) } }
        }
    }
}

fn taken_table(d: &Dispute) -> Markup {
    let row = |label: &str, s: &Sources| {
        html! {
            tr {
                td { (label) }
                td.num { (money(u128::from(s.pending), &d.currency)) }
                td.num { (money(u128::from(s.wallet), &d.currency)) }
                td.num { (money(u128::from(s.loss), &d.currency)) }
                td.num { (money(u128::from(s.total()), &d.currency)) }
            }
        }
    };
    html! {
        div.scroll { table {
            thead { tr { th { "" } th.num { "Order's pending share" } th.num { "Seller's wallet" } th.num { "Platform's loss account" } th.num { "Total" } } }
            tbody { (row("Amount", &d.taken.amount)) (row("PSP fee", &d.taken.fee)) }
        } }
        @if d.taken.loss() > 0 {
            p.hint { "The seller could not cover " (money(u128::from(d.taken.loss()), &d.currency))
                "; the platform's loss account paid it, and the seller's later pay-ins repay it." }
        }
    }
}

fn evidence_shown(evidence: &Evidence, at: Option<i64>) -> Markup {
    let fields = [
        ("Product description", &evidence.product_description),
        ("Customer communication", &evidence.customer_communication),
        ("Other", &evidence.uncategorized_text),
    ];
    html! {
        @if let Some(at) = at { p.small { "Submitted " (time_ms(at)) "." } }
        dl.evidence {
            @for (label, text) in fields {
                @if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
                    dt { (label) } dd { pre.wrap { (text) } }
                }
            }
        }
    }
}

fn evidence_form(d: &Dispute, session: &super::Session) -> Markup {
    let limit = EVIDENCE_TEXT_BYTES_MAX;
    html! {
        form.card.evidence method="post" action={ "/dashboard/disputes/" (d.id) "/evidence" } {
            p { "The merchant's answer, sent to the PSP once; the dispute is then under review. "
                "Give at least one of the three, each at most " (limit) " bytes." }
            (csrf_field(session))
            label for="product_description" { "Product description: what was sold, and how it was delivered" }
            textarea #product_description name="product_description" rows="4" maxlength=(limit) {}
            label for="customer_communication" { "Customer communication: what the customer and the seller wrote to each other" }
            textarea #customer_communication name="customer_communication" rows="4" maxlength=(limit) {}
            label for="uncategorized_text" { "Anything else" }
            textarea #uncategorized_text name="uncategorized_text" rows="4" maxlength=(limit) {}
            button.primary #submit-evidence type="submit" { "Submit evidence" }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EvidenceForm {
    #[serde(default)]
    product_description: String,
    #[serde(default)]
    customer_communication: String,
    #[serde(default)]
    uncategorized_text: String,
}

impl EvidenceForm {
    /// The evidence as the API takes it: an empty text area is a field not given.
    fn evidence(self) -> Evidence {
        let text = |t: String| {
            let t = t.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        Evidence {
            product_description: text(self.product_description),
            customer_communication: text(self.customer_communication),
            uncategorized_text: text(self.uncategorized_text),
        }
    }
}

pub async fn evidence(
    state: DashState,
    Path(id): Path<String>,
    Form(form): Form<EvidenceForm>,
) -> Response {
    match state.0.pay.submit_evidence(&id, form.evidence()).await {
        // The dispute's own id, never the path as sent.
        Ok(dispute) => done(
            &format!("/dashboard/disputes/{}", dispute.id),
            "evidence",
            Ok(()),
        ),
        Err(error) => super::error_page(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_areas_are_fields_not_given() {
        let form = EvidenceForm {
            product_description: "  shipped  ".into(),
            customer_communication: "   ".into(),
            uncategorized_text: String::new(),
        };
        assert_eq!(
            form.evidence(),
            Evidence {
                product_description: Some("shipped".into()),
                ..Evidence::default()
            }
        );
        assert!(EvidenceForm::default().evidence().check().is_err());
    }

    #[test]
    fn the_breakdown_names_only_the_sources_that_gave() {
        let sources = Sources {
            pending: 700,
            wallet: 0,
            loss: 300,
        };
        assert_eq!(sources_line(&sources, "USD"), "pending $7.00 · loss $3.00");
        assert_eq!(sources_line(&Sources::default(), "USD"), "—");
    }

    #[test]
    fn the_filter_offers_every_status() {
        for s in STATUSES {
            assert!(status_of(s).is_ok());
        }
        assert!(status_of("<b>").is_err());
    }
}
