//! tally-pay configuration: a TOML file, then `TALLY_PAY__SECTION__KEY` environment variables,
//! then flags, each overriding the one before (`load.rs`, figment layers);
//! [`PayConfig::validate`] runs before anything starts and lists every problem (`validate.rs`).
//! The sections and their defaults are in `sections.rs`; the data keys and the dev-mode secrets
//! in `secrets.rs`.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::money::{Currency, FeeRule};

mod load;
mod secrets;
mod sections;
mod validate;

pub use load::{flag, ENV_PREFIX};
pub use secrets::{
    DataKey, DATA_KEY_BYTES, DEV_ENCRYPTION_KEY, DEV_PSP_API_KEY, DEV_WEBHOOK_SECRET,
};
pub use sections::{
    ApiSection, BillingSection, EscrowSection, FeesSection, FxSection, PaySection, PspSection,
    RiskSection, WebhooksSection, WorkerSection,
};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PayConfig {
    pub pay: PaySection,
    pub psp: PspSection,
    pub fees: FeesSection,
    pub escrow: EscrowSection,
    pub risk: RiskSection,
    pub worker: WorkerSection,
    pub billing: BillingSection,
    pub api: ApiSection,
    pub webhooks: WebhooksSection,
    pub fx: FxSection,
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

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
}
