//! The running sandbox: what every request handler shares (the books behind one mutex, never
//! held across an `.await`; the webhook sender; the state file), and how the effects of a
//! request (webhooks, payouts settling later) are carried out once the lock is released.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::SandboxConfig;
use crate::constants;
use crate::faults::Faults;
use crate::fx::FxTable;
use crate::model::{self, Effect, FeeSchedule, Model};
use crate::webhooks::{Delivery, WebhookSender};
use crate::wire::Event;

/// What every request handler shares.
pub(crate) struct Sandbox {
    pub(crate) api_key: String,
    payout_delay: Duration,
    model: Mutex<Model>,
    webhooks: WebhookSender,
    pub(crate) state_path: Option<PathBuf>,
    /// Held while the state file is written, so that saves land in order.
    saving: Mutex<()>,
    /// The FX rates it quotes (market data: not saved).
    fx: Mutex<FxTable>,
}

impl Sandbox {
    pub(crate) fn new(config: SandboxConfig, webhook_ca: Option<&[u8]>) -> anyhow::Result<Sandbox> {
        let fees = FeeSchedule {
            percent: config.fee_percent,
            fixed: config.fee_fixed,
        };
        let faults = with_seed(config.faults);
        let mut model = Model::new(faults, fees);
        if let Some(public_url) = &config.public_url {
            model.configure_three_ds(public_url, config.three_ds_timeout);
        }
        Ok(Sandbox {
            api_key: config.api_key,
            payout_delay: config.payout_delay,
            model: Mutex::new(model),
            webhooks: WebhookSender::new(config.webhook_url, &config.webhook_secret, webhook_ca)?,
            state_path: config.state_path,
            saving: Mutex::new(()),
            fx: Mutex::new(FxTable::default()),
        })
    }

    /// The FX rate table (never held across an `.await`).
    pub(crate) fn fx(&self) -> MutexGuard<'_, FxTable> {
        self.fx.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the saved books, if the file exists, and completes the payouts that were pending.
    pub(crate) fn load(self: &Arc<Self>, path: &Path) -> anyhow::Result<()> {
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
        let timers = self.lock().challenge_timers();
        tracing::info!(path = %path.display(), pending_payouts = pending.len(),
            open_challenges = timers.len(), "sandbox state loaded");
        self.apply(
            pending
                .into_iter()
                .map(|reference| Effect::CompletePayout { reference })
                .chain(timers)
                .collect(),
        );
        Ok(())
    }

    /// Writes the books to the state file (write a temporary file, sync, rename), if there is
    /// one. A failure is logged: the sandbox keeps serving from memory.
    pub(crate) fn save(&self) {
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
    pub(crate) fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries out what a request (or a timer) decided: webhooks go out, payouts get settled
    /// after the delay, 3-D Secure challenges expire at their time. Webhook faults are drawn here, in effect order.
    pub(crate) fn apply(self: &Arc<Self>, effects: Vec<Effect>) {
        let mut deliveries = Vec::new();
        {
            let mut model = self.lock();
            for effect in effects {
                match effect {
                    Effect::Webhook(event) => deliveries.push(plan_delivery(&mut model, event)),
                    Effect::ExpireChallenge { id, at } => {
                        let sandbox = Arc::clone(self);
                        let wait = (at - now()).to_std().unwrap_or(Duration::ZERO);
                        spawn(async move {
                            tokio::time::sleep(wait).await;
                            let effects = sandbox.lock().expire_challenge(&id, now());
                            if !effects.is_empty() {
                                sandbox.save();
                            }
                            sandbox.apply(effects);
                        });
                    }
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

fn plan_delivery(model: &mut Model, event: Event) -> Delivery {
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
pub(crate) fn with_seed(faults: Faults) -> Faults {
    let seed = faults.seed.unwrap_or_else(rand::random);
    Faults {
        seed: Some(seed),
        ..faults
    }
}

/// The sandbox's one wall clock.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The sandbox's one way to start a background task.
pub(crate) fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::wire::{EventObject, Payout, PayoutStatus};

    fn model(spec: &str) -> Model {
        let fees = FeeSchedule {
            percent: Decimal::ZERO,
            fixed: 0,
        };
        Model::new(with_seed(Faults::parse(spec).unwrap()), fees)
    }

    fn event() -> Event {
        Event {
            id: "evt_1".to_owned(),
            kind: "payout.paid".to_owned(),
            created: 0,
            data: EventObject::Payout(Payout {
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
}
