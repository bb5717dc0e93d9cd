//! What every API call goes through: the API key check, the injected 500 (`error_rate`), and
//! parsing its JSON body (with the fingerprint idempotency keys are checked against) or path.

use std::time::Duration;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Body, Reference};
use crate::error::{ApiError, ErrorKind};
use crate::sandbox::Sandbox;

/// Which keys an endpoint accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Secret,
    /// The secret key or any publishable key (`pk_test_...`).
    Publishable,
}

impl Sandbox {
    pub(super) fn authenticate(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        let publishable = access == Access::Publishable && key.starts_with("pk_test_");
        if publishable || constant_time_eq(key.as_bytes(), self.api_key.as_bytes()) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::AuthenticationError,
            "invalid_api_key",
            "missing or wrong API key: send Authorization: Bearer <key>",
        ))
    }

    /// Authenticates an API call and draws the injected 500 (answered before anything is
    /// looked at, so it has no effect). Returns the latency to add.
    pub(super) fn admit(&self, headers: &HeaderMap, access: Access) -> Result<Duration, ApiError> {
        self.authenticate(headers, access)?;
        let mut model = self.lock();
        let error_rate = model.faults.error_rate;
        if model.draw(error_rate) {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::ApiError,
                "injected_fault",
                "injected error (error_rate); the request had no effect",
            ));
        }
        Ok(model.faults.latency)
    }
}

pub(super) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0_u8, |difference, (l, r)| difference | (l ^ r))
            == 0
}

/// Parses a JSON body into `T`; also returns the fingerprint of the request's parameters
/// (method, path, and the body with its keys sorted: `serde_json::Map` is sorted unless the
/// `preserve_order` feature is on, which a test below would catch).
pub(super) fn parse_body<T: DeserializeOwned>(
    route: &str,
    body: Body,
) -> Result<(T, String), ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            ErrorKind::InvalidRequestError,
            "invalid_body",
            rejection.body_text(),
        )
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::invalid("invalid_json", format!("body is not JSON: {error}")))?;
    let canonical = format!("{route}\n{value}");
    let fingerprint = hex::encode(Sha256::digest(canonical.as_bytes()));
    let input = serde_json::from_value(value)
        .map_err(|error| ApiError::invalid("invalid_parameters", error.to_string()))?;
    Ok((input, fingerprint))
}

pub(super) fn path_parameter(path: Reference) -> Result<String, ApiError> {
    let Path(value) = path.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            ErrorKind::InvalidRequestError,
            "invalid_path",
            rejection.body_text(),
        )
    })?;
    Ok(value)
}

pub(super) fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("API objects of strings and integers serialize")
}

pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(super) fn json_ok(value: &impl Serialize) -> Response {
    json_response(StatusCode::OK, to_json(value))
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;
    use crate::model::ChargeInput;

    fn fingerprint(body: &str) -> String {
        let body: Body = Ok(Bytes::from(body.to_owned()));
        parse_body::<serde_json::Value>("POST /v1/charges", body)
            .unwrap()
            .1
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let reordered = fingerprint(r#"{"amount": 1, "currency": "USD"}"#);
        assert_eq!(reordered, fingerprint(r#"{"currency":"USD","amount":1}"#));
        assert_ne!(reordered, fingerprint(r#"{"currency":"USD","amount":2}"#));
    }

    #[test]
    fn bad_bodies_are_400_with_a_reason() {
        let parse = |body: &str| {
            let body: Body = Ok(Bytes::from(body.to_owned()));
            parse_body::<ChargeInput>("POST /v1/charges", body).unwrap_err()
        };
        assert_eq!(parse("{").code, "invalid_json");
        let missing = parse(r#"{"reference":"o1"}"#);
        assert_eq!(missing.code, "invalid_parameters");
        assert!(
            missing.message.contains("missing field"),
            "{}",
            missing.message
        );
        let unknown =
            parse(r#"{"reference":"o1","card_token":"t","amount":1,"currency":"USD","tip":1}"#);
        assert!(
            unknown.message.contains("unknown field"),
            "{}",
            unknown.message
        );
        assert_eq!(parse(r#"{"amount":-1}"#).status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn keys_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"sk_test_tally", b"sk_test_tally"));
        assert!(!constant_time_eq(b"sk_test_tally", b"sk_test_tallx"));
        assert!(!constant_time_eq(b"sk_test_tally", b"sk_test_tal"));
    }
}
