//! Events and the merchant's webhook endpoints: `Txn::event` adds an object's event to the `Txn`
//! that changes it; `GET /v1/events` pages through them; endpoints are created (their signing
//! secret shown once), listed and disabled here. Delivering the events is `delivery.rs`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_text, parse_id, Pay};
use crate::domain::events::{
    self, Delivery, EndpointView, Event, WebhookEndpoint, EVENT_TYPE_BYTES_MAX,
};
use crate::domain::ids::{Id, WebhookEndpointId};
use crate::domain::model::ns;
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::audit;

/// Events per page of `GET /v1/events`.
pub const EVENTS_PAGE_MAX: u32 = 100;
pub const EVENTS_PAGE_DEFAULT: u32 = 10;
/// Events one `GET /v1/events` request reads at most while filtering; when they run out before
/// `limit` matched, the page says `has_more` and where to go on from.
pub const EVENTS_SCAN_MAX: u32 = 1000;
/// Endpoints that may be enabled at once.
pub const ENDPOINTS_MAX: u32 = 16;
/// Endpoints that may exist, enabled or disabled (disabled ones are kept for their deliveries).
pub const ENDPOINTS_STORED_MAX: u32 = 128;
/// Event types one endpoint may name.
pub const ENDPOINT_EVENT_TYPES_MAX: usize = 64;
/// Bytes of an endpoint URL.
pub const ENDPOINT_URL_BYTES_MAX: usize = 2048;

/// Which events a page holds.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// An event type, e.g. `payout.paid`.
    pub kind: Option<String>,
    /// The object the events are about.
    pub object_id: Option<String>,
}

/// One page of events, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<Event>,
    /// More events may follow: pass `next_starting_after` as `starting_after`.
    pub has_more: bool,
    /// Where the next page starts (the last event read, which may be past the last one shown
    /// when a filter skipped events); absent when `has_more` is false.
    pub next_starting_after: Option<String>,
}

/// A new webhook endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://…` (`http://` only with `webhooks.allow_http` or in dev mode).
    pub url: String,
    /// Event types to send (e.g. `payment_order.succeeded`), or `["*"]` for every event.
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// A created endpoint, with its signing secret: shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify each delivery's `tally-signature` header with it.
    pub secret: String,
}

impl Pay {
    /// One page of events, newest first, after the event `starting_after`.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<EventPage, PayError> {
        check_event_query(filter, limit, starting_after)?;
        let mut cursor = starting_after.unwrap_or("").to_string();
        let mut data = Vec::new();
        let mut read = 0u32;
        loop {
            let want = (EVENTS_SCAN_MAX - read).min(EVENTS_PAGE_MAX);
            let page = self
                .store
                .scan::<Event>(ns::EVENT, "evt_", &cursor, want)
                .await?;
            let ended = page.len() < want as usize;
            read += u32::try_from(page.len()).unwrap_or(u32::MAX);
            for (key, event) in page {
                cursor = key;
                if matches(filter, &event.value) {
                    data.push(event.value);
                    if data.len() == limit as usize {
                        return Ok(EventPage {
                            data,
                            has_more: true,
                            next_starting_after: Some(cursor),
                        });
                    }
                }
            }
            if ended {
                return Ok(EventPage {
                    data,
                    has_more: false,
                    next_starting_after: None,
                });
            }
            if read >= EVENTS_SCAN_MAX {
                return Ok(EventPage {
                    data,
                    has_more: true,
                    next_starting_after: Some(cursor),
                });
            }
        }
    }

    /// One event by id.
    pub async fn event(&self, id: &str) -> Result<Event, PayError> {
        if !events::is_event_id(id) {
            return Err(PayError::invalid(
                "invalid_id",
                "`id` must be an event id like evt_…",
            ));
        }
        Ok(self.load(ns::EVENT, id, "event").await?.value)
    }

    /// The deliveries of one event, one per endpoint it was sent to.
    pub async fn event_deliveries(&self, id: &str) -> Result<Vec<Delivery>, PayError> {
        self.event(id).await?;
        let rows = self
            .store
            .scan::<Delivery>(ns::DELIVERY, &format!("{id}/"), "", ENDPOINTS_STORED_MAX)
            .await?;
        Ok(rows.into_iter().map(|(_, v)| v.value).collect())
    }

    /// Creates an endpoint; the answer holds its signing secret, which is never shown again.
    pub async fn create_endpoint(&self, request: NewEndpoint) -> Result<CreatedEndpoint, PayError> {
        self.check_endpoint(&request)?;
        let existing = self.endpoints().await?;
        if existing.iter().filter(|e| !e.disabled).count() >= ENDPOINTS_MAX as usize
            || existing.len() >= ENDPOINTS_STORED_MAX as usize
        {
            return Err(PayError::unprocessable(
                "too_many_endpoints",
                format!(
                    "at most {ENDPOINTS_MAX} webhook endpoints may be enabled, and \
                     {ENDPOINTS_STORED_MAX} exist"
                ),
            ));
        }
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>()));
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::random(),
            url: request.url,
            event_types: request.event_types,
            secret_sealed: self.sealer.seal(&secret),
            description: request.description,
            disabled: false,
            created_at: super::now_ms(),
        };
        let txn = audit::stamp(Txn::new(), "webhook_endpoint.create", &endpoint.id)
            .require_version(ns::WEBHOOK_ENDPOINT, &endpoint.id, 0)
            .put(ns::WEBHOOK_ENDPOINT, &endpoint.id, &endpoint);
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(CreatedEndpoint {
                endpoint: EndpointView::from(&endpoint),
                secret,
            }),
            other => Err(PayError::Internal(format!(
                "creating a webhook endpoint: {}",
                super::describe_commit(&other)
            ))),
        }
    }

    /// Every endpoint, enabled or not.
    pub async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, PayError> {
        let rows = self
            .store
            .scan::<WebhookEndpoint>(ns::WEBHOOK_ENDPOINT, "", "", ENDPOINTS_STORED_MAX)
            .await?;
        Ok(rows.into_iter().map(|(_, v)| v.value).collect())
    }

    pub async fn endpoint(&self, id: &str) -> Result<WebhookEndpoint, PayError> {
        let id: WebhookEndpointId = parse_id("id", id)?;
        Ok(self
            .load(ns::WEBHOOK_ENDPOINT, &id, "webhook endpoint")
            .await?
            .value)
    }

    /// Disables an endpoint: it gets no new deliveries, and those queued are given up.
    pub async fn disable_endpoint(&self, id: &str) -> Result<WebhookEndpoint, PayError> {
        let id: WebhookEndpointId = parse_id("id", id)?;
        self.update::<WebhookEndpoint, _>(ns::WEBHOOK_ENDPOINT, &id, |endpoint| {
            if endpoint.disabled {
                return None;
            }
            let mut next = endpoint.clone();
            next.disabled = true;
            Some((
                next,
                audit::stamp(Txn::new(), "webhook_endpoint.disable", &id),
            ))
        })
        .await
    }

    fn check_endpoint(&self, request: &NewEndpoint) -> Result<(), PayError> {
        self.check_url(&request.url)?;
        let types = &request.event_types;
        if types.is_empty()
            || types.len() > ENDPOINT_EVENT_TYPES_MAX
            || !types.iter().all(|t| events::is_event_type(t))
        {
            return Err(PayError::invalid(
                "invalid_event_types",
                format!(
                    "`event_types` must hold 1 to {ENDPOINT_EVENT_TYPES_MAX} event types like \
                     `payment_order.succeeded` (objects: {}), or \"*\"",
                    events::OBJECT_NAMES.join(", ")
                ),
            ));
        }
        if let Some(description) = &request.description {
            check_text("description", description)?;
        }
        Ok(())
    }
}

impl Pay {
    /// An endpoint URL: absolute, `https://` (or `http://` when allowed), and not on the
    /// service's own network unless allowed.
    fn check_url(&self, url: &str) -> Result<(), PayError> {
        let dev = self.config.pay.dev;
        let allow_http = self.config.webhooks.allow_http || dev;
        let scheme_ok = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
        let parsed = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        if url.len() > ENDPOINT_URL_BYTES_MAX || !scheme_ok || parsed.is_none() {
            let schemes = if allow_http {
                "http:// or https://"
            } else {
                "https://"
            };
            return Err(PayError::invalid(
                "invalid_url",
                format!(
                    "`url` must be an absolute {schemes} URL of at most {ENDPOINT_URL_BYTES_MAX} bytes"
                ),
            ));
        }
        let private = parsed.as_deref().is_some_and(is_private);
        if private && !(self.config.webhooks.allow_private || dev) {
            return Err(PayError::invalid(
                "private_url",
                "`url` must not be on localhost or a private network (see webhooks.allow_private)",
            ));
        }
        Ok(())
    }
}

/// True for `localhost` and loopback, private, link-local and unspecified IP addresses (`host`
/// as a URL shows it: IPv6 in brackets).
fn is_private(host: &str) -> bool {
    use std::net::IpAddr;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Ok(IpAddr::V4(v4)) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        Ok(IpAddr::V6(v6)) => {
            let unique_local = (v6.segments()[0] & 0xfe00) == 0xfc00;
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            let mapped = v6
                .to_ipv4_mapped()
                .is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local());
            v6.is_loopback() || v6.is_unspecified() || unique_local || link_local || mapped
        }
    }
}

fn matches(filter: &EventFilter, event: &Event) -> bool {
    filter.kind.as_deref().is_none_or(|k| k == event.kind)
        && filter
            .object_id
            .as_deref()
            .is_none_or(|o| o == event.object_id)
}

fn check_event_query(
    filter: &EventFilter,
    limit: u32,
    starting_after: Option<&str>,
) -> Result<(), PayError> {
    if !(1..=EVENTS_PAGE_MAX).contains(&limit) {
        return Err(PayError::invalid(
            "invalid_limit",
            format!("`limit` must be 1 to {EVENTS_PAGE_MAX}"),
        ));
    }
    if starting_after.is_some_and(|id| !events::is_event_id(id)) {
        return Err(PayError::invalid(
            "invalid_cursor",
            "`starting_after` must be an event id (the `next_starting_after` of a page)",
        ));
    }
    if let Some(kind) = &filter.kind {
        if kind.len() > EVENT_TYPE_BYTES_MAX || kind == "*" || !events::is_event_type(kind) {
            return Err(PayError::invalid(
                "invalid_type",
                "`type` must be an event type like `payment_order.succeeded`",
            ));
        }
    }
    if let Some(object) = &filter.object_id {
        if object.is_empty()
            || object.len() > 64
            || !object
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(PayError::invalid(
                "invalid_id",
                "`object_id` must be an object id like ord_0123456789abcdef",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_private;

    #[test]
    fn private_hosts_are_recognized() {
        for host in [
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.9",
            "169.254.1.1",
            "[::1]",
            "[fd00::1]",
            "[fe80::1]",
            "[::ffff:127.0.0.1]",
            "0.0.0.0",
        ] {
            assert!(is_private(host), "{host}");
        }
        for host in ["example.com", "93.184.216.34", "[2606:2800:220:1::]"] {
            assert!(!is_private(host), "{host}");
        }
    }
}
