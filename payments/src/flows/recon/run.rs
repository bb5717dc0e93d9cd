//! The run: reads the report, the stored items and the objects, takes the safe settle steps and
//! records what it found.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

use super::index;
use super::matching::{candidates, revisit, status_name, Action, Candidate, Objects};
use super::RECON_LINES_MAX;
use crate::domain::disputes::Dispute;
use crate::domain::model::{ns, Order, Payout, Refund};
use crate::domain::recon::{
    PspLine, ReconClass, ReconItem, ReconReport, ReconRun, ReconSummary, Resolution,
};
use crate::edges::psp::SettlementLine;
use crate::edges::store::{Commit, Txn, Versioned};
use crate::error::PayError;
use crate::flows::{audit, describe_commit, failure, Pay};

/// Conditions plus record operations of one `Txn` (the node's `TXN_OPERATIONS_MAX`).
const TXN_OPERATIONS_MAX: usize = 1024;

/// Items written per `Txn`: each takes at most four operations (item and review entry, each
/// with its condition).
const ITEMS_PER_TXN_MAX: usize = 200;
const _: () = assert!(ITEMS_PER_TXN_MAX * 4 <= TXN_OPERATIONS_MAX);

/// An item to write: `version` 0 for a new one, else the stored version it replaces.
struct ItemWrite {
    item: ReconItem,
    version: u64,
}

impl Pay {
    /// Reconciles the PSP's settlement report of `day` (UTC) and checks the ledger.
    pub async fn reconcile(self: &Arc<Self>, day: NaiveDate) -> Result<ReconReport, PayError> {
        let date = day.to_string();
        let run_at = self.clock.now_ms();
        let lines = self.settlement_lines(day, &date).await?;
        let stored = self.stored_items(&date).await?;
        // Only the day's objects and those the lines name (`index.rs`), not every object.
        self.ensure_recon_index().await?;
        let objects = index::day_objects(&self.store, day, &lines).await?;
        let (recorded, new_items) = self
            .record_findings(day, &date, &lines, &objects, &stored, run_at)
            .await?;
        let items = merge_items(stored, recorded);
        let ledger = self.check_ledger().await?;
        let summary = ReconSummary::of(&items, new_items, ledger);
        self.store_run(&date, run_at, &summary).await?;
        metrics_of(self, &summary);
        Ok(ReconReport {
            date,
            run_at,
            summary,
            items,
        })
    }

    /// The PSP's settlement report of `day` (`date`), refused when longer than one run takes.
    async fn settlement_lines(
        &self,
        day: NaiveDate,
        date: &str,
    ) -> Result<Vec<SettlementLine>, PayError> {
        let lines = self.psp.settlement(day).await.map_err(|e| {
            PayError::PspUnavailable(format!("the settlement report of {date}: {e}"))
        })?;
        if lines.len() > RECON_LINES_MAX {
            return Err(PayError::unprocessable(
                "report_too_large",
                format!(
                    "the settlement report of {date} has {} lines, more than the {RECON_LINES_MAX} \
                     one run reconciles",
                    lines.len()
                ),
            ));
        }
        Ok(lines)
    }

    /// Resolves and writes the findings that are new or worth revisiting; returns the items
    /// written and how many of them are new.
    async fn record_findings(
        self: &Arc<Self>,
        day: NaiveDate,
        date: &str,
        lines: &[SettlementLine],
        objects: &Objects,
        stored: &BTreeMap<String, Versioned<ReconItem>>,
        run_at: i64,
    ) -> Result<(Vec<ReconItem>, u64), PayError> {
        let mut pending = Vec::new();
        let mut recorded = Vec::new();
        let mut new_items = 0;
        for candidate in candidates(day, lines, objects) {
            let version = match stored.get(&candidate.key) {
                None => 0,
                Some(stored) if revisit(&stored.value, &candidate.finding) => stored.version,
                Some(_) => continue,
            };
            let settles = candidate.finding.action.is_some();
            let write = ItemWrite {
                item: self.resolve(date, candidate, run_at).await?,
                version,
            };
            if settles {
                // Recorded at once: should the run stop early, a later run would find the
                // object settled and could no longer tell that reconciliation settled it.
                let (items, count) = self.write_items(vec![write]).await?;
                recorded.extend(items);
                new_items += count;
            } else {
                pending.push(write);
            }
        }
        let (items, count) = self.write_items(pending).await?;
        recorded.extend(items);
        new_items += count;
        Ok((recorded, new_items))
    }

    /// The stored reconciliation of a day.
    pub async fn reconciliation(&self, day: NaiveDate) -> Result<ReconReport, PayError> {
        let date = day.to_string();
        let run = self
            .load::<ReconRun>(ns::RECON_RUN, &date, "reconciliation of")
            .await?
            .value;
        let items = self
            .stored_items(&date)
            .await?
            .into_values()
            .map(|item| item.value)
            .collect();
        Ok(ReconReport {
            date,
            run_at: run.run_at,
            summary: run.summary,
            items,
        })
    }

    /// The review queue: every finding a person must look at (of one day, if given).
    pub async fn reviews(&self, day: Option<NaiveDate>) -> Result<Vec<ReconItem>, PayError> {
        let prefix = day.map_or_else(String::new, |d| format!("{d}/"));
        Ok(self
            .store
            .scan_all::<ReconItem>(ns::REVIEW, &prefix)
            .await?
            .into_iter()
            .map(|(_, v)| v.value)
            .collect())
    }

    async fn stored_items(
        &self,
        date: &str,
    ) -> Result<BTreeMap<String, Versioned<ReconItem>>, PayError> {
        Ok(self
            .store
            .scan_all::<ReconItem>(ns::RECON_ITEM, &format!("{date}/"))
            .await?
            .into_iter()
            .collect())
    }

    /// Every order, deposit, refund, payout and dispute (for the ledger audit).
    pub(super) async fn objects(&self) -> Result<Objects, PayError> {
        fn values<T>(all: Vec<(String, Versioned<T>)>) -> BTreeMap<String, T> {
            all.into_iter().map(|(k, v)| (k, v.value)).collect()
        }
        Ok(Objects {
            orders: values(self.store.scan_all::<Order>(ns::ORDER, "").await?),
            refunds: values(self.store.scan_all::<Refund>(ns::REFUND, "").await?),
            payouts: values(self.store.scan_all::<Payout>(ns::PAYOUT, "").await?),
            disputes: (self.store.scan_all::<Dispute>(ns::DISPUTE, "").await?)
                .into_iter()
                .map(|(_, v)| (v.value.psp_id.clone(), v.value))
                .collect(),
        })
    }

    /// Takes the safe settle step of a finding, if it has one, and makes the item.
    async fn resolve(
        &self,
        date: &str,
        candidate: Candidate,
        found_at: i64,
    ) -> Result<ReconItem, PayError> {
        let Candidate {
            key,
            reference,
            kind,
            line,
            tally,
            finding,
        } = candidate;
        let mut item = ReconItem {
            key,
            date: date.to_string(),
            reference,
            kind: kind.to_string(),
            class: finding.class,
            resolution: if finding.class == ReconClass::Matched {
                Resolution::None
            } else {
                Resolution::Review
            },
            action: None,
            status_after: None,
            in_flight: finding.in_flight,
            detail: finding.detail,
            psp: line.as_ref().map(PspLine::from),
            tally: tally.map(|t| t.view),
            found_at,
        };
        let Some(action) = finding.action else {
            return Ok(item);
        };
        let status = self.settle(date, &item.reference, &action).await?;
        item.action = Some(action.name().to_string());
        if status == action.settled_status() {
            item.resolution = Resolution::Resolved;
            item.detail = format!("{}: settled {status}", item.detail);
        } else {
            item.detail = format!(
                "{}: not settled, Tally had meanwhile settled it {status}",
                item.detail
            );
        }
        item.status_after = Some(status);
        Ok(item)
    }

    /// Takes a settle step; returns Tally's status after it.
    async fn settle(&self, date: &str, id: &str, action: &Action) -> Result<String, PayError> {
        let reported_failed = || {
            failure(
                "psp_reported_failed",
                format!("the PSP's settlement report of {date} lists it as failed"),
            )
        };
        Ok(match action {
            Action::OrderSucceeded { psp_id, fee } => status_name(
                self.settle_order(id, Ok((psp_id.clone(), *fee)))
                    .await?
                    .status,
            ),
            Action::OrderFailed => {
                status_name(self.settle_order(id, Err(reported_failed())).await?.status)
            }
            Action::RefundSucceeded { psp_id } => {
                status_name(self.settle_refund(id, Ok(psp_id.clone())).await?.status)
            }
            Action::PayoutPaid { psp_id } => {
                status_name(self.settle_payout(id, Ok(psp_id.clone())).await?.status)
            }
            Action::PayoutFailed => {
                status_name(self.settle_payout(id, Err(reported_failed())).await?.status)
            }
        })
    }

    /// Writes items (and their review entries) in batches, each only if still absent (or at
    /// the version it replaces). Returns the items as stored and how many this run wrote.
    async fn write_items(&self, writes: Vec<ItemWrite>) -> Result<(Vec<ReconItem>, u64), PayError> {
        let mut stored = Vec::with_capacity(writes.len());
        let mut written = 0u64;
        for chunk in writes.chunks(ITEMS_PER_TXN_MAX) {
            let txn = chunk.iter().fold(Txn::new(), item_ops);
            match self.store.commit(txn).await? {
                Commit::Committed => {
                    written += chunk.len() as u64;
                    stored.extend(chunk.iter().map(|w| w.item.clone()));
                    continue;
                }
                // Another run got to some of them first: one at a time.
                Commit::ConditionFailed { .. } => {}
                other => return Err(write_failed(&other)),
            }
            for write in chunk {
                match self.store.commit(item_ops(Txn::new(), write)).await? {
                    Commit::Committed => {
                        written += 1;
                        stored.push(write.item.clone());
                    }
                    Commit::ConditionFailed { .. } => {
                        let theirs = self
                            .load::<ReconItem>(ns::RECON_ITEM, &write.item.key, "recon item")
                            .await?;
                        stored.push(theirs.value);
                    }
                    other => return Err(write_failed(&other)),
                }
            }
        }
        Ok((stored, written))
    }

    /// Stores the day's summary unless the stored one already says the same.
    async fn store_run(
        &self,
        date: &str,
        run_at: i64,
        summary: &ReconSummary,
    ) -> Result<(), PayError> {
        let stored = self.store.get::<ReconRun>(ns::RECON_RUN, date).await?;
        if let Some(stored) = &stored {
            if stored.value.summary.same_findings(summary) {
                return Ok(());
            }
        }
        let run = ReconRun {
            date: date.to_string(),
            run_at,
            summary: summary.clone(),
        };
        let txn = audit::stamp(Txn::new(), "reconciliation.run", date)
            .require_version(ns::RECON_RUN, date, stored.map_or(0, |s| s.version))
            .put(ns::RECON_RUN, date, &run);
        match self.store.commit(txn).await? {
            // A concurrent run stored its own summary of the same report.
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(write_failed(&other)),
        }
    }
}

fn item_ops(txn: Txn, write: &ItemWrite) -> Txn {
    let key = &write.item.key;
    let txn = txn.require_version(ns::RECON_ITEM, key, write.version).put(
        ns::RECON_ITEM,
        key,
        &write.item,
    );
    if write.item.resolution == Resolution::Review {
        txn.require_version(ns::REVIEW, key, 0)
            .put(ns::REVIEW, key, &write.item)
    } else {
        txn
    }
}

fn write_failed(commit: &Commit) -> PayError {
    PayError::Internal(format!(
        "recording reconciliation items: {}",
        describe_commit(commit)
    ))
}

fn metrics_of(pay: &Pay, summary: &ReconSummary) {
    if summary.new_items > 0 {
        pay.metrics.inc("tally_pay_recon_runs_with_new_items_total");
    }
    if !summary.ledger_ok {
        pay.metrics
            .inc("tally_pay_recon_ledger_check_failures_total");
    }
}

/// The day's items after the run: those stored before, replaced by those it wrote, by key.
fn merge_items(
    stored: BTreeMap<String, Versioned<ReconItem>>,
    recorded: Vec<ReconItem>,
) -> Vec<ReconItem> {
    let mut items: BTreeMap<String, ReconItem> = stored
        .into_iter()
        .map(|(key, item)| (key, item.value))
        .collect();
    for item in recorded {
        items.insert(item.key.clone(), item);
    }
    items.into_values().collect()
}
