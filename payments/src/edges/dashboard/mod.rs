//! The web dashboard, served by tally-pay under `/dashboard`: server-rendered HTML (maud, which
//! escapes by default), one CSS file embedded in the binary, charts as inline SVG, no script and
//! nothing from a CDN. Like the API, every page is a thin shell over [`crate::flows::Pay`].
//!
//! Pages, one file per group: sign-in and sessions (`session`), the overview (`overview`),
//! payments with their orders, postings, events and the refund and capture actions
//! (`payments`), sellers with balances and statements, and payouts (`sellers`), the
//! disputes with the evidence form (`disputes`), the reconciliation review queue, dead letters
//! and the cluster (`operations`). The shared layout
//! and formatting are in `view`.

mod disputes;
mod events;
mod operations;
mod overview;
mod payments;
mod sellers;
pub mod session;
mod view;

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use crate::edges::auth::{TokenBuckets, Verifier};
use crate::error::PayError;
use crate::flows::Pay;
use session::Session;

/// What the dashboard's handlers share.
pub struct Dashboard {
    pub pay: Arc<Pay>,
    verifier: Verifier,
    /// Failed sign-ins per address, as for the API's failed authentications.
    login_failures: TokenBuckets,
}

type DashState = axum::extract::State<Arc<Dashboard>>;
type SessionOf = axum::Extension<Session>;

/// The dashboard's pages and actions, in the order of `docs/SECURITY.md`'s dashboard table.
/// Every path but the sign-in page and the style sheet is behind [`session::require_session`].
pub const PAGES: &[(&str, &str, &str)] = &[
    ("GET", "/dashboard/login", "public"),
    (
        "POST",
        "/dashboard/login",
        "public (a key holding `dashboard`)",
    ),
    ("GET", "/dashboard/static/dashboard.css", "public"),
    ("POST", "/dashboard/logout", "session"),
    ("GET", "/dashboard", "session"),
    ("GET", "/dashboard/payments", "session"),
    ("GET", "/dashboard/payments/{id}", "session"),
    ("POST", "/dashboard/orders/{id}/refund", "session, operator"),
    (
        "POST",
        "/dashboard/orders/{id}/capture",
        "session, operator",
    ),
    ("GET", "/dashboard/sellers", "session"),
    ("GET", "/dashboard/sellers/{id}", "session"),
    ("GET", "/dashboard/sellers/{id}/statement.csv", "session"),
    ("GET", "/dashboard/payouts", "session"),
    ("GET", "/dashboard/disputes", "session"),
    ("GET", "/dashboard/disputes/{id}", "session"),
    (
        "POST",
        "/dashboard/disputes/{id}/evidence",
        "session, operator",
    ),
    ("GET", "/dashboard/reviews", "session"),
    ("POST", "/dashboard/reviews/resolve", "session, operator"),
    ("GET", "/dashboard/dead_letters", "session"),
    (
        "POST",
        "/dashboard/dead_letters/{id}/retry",
        "session, operator",
    ),
    ("GET", "/dashboard/cluster", "session"),
];

pub fn router(pay: Arc<Pay>) -> Router {
    let api = &pay.config.api;
    let dash = Arc::new(Dashboard {
        verifier: Verifier::new(api),
        login_failures: TokenBuckets::new(
            api.auth_failures_per_minute,
            f64::from(api.auth_failures_per_minute) / 60.0,
        ),
        pay,
    });
    let signed_in = Router::new()
        .route("/dashboard/logout", post(session::logout))
        .route("/dashboard", get(overview::page))
        .route("/dashboard/payments", get(payments::list))
        .route("/dashboard/payments/{id}", get(payments::detail))
        .route("/dashboard/orders/{id}/refund", post(payments::refund))
        .route("/dashboard/orders/{id}/capture", post(payments::capture))
        .route("/dashboard/sellers", get(sellers::list))
        .route("/dashboard/sellers/{id}", get(sellers::detail))
        .route(
            "/dashboard/sellers/{id}/statement.csv",
            get(sellers::statement),
        )
        .route("/dashboard/payouts", get(sellers::payouts))
        .route("/dashboard/disputes", get(disputes::list))
        .route("/dashboard/disputes/{id}", get(disputes::detail))
        .route(
            "/dashboard/disputes/{id}/evidence",
            post(disputes::evidence),
        )
        .route("/dashboard/reviews", get(operations::reviews))
        .route("/dashboard/reviews/resolve", post(operations::resolve))
        .route("/dashboard/dead_letters", get(operations::dead_letters))
        .route(
            "/dashboard/dead_letters/{id}/retry",
            post(operations::retry),
        )
        .route("/dashboard/cluster", get(operations::cluster))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&dash),
            session::require_session,
        ));
    Router::new()
        .route(
            "/dashboard/login",
            get(session::login_page).post(session::login),
        )
        .route("/dashboard/static/dashboard.css", get(style))
        .merge(signed_in)
        .with_state(dash)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("dashboard.css"),
    )
        .into_response()
}

/// A page as the HTTP answer; pages are never cached (they show money).
fn html_page(markup: Markup) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                 frame-ancestors 'none'",
            ),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

/// An error as a page, with the API's status and message (messages never echo what was sent).
fn error_page(error: &PayError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!(%error, "dashboard page failed");
    }
    let body = html! {
        (view::notice("error", &error.to_string()))
        p { a href="/dashboard" { "Back to the overview" } }
    };
    (
        status,
        html_page(view::bare_page("Something went wrong", body)),
    )
        .into_response()
}

/// A page of a signed-in user, or the error page.
fn respond(result: Result<Markup, PayError>) -> Response {
    match result {
        Ok(markup) => html_page(markup),
        Err(error) => error_page(&error),
    }
}

/// What an action reports back, by code: the page after it shows the fixed text, so a link
/// cannot make the dashboard show text of its author's choosing.
const DONE_MESSAGES: &[(&str, &str)] = &[
    ("refunded", "Refund created."),
    ("captured", "Order captured."),
    (
        "evidence",
        "Evidence submitted; the dispute is under review.",
    ),
    ("resolved", "Review item resolved."),
    ("retried", "Dead letter handed back to the worker."),
];

/// After an action: back to `to` with the code of what was done, or the error page.
fn done(to: &str, code: &'static str, outcome: Result<(), PayError>) -> Response {
    match outcome {
        Ok(()) => {
            let separator = if to.contains('?') { '&' } else { '?' };
            axum::response::Redirect::to(&format!("{to}{separator}done={code}")).into_response()
        }
        Err(error) => error_page(&error),
    }
}

/// The `?done=` code of a page after an action.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Flash {
    done: Option<String>,
}

impl Flash {
    fn show(&self) -> Markup {
        let text = self.done.as_deref().and_then(|code| {
            DONE_MESSAGES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, text)| *text)
        });
        html! { @if let Some(text) = text { (view::notice("ok", text)) } }
    }
}

#[cfg(test)]
mod tests {
    /// `docs/SECURITY.md`'s dashboard table is [`super::PAGES`], row for row.
    #[test]
    fn security_doc_lists_every_dashboard_path() {
        let doc = include_str!("../../../../docs/SECURITY.md");
        let section = doc
            .split("### Dashboard")
            .nth(1)
            .and_then(|rest| rest.split("### ").next())
            .expect("docs/SECURITY.md has a Dashboard section");
        let documented: Vec<String> = section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(str::to_string)
            .collect();
        let code: Vec<String> = super::PAGES
            .iter()
            .map(|(method, path, access)| format!("| `{method}` | `{path}` | {access} |"))
            .collect();
        assert_eq!(documented, code);
    }

    /// Every page of the table is routed: the router answers each path (a page without a
    /// session is a redirect, never a 404 or 405).
    #[test]
    fn every_listed_page_is_routed() {
        let source = include_str!("mod.rs");
        for (method, path, _) in super::PAGES {
            let handler = if *method == "GET" { "get(" } else { "post(" };
            let declared = source
                .match_indices(&format!("\"{path}\""))
                .any(|(at, _)| source[at..].lines().take(3).any(|l| l.contains(handler)));
            assert!(declared, "{method} {path} is not routed");
        }
    }
}
