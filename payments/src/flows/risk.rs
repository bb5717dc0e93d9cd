//! Risk checks that run before a payment moves anything. Pluggable through [`RiskCheck`]; the
//! built-in [`RuleRisk`] applies amount limits, a per-customer velocity limit and a blocklist.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RiskSection;

/// What a risk check looks at.
#[derive(Debug, Clone)]
pub struct RiskContext<'a> {
    pub customer_id: &'a str,
    pub customer_email: &'a str,
    pub currency: &'a str,
    /// Amount of each order, minor units.
    pub order_amounts: &'a [u64],
}

/// A rejection: a stable code and a sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRejection {
    pub code: &'static str,
    pub message: String,
}

pub trait RiskCheck: Send + Sync + 'static {
    /// Decides on a payment; an accepted payment also counts toward velocity limits.
    fn check(&self, context: &RiskContext<'_>) -> Result<(), RiskRejection>;
}

/// Amount limits, velocity per customer (per process, sliding window) and a blocklist.
pub struct RuleRisk {
    rules: RiskSection,
    recent: Mutex<BTreeMap<String, VecDeque<Instant>>>,
}

impl RuleRisk {
    pub fn new(rules: RiskSection) -> RuleRisk {
        RuleRisk {
            rules,
            recent: Mutex::new(BTreeMap::new()),
        }
    }

    fn blocked(&self, context: &RiskContext<'_>) -> bool {
        let email = context.customer_email.to_ascii_lowercase();
        self.rules
            .blocked_customers
            .iter()
            .any(|c| c == context.customer_id)
            || self.rules.blocked_emails.iter().any(|entry| {
                let entry = entry.to_ascii_lowercase();
                if entry.starts_with('@') {
                    email.ends_with(&entry)
                } else {
                    email == entry
                }
            })
    }
}

impl RiskCheck for RuleRisk {
    fn check(&self, context: &RiskContext<'_>) -> Result<(), RiskRejection> {
        if self.blocked(context) {
            return Err(RiskRejection {
                code: "blocked",
                message: "the customer is on the blocklist".into(),
            });
        }
        if let Some(amount) = context
            .order_amounts
            .iter()
            .find(|a| **a > self.rules.max_order_amount)
        {
            return Err(RiskRejection {
                code: "order_amount_over_limit",
                message: format!(
                    "an order of {amount} minor units exceeds the limit of {} per order",
                    self.rules.max_order_amount
                ),
            });
        }
        let total: u64 = context
            .order_amounts
            .iter()
            .fold(0u64, |a, b| a.saturating_add(*b));
        if total > self.rules.max_payment_amount {
            return Err(RiskRejection {
                code: "payment_amount_over_limit",
                message: format!(
                    "the payment total of {total} minor units exceeds the limit of {} per payment",
                    self.rules.max_payment_amount
                ),
            });
        }
        let window = Duration::from_secs(self.rules.velocity_window_s);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let times = recent.entry(context.customer_id.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        if times.len() >= self.rules.velocity_max as usize {
            return Err(RiskRejection {
                code: "velocity_limit",
                message: format!(
                    "more than {} payments by this customer within {} s",
                    self.rules.velocity_max, self.rules.velocity_window_s
                ),
            });
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(customer: &'a str, email: &'a str, amounts: &'a [u64]) -> RiskContext<'a> {
        RiskContext {
            customer_id: customer,
            customer_email: email,
            currency: "USD",
            order_amounts: amounts,
        }
    }

    #[test]
    fn rules_reject_with_a_reason() {
        let risk = RuleRisk::new(RiskSection {
            max_order_amount: 1000,
            max_payment_amount: 1500,
            velocity_max: 2,
            velocity_window_s: 3600,
            blocked_customers: vec!["cus_bad".into()],
            blocked_emails: vec!["@fraud.example".into()],
        });
        assert_eq!(
            risk.check(&context("cus_bad", "a@b.c", &[1]))
                .unwrap_err()
                .code,
            "blocked"
        );
        assert_eq!(
            risk.check(&context("cus_x", "Eve@FRAUD.example", &[1]))
                .unwrap_err()
                .code,
            "blocked"
        );
        assert_eq!(
            risk.check(&context("cus_x", "a@b.c", &[1001]))
                .unwrap_err()
                .code,
            "order_amount_over_limit"
        );
        assert_eq!(
            risk.check(&context("cus_x", "a@b.c", &[1000, 600]))
                .unwrap_err()
                .code,
            "payment_amount_over_limit"
        );
        assert!(risk.check(&context("cus_x", "a@b.c", &[1])).is_ok());
        assert!(risk.check(&context("cus_x", "a@b.c", &[1])).is_ok());
        assert_eq!(
            risk.check(&context("cus_x", "a@b.c", &[1]))
                .unwrap_err()
                .code,
            "velocity_limit"
        );
        assert!(risk.check(&context("cus_y", "a@b.c", &[1])).is_ok());
    }
}
