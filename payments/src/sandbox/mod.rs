//! The sandbox PSP: a real HTTP server with Stripe-like semantics (test cards, idempotency
//! keys, signed webhooks, settlement reports) and injectable faults. The quick start and the
//! tests use it in place of a real PSP; `psp::SandboxConnector` speaks its API.
//!
//! Charges and refunds succeed or fail at once (by test card, `cards.rs`). A payout is
//! `pending` for `payout_delay`, then `paid`, or `failed` with `account_closed` when it goes to
//! account number [`CLOSED_ACCOUNT_NUMBER`] or to an IBAN ending in [`CLOSED_IBAN_SUFFIX`].
//! Webhooks (`charge.succeeded`, `charge.failed`, `refund.succeeded`, `payout.paid`,
//! `payout.failed`) are `psp::WebhookEvent`s in JSON, signed as `psp::webhook` describes.
//!
//! All state is in memory behind one mutex, never held across an `.await`. The API is
//! described in `api.rs`, idempotency in `idempotency.rs`, the faults in `faults.rs`, the
//! settlement report and its adjustments in `settlement.rs`.

mod api;
mod cards;
mod constants;
mod error;
mod faults;
mod idempotency;
mod model;
mod settlement;
mod webhooks;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use rust_decimal::Decimal;

pub use constants::{AMOUNT_MAX, PAYOUT_DELAY_MAX};
pub use faults::Faults;
pub use model::{CLOSED_ACCOUNT_NUMBER, CLOSED_IBAN_SUFFIX};

use model::{Effect, FeeSchedule, Model};
use webhooks::{Delivery, WebhookSender};

pub struct SandboxConfig {
    pub listen: SocketAddr,
    /// The secret key (`Authorization: Bearer <api_key>`) every API call but tokenization needs.
    pub api_key: String,
    /// Where events are POSTed; `None`: no webhooks.
    pub webhook_url: Option<String>,
    pub webhook_secret: Vec<u8>,
    pub faults: Faults,
    /// How long a payout stays `pending`.
    pub payout_delay: Duration,
    /// The PSP fee of a charge: `fee_percent` % of the amount, rounded half-up (away from zero)
    /// to the currency's minor unit, plus `fee_fixed` minor units, at most the amount.
    pub fee_percent: Decimal,
    pub fee_fixed: u64,
    /// Where the books are saved after every change and read back at start-up, so that a
    /// restart keeps tokens, charges, refunds and payouts; `None`: memory only.
    pub state_path: Option<PathBuf>,
    /// Serve HTTPS with this certificate and key (PEM); `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Extra CA (PEM) trusted for an `https://` webhook URL, besides the public roots.
    pub webhook_ca: Option<PathBuf>,
}

impl Default for SandboxConfig {
    /// 127.0.0.1:7400, `sk_test_tally`, `whsec_tally_dev`, no webhooks, no faults, payouts paid
    /// after 2 s, fees 2.9 % + 30.
    fn default() -> SandboxConfig {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            api_key: "sk_test_tally".to_owned(),
            webhook_url: None,
            webhook_secret: b"whsec_tally_dev".to_vec(),
            faults: Faults::default(),
            payout_delay: Duration::from_secs(2),
            fee_percent: Decimal::new(29, 1),
            fee_fixed: 30,
            state_path: None,
            tls: None,
            webhook_ca: None,
        }
    }
}

impl fmt::Debug for SandboxConfig {
    /// Secrets are not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("listen", &self.listen)
            .field("api_key", &"****")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &"****")
            .field("faults", &self.faults.to_string())
            .field("payout_delay", &self.payout_delay)
            .field("fee_percent", &self.fee_percent)
            .field("fee_fixed", &self.fee_fixed)
            .field("state_path", &self.state_path)
            .field("tls", &self.tls)
            .field("webhook_ca", &self.webhook_ca)
            .finish()
    }
}

impl SandboxConfig {
    /// One message per broken rule.
    pub fn validate(&self) -> Result<(), String> {
        if self.api_key.is_empty() || self.api_key.starts_with("pk_") {
            return Err("sandbox api_key must be a non-empty secret key (not pk_...)".to_owned());
        }
        if self.webhook_secret.is_empty() {
            return Err("sandbox webhook_secret must not be empty".to_owned());
        }
        if let Some(url) = &self.webhook_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|error| format!("sandbox webhook_url `{url}`: {error}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "sandbox webhook_url `{url}`: must be http:// or https://"
                ));
            }
        }
        if self.payout_delay > PAYOUT_DELAY_MAX {
            return Err(format!(
                "sandbox payout_delay must be at most {} s",
                PAYOUT_DELAY_MAX.as_secs()
            ));
        }
        if self.fee_percent < Decimal::ZERO || self.fee_percent > Decimal::ONE_HUNDRED {
            return Err("sandbox fee_percent must be between 0 and 100".to_owned());
        }
        if self.fee_fixed > AMOUNT_MAX {
            return Err(format!("sandbox fee_fixed must be at most {AMOUNT_MAX}"));
        }
        Ok(())
    }
}

/// Binds `config.listen` and serves until the process ends.
pub async fn run(config: SandboxConfig) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the sandbox PSP to {}", config.listen))?;
    serve(config, listener).await
}

/// Serves the sandbox API on `listener` until the process ends.
pub async fn serve(config: SandboxConfig, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let address = listener.local_addr().context("sandbox listener address")?;
    let state_path = config.state_path.clone();
    let tls = match &config.tls {
        Some((cert, key)) => Some(tally_tls::load_server_config(cert, key)?),
        None => None,
    };
    let webhook_ca = match &config.webhook_ca {
        Some(path) => {
            tally_tls::load_ca(path)?;
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let sandbox = Arc::new(Sandbox::new(config, webhook_ca.as_deref())?);
    if let Some(path) = &state_path {
        sandbox.load(path)?;
    }
    tracing::info!(
        %address,
        https = tls.is_some(),
        faults = %sandbox.lock().faults,
        "sandbox PSP listening"
    );
    let app = api::router(sandbox);
    match tls {
        Some(tls) => axum::serve(crate::tls_listener::TlsListener::new(listener, tls)?, app)
            .await
            .context("serving the sandbox PSP"),
        None => axum::serve(listener, app)
            .await
            .context("serving the sandbox PSP"),
    }
}

/// What every request handler shares.
struct Sandbox {
    api_key: String,
    payout_delay: Duration,
    model: Mutex<Model>,
    webhooks: WebhookSender,
    state_path: Option<PathBuf>,
    /// Held while the state file is written, so that saves land in order.
    saving: Mutex<()>,
}

impl Sandbox {
    fn new(config: SandboxConfig, webhook_ca: Option<&[u8]>) -> anyhow::Result<Sandbox> {
        let fees = FeeSchedule {
            percent: config.fee_percent,
            fixed: config.fee_fixed,
        };
        let faults = with_seed(config.faults);
        Ok(Sandbox {
            api_key: config.api_key,
            payout_delay: config.payout_delay,
            model: Mutex::new(Model::new(faults, fees)),
            webhooks: WebhookSender::new(config.webhook_url, &config.webhook_secret, webhook_ca)?,
            state_path: config.state_path,
            saving: Mutex::new(()),
        })
    }

    /// Reads the saved books, if the file exists, and completes the payouts that were pending.
    fn load(self: &Arc<Self>, path: &Path) -> anyhow::Result<()> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let saved: model::Saved = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a sandbox state file", path.display()))?;
        let pending = self
            .lock()
            .restore(saved)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        tracing::info!(path = %path.display(), pending_payouts = pending.len(), "sandbox state loaded");
        self.apply(
            pending
                .into_iter()
                .map(|reference| Effect::CompletePayout { reference })
                .collect(),
        );
        Ok(())
    }

    /// Writes the books to the state file (write a temporary file, sync, rename), if there is
    /// one. A failure is logged: the sandbox keeps serving from memory.
    fn save(&self) {
        let Some(path) = &self.state_path else {
            return;
        };
        let _saving = self.saving.lock().unwrap_or_else(PoisonError::into_inner);
        let saved = self.lock().save();
        if let Err(error) = write_atomically(path, &saved) {
            tracing::error!(path = %path.display(), %error, "cannot save the sandbox state");
        }
    }

    /// The model. A panic while holding the lock cannot leave it half-changed (every change is
    /// made after all checks), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries out what a request (or a timer) decided: webhooks go out, payouts get settled
    /// after the delay. Webhook faults are drawn here, in effect order.
    fn apply(self: &Arc<Self>, effects: Vec<Effect>) {
        let mut deliveries = Vec::new();
        {
            let mut model = self.lock();
            for effect in effects {
                match effect {
                    Effect::Webhook(event) => deliveries.push(plan_delivery(&mut model, event)),
                    Effect::CompletePayout { reference } => {
                        let sandbox = Arc::clone(self);
                        spawn(async move {
                            tokio::time::sleep(sandbox.payout_delay).await;
                            let effects = sandbox.lock().complete_payout(&reference, now());
                            sandbox.save();
                            sandbox.apply(effects);
                        });
                    }
                }
            }
        }
        for delivery in deliveries {
            self.webhooks.dispatch(delivery);
        }
    }
}

fn write_atomically(path: &Path, saved: &model::Saved) -> anyhow::Result<()> {
    use std::io::Write as _;
    let bytes = serde_json::to_vec(saved)?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

fn plan_delivery(model: &mut Model, event: crate::edges::psp::WebhookEvent) -> Delivery {
    let (lost, duplicated, reordered) = (
        model.faults.lost_webhooks,
        model.faults.duplicate_webhooks,
        model.faults.reorder_webhooks,
    );
    let copies = if model.draw(lost) {
        0
    } else if model.draw(duplicated) {
        2
    } else {
        1
    };
    let delay = if model.draw(reordered) {
        constants::WEBHOOK_REORDER_DELAY
    } else {
        Duration::ZERO
    };
    Delivery {
        event,
        copies,
        delay,
    }
}

/// `faults` with a seed: the given one, or a fresh one (reported by `GET /_sandbox/faults`).
fn with_seed(faults: Faults) -> Faults {
    let seed = faults.seed.unwrap_or_else(rand::random);
    Faults {
        seed: Some(seed),
        ..faults
    }
}

/// The sandbox's one wall clock.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The sandbox's one way to start a background task.
fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edges::psp::{Payout, PayoutStatus, PspObject, WebhookEvent};

    fn model(spec: &str) -> Model {
        let fees = FeeSchedule {
            percent: Decimal::ZERO,
            fixed: 0,
        };
        Model::new(with_seed(Faults::parse(spec).unwrap()), fees)
    }

    fn event() -> WebhookEvent {
        WebhookEvent {
            id: "evt_1".to_owned(),
            kind: "payout.paid".to_owned(),
            created: 0,
            data: PspObject::Payout(Payout {
                psp_id: "po_1".to_owned(),
                reference: "p1".to_owned(),
                amount: 1,
                currency: "EUR".to_owned(),
                status: PayoutStatus::Paid,
                created: 0,
            }),
        }
    }

    fn plan(spec: &str) -> (u8, Duration) {
        let delivery = plan_delivery(&mut model(spec), event());
        (delivery.copies, delivery.delay)
    }

    #[test]
    fn webhook_faults_shape_the_delivery() {
        assert_eq!(plan(""), (1, Duration::ZERO));
        assert_eq!(plan("lost_webhooks=1"), (0, Duration::ZERO));
        assert_eq!(plan("duplicate_webhooks=1"), (2, Duration::ZERO));
        let reorder = constants::WEBHOOK_REORDER_DELAY;
        assert_eq!(plan("reorder_webhooks=1"), (1, reorder));
    }

    #[test]
    fn same_seed_draws_the_same_faults() {
        let draws = |spec: &str| {
            let mut model = model(spec);
            (0..64).map(|_| model.draw(0.5)).collect::<Vec<_>>()
        };
        assert_eq!(draws("seed=5"), draws("seed=5"));
        assert_ne!(draws("seed=5"), draws("seed=6"));
    }

    #[test]
    fn default_config_is_valid_and_secrets_stay_hidden() {
        let config = SandboxConfig::default();
        assert_eq!(config.validate(), Ok(()));
        let printed = format!("{config:?}");
        assert!(!printed.contains("sk_test_tally") && !printed.contains("whsec"));
        let bad = SandboxConfig {
            fee_percent: Decimal::new(101, 0),
            ..SandboxConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("fee_percent"));
        let bad = SandboxConfig {
            webhook_url: Some("ftp://x".to_owned()),
            ..SandboxConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
