//! The payment flows on the ledger. [`Pay`] is stateless: every object lives in the cluster, and
//! every status change commits together with its postings in one `Txn`, conditioned on the
//! version it was computed from. Any number of tally-pay processes can run side by side.

pub mod action;
pub mod audit;
pub mod billing;
pub mod capture;
mod charges;
pub mod clock;
pub mod cluster;
mod conversion;
mod delivery;
mod deposits;
pub mod disputes;
pub mod escrow;
pub mod events;
pub mod fx;
pub mod lists;
mod parties;
mod payment_events;
mod payouts;
pub mod recon;
mod refunds;
pub mod rekey;
pub mod reports;
pub mod risk;
mod tracked;
mod webhooks;
pub mod worker;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{ExhaustedPolicy, PayConfig, RefundFeePolicy};
use crate::crypto::Sealer;
use crate::domain::model::{
    ns, DeadLetter, Failure, Inflight, InflightKind, Order, Payout, Refund,
};
use crate::domain::money::{Currency, FeeRule};
use crate::edges::psp::Gateway;
use crate::edges::store::{Commit, Store, Txn, Versioned, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::clock::Clock;
use crate::flows::risk::RiskCheck;
use crate::metrics::Metrics;

pub use charges::{NewOrder, NewPayment};
pub use delivery::SIGNATURE_HEADER;
pub use deposits::NewDeposit;
pub use parties::{Balance, NewBankAccount, NewCard, NewCustomer, NewSeller, UpdateSeller};
pub use payouts::{DailyPayoutRun, NewPayout};
pub use refunds::NewRefund;
pub use webhooks::WebhookReceipt;

/// Attempts of one optimistic update (read, compute, commit if unchanged) before giving up.
const UPDATE_ATTEMPTS_MAX: u32 = 16;

/// Bytes of names, e-mails, descriptions and reasons.
pub const TEXT_BYTES_MAX: usize = 200;

/// The payment service: ledger store, PSP gateway, rules.
pub struct Pay {
    pub store: Store,
    pub psp: Gateway,
    pub config: PayConfig,
    pub currencies: Vec<Currency>,
    pub fee: FeeRule,
    pub refund_fee_policy: RefundFeePolicy,
    /// Where the flows read the time; `billing.clock` chose it when the configuration was
    /// validated.
    pub clock: Clock,
    /// `billing.exhausted`, parsed when the configuration was validated.
    pub billing_exhausted: ExhaustedPolicy,
    pub sealer: Sealer,
    pub risk: Arc<dyn RiskCheck>,
    /// Where FX rates come from (`fx.source`).
    pub rates: Arc<dyn fx::RateSource>,
    pub metrics: Arc<Metrics>,
}

/// Wall-clock time in Unix milliseconds, for what has no [`Pay`] at hand (the edges, records'
/// own methods); the flows read `Pay::clock`.
pub fn now_ms() -> i64 {
    Clock::System.now_ms()
}

impl Pay {
    /// Builds the service from a validated configuration: the ledger client (connections open
    /// lazily), the PSP gateway, the risk rules and the encryption key.
    pub async fn connect(config: PayConfig) -> Result<Arc<Pay>, String> {
        let keys = config.data_keys()?;
        if config.pay.dev {
            tracing::warn!(
                "dev mode: secrets that were not given are the public development ones; never \
                 run like this in production"
            );
        }
        let keyring: Vec<(&str, &[u8; 32])> =
            keys.iter().map(|k| (k.id.as_str(), &k.bytes)).collect();
        let client =
            tally_client::Client::connect(config.cluster_addrs(), config.cluster_options()?)
                .await
                .map_err(|e| format!("connecting to the ledger cluster: {e}"))?;
        let psp_ca = if config.psp.ca.is_empty() {
            None
        } else {
            Some(
                std::fs::read(&config.psp.ca)
                    .map_err(|e| format!("psp.ca: cannot read {}: {e}", config.psp.ca))?,
            )
        };
        let executor = crate::edges::psp::HttpExecutor::new(
            &config.psp.url,
            &config.psp.api_key,
            std::time::Duration::from_millis(config.psp.timeout_ms),
            psp_ca.as_deref(),
        )?;
        let connector = crate::edges::psp::SandboxConnector::new(
            config.psp.webhook_secret.clone().into_bytes(),
        );
        let psp = Gateway::new(Arc::new(connector), executor);
        let rates: Arc<dyn fx::RateSource> = match config.fx.source.as_str() {
            "table" => Arc::new(fx::TableRates::parse(&config.fx.rates).map_err(|p| p.join("; "))?),
            _ => Arc::new(fx::PspRates::new(psp.clone())),
        };
        Ok(Arc::new(Pay {
            store: Store::new(client),
            psp,
            rates,
            currencies: config.currencies(),
            fee: config.fee_rule(),
            refund_fee_policy: config.refund_fee_policy(),
            clock: Clock::new(config.billing_clock_mode()),
            billing_exhausted: config.billing_exhausted(),
            sealer: Sealer::with_keys(&keyring),
            risk: Arc::new(crate::flows::risk::RuleRisk::new(config.risk.clone())),
            metrics: Arc::new(Metrics::default()),
            config,
        }))
    }

    /// Creates the platform's own ledger accounts for every enabled currency (idempotent).
    pub async fn ensure_system_accounts(&self) -> Result<(), PayError> {
        let accounts = self
            .currencies
            .iter()
            .flat_map(|c| crate::domain::chart::system_accounts(*c))
            .collect();
        self.store.ensure_accounts(accounts).await?;
        Ok(())
    }

    /// An enabled currency by code, or a 400 naming the problem.
    pub fn currency(&self, code: &str) -> Result<Currency, PayError> {
        let Some(currency) = Currency::by_code(code) else {
            return Err(PayError::invalid(
                "unknown_currency",
                "unknown currency: use an ISO 4217 code such as USD, EUR or JPY",
            ));
        };
        if !self.currencies.contains(&currency) {
            return Err(PayError::invalid(
                "currency_not_enabled",
                format!(
                    "currency {code} is not enabled on this service (enabled: {})",
                    self.config.pay.currencies.join(", ")
                ),
            ));
        }
        Ok(currency)
    }

    pub fn idempotency_lease_ms(&self) -> i64 {
        i64::try_from(self.config.pay.idempotency_lease_ms).unwrap_or(i64::MAX)
    }

    /// When a worker should first look at an object the API is driving right now: after the
    /// API's own PSP call has had its full timeout.
    fn first_check_at(&self) -> i64 {
        self.clock.now_ms()
            + i64::try_from(self.config.psp.timeout_ms).unwrap_or(i64::MAX / 4)
            + 2000
    }

    /// Exponential backoff with full jitter for attempt `attempts` (1-based), in milliseconds.
    fn backoff_ms(&self, attempts: u32) -> i64 {
        let w = &self.config.worker;
        let exp = w
            .backoff_initial_ms
            .saturating_mul(1u64 << attempts.min(20))
            .min(w.backoff_max_ms);
        let jittered = exp / 2 + rand::random::<u64>() % (exp / 2 + 1);
        i64::try_from(jittered).unwrap_or(i64::MAX / 4)
    }

    /// Reads a record, or 404 naming it.
    async fn load<T: DeserializeOwned>(
        &self,
        namespace: &str,
        key: &str,
        what: &str,
    ) -> Result<crate::edges::store::Versioned<T>, PayError> {
        self.store
            .get(namespace, key)
            .await?
            .ok_or_else(|| PayError::not_found(echo_safe(what, key)))
    }

    /// Optimistic update of one record: `plan` sees the current value and returns the new one
    /// plus whatever else must commit with it (transfers, other records), or `None` when there is
    /// nothing to do. Retries when another writer got there first.
    async fn update<T, F>(&self, namespace: &str, key: &str, mut plan: F) -> Result<T, PayError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&T) -> Option<(T, Txn)>,
    {
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self.load::<T>(namespace, key, namespace).await?;
            let Some((next, txn)) = plan(&current.value) else {
                return Ok(current.value);
            };
            let txn = self
                .with_payment_event(txn, namespace, &current.value, &next)
                .await?;
            let txn = txn
                .event(namespace, Some(&current.value), &next)
                .require_version(namespace, key, current.version)
                .put(namespace, key, &next);
            match self.store.commit(txn).await? {
                Commit::Committed => return Ok(next),
                Commit::ConditionFailed { .. } => continue,
                other => {
                    return Err(PayError::Internal(format!(
                        "ledger refused an update of {namespace}/{key}: {}",
                        describe_commit(&other)
                    )))
                }
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("{namespace}/{key} kept changing; try again"),
        })
    }

    /// Adds the in-flight index entry of an object to `txn`.
    fn track(txn: Txn, kind: InflightKind, id: &str) -> Txn {
        txn.put(
            ns::INFLIGHT,
            id,
            &Inflight {
                kind,
                id: id.to_string(),
            },
        )
    }

    /// Removes an object from the in-flight and dead-letter indexes.
    fn untrack(txn: Txn, id: &str) -> Txn {
        txn.delete(ns::INFLIGHT, id).delete(ns::DEAD_LETTER, id)
    }

    /// Moves an object from the in-flight index to the dead-letter index.
    fn dead_letter(txn: Txn, entry: &DeadLetter) -> Txn {
        txn.delete(ns::INFLIGHT, &entry.id)
            .put(ns::DEAD_LETTER, &entry.id, entry)
    }

    /// Every dead-lettered object.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, PayError> {
        Ok(self
            .store
            .scan_all::<DeadLetter>(ns::DEAD_LETTER, "")
            .await?
            .into_iter()
            .map(|(_, v)| v.value)
            .collect())
    }

    /// Puts a dead-lettered object back in the worker's hands with fresh attempts.
    pub async fn retry_dead_letter(&self, id: &str) -> Result<DeadLetter, PayError> {
        let entry = self
            .load::<DeadLetter>(ns::DEAD_LETTER, id, "dead letter")
            .await?;
        match entry.value.kind {
            InflightKind::Order => self.revive::<Order>(id).await?,
            InflightKind::Refund => self.revive::<Refund>(id).await?,
            InflightKind::Payout => self.revive::<Payout>(id).await?,
        }
        Ok(entry.value)
    }

    /// One pass of the background worker: drives every due in-flight object one step, reading
    /// the in-flight index [`WORKER_PAGE_MAX`] entries at a time. Returns how many objects it
    /// looked at.
    pub async fn work_once(self: &Arc<Self>) -> Result<usize, PayError> {
        let mut count = 0;
        let mut cursor = String::new();
        loop {
            let page = self
                .store
                .next_page::<Inflight>(ns::INFLIGHT, "", &mut cursor, WORKER_PAGE_MAX)
                .await?;
            if page.is_empty() {
                return Ok(count);
            }
            count += page.len();
            self.work_page(page).await;
        }
    }

    /// Drives the objects of one page of the in-flight index, [`WORKER_CONCURRENCY_MAX`] at once.
    async fn work_page(self: &Arc<Self>, entries: Vec<(String, Versioned<Inflight>)>) {
        let mut tasks = tokio::task::JoinSet::new();
        for (_, entry) in entries {
            let pay = Arc::clone(self);
            tasks.spawn(async move {
                let result = match entry.value.kind {
                    InflightKind::Order => pay.step_order(&entry.value.id, false).await,
                    InflightKind::Refund => pay.step_refund(&entry.value.id, false).await,
                    InflightKind::Payout => pay.step_payout(&entry.value.id, false).await,
                };
                if let Err(error) = result {
                    tracing::warn!(id = %entry.value.id, %error, "worker step failed");
                }
            });
            // Bound the PSP calls one pass makes at once.
            while tasks.len() >= WORKER_CONCURRENCY_MAX {
                tasks.join_next().await;
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// PSP calls one worker pass makes concurrently.
const WORKER_CONCURRENCY_MAX: usize = 32;

/// In-flight entries one worker step reads and drives before reading the next page.
pub const WORKER_PAGE_MAX: u32 = 256;
const _: () = assert!(WORKER_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);
const _: () = assert!(WORKER_CONCURRENCY_MAX <= WORKER_PAGE_MAX as usize);

/// The next attempt, or a dead letter when attempts are exhausted.
enum Retry {
    At { attempts: u32, at_ms: i64 },
    Exhausted { attempts: u32 },
}

impl Pay {
    fn next_retry(&self, attempts: u32) -> Retry {
        let attempts = attempts.saturating_add(1);
        if attempts >= self.config.worker.max_attempts {
            Retry::Exhausted { attempts }
        } else {
            Retry::At {
                attempts,
                at_ms: self.clock.now_ms() + self.backoff_ms(attempts),
            }
        }
    }
}

pub(crate) fn failure(code: &str, message: impl Into<String>) -> Failure {
    Failure {
        code: code.to_string(),
        message: message.into(),
    }
}

pub(crate) fn describe_commit(commit: &Commit) -> String {
    match commit {
        Commit::Committed => "committed".into(),
        Commit::ConditionFailed { label } => format!("the condition on {label} failed"),
        Commit::TransferFailed { label, result } => format!("{label}: {result}"),
        Commit::AccountFailed { label, result } => format!("{label}: {result}"),
    }
}

/// Checks a free-text field: present, at most [`TEXT_BYTES_MAX`] bytes, no control characters.
pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), PayError> {
    if value.trim().is_empty()
        || value.len() > TEXT_BYTES_MAX
        || value.chars().any(char::is_control)
    {
        return Err(PayError::invalid_param(
            "invalid_text",
            field,
            format!(
                "`{field}` must be 1 to {TEXT_BYTES_MAX} bytes of text without control characters"
            ),
        ));
    }
    Ok(())
}

/// How a 404 names what was not found: with its id when the id is one tally-pay could have made
/// (a type prefix and 16 hex digits, not all decimal), else by kind only, so that whatever a
/// client put in a path is never echoed (into a response, the logs, or a stored idempotent
/// response).
pub(crate) fn echo_safe(what: &str, key: &str) -> String {
    let made_here = key.split_once('_').is_some_and(|(prefix, hex)| {
        !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_lowercase())
            && hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && !hex.bytes().all(|b| b.is_ascii_digit())
    });
    if made_here {
        format!("{what} {key}")
    } else {
        what.to_string()
    }
}

/// Parses an id from a request (a path or a body field) into its type; a malformed one is
/// refused as `invalid_id`, naming the field.
pub(crate) fn parse_id<T: crate::domain::ids::Id>(
    field: &'static str,
    id: &str,
) -> Result<T, PayError> {
    id.parse().map_err(|_| {
        PayError::invalid_param(
            "invalid_id",
            field,
            format!(
                "`{field}` must be an id like {}_0123456789abcdef",
                T::PREFIX
            ),
        )
    })
}

/// The id a request body names in `field`, checked: `invalid_id` naming the field when the text is
/// not an id of type `T`.
pub(crate) fn checked<T: crate::domain::ids::Id>(
    field: &'static str,
    id: &crate::domain::ids::Unchecked<T>,
) -> Result<T, PayError> {
    parse_id(field, id.as_str())
}
