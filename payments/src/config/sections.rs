//! The sections of `tally-pay.toml` (`[pay]`, `[psp]`, `[fees]`, `[risk]`, `[worker]`,
//! `[escrow]`, `[billing]`, `[api]`, `[webhooks]`, `[fx]`), each with its defaults; `Debug` masks the secrets.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSection {
    /// `system`: the wall clock. `manual`: a clock stored in the cluster and moved with
    /// `POST /v1/billing/clock` (tests and demos move through months in seconds).
    pub clock: String,
    /// Days after the first failed charge of an invoice at which it is retried (dunning).
    pub retry_days: Vec<u32>,
    /// What a subscription becomes when the retries are exhausted: `canceled` or `unpaid`.
    pub exhausted: String,
    /// How often the worker runs billing (system clock only).
    pub run_interval_ms: u64,
}

impl Default for BillingSection {
    fn default() -> Self {
        BillingSection {
            clock: "system".into(),
            retry_days: vec![1, 3, 5],
            exhausted: "canceled".into(),
            run_interval_ms: 60_000,
        }
    }
}

#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaySection {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Ledger cluster nodes, `HOST:PORT,...`.
    pub cluster: String,
    /// Currencies this service accepts (ISO 4217 codes it knows; see `money::CURRENCIES`).
    pub currencies: Vec<String>,
    /// The AES-256-GCM data key that encrypts bank account numbers at rest, as
    /// `KEY_ID:BASE64` (32 bytes). Or `encryption_key_file`, a file holding the same text.
    pub encryption_key: String,
    pub encryption_key_file: String,
    /// Older data keys (`KEY_ID:BASE64`) that still decrypt values sealed before a rotation.
    pub previous_encryption_keys: Vec<String>,
    /// Dev mode: missing secrets fall back to the public development ones. Never in production.
    pub dev: bool,
    /// Log filter, e.g. `info` or `tally_payments=debug`.
    pub log: String,
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub log_format: String,
    /// A request holding an `Idempotency-Key` longer than this without finishing is taken to
    /// have died with its process; a retry with the same key then takes it over.
    pub idempotency_lease_ms: u64,
    /// Seconds a payment authorized with `capture: "manual"` waits for its capture; then it is
    /// canceled automatically, at the PSP and in the ledger. 1 to 30 days' worth.
    pub authorization_validity_s: u64,
    /// Seconds a payment order waits `requires_action` (3-D Secure) before the worker asks the
    /// PSP one last time and, unless it was authenticated meanwhile, fails it and voids the
    /// hold: tally-pay's own bound, for a PSP that never answers. 1 s to a day.
    pub action_timeout_s: u64,
}

#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PspSection {
    /// Base URL of the PSP's API (the sandbox PSP in development).
    pub url: String,
    pub api_key: String,
    /// Shared secret of the PSP's webhook signatures.
    pub webhook_secret: String,
    /// Time allowed for one PSP call; after it the outcome is unknown and a worker finds out.
    pub timeout_ms: u64,
    /// Webhooks whose timestamp is further than this from now are rejected.
    pub webhook_tolerance_s: u64,
    /// Extra CA certificate (PEM file) trusted for an `https://` PSP besides the public roots,
    /// e.g. a test PSP's own CA; empty: public roots only.
    pub ca: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeesSection {
    /// Platform fee: percent of each payment order (a decimal string, e.g. "2.5").
    pub percent: String,
    /// Plus this many minor units per order.
    pub fixed: u64,
    /// `proportional`: a refund gives back the same share of the platform fee; `none`: the
    /// platform keeps its fee.
    pub refund_policy: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscrowSection {
    /// Seconds a captured payment order's money stays in the seller's pending balance before
    /// it is released automatically, unless the platform releases it earlier (`POST
    /// /v1/payment_orders/{id}/release`) or the seller has its own `hold_period_s`. 0: no
    /// escrow, available at capture. At most 180 days.
    pub hold_period_s: u64,
}

impl Default for EscrowSection {
    fn default() -> Self {
        EscrowSection {
            hold_period_s: crate::domain::escrow::HOLD_PERIOD_S_DEFAULT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSection {
    /// Largest payment order, in minor units.
    pub max_order_amount: u64,
    /// Largest payment event (all orders), in minor units.
    pub max_payment_amount: u64,
    /// Payments one customer may make within `velocity_window_s` (per tally-pay process).
    pub velocity_max: u32,
    pub velocity_window_s: u64,
    pub blocked_customers: Vec<String>,
    /// E-mail addresses or `@domain` suffixes.
    pub blocked_emails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// How often the worker looks for objects to drive forward.
    pub interval_ms: u64,
    /// PSP attempts (calls and status queries) per object before it is dead-lettered.
    pub max_attempts: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// UTC hour at which automatic daily payouts run.
    pub daily_payout_hour: u32,
}

impl Default for PaySection {
    fn default() -> Self {
        PaySection {
            listen: "127.0.0.1:8080".into(),
            cluster: "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102".into(),
            currencies: ["USD", "EUR", "GBP", "JPY"].map(String::from).to_vec(),
            encryption_key: String::new(),
            encryption_key_file: String::new(),
            previous_encryption_keys: Vec::new(),
            dev: false,
            log: "info".into(),
            log_format: "text".into(),
            idempotency_lease_ms: 60_000,
            authorization_validity_s: crate::domain::capture::AUTHORIZATION_VALIDITY_S_DEFAULT,
            action_timeout_s: crate::domain::action::ACTION_TIMEOUT_S_DEFAULT,
        }
    }
}

impl Default for PspSection {
    fn default() -> Self {
        PspSection {
            url: "http://127.0.0.1:7400".into(),
            api_key: String::new(),
            webhook_secret: String::new(),
            timeout_ms: 5000,
            webhook_tolerance_s: 300,
            ca: String::new(),
        }
    }
}

impl Default for FeesSection {
    fn default() -> Self {
        FeesSection {
            percent: "2.5".into(),
            fixed: 30,
            refund_policy: "proportional".into(),
        }
    }
}

impl Default for RiskSection {
    fn default() -> Self {
        RiskSection {
            max_order_amount: 100_000_000,
            max_payment_amount: 500_000_000,
            velocity_max: 1000,
            velocity_window_s: 60,
            blocked_customers: Vec::new(),
            blocked_emails: Vec::new(),
        }
    }
}

impl Default for WorkerSection {
    fn default() -> Self {
        WorkerSection {
            interval_ms: 250,
            max_attempts: 12,
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
            daily_payout_hour: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Requests per second one API key may make (per tally-pay process), refilled continuously.
    pub rate_per_s: u32,
    /// Requests one API key may make at once after being idle.
    pub rate_burst: u32,
    /// Failed authentications one source address may make per minute before it gets 429.
    pub auth_failures_per_minute: u32,
    /// How long a process trusts a verified key before reading it again: the delay before a
    /// revocation takes effect everywhere.
    pub key_cache_ms: u64,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            rate_per_s: 100,
            rate_burst: 200,
            auth_failures_per_minute: 60,
            key_cache_ms: 2000,
        }
    }
}

impl std::fmt::Debug for PaySection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mask = |s: &str| if s.is_empty() { "" } else { "****" };
        f.debug_struct("PaySection")
            .field("listen", &self.listen)
            .field("cluster", &self.cluster)
            .field("currencies", &self.currencies)
            .field("encryption_key", &mask(&self.encryption_key))
            .field("encryption_key_file", &self.encryption_key_file)
            .field(
                "previous_encryption_keys",
                &self.previous_encryption_keys.len(),
            )
            .field("dev", &self.dev)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("idempotency_lease_ms", &self.idempotency_lease_ms)
            .field("authorization_validity_s", &self.authorization_validity_s)
            .field("action_timeout_s", &self.action_timeout_s)
            .finish()
    }
}

impl std::fmt::Debug for PspSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mask = |s: &str| if s.is_empty() { "" } else { "****" };
        f.debug_struct("PspSection")
            .field("url", &self.url)
            .field("api_key", &mask(&self.api_key))
            .field("webhook_secret", &mask(&self.webhook_secret))
            .field("timeout_ms", &self.timeout_ms)
            .field("webhook_tolerance_s", &self.webhook_tolerance_s)
            .field("ca", &self.ca)
            .finish()
    }
}

/// Webhooks to the merchant's own servers (`/v1/webhook_endpoints`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksSection {
    /// Wait before the second attempt of a delivery; each later wait doubles.
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts.
    pub retry_max_ms: u64,
    /// A delivery still failing this long after its event was created is given up (`failed`);
    /// it can be resent by hand.
    pub retry_for_s: u64,
    /// Time allowed for the merchant's server to answer one attempt.
    pub timeout_ms: u64,
    /// Accept `http://` endpoint URLs (not only `https://`). On in dev mode whatever this says.
    pub allow_http: bool,
    /// Accept endpoint URLs whose host is `localhost` or a loopback, private or link-local IP
    /// address (the service's own network). On in dev mode whatever this says.
    pub allow_private: bool,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        WebhooksSection {
            retry_initial_ms: 30_000,
            retry_max_ms: 3_600_000,
            retry_for_s: 3 * 24 * 3600,
            timeout_ms: 10_000,
            allow_http: false,
            allow_private: false,
        }
    }
}

/// Foreign exchange: where rates come from.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FxSection {
    /// `psp`: the rates the PSP publishes, read at each conversion. `table`: `rates` below.
    pub source: String,
    /// With `source = "table"`: `BASE/QUOTE=RATE` entries, e.g. `"EUR/GBP=0.856"` (units of
    /// QUOTE per unit of BASE).
    pub rates: Vec<String>,
}

impl Default for FxSection {
    fn default() -> Self {
        FxSection {
            source: "psp".into(),
            rates: Vec::new(),
        }
    }
}
