//! tally-pay configuration: a TOML file, then `TALLY_PAY__SECTION__KEY` environment variables,
//! then flags; [`PayConfig::validate`] runs before anything starts and lists every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, FeeRule};

/// Prefix of environment overrides: `TALLY_PAY__PSP__URL=http://127.0.0.1:7200`.
pub const ENV_PREFIX: &str = "TALLY_PAY__";

/// The encryption key used when none is configured. Fine for a laptop, never for production:
/// tally-pay logs a warning when it is in use.
pub const DEV_ENCRYPTION_KEY: &str =
    "7461 6c6c 792d 6465 762d 6b65 792d 6e6f 742d 666f 722d 7072 6f64 7563 7469 6f6e";

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PayConfig {
    pub pay: PaySection,
    pub psp: PspSection,
    pub fees: FeesSection,
    pub risk: RiskSection,
    pub worker: WorkerSection,
    pub billing: BillingSection,
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

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaySection {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Ledger cluster nodes, `HOST:PORT,...`.
    pub cluster: String,
    /// Currencies this service accepts (ISO 4217 codes it knows; see `money::CURRENCIES`).
    pub currencies: Vec<String>,
    /// Hex of the 32-byte AES-256-GCM key that encrypts bank account numbers at rest.
    pub encryption_key: String,
    /// Log filter, e.g. `info` or `tally_payments=debug`.
    pub log: String,
    /// A request holding an `Idempotency-Key` longer than this without finishing is taken to
    /// have died with its process; a retry with the same key then takes it over.
    pub idempotency_lease_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
            log: "info".into(),
            idempotency_lease_ms: 60_000,
        }
    }
}

impl Default for PspSection {
    fn default() -> Self {
        PspSection {
            url: "http://127.0.0.1:7200".into(),
            api_key: "sk_test_tally".into(),
            webhook_secret: "whsec_tally_dev".into(),
            timeout_ms: 5000,
            webhook_tolerance_s: 300,
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

impl PayConfig {
    /// Reads the file (if any), then applies `TALLY_PAY__…` variables from `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<PayConfig, String> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read config file {}: {error}", path.display())
                })?;
                text.parse::<toml::Table>()
                    .map_err(|error| format!("config file {}: {error}", path.display()))?
            }
            None => toml::Table::new(),
        };
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
            let section = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    format!("environment variable {name}: [{section}] is not a table")
                })?;
            section.insert(key.clone(), env_value(key, value));
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|error: toml::de::Error| format!("configuration: {}", error.message()))
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

    pub fn refund_fee_policy(&self) -> RefundFeePolicy {
        if self.fees.refund_policy == "none" {
            RefundFeePolicy::None
        } else {
            RefundFeePolicy::Proportional
        }
    }

    /// The 32-byte encryption key, and whether it is the development default.
    pub fn encryption_key(&self) -> Result<([u8; 32], bool), String> {
        let (text, dev) = if self.pay.encryption_key.is_empty() {
            (DEV_ENCRYPTION_KEY.replace(' ', ""), true)
        } else {
            (self.pay.encryption_key.clone(), false)
        };
        let bytes = hex::decode(text.trim())
            .map_err(|_| "pay.encryption_key must be 64 hex digits".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "pay.encryption_key must be 64 hex digits (32 bytes)".to_string())?;
        Ok((key, dev))
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
        if let Err(problem) = self.encryption_key() {
            problems.push(problem);
        }
        if !(self.psp.url.starts_with("http://") || self.psp.url.starts_with("https://")) {
            problems.push(format!(
                "psp.url {:?} must start with http:// or https:// (--psp)",
                self.psp.url
            ));
        }
        if self.psp.webhook_secret.is_empty() {
            problems.push("psp.webhook_secret must not be empty".into());
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
        if !matches!(b.clock.as_str(), "system" | "manual") {
            problems.push(format!(
                "billing.clock {:?} must be `system` or `manual`",
                b.clock
            ));
        }
        if !matches!(b.exhausted.as_str(), "canceled" | "unpaid") {
            problems.push(format!(
                "billing.exhausted {:?} must be `canceled` or `unpaid`",
                b.exhausted
            ));
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
    if matches!(key, "currencies" | "blocked_customers" | "blocked_emails") {
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

    /// `config/tally-pay.example.toml` names every setting, holds each default, and loads and
    /// validates as it is.
    #[test]
    fn example_file_lists_every_setting_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tally-pay.example.toml");
        let config = PayConfig::load(Some(&path), &BTreeMap::new()).unwrap();
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
    fn defaults_are_valid_and_env_overrides_file() {
        assert_eq!(PayConfig::default().validate(), Ok(()));
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
        ]);
        let config = PayConfig::load(Some(&file), &env).unwrap();
        assert_eq!(config.psp.timeout_ms, 250);
        assert_eq!(config.pay.currencies, vec!["USD", "JPY"]);
        assert_eq!(config.fees.percent, "3");
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut config = PayConfig::default();
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
        assert!(PayConfig::load(None, &env).is_err());
    }
}
