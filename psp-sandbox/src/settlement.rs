//! The daily settlement report (CSV) and the adjustments that make it disagree with the truth,
//! for reconciliation tests.
//!
//! An adjustment either changes the lines of one reference (`amount`, `fee`, `status`, or
//! `drop: true` to remove them: "missing at the PSP"), or adds an `extra` line Tally has never
//! seen. Changes apply to every report the reference appears in; an extra line appears in the
//! report of its `date` (default: the UTC day it was posted).

use serde::{Deserialize, Serialize};

use crate::constants::REFERENCE_LENGTH_MAX;
use crate::error::ApiError;
use crate::wire::{SettlementKind, SettlementLine};

/// The CSV header, in the order of [`SettlementLine`]'s fields.
pub const HEADER: [&str; 8] = [
    "date",
    "kind",
    "psp_id",
    "reference",
    "amount",
    "currency",
    "fee",
    "status",
];

/// Statuses a settlement line (or an adjustment) may carry.
const STATUSES: [&str; 9] = [
    "authorized",
    "succeeded",
    "failed",
    "pending",
    "paid",
    "needs_response",
    "under_review",
    "won",
    "lost",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraLine>,
}

/// A line the PSP reports and Tally has never seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraLine {
    pub kind: SettlementKind,
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    #[serde(default)]
    pub fee: u64,
    pub status: String,
    /// Generated when absent.
    #[serde(default)]
    pub psp_id: Option<String>,
    /// The UTC day when absent.
    #[serde(default)]
    pub date: Option<chrono::NaiveDate>,
}

impl Adjustment {
    /// Checks the shape: `extra` alone, or a `reference` with at least one change.
    pub fn validate(&self, index: usize) -> Result<(), ApiError> {
        let invalid = |message: &str| {
            ApiError::invalid(
                "invalid_adjustment",
                format!("adjustment {index}: {message}"),
            )
        };
        let changes = [
            self.amount.is_some(),
            self.fee.is_some(),
            self.status.is_some(),
            self.drop == Some(true),
        ];
        match (&self.reference, &self.extra) {
            (Some(_), Some(_)) => return Err(invalid("give either `reference` or `extra`")),
            (None, None) => return Err(invalid("give `reference` (with a change) or `extra`")),
            (Some(reference), None) => {
                check_reference(reference).map_err(|message| invalid(&message))?;
                if !changes.contains(&true) {
                    return Err(invalid(
                        "nothing to change: give amount, fee, status or drop",
                    ));
                }
            }
            (None, Some(extra)) => {
                check_reference(&extra.reference).map_err(|message| invalid(&message))?;
                if extra.currency.len() != 3 {
                    return Err(invalid("extra.currency must be a 3-letter code"));
                }
                check_status(&extra.status).map_err(|message| invalid(&message))?;
            }
        }
        if let Some(status) = &self.status {
            check_status(status).map_err(|message| invalid(&message))?;
        }
        Ok(())
    }
}

fn check_reference(reference: &str) -> Result<(), String> {
    if reference.is_empty() || reference.len() > REFERENCE_LENGTH_MAX {
        return Err(format!(
            "reference must be 1 to {REFERENCE_LENGTH_MAX} bytes"
        ));
    }
    Ok(())
}

fn check_status(status: &str) -> Result<(), String> {
    if !STATUSES.contains(&status) {
        return Err(format!("status `{status}` is not one of {STATUSES:?}"));
    }
    Ok(())
}

/// Applies `adjustments` to the true lines of `day`.
pub fn adjust(
    lines: Vec<SettlementLine>,
    adjustments: &[Adjustment],
    day: chrono::NaiveDate,
) -> Vec<SettlementLine> {
    let mut adjusted = Vec::with_capacity(lines.len());
    'lines: for mut line in lines {
        for adjustment in adjustments {
            if adjustment.reference.as_deref() != Some(line.reference.as_str()) {
                continue;
            }
            if adjustment.drop == Some(true) {
                continue 'lines;
            }
            if let Some(amount) = adjustment.amount {
                line.amount = amount;
            }
            if let Some(fee) = adjustment.fee {
                line.fee = fee;
            }
            if let Some(status) = &adjustment.status {
                line.status.clone_from(status);
            }
        }
        adjusted.push(line);
    }
    for extra in adjustments.iter().filter_map(|a| a.extra.as_ref()) {
        if extra.date == Some(day) {
            adjusted.push(SettlementLine {
                date: day,
                kind: extra.kind,
                psp_id: extra.psp_id.clone().unwrap_or_default(),
                reference: extra.reference.clone(),
                amount: extra.amount,
                currency: extra.currency.clone(),
                fee: extra.fee,
                status: extra.status.clone(),
            });
        }
    }
    adjusted
}

/// The report as CSV, with the header even when there are no lines.
pub fn render_csv(lines: &[SettlementLine]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.write_record(HEADER)?;
    for line in lines {
        writer.serialize(line)?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2025, 3, 7).unwrap()
    }

    fn line(reference: &str) -> SettlementLine {
        SettlementLine {
            date: day(),
            kind: SettlementKind::Charge,
            psp_id: format!("ch_{reference}"),
            reference: reference.to_owned(),
            amount: 1000,
            currency: "USD".to_owned(),
            fee: 59,
            status: "succeeded".to_owned(),
        }
    }

    fn change(reference: &str) -> Adjustment {
        Adjustment {
            reference: Some(reference.to_owned()),
            amount: None,
            fee: None,
            status: None,
            drop: None,
            extra: None,
        }
    }

    #[test]
    fn report_has_the_header_and_one_row_per_line() {
        let csv = render_csv(&[line("a")]).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "date,kind,psp_id,reference,amount,currency,fee,status\n\
             2025-03-07,charge,ch_a,a,1000,USD,59,succeeded\n"
        );
        let empty = render_csv(&[]).unwrap();
        assert_eq!(
            empty,
            b"date,kind,psp_id,reference,amount,currency,fee,status\n"
        );
    }

    #[test]
    fn adjustments_change_drop_and_add_lines() {
        let adjustments = vec![
            Adjustment {
                amount: Some(999),
                fee: Some(1),
                ..change("a")
            },
            Adjustment {
                status: Some("failed".to_owned()),
                ..change("b")
            },
            Adjustment {
                drop: Some(true),
                ..change("c")
            },
            Adjustment {
                reference: None,
                extra: Some(ExtraLine {
                    kind: SettlementKind::Refund,
                    reference: "ghost".to_owned(),
                    amount: 5,
                    currency: "USD".to_owned(),
                    fee: 0,
                    status: "succeeded".to_owned(),
                    psp_id: Some("re_ghost".to_owned()),
                    date: Some(day()),
                }),
                ..change("x")
            },
        ];
        for (index, adjustment) in adjustments.iter().enumerate() {
            adjustment.validate(index).unwrap();
        }
        let lines = adjust(
            vec![line("a"), line("b"), line("c"), line("d")],
            &adjustments,
            day(),
        );
        let summary: Vec<_> = lines
            .iter()
            .map(|l| (l.reference.as_str(), l.amount, l.fee, l.status.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", 999, 1, "succeeded"),
                ("b", 1000, 59, "failed"),
                ("d", 1000, 59, "succeeded"),
                ("ghost", 5, 0, "succeeded"),
            ]
        );
        let next_day = day().succ_opt().unwrap();
        assert!(adjust(Vec::new(), &adjustments, next_day).is_empty());
    }

    #[test]
    fn malformed_adjustments_are_rejected() {
        assert!(change("a").validate(0).is_err());
        let bad_status = Adjustment {
            status: Some("refused".to_owned()),
            ..change("a")
        };
        assert!(bad_status.validate(0).is_err());
        let no_drop = Adjustment {
            drop: Some(false),
            ..change("a")
        };
        assert!(no_drop.validate(0).is_err());
        let nothing = Adjustment {
            reference: None,
            ..change("a")
        };
        assert!(nothing.validate(0).is_err());
    }
}
