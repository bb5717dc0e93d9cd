//! Where the payment flows read the time: one [`Clock`], held by [`Pay`](super::Pay).
//!
//! Everything but billing reads the wall clock ([`Clock::now_ms`]): object timestamps, retry
//! schedules, webhook tolerance, report cuts. Billing reads [`Clock::billing_now_ms`], which with
//! config `billing.clock = "manual"` is a time kept in the cluster that tests and demos move
//! forward (`POST /v1/billing/clock`, `billing/clock.rs`); the manual clock drives billing only.

use crate::config::BillingClockMode;
use crate::domain::model::ns;
use crate::edges::store::Store;
use crate::error::PayError;

/// The record (in `ns::CLOCK`) holding the manual billing clock, in unix milliseconds.
pub(crate) const BILLING_CLOCK_KEY: &str = "billing";

/// The clock the flows read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock, billing included.
    System,
    /// The wall clock, except billing, which reads the manual clock stored in the cluster (the
    /// wall clock until that is first set).
    ManualBilling,
}

impl Clock {
    /// The clock `billing.clock` asks for.
    pub fn new(billing: BillingClockMode) -> Clock {
        match billing {
            BillingClockMode::System => Clock::System,
            BillingClockMode::Manual => Clock::ManualBilling,
        }
    }

    /// `billing.clock`, as configured.
    pub fn billing_mode(self) -> BillingClockMode {
        match self {
            Clock::System => BillingClockMode::System,
            Clock::ManualBilling => BillingClockMode::Manual,
        }
    }

    /// The wall clock, in unix milliseconds.
    pub fn now_ms(self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// Billing's time, in unix milliseconds; reads `store` only for the manual clock.
    pub async fn billing_now_ms(self, store: &Store) -> Result<i64, PayError> {
        match self {
            Clock::System => Ok(self.now_ms()),
            Clock::ManualBilling => Ok(store
                .get::<i64>(ns::CLOCK, BILLING_CLOCK_KEY)
                .await?
                .map_or_else(|| self.now_ms(), |v| v.value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_follows_billing_clock_and_back() {
        for mode in [BillingClockMode::System, BillingClockMode::Manual] {
            assert_eq!(Clock::new(mode).billing_mode(), mode);
        }
        assert_eq!(Clock::new(BillingClockMode::Manual), Clock::ManualBilling);
    }

    #[test]
    fn both_clocks_read_the_wall_clock_outside_billing() {
        for clock in [Clock::System, Clock::ManualBilling] {
            let before = chrono::Utc::now().timestamp_millis();
            let now = clock.now_ms();
            let after = chrono::Utc::now().timestamp_millis();
            assert!(
                before <= now && now <= after,
                "{clock:?}: {before} {now} {after}"
            );
        }
    }
}
