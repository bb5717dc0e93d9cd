//! The sandbox PSP's settings, and their checks.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::constants::{AMOUNT_MAX, PAYOUT_DELAY_MAX, THREE_DS_TIMEOUT_MAX};
use crate::faults::Faults;

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
    /// How long a 3-D Secure challenge waits for the customer; then its charge fails
    /// (`authentication_failed`). 1 s to [`THREE_DS_TIMEOUT_MAX`].
    pub three_ds_timeout: Duration,
    /// The base URL the customer's browser reaches the sandbox at, for the challenge pages
    /// (`next_action_url`); `None`: this listener's own address (`http(s)://IP:PORT`).
    pub public_url: Option<String>,
}

impl Default for SandboxConfig {
    /// 127.0.0.1:7400, `sk_test_tally`, `whsec_tally_dev`, no webhooks, no faults, payouts paid
    /// after 2 s, fees 2.9 % + 30, 3-D Secure challenges abandoned after 600 s.
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
            three_ds_timeout: crate::model::THREE_DS_TIMEOUT_DEFAULT,
            public_url: None,
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
            .field("three_ds_timeout", &self.three_ds_timeout)
            .field("public_url", &self.public_url)
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
        if self.three_ds_timeout < Duration::from_secs(1)
            || self.three_ds_timeout > THREE_DS_TIMEOUT_MAX
        {
            return Err(format!(
                "sandbox three_ds_timeout must be 1 to {} s",
                THREE_DS_TIMEOUT_MAX.as_secs()
            ));
        }
        if let Some(url) = &self.public_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|error| format!("sandbox public_url `{url}`: {error}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "sandbox public_url `{url}`: must be http:// or https://"
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let bad = SandboxConfig {
            three_ds_timeout: Duration::ZERO,
            ..SandboxConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("three_ds_timeout"));
        let bad = SandboxConfig {
            public_url: Some("psp.example".to_owned()),
            ..SandboxConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("public_url"));
    }
}
