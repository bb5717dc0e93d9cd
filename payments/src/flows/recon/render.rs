//! A day's reconciliation as CSV and as readable text.

use crate::domain::money::Currency;
use crate::domain::recon::{CurrencyChecks, ReconClass, ReconReport};
use crate::error::PayError;
use crate::flows::reports::{csv_finish, csv_row, csv_writer};

impl ReconReport {
    /// One CSV row per item, with a header; amounts in minor units.
    pub fn to_csv(&self) -> Result<String, PayError> {
        let mut writer = csv_writer();
        csv_row(
            &mut writer,
            &[
                "date",
                "reference",
                "kind",
                "class",
                "resolution",
                "action",
                "psp_id",
                "psp_status",
                "psp_amount",
                "psp_fee",
                "currency",
                "tally_object",
                "tally_status",
                "tally_amount",
                "tally_psp_fee",
                "status_after",
                "detail",
            ],
        )?;
        for item in &self.items {
            let psp = item.psp.as_ref();
            let tally = item.tally.as_ref();
            let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
            let currency = psp
                .map(|l| l.currency.as_str())
                .or(tally.map(|t| t.currency.as_str()))
                .unwrap_or("");
            csv_row(
                &mut writer,
                &[
                    &item.date,
                    &item.reference,
                    &item.kind,
                    item.class.name(),
                    item.resolution.name(),
                    item.action.as_deref().unwrap_or(""),
                    psp.map_or("", |l| l.psp_id.as_str()),
                    psp.map_or("", |l| l.status.as_str()),
                    &number(psp.map(|l| l.amount)),
                    &number(psp.map(|l| l.fee)),
                    currency,
                    tally.map_or("", |t| t.object.as_str()),
                    tally.map_or("", |t| t.status.as_str()),
                    &number(tally.map(|t| t.amount)),
                    &number(tally.map(|t| t.psp_fee)),
                    item.status_after.as_deref().unwrap_or(""),
                    &item.detail,
                ],
            )?;
        }
        csv_finish(writer)
    }

    /// A readable summary: counts per class, the ledger checks, then every item that is not a
    /// plain match.
    pub fn render_text(&self) -> String {
        let s = &self.summary;
        let mut out = format!("Reconciliation of {}\n\n", self.date);
        let mut rows = vec![vec!["PSP lines".to_string(), s.lines.to_string()]];
        for class in ReconClass::ALL {
            rows.push(vec![class.name().to_string(), s.count(class).to_string()]);
        }
        rows.push(vec!["resolved".into(), s.resolved.to_string()]);
        rows.push(vec!["queued for review".into(), s.queued.to_string()]);
        rows.push(vec!["new items".into(), s.new_items.to_string()]);
        out.push_str(&table(&[], &rows));
        out.push_str("\nLedger checks\n");
        let rows: Vec<Vec<String>> = s.ledger.iter().flat_map(ledger_rows).collect();
        out.push_str(&table(&["currency", "check", "result", "figures"], &rows));
        let notable: Vec<Vec<String>> = self
            .items
            .iter()
            .filter(|i| i.class != ReconClass::Matched)
            .map(|i| {
                vec![
                    i.reference.clone(),
                    i.kind.clone(),
                    i.class.name().to_string(),
                    i.resolution.name().to_string(),
                    i.detail.clone(),
                ]
            })
            .collect();
        if !notable.is_empty() {
            out.push_str("\nFindings\n");
            out.push_str(&table(
                &["reference", "kind", "class", "resolution", "detail"],
                &notable,
            ));
        }
        out.push_str(if s.ok {
            "\nOK: everything matched or was resolved, and the ledger checks passed.\n"
        } else {
            "\nATTENTION: findings are queued for review or a ledger check failed.\n"
        });
        out
    }
}

/// The rows of one currency's ledger checks, amounts as decimals of the currency.
pub(super) fn ledger_rows(c: &CurrencyChecks) -> Vec<Vec<String>> {
    let amount = |minor: i128| match Currency::by_code(&c.currency) {
        Some(currency) => crate::domain::money::format_signed(currency, minor),
        None => minor.to_string(),
    };
    let unsigned = |minor: u128| amount(i128::try_from(minor).unwrap_or(i128::MAX));
    let verdict = |passed: bool| if passed { "pass" } else { "FAIL" }.to_string();
    let (k, w, p) = (&c.conservation, &c.wallets, &c.psp_clearing);
    let conservation = format!(
        "{} accounts; posted debits {} credits {}; pending debits {} credits {}",
        k.accounts,
        unsigned(k.debits_posted),
        unsigned(k.credits_posted),
        unsigned(k.debits_pending),
        unsigned(k.credits_pending)
    );
    let wallets = format!(
        "{} wallets, {} transfers, {} mismatched",
        w.wallets, w.transfers, w.mismatched
    );
    let clearing = format!(
        "balance {} (expected {}); pending {} (expected {}){}",
        amount(p.balance),
        amount(p.expected_balance),
        unsigned(p.debits_pending),
        unsigned(p.expected_debits_pending),
        if p.stable {
            ""
        } else {
            "; payments kept settling"
        }
    );
    [
        ("conservation", k.passed, conservation),
        ("wallet movements", w.passed, wallets),
        ("psp clearing", p.passed, clearing),
    ]
    .into_iter()
    .map(|(check, passed, figures)| {
        vec![
            c.currency.clone(),
            check.to_string(),
            verdict(passed),
            figures,
        ]
    })
    .collect()
}

/// Left-aligned columns separated by two spaces; `header` may be empty.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; columns];
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in rows.iter().chain(std::iter::once(&header)) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header)
        .filter(|h| !h.is_empty())
        .chain(rows)
    {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
