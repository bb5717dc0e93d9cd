//! Re-encryption of stored bank account numbers under the current data key, after a rotation
//! (`tally-pay keys rotate-data-key`). Works in bounded pages; each record is rewritten with a
//! `Txn` conditioned on the version it was read at, and records already under the current key
//! are skipped, so a run that crashed is simply run again.

use serde::Serialize;

use crate::crypto::Sealer;
use crate::domain::ids::BankAccountId;
use crate::domain::model::{ns, BankAccountRecord};
use crate::edges::store::{Commit, Store, Txn};
use crate::error::PayError;

/// Records read per page.
pub const PAGE_RECORDS_MAX: u32 = 500;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    pub scanned: u64,
    pub reencrypted: u64,
    /// Changed by someone else while being rewritten: run again to finish them.
    pub raced: u64,
    /// Sealed with a key the sealer does not have: their ids, for an operator.
    pub unreadable: Vec<BankAccountId>,
}

/// Re-encrypts every bank account number not sealed with `sealer`'s current key, `page` records
/// at a time (1 to [`PAGE_RECORDS_MAX`]).
pub async fn rekey_bank_accounts(
    store: &Store,
    sealer: &Sealer,
    page: u32,
) -> Result<RekeyReport, PayError> {
    let page = page.clamp(1, PAGE_RECORDS_MAX);
    let current = sealer.current_key_id().to_string();
    let mut report = RekeyReport::default();
    let mut after = String::new();
    loop {
        let rows = store
            .scan::<BankAccountRecord>(ns::BANK_ACCOUNT, "", &after, page)
            .await?;
        let Some((last, _)) = rows.last() else {
            return Ok(report);
        };
        after = last.clone();
        for (key, record) in rows {
            report.scanned += 1;
            if Sealer::key_id_of(&record.value.encrypted_number) == Some(current.as_str()) {
                continue;
            }
            let Ok(number) = sealer.open(&record.value.encrypted_number) else {
                report.unreadable.push(record.value.id.clone());
                continue;
            };
            let mut next = record.value.clone();
            next.encrypted_number = sealer.seal(&number);
            let txn = crate::flows::audit::stamp(Txn::new(), "bank_account.reencrypt", &next.id)
                .require_version(ns::BANK_ACCOUNT, &key, record.version)
                .put(ns::BANK_ACCOUNT, &key, &next);
            match store.commit(txn).await? {
                Commit::Committed => report.reencrypted += 1,
                _ => report.raced += 1,
            }
        }
    }
}
