//! The one HTTP executor: sends a connector's [`HttpRequest`] to the PSP and turns transport
//! failures into [`PspError`]s. It knows nothing about any PSP's wire format: every HTTP status
//! comes back as an [`HttpResponse`] for the connector to interpret.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use super::{HttpMethod, HttpRequest, HttpResponse, PspError};

/// Longest time to establish a connection; a PSP that cannot be reached in this time is treated
/// as down (nothing was sent, so the call is retryable).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Largest response body read; a larger one is abandoned (a settlement report of ~80 000 lines
/// fits).
pub const RESPONSE_BODY_SIZE_MAX: usize = 8 * 1024 * 1024;

/// Finishes an HTTP client for calls to a PSP or a webhook receiver: TLS through rustls (ring),
/// trusting the public roots and `extra_ca` (a PEM bundle), never downgrading to plain text.
pub fn http_client(
    builder: reqwest::ClientBuilder,
    extra_ca: Option<&[u8]>,
) -> Result<reqwest::Client, String> {
    tally_tls::install_crypto_provider();
    let mut builder = builder.use_rustls_tls().tls_built_in_root_certs(true);
    if let Some(pem) = extra_ca {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|error| format!("the extra CA is not PEM: {error}"))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|error| format!("building the HTTP client: {error}"))
}

/// Sends requests to one PSP. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct HttpExecutor {
    client: reqwest::Client,
    /// Without a trailing `/`; request paths start with one.
    base_url: String,
    api_key: String,
}

impl fmt::Debug for HttpExecutor {
    /// The API key is a secret: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpExecutor")
            .field("base_url", &self.base_url)
            .field("api_key", &"****")
            .finish()
    }
}

impl HttpExecutor {
    /// An executor for the PSP at `base_url` (`https://psp.example` or, for the sandbox,
    /// `http://127.0.0.1:7400`), authenticating with `api_key`. `timeout` bounds each whole call:
    /// connect, send, and read the response. `https://` URLs are verified against the public
    /// roots and `extra_ca` (PEM), if given.
    pub fn new(
        base_url: &str,
        api_key: &str,
        timeout: Duration,
        extra_ca: Option<&[u8]>,
    ) -> Result<HttpExecutor, String> {
        let client = http_client(
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT.min(timeout))
                .timeout(timeout)
                // A PSP API answers; it does not redirect. A 3xx reaches the connector as is.
                .redirect(reqwest::redirect::Policy::none()),
            extra_ca,
        )?;
        Ok(HttpExecutor {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    /// Sends `request` with `Authorization: Bearer <api key>`.
    ///
    /// Errors: [`PspError::Retryable`] when no connection could be made (nothing was sent);
    /// [`PspError::Unknown`] when the request may have reached the PSP but no complete answer
    /// came back (timeout, reset, oversized body); [`PspError::Invalid`] when the request itself
    /// cannot be sent (a bad header from the connector).
    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, PspError> {
        debug_assert!(request.path.starts_with('/'), "{}", request.path);
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let url = format!("{}{}", self.base_url, request.path);
        let mut builder = self.client.request(method, url).bearer_auth(&self.api_key);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(transport_error)?;

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|length| length > RESPONSE_BODY_SIZE_MAX as u64)
        {
            return Err(oversized_body(status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > RESPONSE_BODY_SIZE_MAX {
                return Err(oversized_body(status));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn oversized_body(status: u16) -> PspError {
    PspError::Unknown {
        reason: format!("{status} response body over {RESPONSE_BODY_SIZE_MAX} bytes"),
    }
}

/// Connect errors happen before a byte of the request is sent, so retrying cannot double an
/// effect. Anything later (a timeout, a reset) may have reached the PSP.
fn transport_error(error: reqwest::Error) -> PspError {
    let reason = error_chain(&error);
    if error.is_builder() {
        PspError::Invalid { message: reason }
    } else if error.is_connect() {
        PspError::Retryable { reason }
    } else {
        PspError::Unknown { reason }
    }
}

/// `error: cause: cause`, because reqwest's own message hides the interesting part in sources.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
