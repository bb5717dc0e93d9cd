//! Webhook delivery: each event is POSTed, signed, to the configured URL in a background task
//! (never on the API's path), retried with exponential backoff on a non-2xx answer or a
//! transport error. The webhook faults (lost, duplicated, held back) are drawn by the caller
//! and arrive here as a [`Delivery`] plan.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::constants::{
    WEBHOOK_ATTEMPTS_MAX, WEBHOOK_BACKOFF_INITIAL, WEBHOOK_DELIVERIES_IN_FLIGHT_MAX,
    WEBHOOK_TIMEOUT,
};
use crate::sandbox::{now, spawn};
use crate::signing::{signature_header, SIGNATURE_HEADER};
use crate::wire::Event;

/// How one event goes out.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event: Event,
    /// 0 (lost), 1, or 2 (duplicated: the same event id twice).
    pub copies: u8,
    /// Held back this long before the first attempt (reordering).
    pub delay: Duration,
}

pub struct WebhookSender {
    client: reqwest::Client,
    url: Option<String>,
    secret: Arc<[u8]>,
    in_flight: Arc<Semaphore>,
}

impl WebhookSender {
    /// Without a `url`, events are dropped.
    pub fn new(
        url: Option<String>,
        secret: &[u8],
        extra_ca: Option<&[u8]>,
    ) -> anyhow::Result<WebhookSender> {
        let client = http_client(extra_ca)?;
        Ok(WebhookSender {
            client,
            url,
            secret: Arc::from(secret),
            in_flight: Arc::new(Semaphore::new(WEBHOOK_DELIVERIES_IN_FLIGHT_MAX)),
        })
    }

    /// Starts the delivery in the background.
    pub fn dispatch(&self, delivery: Delivery) {
        let Some(url) = &self.url else {
            return;
        };
        let body = match serde_json::to_vec(&delivery.event) {
            Ok(body) => Arc::<[u8]>::from(body),
            Err(error) => {
                let event = &delivery.event.id;
                tracing::error!(%event, %error, "webhook event does not serialize");
                return;
            }
        };
        if delivery.copies == 0 {
            tracing::debug!(event = %delivery.event.id, "webhook lost (injected fault)");
        }
        for _ in 0..delivery.copies {
            let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                tracing::warn!(
                    event = %delivery.event.id,
                    limit = WEBHOOK_DELIVERIES_IN_FLIGHT_MAX,
                    "too many webhook deliveries in progress; event dropped"
                );
                return;
            };
            let attempt = Attempt {
                client: self.client.clone(),
                url: url.clone(),
                secret: self.secret.clone(),
                event_id: delivery.event.id.clone(),
                body: body.clone(),
            };
            spawn(attempt.deliver(delivery.delay, permit));
        }
    }
}

/// The client webhooks go out with: TLS through rustls, trusting the public roots and
/// `extra_ca` (a PEM bundle); no redirects (a receiver answers, it does not send us elsewhere).
fn http_client(extra_ca: Option<&[u8]>) -> anyhow::Result<reqwest::Client> {
    tally_tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .use_rustls_tls()
        .tls_built_in_root_certs(true);
    if let Some(pem) = extra_ca {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|error| anyhow::anyhow!("the extra CA is not PEM: {error}"))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|error| anyhow::anyhow!("building the HTTP client: {error}"))
}

struct Attempt {
    client: reqwest::Client,
    url: String,
    secret: Arc<[u8]>,
    event_id: String,
    body: Arc<[u8]>,
}

impl Attempt {
    /// Each attempt is signed afresh, so a late retry still passes the receiver's timestamp
    /// tolerance.
    async fn deliver(self, delay: Duration, _permit: OwnedSemaphorePermit) {
        tokio::time::sleep(delay).await;
        let mut backoff = WEBHOOK_BACKOFF_INITIAL;
        for attempt in 1..=WEBHOOK_ATTEMPTS_MAX {
            let signature = signature_header(&self.secret, now().timestamp(), &self.body);
            let result = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(self.body.to_vec())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::debug!(event = %self.event_id, attempt, status, "webhook refused");
                }
                Err(error) => {
                    let event = &self.event_id;
                    tracing::debug!(%event, attempt, %error, "webhook not delivered");
                }
            }
            if attempt < WEBHOOK_ATTEMPTS_MAX {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        tracing::warn!(
            event = %self.event_id,
            attempts = WEBHOOK_ATTEMPTS_MAX,
            "webhook delivery given up"
        );
    }
}
