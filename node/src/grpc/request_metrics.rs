//! Counts and times every gRPC call by method and result code (refused calls included): the
//! outermost layer of the server.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;

use crate::metrics::{GRPC_REQUESTS, GRPC_REQUEST_SECONDS};

#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMetricsLayer;

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestMetrics<S> {
    inner: S,
}

/// `Ledger/CreateTransfers` for `/tally.v1.Ledger/CreateTransfers`; unknown paths are lumped
/// together so a scanner cannot create unbounded label values.
fn method_label(path: &str) -> String {
    match super::auth::required_role(path) {
        Some(_) => path.trim_start_matches("/tally.v1.").to_string(),
        None => "unknown".to_string(),
    }
}

/// The gRPC code of a response: its `grpc-status` header (a trailers-only error), else `Ok`
/// (a successful unary reply carries its status in the trailers).
fn code_label<B>(response: &http::Response<B>) -> String {
    let code = response
        .headers()
        .get("grpc-status")
        .map(|value| tonic::Code::from_bytes(value.as_bytes()))
        .unwrap_or(tonic::Code::Ok);
    format!("{code:?}")
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RequestMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = method_label(request.uri().path());
        let started = std::time::Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            let code = match &result {
                Ok(response) => code_label(response),
                Err(_) => "Internal".to_string(),
            };
            metrics::histogram!(GRPC_REQUEST_SECONDS, "method" => method.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!(GRPC_REQUESTS, "method" => method, "code" => code).increment(1);
            result
        })
    }
}
