//! The `Idempotency-Key` wrapper of POST routes, in two explicit forms:
//!
//! - [`Keyed::required`]: the key must be present (routes that move money); the handler gets a
//!   [`Key`], and a request without the header is refused before anything runs;
//! - [`Keyed::optional`]: the key is used when present; the handler gets an `Option<Key>`.
//!
//! Either way the body is screened for card data, then parsed into the handler's request type;
//! with a key, the claim, replay and release of `edges::idempotency` wrap the handler. The route
//! declaration names the form (`Routes::post_keyed`), and the handler's key argument must match
//! it, so a route cannot say one thing and do the other.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::screen::{self, Scan};
use super::{header, json_of, parse_body, respond, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use crate::edges::idempotency;
use crate::error::PayError;
use crate::flows::Pay;

/// What a keyed handler answers: a status and a body, or an error.
pub type Reply<T> = Result<(StatusCode, T), PayError>;

/// The two forms of the wrapper, as the route table records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// The request is refused without an `Idempotency-Key`.
    Required,
    /// The key is used when the request carries one.
    Optional,
}

impl Idempotency {
    pub fn name(self) -> &'static str {
        match self {
            Idempotency::Required => "required",
            Idempotency::Optional => "optional",
        }
    }
}

/// What the object ids of a keyed request derive from: its `Idempotency-Key` and the request's
/// fingerprint together (`idempotency::object_seed`), never the client's text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl std::ops::Deref for Key {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// The handler's key argument, which decides the form: [`Key`] (required) or `Option<Key>`
/// (optional).
pub trait KeyArgument: Sized + Send + 'static {
    const FORM: Idempotency;

    /// The argument for a request without the header; `None` refuses the request.
    fn absent() -> Option<Self>;

    fn present(key: Key) -> Self;
}

impl KeyArgument for Key {
    const FORM: Idempotency = Idempotency::Required;

    fn absent() -> Option<Key> {
        None
    }

    fn present(key: Key) -> Key {
        key
    }
}

impl KeyArgument for Option<Key> {
    const FORM: Idempotency = Idempotency::Optional;

    fn absent() -> Option<Option<Key>> {
        Some(None)
    }

    fn present(key: Key) -> Option<Key> {
        Some(key)
    }
}

/// A keyed handler: `async fn(Arc<Pay>, request, key)`, or with the path's parameters,
/// `async fn(Arc<Pay>, Path(..), request, key)`. `Args` tells the two shapes apart.
pub trait KeyedFn<Args, K>: Clone + Send + Sync + 'static {
    type Params: Send + 'static;
    type Request: DeserializeOwned + Send + 'static;
    type Body: Serialize + Send + 'static;

    /// Extracts the path's parameters, before the body is read.
    fn params(
        parts: &mut Parts,
        pay: &Arc<Pay>,
    ) -> impl Future<Output = Result<Self::Params, Response>> + Send;

    fn run(
        self,
        pay: Arc<Pay>,
        params: Self::Params,
        request: Self::Request,
        key: K,
    ) -> impl Future<Output = Reply<Self::Body>> + Send;
}

impl<F, Fut, R, T, K> KeyedFn<(R,), K> for F
where
    F: FnOnce(Arc<Pay>, R, K) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply<T>> + Send,
    R: DeserializeOwned + Send + 'static,
    T: Serialize + Send + 'static,
{
    type Params = ();
    type Request = R;
    type Body = T;

    fn params(
        _parts: &mut Parts,
        _pay: &Arc<Pay>,
    ) -> impl Future<Output = Result<(), Response>> + Send {
        std::future::ready(Ok(()))
    }

    fn run(
        self,
        pay: Arc<Pay>,
        _params: (),
        request: R,
        key: K,
    ) -> impl Future<Output = Reply<T>> + Send {
        self(pay, request, key)
    }
}

impl<F, Fut, P, R, T, K> KeyedFn<(P, R), K> for F
where
    F: FnOnce(Arc<Pay>, P, R, K) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply<T>> + Send,
    P: FromRequestParts<Arc<Pay>> + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    T: Serialize + Send + 'static,
{
    type Params = P;
    type Request = R;
    type Body = T;

    async fn params(parts: &mut Parts, pay: &Arc<Pay>) -> Result<P, Response> {
        P::from_request_parts(parts, pay)
            .await
            .map_err(IntoResponse::into_response)
    }

    fn run(
        self,
        pay: Arc<Pay>,
        params: P,
        request: R,
        key: K,
    ) -> impl Future<Output = Reply<T>> + Send {
        self(pay, params, request, key)
    }
}

/// A keyed handler in one of the two forms, ready to be routed (`Routes::post_keyed`).
pub struct Keyed<F, Args, K> {
    handler: F,
    scan: Scan,
    /// The route's path template (`/v1/customers/{id}/cards`), set when it is routed.
    template: &'static str,
    _form: PhantomData<fn() -> (Args, K)>,
}

impl<F: Clone, Args, K> Clone for Keyed<F, Args, K> {
    fn clone(&self) -> Self {
        Keyed {
            handler: self.handler.clone(),
            scan: self.scan,
            template: self.template,
            _form: PhantomData,
        }
    }
}

impl<F, Args> Keyed<F, Args, Key>
where
    F: KeyedFn<Args, Key>,
{
    /// The key must be present.
    pub fn required(handler: F) -> Self {
        Keyed::new(handler)
    }
}

impl<F, Args> Keyed<F, Args, Option<Key>>
where
    F: KeyedFn<Args, Option<Key>>,
{
    /// The key is used when present.
    pub fn optional(handler: F) -> Self {
        Keyed::new(handler)
    }
}

impl<F, Args, K: KeyArgument> Keyed<F, Args, K> {
    fn new(handler: F) -> Self {
        Keyed {
            handler,
            scan: Scan::Everything,
            template: "",
            _form: PhantomData,
        }
    }

    /// Which values the card-data screening scans (every one by default).
    pub fn scan(mut self, scan: Scan) -> Self {
        self.scan = scan;
        self
    }

    pub fn form(&self) -> Idempotency {
        K::FORM
    }

    pub(super) fn at(mut self, template: &'static str) -> Self {
        self.template = template;
        self
    }
}

impl<F, Args, K> Handler<(Args, K), Arc<Pay>> for Keyed<F, Args, K>
where
    F: KeyedFn<Args, K>,
    K: KeyArgument,
    Args: 'static,
{
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, request: Request, pay: Arc<Pay>) -> Self::Future {
        Box::pin(self.serve(request, pay))
    }
}

impl<F, Args, K> Keyed<F, Args, K>
where
    F: KeyedFn<Args, K>,
    K: KeyArgument,
{
    /// Extracts in the order a plain handler's arguments would be (path, then body), screens
    /// the body, then runs the handler with or without the key.
    async fn serve(self, request: Request, pay: Arc<Pay>) -> Response {
        let (mut parts, body) = request.into_parts();
        let params = match F::params(&mut parts, &pay).await {
            Ok(params) => params,
            Err(rejection) => return rejection,
        };
        let path = match Path::<Vec<(String, String)>>::from_request_parts(&mut parts, &pay).await {
            Ok(Path(values)) => fill_template(self.template, &values),
            Err(rejection) => return rejection.into_response(),
        };
        let key = header(&parts.headers, IDEMPOTENCY_KEY).map(str::to_string);
        let bytes = match Bytes::from_request(Request::from_parts(parts, body), &pay).await {
            Ok(bytes) => bytes,
            Err(rejection) => return rejection.into_response(),
        };
        let body = match json_of(&bytes) {
            Ok(body) => body,
            Err(e) => return e.into_response(),
        };
        if let Err(e) = screen::reject_card_data(&body, self.scan) {
            pay.metrics.inc("tally_pay_card_data_rejected_total");
            return e.into_response();
        }
        let Some(key) = key else {
            let Some(absent) = K::absent() else {
                return PayError::invalid(
                    "idempotency_key_required",
                    "this request moves money: send an Idempotency-Key header (e.g. a UUID) and \
                     reuse it when you retry",
                )
                .into_response();
            };
            return respond(run(self.handler, pay, params, body, absent).await);
        };
        under_key(self.handler, pay, params, body, &path, &key).await
    }
}

/// Claims the key, runs the handler and stores its answer; or replays the stored answer. `path`
/// is the request's path, as the fingerprint names it.
async fn under_key<F, Args, K>(
    handler: F,
    pay: Arc<Pay>,
    params: F::Params,
    body: serde_json::Value,
    path: &str,
    key: &str,
) -> Response
where
    F: KeyedFn<Args, K>,
    K: KeyArgument,
{
    if let Err(e) = idempotency::check_key(key) {
        return e.into_response();
    }
    let fingerprint = idempotency::fingerprint("POST", path, &body);
    // Stored under its hash: a key is client text and may be anything, a card number included.
    let record_key = idempotency::record_key(key);
    let lease_ms = pay.idempotency_lease_ms();
    let version = match idempotency::begin(&pay.store, &record_key, &fingerprint, lease_ms).await {
        Ok(idempotency::Begin::Run { version }) => version,
        Ok(idempotency::Begin::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            return response;
        }
        Err(e) => return e.into_response(),
    };
    // Object ids derive from the key and the request together: a retry of the same request
    // finds what its first attempt made, while a different request under a key released
    // after a 5xx gets fresh ids, never the first request's object.
    let seed = Key(idempotency::object_seed(key, &fingerprint));
    let answer = run(handler, Arc::clone(&pay), params, body, K::present(seed));
    let (status, value) = match answer.await {
        Ok((status, value)) => (status, serde_json::to_value(value).unwrap_or_default()),
        Err(e) => (
            e.status(),
            serde_json::to_value(e.body()).unwrap_or_default(),
        ),
    };
    let finished = idempotency::finish(&pay.store, &record_key, version, status.as_u16(), &value);
    if let Err(e) = finished.await {
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
    (status, axum::Json(value)).into_response()
}

/// Parses the body into the handler's request type (a malformed body is answered, and stored
/// under the key, like any other 4xx), then runs the handler.
async fn run<F, Args, K>(
    handler: F,
    pay: Arc<Pay>,
    params: F::Params,
    body: serde_json::Value,
    key: K,
) -> Reply<F::Body>
where
    F: KeyedFn<Args, K>,
{
    let request: F::Request = parse_body(&body)?;
    handler.run(pay, params, request, key).await
}

/// The request's path: the template with each `{name}` segment replaced by its decoded value.
fn fill_template(template: &str, values: &[(String, String)]) -> String {
    template
        .split('/')
        .map(|segment| {
            let name = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            name.and_then(|name| values.iter().find(|(key, _)| key == name))
                .map_or(segment, |(_, value)| value.as_str())
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::fill_template;

    #[test]
    fn the_fingerprinted_path_is_the_template_with_decoded_values() {
        let values = vec![("id".to_string(), "cus a/b".to_string())];
        assert_eq!(
            fill_template("/v1/customers/{id}/cards", &values),
            "/v1/customers/cus a/b/cards"
        );
        assert_eq!(fill_template("/v1/payments", &[]), "/v1/payments");
    }
}
