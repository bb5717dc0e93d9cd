//! Routes of API keys and the audit trail. Key routes never go through the idempotency store:
//! their responses carry secrets, which must not be stored anywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::access::Routes;
use super::handlers::List;
use super::{json_of, parse_body, respond};
use crate::edges::auth::keys::{self, ApiKey, CreatedKey, NewKey};
use crate::edges::auth::{Access, Principal, Scope};
use crate::error::{ErrorBody, PayError};
use crate::flows::audit::{self, AuditPage};
use crate::flows::Pay;

type PayState = State<Arc<Pay>>;

pub fn routes() -> Routes {
    let keys_admin = Access::Scope(Scope::KeysAdmin);
    Routes::new()
        .post("/v1/api_keys", keys_admin, create_key)
        .get("/v1/api_keys", keys_admin, list_keys)
        .post("/v1/api_keys/{id}/rotate", keys_admin, rotate_key)
        .post("/v1/api_keys/{id}/revoke", keys_admin, revoke_key)
        .get("/v1/audit", Access::Scope(Scope::AuditRead), list_audit)
}

#[derive(OpenApi)]
#[openapi(paths(create_key, list_keys, rotate_key, revoke_key, list_audit))]
pub struct AdminDoc;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Seconds the old key keeps working (0 to 604800; default 86400).
    pub grace_period_s: Option<u64>,
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, PayError> {
    let value = json_of(bytes)?;
    super::screen::reject_card_data(&value, super::screen::Scan::Everything)?;
    parse_body(&value)
}

#[utoipa::path(post, path = "/v1/api_keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey, description = "The key; `secret` is shown this once"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "A key may only create keys with scopes it holds")))]
pub async fn create_key(
    State(pay): PayState,
    Extension(principal): Extension<Principal>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let request: NewKey = body(&bytes)?;
        let created =
            keys::create(&pay.store, request, Some(&principal), &audit::current()).await?;
        Ok((StatusCode::CREATED, created))
    };
    respond(result.await)
}

#[utoipa::path(get, path = "/v1/api_keys",
    responses((status = 200, body = List<ApiKey>, description = "Every key: prefix and last 4 characters only")))]
pub async fn list_keys(State(pay): PayState) -> Response {
    respond(
        keys::list(&pay.store)
            .await
            .map(|data| (StatusCode::OK, List { data })),
    )
}

#[utoipa::path(post, path = "/v1/api_keys/{id}/rotate", params(("id" = String, Path)), request_body = RotateKey,
    responses((status = 201, body = CreatedKey, description = "The new key (secret shown once); the old one works until its grace period ends"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rotate_key(State(pay): PayState, Path(id): Path<String>, bytes: Bytes) -> Response {
    let result = async {
        let request: RotateKey = body(&bytes)?;
        let grace = request
            .grace_period_s
            .unwrap_or(keys::GRACE_PERIOD_S_DEFAULT);
        let created = keys::rotate(&pay.store, &id, grace, &audit::current()).await?;
        Ok((StatusCode::CREATED, created))
    };
    respond(result.await)
}

#[utoipa::path(post, path = "/v1/api_keys/{id}/revoke", params(("id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(State(pay): PayState, Path(id): Path<String>) -> Response {
    respond(
        keys::revoke(&pay.store, &id, &audit::current())
            .await
            .map(|k| (StatusCode::OK, k)),
    )
}

#[utoipa::path(get, path = "/v1/audit",
    params(("limit" = Option<u32>, Query, description = "1 to 500, default 100"),
        ("after" = Option<String>, Query, description = "The `next_after` of the previous page")),
    responses((status = 200, body = AuditPage, description = "Audit entries, newest first"), (status = 400, body = ErrorBody)))]
pub async fn list_audit(
    State(pay): PayState,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(params) = query
            .map_err(|_| PayError::invalid("invalid_query", "the query string is malformed"))?;
        if params.keys().any(|k| k != "limit" && k != "after") {
            return Err(PayError::invalid(
                "unknown_parameter",
                "this route takes the query parameters limit and after",
            ));
        }
        let limit = match params.get("limit") {
            None => audit::PAGE_LIMIT_DEFAULT,
            Some(text) => text.parse().map_err(|_| {
                PayError::invalid_param("invalid_limit", "limit", "`limit` must be a whole number")
            })?,
        };
        let page = audit::page(&pay.store, limit, params.get("after").map(String::as_str)).await?;
        Ok((StatusCode::OK, page))
    };
    respond(result.await)
}
