//! The 3-D Secure challenge pages, which the customer's browser opens at a charge's
//! `next_action_url`: plain HTML, no API key (whoever holds the random challenge URL answers
//! it), no injected faults.
//!
//! - `GET /3ds/{challenge}` -> the page: the charge's amount and description, and two forms,
//!   "Complete" (`POST /3ds/{challenge}/complete`) and "Fail" (`POST /3ds/{challenge}/fail`);
//!   once the charge is past its challenge, how it stands instead
//! - `POST /3ds/{challenge}/complete`, `POST /3ds/{challenge}/fail` -> the page of the outcome
//!   (the form's body, if any, is ignored)
//!
//! An unknown challenge is a 404 page. Every text shown is HTML-escaped.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Reference, Shared};
use crate::model::{Answer, Challenge, ChargeRecord};
use crate::sandbox::{now, Sandbox};
use crate::wire::ChargeStatus;

pub(super) async fn show(State(sandbox): Shared, challenge: Reference) -> Response {
    let Ok(axum::extract::Path(id)) = challenge else {
        return not_found();
    };
    let model = sandbox.lock();
    match model.challenge(&id) {
        Some((challenge, record)) => page(StatusCode::OK, &body(challenge, record, now())),
        None => not_found(),
    }
}

pub(super) async fn complete(State(sandbox): Shared, challenge: Reference) -> Response {
    answer(&sandbox, challenge, Answer::Complete)
}

pub(super) async fn fail(State(sandbox): Shared, challenge: Reference) -> Response {
    answer(&sandbox, challenge, Answer::Fail)
}

fn answer(sandbox: &Arc<Sandbox>, challenge: Reference, answer: Answer) -> Response {
    let Ok(axum::extract::Path(id)) = challenge else {
        return not_found();
    };
    let at = now();
    let answered = sandbox.lock().answer_challenge(&id, answer, at);
    let Ok(outcome) = answered else {
        return not_found();
    };
    sandbox.apply(outcome.effects);
    let model = sandbox.lock();
    match model.challenge(&id) {
        Some((challenge, record)) => page(StatusCode::OK, &body(challenge, record, at)),
        None => not_found(),
    }
}

/// The page's body: the forms while the challenge is open, else how its charge stands.
fn body(
    challenge: &Challenge,
    record: &ChargeRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let charge = &record.charge;
    let summary = format!(
        "<p>Charge <code>{}</code>: {} {} (minor units). {}</p>",
        escape(&charge.reference),
        charge.amount,
        escape(&charge.currency),
        escape(&record.description),
    );
    let open = matches!(charge.status, ChargeStatus::RequiresAction { .. })
        && now.timestamp() < challenge.expires_at;
    if !open {
        let outcome = match &charge.status {
            ChargeStatus::RequiresAction { .. } => "expired (the charge fails)".to_owned(),
            status => format!(
                "over: the charge is <strong>{}</strong>",
                status_word(status)
            ),
        };
        return format!("{summary}\n<p id=\"outcome\">This challenge is {outcome}.</p>");
    }
    let expires = chrono::DateTime::from_timestamp(challenge.expires_at, 0)
        .map(|at| at.to_rfc3339())
        .unwrap_or_default();
    // Relative actions: they work under whatever public URL the page was reached at.
    let id = escape(&challenge.id);
    format!(
        "{summary}\n<p>Answer before {expires}.</p>\n\
         <form method=\"post\" action=\"{id}/complete\"><button type=\"submit\">Complete</button></form>\n\
         <form method=\"post\" action=\"{id}/fail\"><button type=\"submit\">Fail</button></form>"
    )
}

fn status_word(status: &ChargeStatus) -> &'static str {
    match status {
        ChargeStatus::Authorized => "authorized",
        ChargeStatus::Succeeded => "succeeded",
        ChargeStatus::Failed { .. } => "failed",
        ChargeStatus::Canceled => "canceled",
        ChargeStatus::RequiresAction { .. } => "requires_action",
    }
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "<p id=\"outcome\">No such 3-D Secure challenge.</p>",
    )
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>3-D Secure test challenge</title></head>\n<body>\n\
         <h1>3-D Secure test challenge (sandbox PSP)</h1>\n{body}\n</body></html>\n"
    );
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'",
        ),
    ];
    (status, headers, html).into_response()
}

/// Text made safe to put in HTML, in an element or an attribute.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Charge;

    fn record(description: &str, status: ChargeStatus) -> ChargeRecord {
        ChargeRecord {
            charge: Charge {
                psp_id: "ch_1".to_owned(),
                reference: "ord_<1>".to_owned(),
                amount: 1250,
                currency: "USD".to_owned(),
                status,
                fee: 0,
                created: 0,
            },
            description: description.to_owned(),
            amount_refunded: 0,
            dispute_at_capture: false,
        }
    }

    fn challenge() -> Challenge {
        Challenge {
            id: "3ds_abc".to_owned(),
            reference: "ord_<1>".to_owned(),
            capture: true,
            expires_at: 100,
        }
    }

    fn at(seconds: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn an_open_challenge_shows_both_forms_and_escapes_what_it_shows() {
        let waiting = ChargeStatus::RequiresAction {
            next_action_url: "http://x/3ds/3ds_abc".to_owned(),
        };
        let html = body(&challenge(), &record("<script>\"x\"&'", waiting), at(99));
        assert!(html.contains(r#"action="3ds_abc/complete""#), "{html}");
        assert!(html.contains(r#"action="3ds_abc/fail""#), "{html}");
        assert!(html.contains("ord_&lt;1&gt;"), "{html}");
        assert!(
            html.contains("&lt;script&gt;&quot;x&quot;&amp;&#39;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn a_closed_challenge_shows_its_outcome_and_no_form() {
        let waiting = ChargeStatus::RequiresAction {
            next_action_url: "http://x/3ds/3ds_abc".to_owned(),
        };
        let expired = body(&challenge(), &record("", waiting), at(100));
        assert!(
            expired.contains("expired") && !expired.contains("<form"),
            "{expired}"
        );
        let done = body(&challenge(), &record("", ChargeStatus::Succeeded), at(1));
        assert!(done.contains("<strong>succeeded</strong>") && !done.contains("<form"));
    }
}
