//! Routes of events and the merchant's webhook endpoints. Creating an endpoint never goes
//! through the idempotency store: its answer carries the signing secret, which must not be
//! stored anywhere else.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::access::Routes;
use super::handlers::List;
use super::{json_of, parse_body, respond};
use crate::domain::events::{Delivery, EndpointView, Event};
use crate::edges::auth::{Access, Scope};
use crate::error::{ErrorBody, PayError};
use crate::flows::events::{CreatedEndpoint, EventFilter, EventPage, NewEndpoint};
use crate::flows::Pay;

type PayState = State<Arc<Pay>>;
type RawQuery = Result<Query<BTreeMap<String, String>>, QueryRejection>;

pub fn routes() -> Routes {
    let read = Access::Scope(Scope::EventsRead);
    let admin = Access::Scope(Scope::WebhooksAdmin);
    Routes::new()
        .get("/v1/events", read, list_events)
        .get("/v1/events/{id}", read, get_event)
        .get("/v1/events/{id}/deliveries", read, list_deliveries)
        .post("/v1/events/{id}/resend", admin, resend_event)
        .post("/v1/webhook_endpoints", admin, create_endpoint)
        .get("/v1/webhook_endpoints", admin, list_endpoints)
        .get("/v1/webhook_endpoints/{id}", admin, get_endpoint)
        .post(
            "/v1/webhook_endpoints/{id}/disable",
            admin,
            disable_endpoint,
        )
}

#[derive(OpenApi)]
#[openapi(paths(
    list_events,
    get_event,
    list_deliveries,
    resend_event,
    create_endpoint,
    list_endpoints,
    get_endpoint,
    disable_endpoint
))]
pub struct EventsDoc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    /// The endpoint to send the event to (`we_…`).
    pub endpoint_id: String,
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, PayError> {
    let value = json_of(bytes)?;
    super::screen::reject_card_data(&value, super::screen::Scan::Everything)?;
    parse_body(&value)
}

#[utoipa::path(get, path = "/v1/events",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 10"),
        ("starting_after" = Option<String>, Query, description = "The `next_starting_after` of the previous page"),
        ("type" = Option<String>, Query, description = "Only events of this type, e.g. `payment_order.succeeded`"),
        ("object_id" = Option<String>, Query, description = "Only events about this object")),
    responses((status = 200, body = EventPage, description = "Events, newest first",
            example = json!({"data": [{"id": "evt_8203705474848a1b2c3d4", "type": "payout.paid",
                "object_id": "po_5f0c2d1e9a8b7c6d", "created_at": 1796294527741_i64,
                "data": {"id": "po_5f0c2d1e9a8b7c6d", "status": "paid"}}],
                "has_more": true, "next_starting_after": "evt_8203705474848a1b2c3d4"})),
        (status = 400, body = ErrorBody)))]
pub async fn list_events(State(pay): PayState, query: RawQuery) -> Response {
    let result = async {
        let Query(params) = query
            .map_err(|_| PayError::invalid("invalid_query", "the query string is malformed"))?;
        const TAKEN: [&str; 4] = ["limit", "starting_after", "type", "object_id"];
        if params.keys().any(|k| !TAKEN.contains(&k.as_str())) {
            return Err(PayError::invalid(
                "unknown_parameter",
                "this route takes the query parameters limit, starting_after, type and object_id",
            ));
        }
        let limit = match params.get("limit") {
            None => crate::flows::events::EVENTS_PAGE_DEFAULT,
            Some(text) => text.parse().map_err(|_| {
                PayError::invalid("invalid_limit", "`limit` must be a whole number")
            })?,
        };
        let filter = EventFilter {
            kind: params.get("type").cloned(),
            object_id: params.get("object_id").cloned(),
        };
        let page = pay
            .list_events(
                &filter,
                limit,
                params.get("starting_after").map(String::as_str),
            )
            .await?;
        Ok((StatusCode::OK, page))
    };
    respond(result.await)
}

#[utoipa::path(get, path = "/v1/events/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Event), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_event(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(pay.event(&id).await.map(|e| (StatusCode::OK, e)))
}

#[utoipa::path(get, path = "/v1/events/{id}/deliveries", params(("id" = String, Path)),
    responses((status = 200, body = List<Delivery>, description = "The event's delivery to each endpoint, with every attempt"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.event_deliveries(&id)
            .await
            .map(|data| (StatusCode::OK, List { data })),
    )
}

#[utoipa::path(post, path = "/v1/events/{id}/resend", params(("id" = String, Path)), request_body = Resend,
    responses((status = 200, body = Delivery, description = "The delivery, queued again after the endpoint's earlier ones"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn resend_event(State(pay): PayState, Path(id): Path<String>, bytes: Bytes) -> Response {
    let result = async {
        let request: Resend = body(&bytes)?;
        let delivery = pay.resend_event(&id, &request.endpoint_id).await?;
        Ok((StatusCode::OK, delivery))
    };
    respond(result.await)
}

#[utoipa::path(post, path = "/v1/webhook_endpoints", request_body = NewEndpoint,
    responses((status = 201, body = CreatedEndpoint, description = "The endpoint; `secret` is shown this once"),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_endpoint(State(pay): PayState, bytes: Bytes) -> Response {
    let result = async {
        let request: NewEndpoint = body(&bytes)?;
        let created = pay.create_endpoint(request).await?;
        Ok((StatusCode::CREATED, created))
    };
    respond(result.await)
}

#[utoipa::path(get, path = "/v1/webhook_endpoints",
    responses((status = 200, body = List<EndpointView>, description = "Every endpoint, without secrets")))]
pub async fn list_endpoints(State(pay): PayState) -> Response {
    respond(pay.endpoints().await.map(|all| {
        let data: Vec<EndpointView> = all.iter().map(EndpointView::from).collect();
        (StatusCode::OK, List { data })
    }))
}

#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}", params(("id" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_endpoint(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.endpoint(&id)
            .await
            .map(|e| (StatusCode::OK, EndpointView::from(&e))),
    )
}

#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/disable", params(("id" = String, Path)),
    responses((status = 200, body = EndpointView, description = "Disabled: no new deliveries; those queued are given up"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_endpoint(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        pay.disable_endpoint(&id)
            .await
            .map(|e| (StatusCode::OK, EndpointView::from(&e))),
    )
}
