//! The sandbox's API errors and their one wire form,
//! `{"error":{"type","code","message"}}` (a declined charge also carries `"charge": <psp id>`).

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The `type` of an error: what the client should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is wrong: fix it, do not retry it.
    InvalidRequestError,
    /// The card was declined (402): final.
    CardError,
    /// An idempotency key was reused with different parameters.
    IdempotencyError,
    /// Missing or wrong API key (401).
    AuthenticationError,
    /// Had no effect; retry with the same idempotency key.
    Retryable,
    /// The sandbox failed (500): the outcome is unknown.
    ApiError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub code: Cow<'static, str>,
    pub message: String,
    /// The psp id of the failed charge a card error is about.
    pub charge: Option<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: ErrorKind,
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge: Option<&'a str>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: ErrorKind,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            charge: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            code,
            message,
        )
    }

    /// 404 `resource_missing`.
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::InvalidRequestError,
            "resource_missing",
            format!("no such {what}: `{id}`"),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let envelope = Envelope {
            error: Detail {
                kind: self.kind,
                code: &self.code,
                message: &self.message,
                charge: self.charge.as_deref(),
            },
        };
        serde_json::to_vec(&envelope).expect("an error envelope of strings serializes")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let headers = [(axum::http::header::CONTENT_TYPE, "application/json")];
        (self.status, headers, self.body()).into_response()
    }
}
