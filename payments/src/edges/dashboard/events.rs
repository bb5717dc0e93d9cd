//! Events of an object and their webhook deliveries, as a payment's page shows them.

use maud::{html, Markup};

use super::view::{badge, empty, time_ms, word};
use crate::domain::events::{Delivery, Event};

/// One event with its deliveries to the merchant's endpoints.
pub struct EventRow {
    pub event: Event,
    pub deliveries: Vec<Delivery>,
}

pub fn events_table(rows: &[EventRow]) -> Markup {
    if rows.is_empty() {
        return empty(
            "No events yet.",
            "Every status change of the payment and its orders records an event here.",
        );
    }
    html! {
        div.scroll { table {
            thead { tr { th { "Event" } th { "Type" } th { "Object" } th { "Time" } th { "Deliveries" } } }
            tbody {
                @for row in rows {
                    tr {
                        td.mono { (row.event.id) }
                        td { code { (row.event.kind) } }
                        td.mono { (row.event.object_id) }
                        td { (time_ms(row.event.created_at)) }
                        td {
                            @if row.deliveries.is_empty() { span.small { "no endpoint" } }
                            @for d in &row.deliveries {
                                span.delivery {
                                    span.mono { (d.endpoint_id) } " "
                                    (badge(&word(&d.status))) " "
                                    span.small { (d.attempt_count) " attempt(s)" }
                                }
                            }
                        }
                    }
                }
            }
        } }
    }
}
