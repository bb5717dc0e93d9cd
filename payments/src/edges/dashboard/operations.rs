//! Operations: the reconciliation review queue with its "resolve" action, dead letters with
//! "retry", and the ledger cluster's nodes. Each action is audited with the signed-in key.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::view::{badge, csrf_field, empty, money, page, time_ms, word};
use super::{done, respond, DashState, Flash, SessionOf};

pub async fn reviews(state: DashState, session: SessionOf, Query(flash): Query<Flash>) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let items = pay.reviews(None).await?;
            let body = html! {
                (flash.show())
                @if items.is_empty() {
                    (empty("The review queue is empty.", "Reconciliation runs (POST /v1/reconciliations) put findings here that a person must look at."))
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Day" } th { "Reference" } th { "Kind" } th { "Finding" } th { "Detail" } th { "Found" } @if session.operator { th { "Resolve" } } } }
                        tbody { @for item in &items { tr.review {
                            td { (item.date) }
                            td.mono { (item.reference) }
                            td { (item.kind) }
                            td { (badge(&word(&item.class))) }
                            td { (item.detail) }
                            td { (time_ms(item.found_at)) }
                            @if session.operator { td {
                                form.inline method="post" action="/dashboard/reviews/resolve" {
                                    (csrf_field(&session))
                                    input type="hidden" name="key" value=(item.key);
                                    input type="text" name="note" required placeholder="what was done" aria-label="note";
                                    button.primary type="submit" { "Resolve" }
                                }
                            } }
                        } } }
                    } }
                }
            };
            Ok(page("Review queue", &session, "/dashboard/reviews", body))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    note: String,
}

pub async fn resolve(state: DashState, Form(form): Form<ResolveForm>) -> Response {
    let outcome = state
        .0
        .pay
        .resolve_review(&form.key, &form.note)
        .await
        .map(drop);
    done("/dashboard/reviews", "resolved", outcome)
}

pub async fn dead_letters(
    state: DashState,
    session: SessionOf,
    Query(flash): Query<Flash>,
) -> Response {
    let pay = &state.0.pay;
    respond(
        async {
            let letters = pay.dead_letters().await?;
            let body = html! {
                (flash.show())
                @if letters.is_empty() {
                    (empty("No dead letters.", "Orders, refunds and payouts whose retries ran out without an answer from the PSP land here; retry them once the PSP is back."))
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Object" } th { "Kind" } th.num { "Amount" } th.num { "Attempts" } th { "Reason" } th { "Updated" } @if session.operator { th { "Retry" } } } }
                        tbody { @for d in &letters { tr.dead-letter {
                            td.mono { (d.id) }
                            td { (word(&d.kind)) }
                            td.num { (money(u128::from(d.amount), &d.currency)) }
                            td.num { (d.attempts) }
                            td { @if let Some(r) = &d.reason { code { (r.code) } " " (r.message) } }
                            td { (time_ms(d.updated_at)) }
                            @if session.operator { td {
                                form.inline method="post" action={ "/dashboard/dead_letters/" (d.id) "/retry" } {
                                    (csrf_field(&session))
                                    button.primary type="submit" { "Retry" }
                                }
                            } }
                        } } }
                    } }
                }
            };
            Ok(page("Dead letters", &session, "/dashboard/dead_letters", body))
        }
        .await,
    )
}

pub async fn retry(state: DashState, Path(id): Path<String>) -> Response {
    let outcome = state.0.pay.retry_dead_letter(&id).await.map(drop);
    done("/dashboard/dead_letters", "retried", outcome)
}

pub async fn cluster(state: DashState, session: SessionOf) -> Response {
    let nodes = state.0.pay.cluster_status().await;
    let leader = nodes
        .iter()
        .find(|n| n.is_leader())
        .and_then(|n| n.status.as_ref().ok());
    let up = nodes.iter().filter(|n| n.status.is_ok()).count();
    let body = html! {
        section.cards {
            div.card { h2 { "Nodes up" } p.big { (up) " of " (nodes.len()) } }
            div.card { h2 { "Leader" } p.big { @match leader { Some(l) => { "node " (l.id) }, None => { "none" } } } }
            div.card { h2 { "Term" } p.big { (leader.map_or(0, |l| l.term)) } }
        }
        div.scroll { table {
            thead { tr { th { "Address" } th { "Node" } th { "State" } th { "Role" } th.num { "Term" } th.num { "Last log index" } th.num { "Applied index" } th.num { "Lag" } } }
            tbody { @for n in &nodes {
                @match &n.status {
                    Ok(s) => { tr.node data-state="up" {
                        td.mono { (n.addr) } td { (s.id) } td { (badge("up")) } td { (badge(&s.role)) }
                        td.num { (s.term) } td.num { (s.last_log_index) } td.num { (s.last_applied) }
                        td.num { @match n.lag { Some(lag) => { (lag) }, None => { "—" } } }
                    } }
                    Err(error) => { tr.node data-state="down" {
                        td.mono { (n.addr) } td { "?" } td { (badge("down")) }
                        td colspan="5" { span.small { "not answering: " (error) } }
                    } }
                }
            } }
        } }
        p.hint { "Each node is asked for its own Raft status; the lag is the leader's last log index less the node's applied index. Reload to refresh." }
    };
    respond(Ok(page("Cluster", &session, "/dashboard/cluster", body)))
}
