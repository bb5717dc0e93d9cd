//! Time in reports: periods, instants given as RFC 3339 or as days, and cluster timestamps
//! shown as times and days.

use chrono::{DateTime, NaiveDate, Utc};

use super::REPORT_RANGE_DAYS_MAX;
use crate::error::PayError;

/// Nanoseconds per day (cluster timestamps are Unix nanoseconds).
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// A period in cluster time: `[from_ns, to_ns)`; `to_ns == None` means up to the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub from_ns: u64,
    pub to_ns: Option<u64>,
}

impl Period {
    /// Parses `from` and `to` (RFC 3339 instants, or `YYYY-MM-DD`: from the start of `from`'s
    /// day to the end of `to`'s day).
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, PayError> {
        let from_ns = match from {
            Some(text) => parse_time("from", text, false)?,
            None => 0,
        };
        let to_ns = to.map(|text| parse_time("to", text, true)).transpose()?;
        if let Some(to_ns) = to_ns {
            if to_ns <= from_ns {
                return Err(PayError::invalid(
                    "invalid_period",
                    "`to` must be after `from`",
                ));
            }
        }
        Ok(Period { from_ns, to_ns })
    }

    /// The period must have a start and last at most [`REPORT_RANGE_DAYS_MAX`] days (an open
    /// end counts as now).
    pub(super) fn check_bounded(&self) -> Result<(), PayError> {
        let now_ns = Utc::now()
            .timestamp_nanos_opt()
            .and_then(|ns| u64::try_from(ns).ok())
            .unwrap_or(u64::MAX);
        let days = self.to_ns.unwrap_or(now_ns).saturating_sub(self.from_ns) / NANOS_PER_DAY;
        if self.from_ns == 0 || days > REPORT_RANGE_DAYS_MAX {
            return Err(PayError::invalid(
                "invalid_period",
                format!("give `from` (and `to`): a period of at most {REPORT_RANGE_DAYS_MAX} days"),
            ));
        }
        Ok(())
    }

    /// The inclusive timestamp bounds of this period under the cut `cut`, or `None` when the
    /// period lies entirely after the cut.
    pub(super) fn bounds(&self, cut: u64) -> Option<(u64, u64)> {
        let last = self.to_ns.map_or(cut, |to| to.saturating_sub(1).min(cut));
        // A zero `timestamp_max` would mean "no bound" to the node.
        (self.from_ns <= last && last > 0).then_some((self.from_ns, last))
    }
}

/// An instant as Unix nanoseconds: RFC 3339, or a `YYYY-MM-DD` day (its start, or with `end`
/// the start of the next day).
pub fn parse_time(field: &'static str, text: &str, end: bool) -> Result<u64, PayError> {
    let invalid = || {
        PayError::invalid(
            "invalid_time",
            format!("`{field}` is neither an RFC 3339 time nor a YYYY-MM-DD date"),
        )
    };
    let instant = if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end {
            day.succ_opt().ok_or_else(invalid)?
        } else {
            day
        };
        day.and_hms_opt(0, 0, 0).ok_or_else(invalid)?.and_utc()
    } else {
        DateTime::parse_from_rfc3339(text)
            .map_err(|_| invalid())?
            .with_timezone(&Utc)
    };
    instant
        .timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .filter(|ns| *ns > 0)
        .ok_or_else(|| {
            PayError::invalid("invalid_time", format!("`{field}` is outside 1970 to 2262"))
        })
}

/// A cluster timestamp as RFC 3339 (UTC, milliseconds).
pub fn time_of(timestamp_ns: u64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(i64::try_from(timestamp_ns).unwrap_or(i64::MAX))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The UTC day of a cluster timestamp.
pub fn day_of(timestamp_ns: u64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_nanos(i64::try_from(timestamp_ns).unwrap_or(i64::MAX))
        .date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_dates_and_instants() {
        let p = Period::parse(Some("2025-03-07"), Some("2025-03-07")).unwrap();
        assert_eq!(p.to_ns.unwrap() - p.from_ns, NANOS_PER_DAY);
        assert_eq!(time_of(p.from_ns), "2025-03-07T00:00:00.000Z");
        let p = Period::parse(Some("2025-03-07T10:00:00+02:00"), None).unwrap();
        assert_eq!(time_of(p.from_ns), "2025-03-07T08:00:00.000Z");
        assert!(Period::parse(Some("2025-03-08"), Some("2025-03-07")).is_err());
        assert!(Period::parse(Some("yesterday"), None).is_err());
        assert!(Period::parse(Some("1969-12-31"), None).is_err());
        // A period after the cut is empty; one across it ends at the cut.
        let p = Period::parse(Some("2025-03-07"), None).unwrap();
        assert_eq!(p.bounds(p.from_ns - 1), None);
        assert_eq!(p.bounds(p.from_ns + 5), Some((p.from_ns, p.from_ns + 5)));
    }
}
