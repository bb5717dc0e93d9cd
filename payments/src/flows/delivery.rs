//! Delivering events to the merchant's webhook endpoints: at least once, in the order the events
//! were created, per endpoint. Every tally-pay process's worker runs two steps:
//!
//! 1. **Hand out**: page through the outbox (oldest first); for each event, one `Delivery` per
//!    enabled endpoint that wants it, queued under the endpoint, and the outbox entry deleted, all
//!    in one `Txn` (two processes handing out the same event: one commits, one finds it gone).
//! 2. **Deliver**: per endpoint with a queue, take its lease (one process at a time, so no event
//!    is sent twice at once), then send the queue's head. Success (2xx) dequeues it and moves on;
//!    a failure waits `retry_wait_ms` before the same delivery is tried again, and the later ones
//!    wait behind it, so a receiver that was down gets its backlog in order. A delivery still
//!    failing `webhooks.retry_for_s` after its event is given up (`failed`); `resend` queues it
//!    again.
//!
//! Each POST carries the event as JSON and `tally-signature: t=<unix s>,v1=<hex>`:
//! HMAC-SHA256 with the endpoint's secret over `"<t>.<body>"`, as the PSP signs its webhooks.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Pay;
use crate::domain::events::{
    self, Delivery, DeliveryAttempt, DeliveryLease, DeliveryStatus, Event, WebhookEndpoint,
};
use crate::domain::ids::WebhookEndpointId;
use crate::domain::model::ns;
use crate::edges::psp::webhook;
use crate::edges::store::{Commit, Txn, Versioned};
use crate::error::PayError;
use crate::flows::audit;

/// The header that carries a delivery's signature.
pub const SIGNATURE_HEADER: &str = "tally-signature";
/// Outbox entries handed out per worker pass.
const OUTBOX_PAGE_MAX: u32 = 100;
/// Deliveries one process makes to one endpoint per worker pass.
const DELIVERIES_PER_PASS_MAX: u32 = 100;
/// Bytes of an endpoint's error kept with an attempt.
const ATTEMPT_ERROR_BYTES_MAX: usize = 200;

/// A random id of this process, as lease holder.
fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

fn http() -> &'static reqwest::Client {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    HTTP.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// An endpoint's lease as this process holds it: the version to condition writes on.
struct Lease {
    version: u64,
    until: i64,
}

impl Pay {
    /// One worker pass: hands out new events, then delivers what is due.
    pub async fn deliver_events_once(&self) -> Result<(), PayError> {
        let endpoints = self.endpoints().await?;
        self.hand_out_events(&endpoints).await?;
        for endpoint in &endpoints {
            if let Err(error) = self.deliver_queue(endpoint).await {
                tracing::warn!(endpoint = %endpoint.id, %error, "webhook deliveries failed");
            }
        }
        Ok(())
    }

    /// Queues one page of outbox events for the endpoints that want them.
    async fn hand_out_events(&self, endpoints: &[WebhookEndpoint]) -> Result<(), PayError> {
        let page = self
            .store
            .scan::<String>(ns::EVENT_OUTBOX, "", "", OUTBOX_PAGE_MAX)
            .await?;
        for (key, entry) in page {
            let event = self.store.get::<Event>(ns::EVENT, &entry.value).await?;
            let mut txn = Txn::new()
                .require_version(ns::EVENT_OUTBOX, &key, entry.version)
                .delete(ns::EVENT_OUTBOX, &key);
            if let Some(event) = event {
                for endpoint in endpoints.iter().filter(|e| !e.disabled) {
                    if events::wants(&endpoint.event_types, &event.value.kind) {
                        txn = queue(txn, &endpoint.id, &event.value, super::now_ms());
                    }
                }
            }
            match self.store.commit(txn).await? {
                Commit::Committed | Commit::ConditionFailed { .. } => {}
                other => {
                    return Err(PayError::Internal(format!(
                        "handing out an event: {}",
                        super::describe_commit(&other)
                    )))
                }
            }
        }
        Ok(())
    }

    /// Sends the due head of `endpoint`'s queue, then the next, while they succeed.
    async fn deliver_queue(&self, endpoint: &WebhookEndpoint) -> Result<(), PayError> {
        let prefix = format!("{}/", endpoint.id);
        let mut lease: Option<Lease> = None;
        for _ in 0..DELIVERIES_PER_PASS_MAX {
            let head = self
                .store
                .scan::<String>(ns::DELIVERY_QUEUE, &prefix, "", 1)
                .await?;
            let Some((queue_key, entry)) = head.into_iter().next() else {
                return Ok(());
            };
            let Some(delivery) = self
                .store
                .get::<Delivery>(ns::DELIVERY, &entry.value)
                .await?
            else {
                self.dequeue_orphan(&queue_key, entry.version).await?;
                continue;
            };
            let now = super::now_ms();
            if delivery.value.status == DeliveryStatus::Pending
                && !endpoint.disabled
                && delivery.value.next_attempt_at > now
                && !self.given_up(&delivery.value, now)
            {
                return Ok(());
            }
            let held = match lease.take() {
                Some(held) if held.until - now > self.lease_margin_ms() => held,
                _ => match self.take_lease(&endpoint.id).await? {
                    Some(held) => held,
                    None => return Ok(()),
                },
            };
            let sent = self
                .deliver_one(endpoint, &queue_key, delivery, &held)
                .await?;
            lease = Some(held);
            if !sent {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Makes one attempt of `delivery` (or gives it up) and records it, conditioned on the lease.
    /// True when the queue may go on to the next delivery.
    async fn deliver_one(
        &self,
        endpoint: &WebhookEndpoint,
        queue_key: &str,
        delivery: Versioned<Delivery>,
        lease: &Lease,
    ) -> Result<bool, PayError> {
        let mut next = delivery.value.clone();
        let now = super::now_ms();
        let done = if delivery.value.status != DeliveryStatus::Pending {
            true
        } else if endpoint.disabled || self.given_up(&delivery.value, now) {
            next.status = DeliveryStatus::Failed;
            true
        } else {
            let attempt = self.send(endpoint, &delivery.value.event_id).await?;
            let ok = attempt.status_code.is_some_and(|c| (200..300).contains(&c));
            next.record(attempt);
            if ok {
                next.status = DeliveryStatus::Succeeded;
            } else {
                let wait = events::retry_wait_ms(
                    next.attempt_count,
                    self.config.webhooks.retry_initial_ms,
                    self.config.webhooks.retry_max_ms,
                );
                next.next_attempt_at = now + i64::try_from(wait).unwrap_or(i64::MAX / 4);
            }
            ok
        };
        let key = delivery.value.key();
        let mut txn = Txn::new()
            .require_version(ns::DELIVERY_LEASE, &endpoint.id, lease.version)
            .require_version(ns::DELIVERY, &key, delivery.version)
            .put(ns::DELIVERY, &key, &next);
        if done {
            txn = txn.delete(ns::DELIVERY_QUEUE, queue_key);
        }
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(done),
            // The lease was lost or the delivery resent meanwhile: leave it to the next pass.
            Commit::ConditionFailed { .. } => Ok(false),
            other => Err(PayError::Internal(format!(
                "recording a webhook delivery: {}",
                super::describe_commit(&other)
            ))),
        }
    }

    /// POSTs the event to the endpoint, signed.
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        event_id: &str,
    ) -> Result<DeliveryAttempt, PayError> {
        let event = self
            .load::<Event>(ns::EVENT, event_id, "event")
            .await?
            .value;
        let secret = self
            .sealer
            .open(&endpoint.secret_sealed)
            .map_err(|e| PayError::Internal(format!("webhook endpoint {}: {e}", endpoint.id)))?;
        let body = serde_json::to_vec(&event).map_err(|e| PayError::Internal(e.to_string()))?;
        let at = super::now_ms();
        let signature = webhook::sign(secret.as_bytes(), at.div_euclid(1000), &body);
        let started = Instant::now();
        let answer = http()
            .post(&endpoint.url)
            .timeout(Duration::from_millis(self.config.webhooks.timeout_ms))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status_code, error) = match answer {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => {
                let mut text = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "could not connect".to_string()
                } else {
                    "request failed".to_string()
                };
                text.truncate(ATTEMPT_ERROR_BYTES_MAX);
                (None, Some(text))
            }
        };
        Ok(DeliveryAttempt {
            at,
            status_code,
            error,
            duration_ms,
        })
    }

    /// Queues the delivery of event `event_id` to `endpoint_id` again (or for the first time, for
    /// an endpoint created after the event), with a fresh retry period.
    pub async fn resend_event(
        &self,
        event_id: &str,
        endpoint_id: &str,
    ) -> Result<Delivery, PayError> {
        let event = self.event(event_id).await?;
        let endpoint = self.endpoint(endpoint_id).await?;
        if endpoint.disabled {
            return Err(PayError::unprocessable(
                "endpoint_disabled",
                "this webhook endpoint is disabled",
            ));
        }
        let key = events::delivery_key(&event.id, &endpoint.id);
        let now = super::now_ms();
        let current = self.store.get::<Delivery>(ns::DELIVERY, &key).await?;
        let mut next = match &current {
            Some(current) => current.value.clone(),
            None => new_delivery(&endpoint.id, &event, now),
        };
        next.status = DeliveryStatus::Pending;
        next.next_attempt_at = now;
        next.created_at = now;
        let txn = audit::stamp(Txn::new(), "event.resend", &key)
            .require_version(ns::DELIVERY, &key, current.map_or(0, |c| c.version))
            .put(ns::DELIVERY, &key, &next)
            .put(
                ns::DELIVERY_QUEUE,
                &events::queue_key(&endpoint.id, &event),
                &key,
            );
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(next),
            Commit::ConditionFailed { .. } => Err(PayError::Conflict {
                code: "contention",
                message: "this delivery changed meanwhile; try again".into(),
            }),
            other => Err(PayError::Internal(super::describe_commit(&other))),
        }
    }

    /// True when `delivery` has been failing for longer than `webhooks.retry_for_s`.
    fn given_up(&self, delivery: &Delivery, now: i64) -> bool {
        let retry_for_ms = self.config.webhooks.retry_for_s.saturating_mul(1000);
        now.saturating_sub(delivery.created_at) > i64::try_from(retry_for_ms).unwrap_or(i64::MAX)
    }

    /// A lease must have this much time left before a send: the send's timeout, and as much
    /// again for the record write.
    fn lease_margin_ms(&self) -> i64 {
        i64::try_from(self.config.webhooks.timeout_ms.saturating_mul(2)).unwrap_or(i64::MAX / 4)
    }

    /// Takes (or renews) the delivery lease of an endpoint; `None` when another process holds it.
    async fn take_lease(&self, endpoint_id: &WebhookEndpointId) -> Result<Option<Lease>, PayError> {
        let current = self
            .store
            .get::<DeliveryLease>(ns::DELIVERY_LEASE, endpoint_id)
            .await?;
        let now = super::now_ms();
        if let Some(lease) = &current {
            if lease.value.holder != holder() && lease.value.until > now {
                return Ok(None);
            }
        }
        let version = current.map_or(0, |c| c.version);
        let until = now + self.lease_margin_ms() * 3;
        let lease = DeliveryLease {
            holder: holder().to_string(),
            until,
        };
        let txn = Txn::new()
            .require_version(ns::DELIVERY_LEASE, endpoint_id, version)
            .put(ns::DELIVERY_LEASE, endpoint_id, &lease);
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(Some(Lease {
                version: version + 1,
                until,
            })),
            _ => Ok(None),
        }
    }

    async fn dequeue_orphan(&self, queue_key: &str, version: u64) -> Result<(), PayError> {
        let txn = Txn::new()
            .require_version(ns::DELIVERY_QUEUE, queue_key, version)
            .delete(ns::DELIVERY_QUEUE, queue_key);
        self.store.commit(txn).await?;
        Ok(())
    }
}

fn new_delivery(endpoint_id: &WebhookEndpointId, event: &Event, now: i64) -> Delivery {
    Delivery {
        event_id: event.id.clone(),
        endpoint_id: endpoint_id.clone(),
        event_type: event.kind.clone(),
        status: DeliveryStatus::Pending,
        attempts: Vec::new(),
        attempt_count: 0,
        next_attempt_at: now,
        created_at: now,
    }
}

/// Adds a new delivery of `event` to `endpoint_id`, and its queue entry, to `txn`.
fn queue(txn: Txn, endpoint_id: &WebhookEndpointId, event: &Event, now: i64) -> Txn {
    let delivery = new_delivery(endpoint_id, event, now);
    let key = delivery.key();
    txn.require_version(ns::DELIVERY, &key, 0)
        .put(ns::DELIVERY, &key, &delivery)
        .put(
            ns::DELIVERY_QUEUE,
            &events::queue_key(endpoint_id, event),
            &key,
        )
}
