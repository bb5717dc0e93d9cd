//! Who may call which route. [`Routes`] registers every route with its [`Access`] and, for a
//! POST, its `Idempotency-Key` form (declared once, together with the route) and keeps the table
//! that the OpenAPI document, the docs' scope table and the tests read. Two layers enforce it:
//!
//! - [`authenticate`] (every request): refuses addresses with too many failed authentications
//!   (429), verifies `Authorization: Bearer KEY` (401), applies the key's rate limit (429), keeps
//!   bodies within [`super::BODY_BYTES_MAX`] (413), and counts every 401 against the address;
//! - [`require`] (per route): 401 without a key, 403 naming the missing scope, and runs the
//!   handler as the key's [`Actor`], so that audit entries name it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use super::keyed::{Idempotency, KeyArgument, Keyed, KeyedFn};
use crate::edges::auth::{Access, Principal, TokenBuckets, Verifier, VerifyError};
use crate::error::PayError;
use crate::flows::audit::{self, Actor};
use crate::flows::Pay;

/// One route and what it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAccess {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// The `Idempotency-Key` form of a keyed POST; `None` for every other route.
    pub idempotency: Option<Idempotency>,
}

/// A router under construction that remembers each route's access.
pub struct Routes {
    router: Router<Arc<Pay>>,
    table: Vec<RouteAccess>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Routes
    where
        H: Handler<T, Arc<Pay>>,
        T: 'static,
    {
        self.add("GET", path, access, None, get(handler))
    }

    /// A POST outside the idempotency protocol (its handler reads the body itself, if at all).
    pub fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Routes
    where
        H: Handler<T, Arc<Pay>>,
        T: 'static,
    {
        self.add("POST", path, access, None, post(handler))
    }

    /// A POST under the idempotency protocol, in the form `handler` was made with
    /// ([`Keyed::required`] or [`Keyed::optional`]).
    pub fn post_keyed<F, Args, K>(
        self,
        path: &'static str,
        access: Access,
        handler: Keyed<F, Args, K>,
    ) -> Routes
    where
        F: KeyedFn<Args, K>,
        K: KeyArgument,
        Args: 'static,
    {
        let form = handler.form();
        self.add("POST", path, access, Some(form), post(handler.at(path)))
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        idempotency: Option<Idempotency>,
        route: MethodRouter<Arc<Pay>>,
    ) -> Routes {
        assert!(
            !self
                .table
                .iter()
                .any(|r| r.method == method && r.path == path),
            "{method} {path} registered twice"
        );
        let name: Arc<str> = Arc::from(format!("{method} {path}"));
        let route = route.route_layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let name = Arc::clone(&name);
                async move { require(access, name, request, next).await }
            },
        ));
        self.router = self.router.route(path, route);
        self.table.push(RouteAccess {
            method,
            path,
            access,
            idempotency,
        });
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn table(&self) -> &[RouteAccess] {
        &self.table
    }

    pub fn into_router(self) -> Router<Arc<Pay>> {
        self.router
    }
}

/// The per-route check: a key holding the route's scope, then the handler runs as that key.
async fn require(access: Access, route: Arc<str>, request: Request, next: Next) -> Response {
    let Access::Scope(scope) = access else {
        return next.run(request).await;
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return PayError::Unauthorized {
            code: "api_key_required",
            message: "this route needs an API key: send `Authorization: Bearer sk_...` (create \
                      one with `tally-pay keys create`)"
                .into(),
        }
        .into_response();
    };
    if !principal.holds(scope) {
        return PayError::Forbidden {
            scope: scope.name(),
        }
        .into_response();
    }
    let actor = Actor {
        id: principal.key_id.clone(),
        source: source_of(&request).map(|a| a.to_string()),
        route: Some(route.to_string()),
    };
    audit::acting_as(actor, next.run(request)).await
}

fn source_of(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The guards every request passes, shared by the whole router.
pub struct Guard {
    pay: Arc<Pay>,
    verifier: Verifier,
    per_key: TokenBuckets,
    failures_per_source: TokenBuckets,
}

impl Guard {
    pub fn new(pay: Arc<Pay>) -> Guard {
        let api = &pay.config.api;
        Guard {
            verifier: Verifier::new(api),
            per_key: TokenBuckets::new(api.rate_burst, f64::from(api.rate_per_s)),
            failures_per_source: TokenBuckets::new(
                api.auth_failures_per_minute,
                f64::from(api.auth_failures_per_minute) / 60.0,
            ),
            pay,
        }
    }

    async fn principal(&self, value: &HeaderValue) -> Result<Principal, PayError> {
        let refused = |reason: &str| PayError::Unauthorized {
            code: "invalid_api_key",
            message: format!("{reason}; send `Authorization: Bearer KEY` with a live API key"),
        };
        let text = value
            .to_str()
            .map_err(|_| refused("malformed Authorization header"))?;
        let Some((scheme, secret)) = text.split_once(' ') else {
            return Err(refused("malformed Authorization header"));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(refused("the Authorization scheme must be Bearer"));
        }
        match self.verifier.verify(&self.pay.store, secret.trim()).await {
            Ok(principal) => Ok(principal),
            Err(VerifyError::Refused(reason)) => Err(refused(&reason.to_string())),
            Err(VerifyError::Unavailable(error)) => Err(error),
        }
    }
}

fn rate_limited(retry_after_s: u64, message: &str) -> Response {
    PayError::RateLimited {
        retry_after_s,
        message: format!("{message}; retry after {retry_after_s} s"),
    }
    .into_response()
}

/// The layer in front of every route; see the module's documentation.
pub async fn authenticate(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let source = source_of(&request).map_or_else(|| "unknown".to_string(), |a| a.ip().to_string());
    // Routes are named by their template: a path may carry anything a client typed.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<no route>".to_string(), |p| p.as_str().to_string());
    if let Err(wait) = guard.failures_per_source.check(&source) {
        return rate_limited(wait, "too many failed authentications from this address");
    }
    if let Some(value) = request.headers().get(header::AUTHORIZATION).cloned() {
        match guard.principal(&value).await {
            Ok(principal) => {
                if let Err(wait) = guard.per_key.take(&principal.key_id) {
                    return rate_limited(wait, "this API key made too many requests");
                }
                request.extensions_mut().insert(principal);
            }
            Err(error) => {
                let response = error.into_response();
                note_failure(&guard, &source, &route, response.status());
                return response;
            }
        }
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > super::BODY_BYTES_MAX as u64) {
        return too_large();
    }
    let response = next.run(request).await;
    note_failure(&guard, &source, &route, response.status());
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json(&response) {
        return too_large();
    }
    response
}

fn too_large() -> Response {
    PayError::TooLarge {
        limit_bytes: super::BODY_BYTES_MAX,
    }
    .into_response()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// A 401 counts against the address and is logged, without the key.
fn note_failure(guard: &Guard, source: &str, route: &str, status: StatusCode) {
    if status != StatusCode::UNAUTHORIZED {
        return;
    }
    let _ = guard.failures_per_source.take(source);
    guard.pay.metrics.inc("tally_pay_auth_failures_total");
    tracing::warn!(%source, %route, "authentication failed");
}
