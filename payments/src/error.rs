//! `PayError`: every way a tally-pay request can fail, each with an HTTP status, a stable
//! snake_case code and a sentence. Rendered as `{"error": {"type", "code", "message", "param"}}`,
//! `param` naming the request field at fault when a single one is (absent otherwise).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::edges::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    /// The request is malformed or breaks a stated rule; sending it again will not help.
    /// `param`: the request field at fault (a body field's path such as `orders[].seller_id`, or
    /// a query parameter such as `created[gte]`), when a single one is.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        param: Option<String>,
    },
    #[error("{what} not found")]
    NotFound { what: String },
    /// Well formed, but the state does not allow it (insufficient funds, over-refund, ...).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// Another request is working on the same object or key; retry later.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The risk check refused the payment.
    #[error("{message}")]
    Risk { code: &'static str, message: String },
    #[error("{message}")]
    Idempotency {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// A webhook whose signature or timestamp did not check out.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// The API key lacks the scope the route requires.
    #[error("this API key does not have the `{scope}` scope this request requires")]
    Forbidden { scope: &'static str },
    /// Too many requests from one key or address; retry after this many seconds.
    #[error("{message}")]
    RateLimited { retry_after_s: u64, message: String },
    #[error("the request body is larger than {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    /// The ledger cluster could not be reached; nothing was decided.
    #[error("the ledger cluster is unavailable: {0}")]
    Unavailable(String),
    /// The PSP did not give a usable answer (e.g. its settlement report); nothing was decided.
    #[error("the PSP did not answer: {0}")]
    PspUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PayError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> PayError {
        PayError::Invalid {
            code,
            message: message.into(),
            param: None,
        }
    }

    /// A 400 about the request field `param`.
    pub fn invalid_param(
        code: &'static str,
        param: impl Into<String>,
        message: impl Into<String>,
    ) -> PayError {
        PayError::invalid(code, message).with_param(param)
    }

    /// Names the request field at fault, when the error is a 400 (`Invalid`); other errors are
    /// returned as they are.
    pub fn with_param(self, param: impl Into<String>) -> PayError {
        match self {
            PayError::Invalid { code, message, .. } => PayError::Invalid {
                code,
                message,
                param: Some(param.into()),
            },
            other => other,
        }
    }

    /// The request field at fault, if one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            PayError::Invalid { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> PayError {
        PayError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> PayError {
        PayError::NotFound { what: what.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PayError::Invalid { .. } => StatusCode::BAD_REQUEST,
            PayError::NotFound { .. } => StatusCode::NOT_FOUND,
            PayError::Unprocessable { .. } | PayError::Risk { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            PayError::Conflict { .. } => StatusCode::CONFLICT,
            PayError::Idempotency { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::CONFLICT)
            }
            PayError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            PayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            PayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            PayError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PayError::PspUnavailable(_) => StatusCode::BAD_GATEWAY,
            PayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (kind, code) = match self {
            PayError::Invalid { code, .. } => ("invalid_request_error", *code),
            PayError::NotFound { .. } => ("invalid_request_error", "not_found"),
            PayError::Unprocessable { code, .. } => ("invalid_request_error", *code),
            PayError::Conflict { code, .. } => ("conflict_error", *code),
            PayError::Risk { code, .. } => ("risk_error", *code),
            PayError::Idempotency { code, .. } => ("idempotency_error", *code),
            PayError::Unauthorized { code, .. } => ("authentication_error", *code),
            PayError::Forbidden { .. } => ("permission_error", "missing_scope"),
            PayError::RateLimited { .. } => ("rate_limit_error", "rate_limited"),
            PayError::TooLarge { .. } => ("invalid_request_error", "body_too_large"),
            PayError::Unavailable(_) => ("api_error", "ledger_unavailable"),
            PayError::PspUnavailable(_) => ("api_error", "psp_unavailable"),
            PayError::Internal(_) => ("api_error", "internal"),
        };
        ErrorBody {
            error: ErrorDetail {
                kind: kind.to_string(),
                code: code.to_string(),
                message: self.to_string(),
                param: self.param().map(str::to_string),
            },
        }
    }
}

impl From<tally_client::ClientError> for PayError {
    fn from(error: tally_client::ClientError) -> PayError {
        PayError::from(StoreError::from(error))
    }
}

impl From<StoreError> for PayError {
    fn from(error: StoreError) -> PayError {
        match &error {
            StoreError::Cluster(client) if client.is_unreachable() => {
                PayError::Unavailable(error.to_string())
            }
            _ => PayError::Internal(error.to_string()),
        }
    }
}

/// The JSON error envelope.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `conflict_error`, `risk_error`, `idempotency_error`,
    /// `authentication_error`, `permission_error`, `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A stable snake_case code (`insufficient_funds`, `refund_exceeds_captured`, ...).
    pub code: String,
    pub message: String,
    /// The request field at fault, when a single one is: a body field's path
    /// (`orders[].seller_id`, `currency`) or a query parameter (`limit`, `created[gte]`).
    /// Absent when no single field is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

impl IntoResponse for PayError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            PayError::Internal(_) | PayError::Unavailable(_) | PayError::PspUnavailable(_)
        ) {
            tracing::warn!(error = %self, "request failed");
        }
        let retry_after = match &self {
            PayError::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_names_the_field_or_is_absent() {
        let error = PayError::invalid_param("invalid_limit", "limit", "`limit` is bad");
        let body = serde_json::to_value(error.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"type": "invalid_request_error",
                "code": "invalid_limit", "message": "`limit` is bad", "param": "limit"}})
        );
        let plain = serde_json::to_value(PayError::not_found("payout").body()).unwrap();
        assert!(plain["error"].get("param").is_none(), "{plain}");
        let kept = PayError::invalid("invalid_json", "no").with_param("body");
        assert_eq!(kept.param(), Some("body"));
        assert_eq!(kept.to_string(), "no");
        let not_a_400 = PayError::not_found("payout").with_param("id");
        assert_eq!(not_a_400.param(), None);
    }
}
