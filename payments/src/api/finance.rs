//! Routes of the finance API (stub: filled in by its owner).

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi;

use crate::service::Pay;

pub fn routes() -> Router<Arc<Pay>> {
    Router::new()
}

#[derive(OpenApi)]
#[openapi(paths())]
pub struct FinanceDoc;
