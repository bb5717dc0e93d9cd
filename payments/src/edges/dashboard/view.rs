//! What every page shares: the layout (header, navigation, sign-out form), amounts formatted per
//! currency, statuses as coloured badges, times, empty states, and bar charts as inline SVG.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Serialize;

use super::session::Session;
use crate::domain::money::Currency;

/// The pages of the navigation: path and label.
const NAVIGATION: &[(&str, &str)] = &[
    ("/dashboard", "Overview"),
    ("/dashboard/payments", "Payments"),
    ("/dashboard/sellers", "Sellers"),
    ("/dashboard/payouts", "Payouts"),
    ("/dashboard/disputes", "Disputes"),
    ("/dashboard/reviews", "Reviews"),
    ("/dashboard/dead_letters", "Dead letters"),
    ("/dashboard/cluster", "Cluster"),
];

/// A whole page: `active` is the navigation entry to mark (a path of [`NAVIGATION`]).
pub fn page(title: &str, session: &Session, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tally" }
                link rel="stylesheet" href="/dashboard/static/dashboard.css";
            }
            body {
                header.top {
                    a.brand href="/dashboard" { "Tally" }
                    nav {
                        @for (path, label) in NAVIGATION {
                            a href=(path) class=[(*path == active).then_some("active")] { (label) }
                        }
                    }
                    div.who {
                        span.key title="the API key you signed in with" { (session.key_id) }
                        " "
                        span.badge.grey { (session.role_name()) }
                        form.inline method="post" action="/dashboard/logout" {
                            (csrf_field(session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A page without a session (sign-in, errors before signing in).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tally" }
                link rel="stylesheet" href="/dashboard/static/dashboard.css";
            }
            body.bare { main.narrow { a.brand href="/dashboard" { "Tally" } h1 { (title) } (body) } }
        }
    }
}

/// The hidden field every form of the dashboard carries; the session layer checks it.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// `amount` minor units of currency `code`, with the currency's decimals and thousands
/// separators: `$1,234.50`, `¥1,200`, `1,234.50 CHF`.
pub fn money(amount: u128, code: &str) -> String {
    let Some(currency) = Currency::by_code(code) else {
        return format!("{amount} {code}");
    };
    let plain = match u64::try_from(amount) {
        Ok(minor) => currency.format(minor),
        Err(_) => return format!("{amount} minor units {code}"),
    };
    let (whole, fraction) = match plain.split_once('.') {
        Some((w, f)) => (w.to_string(), Some(f.to_string())),
        None => (plain, None),
    };
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let number = match fraction {
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    };
    match code {
        "USD" => format!("${number}"),
        "EUR" => format!("€{number}"),
        "GBP" => format!("£{number}"),
        "JPY" => format!("¥{number}"),
        _ => format!("{number} {code}"),
    }
}

/// The word a status serializes to (`succeeded`, `dead_letter`, …).
pub fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => "unknown".into(),
    }
}

/// A status as a coloured badge: green when done well, red when failed, amber while waiting.
pub fn badge(status: &str) -> Markup {
    let tone = match status {
        "succeeded" | "paid" | "matched" | "leader" | "up" | "resolved" | "posted"
        | "delivered" | "won" => "green",
        "failed" | "dead_letter" | "requires_attention" | "down" | "review" | "voided"
        | "missing_in_tally" | "missing_at_psp" | "amount_mismatch" | "status_mismatch"
        | "fee_mismatch" | "lost" => "red",
        "processing"
        | "pending"
        | "in_transit"
        | "requires_capture"
        | "partially_succeeded"
        | "held"
        | "candidate"
        | "needs_response"
        | "under_review" => "amber",
        _ => "grey",
    };
    html! { span class={ "badge " (tone) } { (status.replace('_', " ")) } }
}

/// Unix milliseconds as `2026-12-03 13:45 UTC`.
pub fn time_ms(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms).map_or_else(
        || at_ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// What an empty list says: what it would show, and what to do to fill it.
pub fn empty(what: &str, todo: &str) -> Markup {
    html! { div.empty { p.what { (what) } p.todo { (todo) } } }
}

/// A short message above a page's content (`ok` or `error`).
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={ "notice " (kind) } role="status" { (text) } }
}

/// A bar chart of `(label, value)` as inline SVG; `caption` says what the bars are.
pub fn bar_chart(
    caption: &str,
    bars: &[(String, u128)],
    format: impl Fn(u128) -> String,
) -> Markup {
    const WIDTH: u32 = 960;
    const HEIGHT: u32 = 140;
    const LABELS: u32 = 20;
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let count = u32::try_from(bars.len()).unwrap_or(1).max(1);
    let slot = WIDTH / count;
    let bar_width = slot.saturating_sub(6).max(2);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-label=\"{}\">",
        HEIGHT + LABELS,
        escape(caption)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(0);
        // Scaled in integers: the chart needs no floating point.
        let height =
            u32::try_from(value.saturating_mul(u128::from(HEIGHT)) / max).unwrap_or(HEIGHT);
        let x = i * slot + 3;
        let y = HEIGHT - height;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bar_width}\" height=\"{height}\" rx=\"2\"><title>{}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            escape(label),
            escape(&format(*value)),
            x + bar_width / 2,
            HEIGHT + LABELS - 4,
            escape(label.get(5..).unwrap_or(label)),
        ));
    }
    svg.push_str("</svg>");
    html! { figure { (PreEscaped(svg)) figcaption { (caption) } } }
}

fn escape(text: &str) -> String {
    html! { (text) }.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_formatted_per_currency() {
        assert_eq!(money(123_450, "USD"), "$1,234.50");
        assert_eq!(money(5, "EUR"), "€0.05");
        assert_eq!(money(1_200, "JPY"), "¥1,200");
        assert_eq!(money(100_000_000, "USD"), "$1,000,000.00");
        assert_eq!(money(7, "XXX"), "7 XXX");
    }

    #[test]
    fn statuses_get_coloured_badges() {
        assert!(badge("succeeded").into_string().contains("green"));
        assert!(badge("dead_letter").into_string().contains("red"));
        assert!(badge("processing").into_string().contains("amber"));
        assert_eq!(
            badge("<b>").into_string(),
            "<span class=\"badge grey\">&lt;b&gt;</span>"
        );
    }

    #[test]
    fn charts_escape_their_labels_and_need_no_floats() {
        let chart = bar_chart(
            "volume",
            &[("2026-01-01".into(), 10), ("<x>".into(), 0)],
            |v| v.to_string(),
        )
        .into_string();
        assert!(chart.contains("<svg"));
        assert!(!chart.contains("<x>"));
    }
}
