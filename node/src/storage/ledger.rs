//! The ledger's state laid out on [`Storage`]: `LedgerState` reads, mutations as one write
//! batch, the query pages the API serves, and the state digest `verify` compares.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::codec::{decode, encode};
use super::keys::{self, account_time_key, expiry_key, read_expiry_key, record_key, u128_key};
use super::{KeyRange, ReadView, Space, StorageError, WriteBatch};
use crate::ledger::{
    Account, Balance, LedgerState, LedgerTotals, Mutations, PendingStatus, Record, RecordKey,
    Transfer,
};

/// Key of the last assigned timestamp in [`Space::StateMeta`].
pub const LAST_TIMESTAMP_KEY: &[u8] = b"last_timestamp";

/// `LedgerState` over a read view. Read errors cannot travel through the trait's `Option`s, so
/// the first one is kept and must be checked with [`StoreState::take_error`] before the batch's
/// mutations are trusted.
pub struct StoreState<'a> {
    view: &'a dyn ReadView,
    error: RefCell<Option<StorageError>>,
}

impl<'a> StoreState<'a> {
    pub fn new(view: &'a dyn ReadView) -> Self {
        StoreState {
            view,
            error: RefCell::new(None),
        }
    }

    pub fn take_error(&self) -> Option<StorageError> {
        self.error.borrow_mut().take()
    }

    fn keep<T>(&self, result: Result<Option<T>, StorageError>) -> Option<T> {
        match result {
            Ok(value) => value,
            Err(error) => {
                self.error.borrow_mut().get_or_insert(error);
                None
            }
        }
    }
}

pub fn read_account(view: &dyn ReadView, id: u128) -> Result<Option<Account>, StorageError> {
    view.get(Space::Accounts, &u128_key(id))?
        .map(|bytes| decode(Space::Accounts, &bytes))
        .transpose()
}

pub fn read_transfer(view: &dyn ReadView, id: u128) -> Result<Option<Transfer>, StorageError> {
    view.get(Space::Transfers, &u128_key(id))?
        .map(|bytes| decode(Space::Transfers, &bytes))
        .transpose()
}

pub fn read_record(view: &dyn ReadView, key: &RecordKey) -> Result<Option<Record>, StorageError> {
    view.get(Space::Records, &record_key(key))?
        .map(|bytes| decode(Space::Records, &bytes))
        .transpose()
}

/// The state of pending transfer `id`: pending, posted, voided or expired; `None` for an id that
/// was never a pending transfer.
pub fn read_pending_status(
    view: &dyn ReadView,
    id: u128,
) -> Result<Option<PendingStatus>, StorageError> {
    let Some(bytes) = view.get(Space::PendingStatus, &u128_key(id))? else {
        return Ok(None);
    };
    let value: u8 = decode(Space::PendingStatus, &bytes)?;
    PendingStatus::from_u8(value)
        .map(Some)
        .ok_or(StorageError::Corrupt {
            space: Space::PendingStatus.name(),
            reason: format!("status {value}"),
        })
}

/// When the pending transfer that expires first expires (ns), if any is pending with a timeout.
pub fn earliest_pending_expiry(view: &dyn ReadView) -> Result<Option<u64>, StorageError> {
    Ok(read_expired(view, u64::MAX, 1)?
        .first()
        .map(|(expires_at, _)| *expires_at))
}

pub fn read_last_timestamp(view: &dyn ReadView) -> Result<u64, StorageError> {
    match view.get(Space::StateMeta, LAST_TIMESTAMP_KEY)? {
        Some(bytes) => decode(Space::StateMeta, &bytes),
        None => Ok(0),
    }
}

fn read_expired(
    view: &dyn ReadView,
    now_ns: u64,
    limit: usize,
) -> Result<Vec<(u64, u128)>, StorageError> {
    let range = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Included(expiry_key(now_ns, u128::MAX).to_vec()),
    };
    let mut expired = Vec::new();
    let mut corrupt = None;
    view.scan(Space::PendingExpiry, &range, false, &mut |key, _| {
        match read_expiry_key(key) {
            Some(entry) => expired.push(entry),
            None => corrupt = Some(key.len()),
        }
        corrupt.is_none() && expired.len() < limit
    })?;
    if let Some(length) = corrupt {
        return Err(StorageError::Corrupt {
            space: Space::PendingExpiry.name(),
            reason: format!("key of {length} bytes"),
        });
    }
    Ok(expired)
}

impl LedgerState for StoreState<'_> {
    fn account(&self, id: u128) -> Option<Account> {
        self.keep(read_account(self.view, id))
    }

    fn transfer(&self, id: u128) -> Option<Transfer> {
        self.keep(read_transfer(self.view, id))
    }

    fn pending_status(&self, pending_id: u128) -> Option<PendingStatus> {
        self.keep(read_pending_status(self.view, pending_id))
    }

    fn record(&self, key: &RecordKey) -> Option<Record> {
        self.keep(read_record(self.view, key))
    }

    fn expired_pending(&self, now_ns: u64, limit: usize) -> Vec<(u64, u128)> {
        self.keep(read_expired(self.view, now_ns, limit).map(Some))
            .unwrap_or_default()
    }

    fn last_timestamp(&self) -> u64 {
        self.keep(read_last_timestamp(self.view).map(Some))
            .unwrap_or(0)
    }
}

/// Adds a batch's mutations to a write batch.
pub fn write_mutations(mutations: &Mutations, batch: &mut WriteBatch) {
    for (id, account) in &mutations.accounts {
        batch.put(Space::Accounts, u128_key(*id), encode(account));
    }
    for (id, transfer) in &mutations.transfers {
        batch.put(Space::Transfers, u128_key(*id), encode(transfer));
    }
    for (id, status) in &mutations.pending_status {
        batch.put(Space::PendingStatus, u128_key(*id), encode(&status.as_u8()));
    }
    for (expires_at, id) in &mutations.pending_expiry_remove {
        batch.delete(Space::PendingExpiry, expiry_key(*expires_at, *id));
    }
    for (expires_at, id) in &mutations.pending_expiry_insert {
        batch.put(
            Space::PendingExpiry,
            expiry_key(*expires_at, *id),
            Vec::new(),
        );
    }
    for key in &mutations.records_delete {
        batch.delete(Space::Records, record_key(key));
    }
    for (key, record) in &mutations.records_put {
        batch.put(Space::Records, record_key(key), encode(record));
    }
    for (account_id, timestamp, transfer_id) in &mutations.account_transfers {
        batch.put(
            Space::AccountTransfers,
            account_time_key(*account_id, *timestamp),
            u128_key(*transfer_id),
        );
    }
    for balance in &mutations.balance_history {
        batch.put(
            Space::BalanceHistory,
            account_time_key(balance.account_id, balance.timestamp),
            encode(balance),
        );
    }
    batch.put(
        Space::StateMeta,
        LAST_TIMESTAMP_KEY,
        encode(&mutations.last_timestamp),
    );
}

/// Which of an account's history to page through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountPage {
    pub account_id: u128,
    /// Inclusive; 0 means no bound.
    pub timestamp_min: u64,
    /// Inclusive; 0 means no bound.
    pub timestamp_max: u64,
    pub limit: usize,
    pub reversed: bool,
}

impl AccountPage {
    fn range(&self) -> KeyRange {
        let max = if self.timestamp_max == 0 {
            u64::MAX
        } else {
            self.timestamp_max
        };
        KeyRange {
            start: Bound::Included(account_time_key(self.account_id, self.timestamp_min).to_vec()),
            end: Bound::Included(account_time_key(self.account_id, max).to_vec()),
        }
    }
}

/// An account's transfers in timestamp order.
pub fn account_transfers(
    view: &dyn ReadView,
    page: &AccountPage,
) -> Result<Vec<Transfer>, StorageError> {
    let mut ids = Vec::new();
    view.scan(
        Space::AccountTransfers,
        &page.range(),
        page.reversed,
        &mut |_, value| {
            ids.push(keys::read_u128(value));
            ids.len() < page.limit
        },
    )?;
    let mut transfers = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.ok_or(StorageError::Corrupt {
            space: Space::AccountTransfers.name(),
            reason: "short id".into(),
        })?;
        let transfer = read_transfer(view, id)?.ok_or(StorageError::Corrupt {
            space: Space::AccountTransfers.name(),
            reason: format!("indexed transfer {id} is missing"),
        })?;
        transfers.push(transfer);
    }
    Ok(transfers)
}

/// Balance history of an account with the `history` flag.
pub fn account_balances(
    view: &dyn ReadView,
    page: &AccountPage,
) -> Result<Vec<Balance>, StorageError> {
    let mut balances = Vec::new();
    let mut error = None;
    view.scan(
        Space::BalanceHistory,
        &page.range(),
        page.reversed,
        &mut |_, value| {
            match decode::<Balance>(Space::BalanceHistory, value) {
                Ok(balance) => balances.push(balance),
                Err(failure) => error = Some(failure),
            }
            error.is_none() && balances.len() < page.limit
        },
    )?;
    error.map_or(Ok(balances), Err)
}

/// Records of one namespace whose key starts with `prefix`, after `start_after` if given.
pub fn scan_records(
    view: &dyn ReadView,
    namespace: &str,
    prefix: &[u8],
    start_after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Record>, StorageError> {
    let mut encoded_prefix = keys::record_namespace_prefix(namespace);
    encoded_prefix.extend_from_slice(prefix);
    let mut range = KeyRange::prefix(&encoded_prefix);
    if let Some(after) = start_after {
        let after = record_key(&RecordKey {
            namespace: namespace.to_string(),
            key: after.to_vec(),
        });
        if after >= encoded_prefix {
            range.start = Bound::Excluded(after);
        }
    }
    let mut records = Vec::new();
    let mut error = None;
    view.scan(Space::Records, &range, false, &mut |_, value| {
        match decode::<Record>(Space::Records, value) {
            Ok(record) => records.push(record),
            Err(failure) => error = Some(failure),
        }
        error.is_none() && records.len() < limit
    })?;
    error.map_or(Ok(records), Err)
}

/// What `verify` compares between replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestReport {
    pub log_index: u64,
    /// SHA-256 over every key and value of the ledger's spaces, hex.
    pub digest: String,
    pub ledgers: BTreeMap<u32, LedgerTotals>,
    pub ledger_accounts: BTreeMap<u32, u64>,
    pub accounts: u64,
    pub transfers: u64,
    pub records: u64,
}

/// Adds one account to its ledger's totals (sums wrap like `ledger_totals`: equal wrapped sums
/// mean equal sums).
fn add_to_totals(report: &mut DigestReport, account: &Account) {
    *report.ledger_accounts.entry(account.ledger).or_default() += 1;
    let totals = report.ledgers.entry(account.ledger).or_default();
    totals.debits_pending = totals.debits_pending.wrapping_add(account.debits_pending);
    totals.debits_posted = totals.debits_posted.wrapping_add(account.debits_posted);
    totals.credits_pending = totals.credits_pending.wrapping_add(account.credits_pending);
    totals.credits_posted = totals.credits_posted.wrapping_add(account.credits_posted);
}

/// Hashes the whole ledger state and sums every ledger's balances.
pub fn digest(view: &dyn ReadView, log_index: u64) -> Result<DigestReport, StorageError> {
    let mut hasher = Sha256::new();
    let mut report = DigestReport {
        log_index,
        ..DigestReport::default()
    };
    let mut error = None;
    for space in Space::STATE_MACHINE {
        if space == Space::StateMeta {
            continue;
        }
        let mut count = 0u64;
        hasher.update([space as u8]);
        view.scan(space, &KeyRange::all(), false, &mut |key, value| {
            hasher.update((key.len() as u32).to_le_bytes());
            hasher.update(key);
            hasher.update((value.len() as u32).to_le_bytes());
            hasher.update(value);
            count += 1;
            if space == Space::Accounts {
                match decode::<Account>(space, value) {
                    Ok(account) => add_to_totals(&mut report, &account),
                    Err(failure) => error = Some(failure),
                }
            }
            error.is_none()
        })?;
        match space {
            Space::Accounts => report.accounts = count,
            Space::Transfers => report.transfers = count,
            Space::Records => report.records = count,
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(error);
    }
    // The state's one piece of metadata that decides future results: the next timestamp.
    hasher.update([Space::StateMeta as u8]);
    hasher.update(read_last_timestamp(view)?.to_le_bytes());
    report.digest = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(report)
}
