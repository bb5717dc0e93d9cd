//! The background worker: drives in-flight objects (status queries, retries, dead letters),
//! releases escrowed orders whose hold period is over, cancels authorizations not captured in
//! time, settles orders that waited too long for their customer's 3-D Secure authentication, sweeps expired idempotency keys, runs
//! automatic daily payouts and recurring billing, and delivers events to the merchant's webhook
//! endpoints. Every step is safe to run in several tally-pay processes at once: PSP calls carry
//! idempotency keys and every state change is a versioned `Txn`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Timelike;

use crate::edges::idempotency;
use crate::flows::Pay;

/// How often expired idempotency keys are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How often the daily payout schedule is checked.
const DAILY_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Runs until the process ends.
pub async fn run(pay: Arc<Pay>) {
    // Webhook deliveries wait on the merchant's servers: a loop of their own, so a slow endpoint
    // does not hold up payments.
    tokio::spawn(deliver_events(Arc::clone(&pay)));
    let mut tick = tokio::time::interval(Duration::from_millis(pay.config.worker.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = tokio::time::Instant::now();
    let mut last_daily_check = tokio::time::Instant::now();
    let mut daily_done: Option<chrono::NaiveDate> = None;
    let billing_every = Duration::from_millis(pay.config.billing.run_interval_ms);
    let mut last_billing = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if let Err(error) = pay.work_once().await {
            tracing::warn!(%error, "worker pass failed");
        }
        release_and_expire(&pay).await;
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            match idempotency::sweep(&pay.store).await {
                Ok(swept) if swept > 0 => tracing::info!(swept, "expired idempotency keys removed"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "idempotency sweep failed"),
            }
        }
        if last_billing.elapsed() >= billing_every {
            last_billing = tokio::time::Instant::now();
            match pay.run_billing().await {
                Ok(run) if !run.errors.is_empty() => {
                    tracing::warn!(errors = ?run.errors, "billing run had errors");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "billing run failed"),
            }
        }
        if last_daily_check.elapsed() >= DAILY_CHECK_EVERY {
            last_daily_check = tokio::time::Instant::now();
            daily_payouts_if_due(&pay, &mut daily_done).await;
        }
    }
}

/// Hands out and delivers events to the webhook endpoints, every `worker.interval_ms`.
async fn deliver_events(pay: Arc<Pay>) {
    let mut tick = tokio::time::interval(Duration::from_millis(pay.config.worker.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = pay.deliver_events_once().await {
            tracing::warn!(%error, "webhook delivery pass failed");
        }
    }
}

/// The escrow release pass, the authorization expiry pass and the action timeout pass.
async fn release_and_expire(pay: &Pay) {
    match pay.release_due().await {
        Ok(released) if released > 0 => tracing::info!(released, "escrow released"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "escrow release pass failed"),
    }
    match pay.cancel_expired().await {
        Ok(canceled) if canceled > 0 => {
            tracing::info!(canceled, "expired authorizations canceled");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "authorization expiry pass failed"),
    }
    match pay.expire_actions().await {
        Ok(expired) if expired > 0 => {
            tracing::info!(expired, "payment orders past their action timeout settled");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "action timeout pass failed"),
    }
}

/// Today's automatic payouts, once the payout hour has come and unless they ran already.
async fn daily_payouts_if_due(pay: &Arc<Pay>, daily_done: &mut Option<chrono::NaiveDate>) {
    let now = chrono::Utc::now();
    let today = now.date_naive();
    if now.hour() < pay.config.worker.daily_payout_hour || *daily_done == Some(today) {
        return;
    }
    match pay.run_daily_payouts(today).await {
        Ok(run) => {
            *daily_done = Some(today);
            if !run.created.is_empty() {
                tracing::info!(created = run.created.len(), date = %today, "daily payouts");
            }
        }
        Err(error) => tracing::warn!(%error, "daily payouts failed"),
    }
}
