//! Dashboard sessions. Signing in takes an API key holding the `dashboard` scope; the browser
//! gets a random session token in an HttpOnly, SameSite=Strict cookie (never the key), and the
//! cluster keeps the session under the token's hash with its expiry, its role and its CSRF
//! token, so any tally-pay process accepts it. [`require_session`] guards every page: no session
//! is a redirect to the sign-in page; a POST without the session's CSRF token is refused (403),
//! and so is an action of the read-only role; everything runs as the key's audit actor.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::view::{bare_page, notice};
use super::{html_page, Dashboard};
use crate::domain::model::ns;
use crate::edges::auth::{keys, Scope, VerifyError};
use crate::edges::store::Txn;
use crate::flows::audit::{self, Actor};

/// How long a session lasts after signing in.
pub const SESSION_LIFETIME_MS: i64 = 8 * 3600 * 1000;
/// Bytes of a dashboard form body (no page takes more than a few fields).
pub const FORM_BYTES_MAX: usize = 64 * 1024;
/// The session cookie.
pub const COOKIE: &str = "tally_dashboard";

/// A session as stored; the token itself is not in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub key_id: String,
    pub operator: bool,
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub key_id: String,
    /// May refund, capture, resolve and retry (`dashboard:operate`).
    pub operator: bool,
    pub csrf: String,
    /// The hash the record is stored under.
    record_key: String,
}

impl Session {
    pub fn role_name(&self) -> &'static str {
        if self.operator {
            "operator"
        } else {
            "read-only"
        }
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The cookie that holds `token` (or clears it, with `None`); `Secure` behind an HTTPS proxy.
fn set_cookie(token: Option<&str>, headers: &HeaderMap) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let (value, age) = match token {
        Some(token) => (token, SESSION_LIFETIME_MS / 1000),
        None => ("", 0),
    };
    format!(
        "{COOKIE}={value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub async fn login_page() -> Response {
    login_form(None, StatusCode::OK)
}

fn login_form(error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        @if let Some(error) = error { (notice("error", error)) }
        form.card method="post" action="/dashboard/login" {
            label for="key" { "Dashboard key" }
            input #key type="password" name="key" autocomplete="off" required
                placeholder="sk_… or rk_… holding the dashboard scope";
            button.primary type="submit" { "Sign in" }
        }
        p.hint {
            "Sign in with an API key that holds the " code { "dashboard" } " scope (read-only) "
            "and " code { "dashboard:operate" } " for refunds, captures and other actions; a "
            "secret key holds both. Create one with "
            code { "tally-pay keys create --kind restricted --scopes dashboard" } "."
        }
    };
    (status, html_page(bare_page("Sign in", body))).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
}

pub async fn login(
    State(dash): State<Arc<Dashboard>>,
    connect: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let source = connect.map(|c| c.0 .0.ip().to_string());
    let address = source.clone().unwrap_or_else(|| "unknown".into());
    if dash.login_failures.check(&address).is_err() {
        return login_form(
            Some("Too many failed sign-ins from this address; wait a minute and try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let refused = |dash: &Dashboard, message: &str| {
        let _ = dash.login_failures.take(&address);
        dash.pay.metrics.inc("tally_pay_auth_failures_total");
        tracing::warn!(source = %address, "dashboard sign-in refused");
        login_form(Some(message), StatusCode::UNAUTHORIZED)
    };
    let principal = match dash.verifier.verify(&dash.pay.store, form.key.trim()).await {
        Ok(principal) => principal,
        Err(VerifyError::Refused(_)) => return refused(&dash, "That key is not valid."),
        Err(VerifyError::Unavailable(error)) => return super::error_page(&error),
    };
    if !principal.holds(Scope::Dashboard) {
        return refused(&dash, "That key does not hold the dashboard scope.");
    }
    let token = random_hex();
    let now = crate::flows::now_ms();
    let record = SessionRecord {
        key_id: principal.key_id.clone(),
        operator: principal.holds(Scope::DashboardOperate),
        csrf: random_hex(),
        created_at: now,
        expires_at: now + SESSION_LIFETIME_MS,
    };
    let actor = Actor {
        id: principal.key_id.clone(),
        source,
        route: Some("POST /dashboard/login".into()),
    };
    let key = token_hash(&token);
    let txn = audit::stamp_as(Txn::new(), &actor, "dashboard.login", &principal.key_id).put(
        ns::DASHBOARD_SESSION,
        &key,
        &record,
    );
    if let Err(error) = dash.pay.store.commit(txn).await {
        return super::error_page(&error.into());
    }
    let mut response = Redirect::to("/dashboard").into_response();
    if let Ok(value) = set_cookie(Some(&token), &headers).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Ends the session (the CSRF token was checked by the session layer).
pub async fn logout(
    State(dash): State<Arc<Dashboard>>,
    axum::Extension(session): axum::Extension<Session>,
    headers: HeaderMap,
) -> Response {
    let txn = audit::stamp(Txn::new(), "dashboard.logout", &session.key_id)
        .delete(ns::DASHBOARD_SESSION, &session.record_key);
    if let Err(error) = dash.pay.store.commit(txn).await {
        return super::error_page(&error.into());
    }
    let mut response = Redirect::to("/dashboard/login").into_response();
    if let Ok(value) = set_cookie(None, &headers).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The session of a request, if it has a live one whose key is still live too.
async fn session_of(dash: &Dashboard, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    let record_key = token_hash(&token);
    let stored = dash
        .pay
        .store
        .get::<SessionRecord>(ns::DASHBOARD_SESSION, &record_key)
        .await
        .map_err(|e| super::error_page(&e.into()))?;
    let now = crate::flows::now_ms();
    let Some(record) = stored.map(|v| v.value).filter(|r| r.expires_at > now) else {
        return Ok(None);
    };
    // A revoked or expired key ends its sessions too.
    let key = keys::lookup(&dash.pay.store, &record.key_id)
        .await
        .map_err(|e| super::error_page(&e))?;
    let live =
        key.is_some_and(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now));
    Ok(live.then_some(Session {
        key_id: record.key_id,
        operator: record.operator,
        csrf: record.csrf,
        record_key,
    }))
}

fn forbidden(title: &str, message: &str) -> Response {
    let body =
        html! { (notice("error", message)) p { a href="/dashboard" { "Back to the overview" } } };
    (StatusCode::FORBIDDEN, html_page(bare_page(title, body))).into_response()
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// The layer in front of every page but the sign-in page; see the module's documentation.
pub async fn require_session(
    State(dash): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> Response {
    let session = match session_of(&dash, request.headers()).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/dashboard/login").into_response(),
        Err(response) => return response,
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<no route>".to_string(), |p| p.as_str().to_string());
    let source = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string());
    let method = request.method().clone();
    let (parts, body) = request.into_parts();
    let request = if method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, FORM_BYTES_MAX).await else {
            return forbidden("Refused", "The form was too large.");
        };
        let sent = serde_urlencoded::from_bytes::<CsrfOnly>(&bytes)
            .map(|f| f.csrf)
            .unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
            return forbidden(
                "Refused",
                "This form has no valid CSRF token. Reload the page and try again.",
            );
        }
        if !session.operator && route != "/dashboard/logout" {
            return forbidden(
                "Not allowed",
                "Your key holds the read-only dashboard role; actions need the \
                 dashboard:operate scope.",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    let actor = Actor {
        id: session.key_id.clone(),
        source,
        route: Some(format!("{method} {route}")),
    };
    let mut request = request;
    request.extensions_mut().insert(session);
    audit::acting_as(actor, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let mut headers = HeaderMap::new();
        let cookie = set_cookie(Some("abc"), &headers);
        assert!(
            cookie.starts_with("tally_dashboard=abc; Path=/dashboard; HttpOnly; SameSite=Strict")
        );
        assert!(!cookie.contains("Secure"));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(set_cookie(Some("abc"), &headers).ends_with("; Secure"));
        assert!(set_cookie(None, &headers).contains("Max-Age=0"));
    }

    #[test]
    fn the_token_is_read_from_the_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; tally_dashboard=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("tok"));
        assert_ne!(token_hash("tok"), "tok");
    }
}
