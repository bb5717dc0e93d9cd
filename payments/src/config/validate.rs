//! [`PayConfig::validate`]: every rule checked before anything starts, every violation listed
//! at once, one line each.

use std::net::SocketAddr;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{BillingClockMode, ExhaustedPolicy, PayConfig};
use crate::domain::money::Currency;

impl PayConfig {
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
        let validity_max = crate::domain::capture::AUTHORIZATION_VALIDITY_S_MAX;
        if !(1..=validity_max).contains(&self.pay.authorization_validity_s) {
            problems.push(format!(
                "pay.authorization_validity_s must be 1 to {validity_max} (30 days)"
            ));
        }
        let action_max = crate::domain::action::ACTION_TIMEOUT_S_MAX;
        if !(1..=action_max).contains(&self.pay.action_timeout_s) {
            problems.push(format!(
                "pay.action_timeout_s must be 1 to {action_max} (a day)"
            ));
        }
        if self.escrow.hold_period_s > crate::domain::escrow::HOLD_PERIOD_S_MAX {
            problems.push(format!(
                "escrow.hold_period_s must be at most {} (180 days)",
                crate::domain::escrow::HOLD_PERIOD_S_MAX
            ));
        }
        if self.risk.max_order_amount == 0 || self.risk.max_payment_amount == 0 {
            problems
                .push("risk.max_order_amount and risk.max_payment_amount must be positive".into());
        }
        match self.fx.source.as_str() {
            "psp" => {}
            "table" => {
                if let Err(mut bad) = crate::flows::fx::TableRates::parse(&self.fx.rates) {
                    problems.append(&mut bad);
                }
            }
            _ => problems.push("fx.source must be `psp` or `table`".into()),
        }
        let h = &self.webhooks;
        if h.retry_initial_ms == 0 || h.timeout_ms == 0 || h.retry_for_s == 0 {
            problems.push(
                "webhooks.retry_initial_ms, webhooks.timeout_ms and webhooks.retry_for_s must be positive"
                    .into(),
            );
        }
        if h.retry_max_ms < h.retry_initial_ms {
            problems
                .push("webhooks.retry_max_ms must be at least webhooks.retry_initial_ms".into());
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_action_timeout_is_one_second_to_a_day() {
        let mut config = PayConfig::default();
        config.pay.dev = true;
        config.apply_dev_defaults();
        for (timeout_s, valid) in [(0, false), (1, true), (86_400, true), (86_401, false)] {
            config.pay.action_timeout_s = timeout_s;
            let problems = config.validate().err().unwrap_or_default();
            let named = problems.iter().any(|p| p.contains("pay.action_timeout_s"));
            assert_eq!(named, !valid, "{timeout_s}: {problems:?}");
        }
    }
}
