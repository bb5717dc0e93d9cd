//! The billing clock: the wall clock, or (config `billing.clock = "manual"`) a clock kept in the
//! cluster that tests and demos move forward. `Pay::clock` (`flows/clock.rs`) reads it; this
//! file shows and moves it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::BillingClockMode;
use crate::domain::model::ns;
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::clock::BILLING_CLOCK_KEY as CLOCK_KEY;
use crate::flows::{audit, Pay, UPDATE_ATTEMPTS_MAX};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BillingClock {
    /// Unix milliseconds.
    pub now: i64,
    /// RFC 3339.
    pub time: String,
    /// `system` or `manual`.
    #[schema(value_type = String)]
    pub mode: BillingClockMode,
}

pub(super) fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

impl Pay {
    fn manual_clock(&self) -> bool {
        self.clock.billing_mode() == BillingClockMode::Manual
    }

    /// The billing clock, in unix milliseconds.
    pub async fn billing_now(&self) -> Result<i64, PayError> {
        self.clock.billing_now_ms(&self.store).await
    }

    pub async fn billing_clock(&self) -> Result<BillingClock, PayError> {
        let now = self.billing_now().await?;
        Ok(BillingClock {
            now,
            time: rfc3339(now),
            mode: self.clock.billing_mode(),
        })
    }

    /// Moves the manual billing clock forward (never back).
    pub async fn set_billing_clock(&self, time: &str) -> Result<BillingClock, PayError> {
        if !self.manual_clock() {
            return Err(PayError::unprocessable(
                "clock_not_manual",
                "the billing clock is the system clock; set billing.clock = \"manual\" to move it",
            ));
        }
        let target = DateTime::parse_from_rfc3339(time)
            .map_err(|_| {
                PayError::invalid_param("invalid_time", "time", "`time` is not an RFC 3339 time")
            })?
            .timestamp_millis();
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self.store.get::<i64>(ns::CLOCK, CLOCK_KEY).await?;
            let (now, version) = current.map_or((i64::MIN, 0), |v| (v.value, v.version));
            if target < now {
                return Err(PayError::unprocessable(
                    "clock_backwards",
                    format!(
                        "the billing clock is at {}; it only moves forward",
                        rfc3339(now)
                    ),
                ));
            }
            let txn = audit::stamp(Txn::new(), "billing_clock.set", CLOCK_KEY)
                .require_version(ns::CLOCK, CLOCK_KEY, version)
                .put(ns::CLOCK, CLOCK_KEY, &target);
            if self.store.commit(txn).await? == Commit::Committed {
                return self.billing_clock().await;
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: "the billing clock kept changing".into(),
        })
    }
}
