//! tally-pay configuration: a TOML file, then `TALLY_PAY__SECTION__KEY` environment variables,
//! then flags; [`PayConfig::validate`] runs before anything starts and lists every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::money::{Currency, FeeRule};

/// Prefix of environment overrides: `TALLY_PAY__PSP__URL=http://127.0.0.1:7400`.
pub const ENV_PREFIX: &str = "TALLY_PAY__";

/// Dev mode only (`pay.dev = true`, `--dev`): the data key, PSP key and webhook secret used when
/// none is configured. Outside dev mode a missing secret stops start-up.
pub const DEV_ENCRYPTION_KEY: &str = "dev:dGFsbHktZGV2LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=";
pub const DEV_PSP_API_KEY: &str = "sk_test_tally";
pub const DEV_WEBHOOK_SECRET: &str = "whsec_tally_dev";
/// Bytes of a data key (AES-256).
pub const DATA_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PayConfig {
    pub pay: PaySection,
    pub psp: PspSection,
    pub fees: FeesSection,
    pub risk: RiskSection,
    pub worker: WorkerSection,
    pub billing: BillingSection,
    pub api: ApiSection,
}

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

/// Whether a refund gives back part of the platform fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundFeePolicy {
    Proportional,
    None,
}

/// Where billing's time comes from (`billing.clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingClockMode {
    /// `system`: the wall clock.
    System,
    /// `manual`: a clock stored in the cluster, moved with `POST /v1/billing/clock`.
    Manual,
}

impl std::str::FromStr for BillingClockMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "system" => Ok(BillingClockMode::System),
            "manual" => Ok(BillingClockMode::Manual),
            _ => Err(format!(
                "billing.clock {text:?} must be `system` or `manual`"
            )),
        }
    }
}

/// What a subscription becomes when its retries are exhausted (`billing.exhausted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExhaustedPolicy {
    Canceled,
    Unpaid,
}

impl std::str::FromStr for ExhaustedPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "canceled" => Ok(ExhaustedPolicy::Canceled),
            "unpaid" => Ok(ExhaustedPolicy::Unpaid),
            _ => Err(format!(
                "billing.exhausted {text:?} must be `canceled` or `unpaid`"
            )),
        }
    }
}

impl PayConfig {
    /// Reads the file (if any), then applies `TALLY_PAY__…` variables from `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<PayConfig, String> {
        Self::load_with_flags(file, env, Figment::new())
    }

    /// Reads the file (if any), then `TALLY_PAY__…` variables from `env`, then `flags` (the
    /// flags given, each a [`flag`]), and deserializes the merged result once.
    pub fn load_with_flags(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: impl Provider,
    ) -> Result<PayConfig, String> {
        let mut layers = Figment::new();
        if let Some(path) = file {
            layers = layers.merge(Layer::file(path)?);
        }
        layers
            .merge(Layer::environment(env)?)
            .merge(flags)
            .extract()
            .map_err(|error| format!("configuration: {error}"))
    }

    pub fn cluster_addrs(&self) -> Vec<String> {
        self.pay
            .cluster
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// Options of the ledger client, with the cluster credentials read from `TALLY_CA`,
    /// `TALLY_CERT`, `TALLY_KEY`, `TALLY_TOKEN` and `TALLY_INSECURE`, as `tallyctl` reads them.
    pub fn cluster_options(&self) -> Result<tally_client::ClientOptions, String> {
        let mut options = tally_client::ClientOptions::default();
        tally_client::Credentials::from_env()
            .apply(&mut options)
            .map_err(|error| format!("the ledger cluster's {error}"))?;
        Ok(options)
    }

    pub fn currencies(&self) -> Vec<Currency> {
        self.pay
            .currencies
            .iter()
            .filter_map(|c| Currency::by_code(c))
            .collect()
    }

    pub fn fee_rule(&self) -> FeeRule {
        FeeRule {
            percent: Decimal::from_str(&self.fees.percent).unwrap_or(Decimal::ZERO),
            fixed: self.fees.fixed,
        }
    }

    /// `billing.clock`, parsed (`validate` rejects anything else; the default then).
    pub fn billing_clock_mode(&self) -> BillingClockMode {
        self.billing
            .clock
            .parse()
            .unwrap_or(BillingClockMode::System)
    }

    /// `billing.exhausted`, parsed (`validate` rejects anything else; the default then).
    pub fn billing_exhausted(&self) -> ExhaustedPolicy {
        self.billing
            .exhausted
            .parse()
            .unwrap_or(ExhaustedPolicy::Canceled)
    }

    pub fn refund_fee_policy(&self) -> RefundFeePolicy {
        if self.fees.refund_policy == "none" {
            RefundFeePolicy::None
        } else {
            RefundFeePolicy::Proportional
        }
    }

    /// The data key: `pay.encryption_key`, else the file `pay.encryption_key_file`, else (dev mode
    /// only) the development key.
    pub fn encryption_key(&self) -> Result<DataKey, String> {
        let text = if !self.pay.encryption_key.is_empty() {
            self.pay.encryption_key.clone()
        } else if !self.pay.encryption_key_file.is_empty() {
            std::fs::read_to_string(&self.pay.encryption_key_file).map_err(|error| {
                format!(
                    "pay.encryption_key_file {}: {error}",
                    self.pay.encryption_key_file
                )
            })?
        } else if self.pay.dev {
            DEV_ENCRYPTION_KEY.to_string()
        } else {
            return Err(
                "pay.encryption_key is not set: give TALLY_PAY__PAY__ENCRYPTION_KEY or \
                        pay.encryption_key_file (`KEY_ID:BASE64` of 32 random bytes, e.g. \
                        `k1:$(openssl rand -base64 32)`), or run in dev mode (--dev)"
                    .into(),
            );
        };
        DataKey::parse("pay.encryption_key", text.trim())
    }

    /// Every data key that may decrypt stored values: the current one first.
    pub fn data_keys(&self) -> Result<Vec<DataKey>, String> {
        let mut keys = vec![self.encryption_key()?];
        for text in &self.pay.previous_encryption_keys {
            keys.push(DataKey::parse("pay.previous_encryption_keys", text.trim())?);
        }
        Ok(keys)
    }

    /// In dev mode, fills the secrets that were not given with the public development ones.
    pub fn apply_dev_defaults(&mut self) {
        if !self.pay.dev {
            return;
        }
        if self.psp.api_key.is_empty() {
            self.psp.api_key = DEV_PSP_API_KEY.into();
        }
        if self.psp.webhook_secret.is_empty() {
            self.psp.webhook_secret = DEV_WEBHOOK_SECRET.into();
        }
    }

    /// Checks every rule and reports all violations at once, one line each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.pay.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "pay.listen {:?} is not an IP:PORT address (--listen, TALLY_PAY__PAY__LISTEN)",
                self.pay.listen
            ));
        }
        let addrs = self.cluster_addrs();
        if addrs.is_empty() {
            problems.push("pay.cluster must list at least one HOST:PORT (--cluster)".into());
        }
        for addr in &addrs {
            if !addr.contains(':') {
                problems.push(format!("pay.cluster entry {addr:?} is not HOST:PORT"));
            }
        }
        if !matches!(self.pay.log_format.as_str(), "text" | "json") {
            problems.push(format!(
                "pay.log_format {:?} must be `text` or `json` (--log-format)",
                self.pay.log_format
            ));
        }
        if self.pay.currencies.is_empty() {
            problems.push("pay.currencies must name at least one currency".into());
        }
        for code in &self.pay.currencies {
            if Currency::by_code(code).is_none() {
                problems.push(format!("pay.currencies: unknown currency {code:?}"));
            }
        }
        if self.pay.idempotency_lease_ms < self.psp.timeout_ms.saturating_mul(2) {
            problems.push(format!(
                "pay.idempotency_lease_ms ({}) must be at least twice psp.timeout_ms ({}), or a \
                 slow request could be taken over while it is still running",
                self.pay.idempotency_lease_ms, self.psp.timeout_ms
            ));
        }
        if let Err(problem) = self.data_keys() {
            problems.push(problem);
        }
        self.validate_secrets_and_api(&mut problems);
        match reqwest::Url::parse(&self.psp.url) {
            Ok(url) if url.scheme() == "https" => {}
            Ok(url) if url.scheme() == "http" => {
                // Plain text only where it never leaves the machine, or in dev mode.
                let host = url.host_str().unwrap_or("");
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let local = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !local && !self.pay.dev {
                    problems.push(format!(
                        "psp.url {:?} is plain http:// to another machine: card and payout data \
                         would cross the network unencrypted; use https:// (--psp)",
                        self.psp.url
                    ));
                }
            }
            _ => problems.push(format!(
                "psp.url {:?} must be an http:// or https:// URL (--psp)",
                self.psp.url
            )),
        }
        if !self.psp.ca.is_empty() {
            if let Err(error) = tally_tls::load_ca(std::path::Path::new(&self.psp.ca)) {
                problems.push(format!("psp.ca: {error}"));
            }
        }
        if self.psp.timeout_ms == 0 {
            problems.push("psp.timeout_ms must be positive".into());
        }
        match Decimal::from_str(&self.fees.percent) {
            Ok(p) if p >= Decimal::ZERO && p < Decimal::ONE_HUNDRED => {}
            _ => problems.push(format!(
                "fees.percent {:?} must be a decimal in [0, 100)",
                self.fees.percent
            )),
        }
        if !matches!(self.fees.refund_policy.as_str(), "proportional" | "none") {
            problems.push(format!(
                "fees.refund_policy {:?} must be `proportional` or `none`",
                self.fees.refund_policy
            ));
        }
        if self.risk.max_order_amount == 0 || self.risk.max_payment_amount == 0 {
            problems
                .push("risk.max_order_amount and risk.max_payment_amount must be positive".into());
        }
        let w = &self.worker;
        if w.interval_ms == 0 || w.max_attempts == 0 || w.backoff_initial_ms == 0 {
            problems.push(
                "worker.interval_ms, worker.max_attempts and worker.backoff_initial_ms must be positive"
                    .into(),
            );
        }
        if w.backoff_max_ms < w.backoff_initial_ms {
            problems
                .push("worker.backoff_max_ms must be at least worker.backoff_initial_ms".into());
        }
        let b = &self.billing;
        if let Err(problem) = b.clock.parse::<BillingClockMode>() {
            problems.push(problem);
        }
        if let Err(problem) = b.exhausted.parse::<ExhaustedPolicy>() {
            problems.push(problem);
        }
        if b.retry_days.windows(2).any(|w| w[0] >= w[1]) || b.retry_days.len() > 10 {
            problems.push("billing.retry_days must be increasing, at most 10 entries".into());
        }
        if b.run_interval_ms == 0 {
            problems.push("billing.run_interval_ms must be positive".into());
        }
        if w.daily_payout_hour > 23 {
            problems.push("worker.daily_payout_hour must be 0..=23".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

// ---- API security: keys, limits, secrets (issue 11) ----

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

/// A data key and its id (`KEY_ID:BASE64`); `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey {
    pub id: String,
    pub bytes: [u8; DATA_KEY_BYTES],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}, ****)", self.id)
    }
}

impl DataKey {
    /// Parses `KEY_ID:BASE64`; `setting` names where it came from in the error (which never
    /// includes the key).
    pub fn parse(setting: &str, text: &str) -> Result<DataKey, String> {
        use base64::Engine;
        let Some((id, encoded)) = text.split_once(':') else {
            return Err(format!(
                "{setting} must be `KEY_ID:BASE64` (a key id, a colon, then base64 of {DATA_KEY_BYTES} random bytes)"
            ));
        };
        let id_ok = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(format!(
                "{setting}: the key id must be 1 to 32 letters, digits, `-` or `_`"
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| format!("{setting}: the key after `{id}:` is not base64"))?;
        let bytes: [u8; DATA_KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "{setting}: key {id} is {} bytes; it must be exactly {DATA_KEY_BYTES} random bytes",
                b.len()
            )
        })?;
        Ok(DataKey {
            id: id.to_string(),
            bytes,
        })
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

impl PayConfig {
    /// Secrets present (no defaults outside dev mode) and API limits sane.
    fn validate_secrets_and_api(&self, problems: &mut Vec<String>) {
        let dev = if self.pay.dev {
            ""
        } else {
            ", or run in dev mode (--dev)"
        };
        if self.psp.webhook_secret.is_empty() {
            problems.push(format!(
                "psp.webhook_secret is not set: give TALLY_PAY__PSP__WEBHOOK_SECRET{dev}"
            ));
        }
        if self.psp.api_key.is_empty() {
            problems.push(format!(
                "psp.api_key is not set: give TALLY_PAY__PSP__API_KEY{dev}"
            ));
        }
        let a = &self.api;
        if a.rate_per_s == 0 || a.rate_burst == 0 || a.auth_failures_per_minute == 0 {
            problems.push(
                "api.rate_per_s, api.rate_burst and api.auth_failures_per_minute must be positive"
                    .into(),
            );
        }
        if a.key_cache_ms > 60_000 {
            problems
                .push("api.key_cache_ms must be at most 60000 (a revocation waits for it)".into());
        }
    }
}

/// The setting of one command-line flag, e.g. `flag("pay.listen", listen)`, to merge over the
/// file and the environment; nothing when the flag was not given.
pub fn flag<T: Serialize>(key: &str, value: Option<T>) -> Figment {
    match value {
        Some(value) => Figment::from(Serialized::default(key, value)),
        None => Figment::new(),
    }
}

/// One layer of settings, by section, named in figment's errors: `… for key "psp.url" in config
/// file tally-pay.toml`.
struct Layer<T> {
    name: String,
    settings: T,
}

impl Layer<toml::Table> {
    fn file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read config file {}: {error}", path.display()))?;
        let settings = text
            .parse::<toml::Table>()
            .map_err(|error| format!("config file {}: {error}", path.display()))?;
        let name = format!("config file {}", path.display());
        Ok(Layer { name, settings })
    }
}

impl Layer<BTreeMap<String, toml::Table>> {
    /// The `TALLY_PAY__SECTION__KEY` variables of `env`.
    fn environment(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut settings = BTreeMap::<String, toml::Table>::new();
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, key] = parts.as_slice() else {
                return Err(format!(
                    "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
                ));
            };
            settings
                .entry(section.clone())
                .or_default()
                .insert(key.clone(), env_value(key, value));
        }
        let name = format!("environment variables {ENV_PREFIX}*");
        Ok(Layer { name, settings })
    }
}

impl<T: Serialize> Provider for Layer<T> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone()).interpolater(|_, keys| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::defaults(&self.settings).data()
    }
}

/// Environment values are typed the way TOML would read them; list-valued keys take
/// comma-separated values.
fn env_value(key: &str, text: &str) -> toml::Value {
    if key == "retry_days" {
        return toml::Value::Array(
            text.split(',')
                .filter_map(|s| s.trim().parse::<i64>().ok())
                .map(toml::Value::Integer)
                .collect(),
        );
    }
    if matches!(
        key,
        "currencies" | "blocked_customers" | "blocked_emails" | "previous_encryption_keys"
    ) {
        return toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        );
    }
    if key != "percent" {
        if let Ok(integer) = text.parse::<i64>() {
            return toml::Value::Integer(integer);
        }
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_words_parse_into_their_enums() {
        let mut config = PayConfig::default();
        assert_eq!(config.billing_clock_mode(), BillingClockMode::System);
        assert_eq!(config.billing_exhausted(), ExhaustedPolicy::Canceled);
        config.billing.clock = "manual".into();
        config.billing.exhausted = "unpaid".into();
        assert_eq!(config.billing_clock_mode(), BillingClockMode::Manual);
        assert_eq!(config.billing_exhausted(), ExhaustedPolicy::Unpaid);
        assert!("Manual".parse::<BillingClockMode>().is_err());
        assert!("cancelled".parse::<ExhaustedPolicy>().is_err());
        assert_eq!(
            serde_json::to_string(&BillingClockMode::Manual).unwrap(),
            "\"manual\""
        );
    }

    /// `config/tally-pay.example.toml` names every setting, holds each default, and loads and
    /// validates as it is.
    #[test]
    fn example_file_lists_every_setting_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tally-pay.example.toml");
        let mut config = PayConfig::load(Some(&path), &BTreeMap::new()).unwrap();
        // Its secrets are empty, as they have no default: dev mode supplies them.
        assert!(config.validate().is_err());
        config.pay.dev = true;
        config.apply_dev_defaults();
        config.validate().unwrap();
        let example: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let defaults = toml::Table::try_from(PayConfig::default()).unwrap();
        for (section, values) in &defaults {
            for (key, default) in values.as_table().unwrap() {
                let name = format!("{section}.{key}");
                let given = example
                    .get(section)
                    .and_then(|values| values.get(key))
                    .unwrap_or_else(|| panic!("{name} is missing from {}", path.display()));
                assert_eq!(given, default, "{name} in {}", path.display());
            }
        }
    }

    #[test]
    fn defaults_are_valid_in_dev_mode_and_env_overrides_file() {
        let mut dev = PayConfig::default();
        dev.pay.dev = true;
        dev.apply_dev_defaults();
        assert_eq!(dev.validate(), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pay.toml");
        std::fs::write(
            &file,
            "[psp]\ntimeout_ms = 100\n[fees]\npercent = \"1.5\"\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            ("TALLY_PAY__PSP__TIMEOUT_MS".to_string(), "250".to_string()),
            (
                "TALLY_PAY__PAY__CURRENCIES".to_string(),
                "USD,JPY".to_string(),
            ),
            ("TALLY_PAY__FEES__PERCENT".to_string(), "3".to_string()),
            (
                "TALLY_PAY__PAY__ENCRYPTION_KEY".to_string(),
                TEST_KEY.to_string(),
            ),
            ("TALLY_PAY__PSP__API_KEY".to_string(), "sk_psp".to_string()),
            (
                "TALLY_PAY__PSP__WEBHOOK_SECRET".to_string(),
                "whsec_x".to_string(),
            ),
        ]);
        let config = PayConfig::load(Some(&file), &env).unwrap();
        assert_eq!(config.psp.timeout_ms, 250);
        assert_eq!(config.pay.currencies, vec!["USD", "JPY"]);
        assert_eq!(config.fees.percent, "3");
        assert_eq!(config.validate(), Ok(()));
    }

    const TEST_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn outside_dev_mode_every_secret_must_be_given_and_none_is_shown() {
        let problems = PayConfig::default().validate().unwrap_err();
        for setting in ["pay.encryption_key", "psp.webhook_secret", "psp.api_key"] {
            assert!(
                problems.iter().any(|p| p.starts_with(setting)),
                "{setting}: {problems:?}"
            );
        }
        let mut config = PayConfig::default();
        config.pay.encryption_key = "k1:c2hvcnQ=".into();
        let problem = config.encryption_key().unwrap_err();
        assert!(problem.contains("5 bytes"), "{problem}");
        assert!(!problem.contains("c2hvcnQ"), "{problem}");
        config.pay.encryption_key = TEST_KEY.into();
        config.psp.api_key = "sk_live_secret".into();
        let key = config.encryption_key().unwrap();
        assert_eq!(key.id, "k1");
        let shown = format!("{config:?} {key:?}");
        assert!(
            !shown.contains("AAECAw") && !shown.contains("sk_live_secret"),
            "{shown}"
        );
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut config = PayConfig::default();
        config.pay.dev = true;
        config.apply_dev_defaults();
        config.pay.listen = "nope".into();
        config.pay.currencies = vec!["XXX".into()];
        config.fees.percent = "abc".into();
        config.pay.encryption_key = "12".into();
        let problems = config.validate().unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let env = BTreeMap::from([("TALLY_PAY__PSP__URLL".to_string(), "x".to_string())]);
        let error = PayConfig::load(None, &env).unwrap_err();
        assert!(error.contains("urll"), "{error}");
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pay.toml");
        std::fs::write(
            &file,
            "[pay]\nlisten = \"127.0.0.1:9000\"\ncluster = \"a:1\"\ndev = true\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            ("TALLY_PAY__PAY__CLUSTER".to_string(), "b:2,c:3".to_string()),
            (
                "TALLY_PAY__PSP__URL".to_string(),
                "http://127.0.0.1:1".to_string(),
            ),
        ]);
        let flags = flag("psp.url", Some("https://psp.example"))
            .merge(flag("pay.listen", None::<String>))
            .merge(flag("pay.dev", false.then_some(true)));
        let config = PayConfig::load_with_flags(Some(&file), &env, flags).unwrap();
        assert_eq!(config.pay.listen, "127.0.0.1:9000");
        assert_eq!(config.cluster_addrs(), vec!["b:2", "c:3"]);
        assert_eq!(config.psp.url, "https://psp.example");
        assert!(config.pay.dev);
    }

    #[test]
    fn load_errors_name_the_file_the_variable_or_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let error = PayConfig::load(Some(&missing), &BTreeMap::new()).unwrap_err();
        assert!(error.starts_with("cannot read config file"), "{error}");
        let shapeless = BTreeMap::from([("TALLY_PAY__PSP".to_string(), "x".to_string())]);
        let error = PayConfig::load(None, &shapeless).unwrap_err();
        assert_eq!(
            error,
            "environment variable TALLY_PAY__PSP: expected TALLY_PAY__SECTION__KEY"
        );
        let mistyped = BTreeMap::from([(
            "TALLY_PAY__WORKER__MAX_ATTEMPTS".to_string(),
            "many".to_string(),
        )]);
        let error = PayConfig::load(None, &mistyped).unwrap_err();
        assert!(error.starts_with("configuration:"), "{error}");
        assert!(error.contains("worker.max_attempts"), "{error}");
        assert!(error.contains("TALLY_PAY__"), "{error}");
    }
}
