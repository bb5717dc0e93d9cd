//! Ledger states held against the reference ledger: the node's ledger after every committed
//! entry (what it answered and what it changed), and at the end every replica's stored state,
//! space by space and field by field. Each function returns the first difference as a sentence.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use tally_ledger::{
    Account, Balance, LedgerState, MemState, Mutations, PendingStatus, Record, RecordKey, Transfer,
};
use tally_node::storage::codec::decode;
use tally_node::storage::keys::{read_expiry_key, read_u128, read_u64};
use tally_node::storage::ledger::read_last_timestamp;
use tally_node::storage::{KeyRange, ReadView, Space, StorageError};

use crate::reference::{Journal, Reference};

/// `(field, one side, other side)` for every field of an account.
fn account_fields(a: &Account) -> [(&'static str, String); 12] {
    [
        ("id", a.id.to_string()),
        ("debits_pending", a.debits_pending.to_string()),
        ("debits_posted", a.debits_posted.to_string()),
        ("credits_pending", a.credits_pending.to_string()),
        ("credits_posted", a.credits_posted.to_string()),
        ("user_data_128", a.user_data_128.to_string()),
        ("user_data_64", a.user_data_64.to_string()),
        ("user_data_32", a.user_data_32.to_string()),
        ("ledger", a.ledger.to_string()),
        ("code", a.code.to_string()),
        ("flags", format!("{:?}", a.flags.names())),
        ("timestamp", a.timestamp.to_string()),
    ]
}

fn transfer_fields(t: &Transfer) -> [(&'static str, String); 13] {
    [
        ("id", t.id.to_string()),
        ("debit_account_id", t.debit_account_id.to_string()),
        ("credit_account_id", t.credit_account_id.to_string()),
        ("amount", t.amount.to_string()),
        ("pending_id", t.pending_id.to_string()),
        ("user_data_128", t.user_data_128.to_string()),
        ("user_data_64", t.user_data_64.to_string()),
        ("user_data_32", t.user_data_32.to_string()),
        ("timeout", t.timeout.to_string()),
        ("ledger", t.ledger.to_string()),
        ("code", t.code.to_string()),
        ("flags", format!("{:?}", t.flags.names())),
        ("timestamp", t.timestamp.to_string()),
    ]
}

/// "field X is A there but B in the reference", for the first field that differs.
fn field_difference<const N: usize>(
    theirs: [(&'static str, String); N],
    ours: [(&'static str, String); N],
) -> String {
    theirs
        .into_iter()
        .zip(ours)
        .find(|(a, b)| a.1 != b.1)
        .map(|((field, a), (_, b))| format!("{field} is {a} there but {b} in the reference"))
        .unwrap_or_else(|| "no field differs".to_string())
}

fn describe_account_pair(them: Option<&Account>, us: Option<&Account>) -> String {
    match (them, us) {
        (Some(a), Some(b)) => field_difference(account_fields(a), account_fields(b)),
        (Some(_), None) => "it exists there but not in the reference".to_string(),
        (None, Some(_)) => "it is missing there but exists in the reference".to_string(),
        (None, None) => "neither has it".to_string(),
    }
}

fn describe_transfer_pair(them: Option<&Transfer>, us: Option<&Transfer>) -> String {
    match (them, us) {
        (Some(a), Some(b)) => field_difference(transfer_fields(a), transfer_fields(b)),
        (Some(_), None) => "it exists there but not in the reference".to_string(),
        (None, Some(_)) => "it is missing there but exists in the reference".to_string(),
        (None, None) => "neither has it".to_string(),
    }
}

/// What the node's ledger changed in one entry equals what the reference changed: every account,
/// transfer, pending status and record either of them touched has the same value in both.
pub fn entry_changes(
    state: &MemState,
    mutations: &Mutations,
    reference: &Reference,
    journal: &Journal,
) -> Result<(), String> {
    let accounts: BTreeSet<u128> = mutations
        .accounts
        .keys()
        .chain(&journal.accounts)
        .copied()
        .collect();
    for id in accounts {
        let (theirs, ours) = (state.account(id), reference.account(id));
        if theirs != ours {
            return Err(format!(
                "account {id}: {} (node's ledger {theirs:?}; reference {ours:?})",
                describe_account_pair(theirs.as_ref(), ours.as_ref())
            ));
        }
    }
    let transfers: BTreeSet<u128> = mutations
        .transfers
        .keys()
        .copied()
        .chain(journal.transfers.iter().map(|(_, id)| *id))
        .collect();
    for id in transfers {
        let (theirs, ours) = (state.transfer(id), reference.transfer(id));
        if theirs.as_ref() != ours {
            return Err(format!(
                "transfer {id:#x}: {} (node's ledger {theirs:?}; reference {ours:?})",
                describe_transfer_pair(theirs.as_ref(), ours)
            ));
        }
    }
    let statuses: BTreeSet<u128> = mutations
        .pending_status
        .keys()
        .chain(&journal.statuses)
        .copied()
        .collect();
    for id in statuses {
        let (theirs, ours) = (state.pending_status(id), reference.pending_status(id));
        if theirs != ours {
            return Err(format!(
                "pending transfer {id:#x} is {theirs:?} in the node's ledger but {ours:?} in \
                 the reference"
            ));
        }
    }
    let records: BTreeSet<&RecordKey> = mutations
        .records_put
        .keys()
        .chain(&mutations.records_delete)
        .chain(&journal.records)
        .collect();
    for key in records {
        let (theirs, ours) = (state.record(key), reference.record(key));
        if theirs.as_ref() != ours {
            return Err(format!(
                "record {key:?} is {theirs:?} in the node's ledger but {ours:?} in the reference"
            ));
        }
    }
    Ok(())
}

/// Decodes every pair of a space with `read` (key, value) -> item.
fn scan_space<T>(
    view: &dyn ReadView,
    space: Space,
    read: impl Fn(&[u8], &[u8]) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    let mut failure = None;
    view.scan(space, &KeyRange::all(), false, &mut |key, value| {
        match read(key, value) {
            Ok(item) => items.push(item),
            Err(error) => failure = Some(error),
        }
        failure.is_none()
    })
    .map_err(|error| format!("scanning {} failed: {error}", space.name()))?;
    match failure {
        Some(error) => Err(format!("{}: {error}", space.name())),
        None => Ok(items),
    }
}

fn text(error: StorageError) -> String {
    error.to_string()
}

/// The first difference between two keyed collections: (key, replica's, reference's).
fn first_difference<K: Ord + Clone, V: PartialEq + Clone>(
    replica: &BTreeMap<K, V>,
    reference: &BTreeMap<K, V>,
) -> Option<(K, Option<V>, Option<V>)> {
    let keys: BTreeSet<&K> = replica.keys().chain(reference.keys()).collect();
    keys.into_iter().find_map(|key| {
        let (theirs, ours) = (replica.get(key), reference.get(key));
        (theirs != ours).then(|| (key.clone(), theirs.cloned(), ours.cloned()))
    })
}

fn short<T: Debug>(value: &Option<T>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "absent".to_string(),
    }
}

/// What a replica stores, decoded.
struct Stored {
    accounts: BTreeMap<u128, Account>,
    transfers: BTreeMap<u128, Transfer>,
    statuses: BTreeMap<u128, PendingStatus>,
    expiries: BTreeMap<(u64, u128), ()>,
    records: BTreeMap<RecordKey, Record>,
    account_transfers: BTreeMap<(u128, u64), u128>,
    history: BTreeMap<(u128, u64), Balance>,
    last_timestamp: u64,
}

fn account_time(key: &[u8]) -> Result<(u128, u64), String> {
    match (read_u128(key), key.get(16..).and_then(read_u64)) {
        (Some(account), Some(timestamp)) if key.len() == 24 => Ok((account, timestamp)),
        _ => Err(format!("malformed key of {} bytes", key.len())),
    }
}

fn read_stored(view: &dyn ReadView) -> Result<Stored, String> {
    let accounts = scan_space(view, Space::Accounts, |_, value| {
        decode::<Account>(Space::Accounts, value)
            .map_err(text)
            .map(|a| (a.id, a))
    })?;
    let transfers = scan_space(view, Space::Transfers, |_, value| {
        decode::<Transfer>(Space::Transfers, value)
            .map_err(text)
            .map(|t| (t.id, t))
    })?;
    let statuses = scan_space(view, Space::PendingStatus, |key, value| {
        let id = read_u128(key).ok_or("short key")?;
        let number: u8 = decode(Space::PendingStatus, value).map_err(text)?;
        let status = PendingStatus::from_u8(number).ok_or(format!("status {number}"))?;
        Ok((id, status))
    })?;
    let expiries = scan_space(view, Space::PendingExpiry, |key, _| {
        read_expiry_key(key)
            .map(|entry| (entry, ()))
            .ok_or_else(|| format!("malformed key of {} bytes", key.len()))
    })?;
    let records = scan_space(view, Space::Records, |_, value| {
        decode::<Record>(Space::Records, value)
            .map_err(text)
            .map(|r| (r.key.clone(), r))
    })?;
    let account_transfers = scan_space(view, Space::AccountTransfers, |key, value| {
        let id = read_u128(value).ok_or("short transfer id")?;
        Ok((account_time(key)?, id))
    })?;
    let history = scan_space(view, Space::BalanceHistory, |key, value| {
        Ok((
            account_time(key)?,
            decode::<Balance>(Space::BalanceHistory, value).map_err(text)?,
        ))
    })?;
    let last_timestamp = read_last_timestamp(view).map_err(|error| error.to_string())?;
    Ok(Stored {
        accounts: accounts.into_iter().collect(),
        transfers: transfers.into_iter().collect(),
        statuses: statuses.into_iter().collect(),
        expiries: expiries.into_iter().collect(),
        records: records.into_iter().collect(),
        account_transfers: account_transfers.into_iter().collect(),
        history: history.into_iter().collect(),
        last_timestamp,
    })
}

/// Every transfer a replica stores must have been created by a committed command that the
/// reference answered `ok` for it; `created_by` names that commit, `answers` what every commit
/// carrying the id was answered.
pub fn replica_transfers_created(
    node: u64,
    view: &dyn ReadView,
    created_by: &BTreeMap<u128, (u64, usize)>,
    answers: &BTreeMap<u128, Vec<String>>,
) -> Result<(), String> {
    let transfers = scan_space(view, Space::Transfers, |_, value| {
        decode::<Transfer>(Space::Transfers, value).map_err(text)
    })
    .map_err(|error| format!("replica {node}: {error}"))?;
    for transfer in transfers {
        if created_by.contains_key(&transfer.id) {
            continue;
        }
        let answered = answers
            .get(&transfer.id)
            .map(|list| list.join("; "))
            .unwrap_or_else(|| "no committed command carried it".to_string());
        return Err(format!(
            "replica {node} holds transfer {:#x} ({} -> {}, amount {}) that no committed \
             command created in the reference: {answered}",
            transfer.id, transfer.debit_account_id, transfer.credit_account_id, transfer.amount
        ));
    }
    Ok(())
}

/// A converged replica's stored ledger equals the reference's, space by space.
pub fn replica_state(node: u64, view: &dyn ReadView, reference: &Reference) -> Result<(), String> {
    let stored = read_stored(view).map_err(|error| format!("replica {node}: {error}"))?;
    let differs = |what: String| Err(format!("replica {node} differs from the reference: {what}"));
    let accounts: BTreeMap<u128, Account> = reference
        .accounts()
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    if let Some((id, theirs, ours)) = first_difference(&stored.accounts, &accounts) {
        let pair = describe_account_pair(theirs.as_ref(), ours.as_ref());
        return differs(format!(
            "account {id}: {pair} (replica {}; reference {})",
            short(&theirs),
            short(&ours)
        ));
    }
    if let Some((id, theirs, ours)) = first_difference(&stored.transfers, reference.transfers()) {
        let pair = describe_transfer_pair(theirs.as_ref(), ours.as_ref());
        return differs(format!(
            "transfer {id:#x}: {pair} (replica {}; reference {})",
            short(&theirs),
            short(&ours)
        ));
    }
    if let Some((id, theirs, ours)) =
        first_difference(&stored.statuses, reference.pending_statuses())
    {
        return differs(format!(
            "pending transfer {id:#x} is {} on the replica but {} in the reference",
            short(&theirs),
            short(&ours)
        ));
    }
    let expiries: BTreeMap<(u64, u128), ()> = reference
        .pending_expiries()
        .into_iter()
        .map(|entry| (entry, ()))
        .collect();
    if let Some(((at, id), theirs, _)) = first_difference(&stored.expiries, &expiries) {
        let (here, there) = if theirs.is_some() {
            ("indexed", "not")
        } else {
            ("not indexed", "indexed")
        };
        return differs(format!(
            "pending transfer {id:#x} expiring at {at} is {here} for expiry on the replica but \
             {there} in the reference"
        ));
    }
    if let Some((key, theirs, ours)) = first_difference(&stored.records, reference.records()) {
        return differs(format!(
            "record {key:?} is {} on the replica but {} in the reference",
            short(&theirs),
            short(&ours)
        ));
    }
    let index: BTreeMap<(u128, u64), u128> = reference
        .account_transfers()
        .into_iter()
        .map(|(account, at, id)| ((account, at), id))
        .collect();
    if let Some(((account, at), theirs, ours)) = first_difference(&stored.account_transfers, &index)
    {
        return differs(format!(
            "account {account}'s transfer at {at} is {} on the replica but {} in the reference",
            short(&theirs),
            short(&ours)
        ));
    }
    if let Some(((account, at), theirs, ours)) =
        first_difference(&stored.history, reference.balance_history())
    {
        return differs(format!(
            "account {account}'s balance history at {at} is {} on the replica but {} in the \
             reference",
            short(&theirs),
            short(&ours)
        ));
    }
    if stored.last_timestamp != reference.last_timestamp() {
        return differs(format!(
            "its last timestamp is {} but the reference's is {}",
            stored.last_timestamp,
            reference.last_timestamp()
        ));
    }
    Ok(())
}
