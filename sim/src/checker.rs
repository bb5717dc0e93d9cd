//! The checker: replays the committed log (as the replicas applied it) through the reference
//! model — the pure ledger over `MemState` — and judges the run's history against it:
//! acknowledged results, lost or doubly applied writes, stale reads, conservation, balance
//! flags, and replica digests at every checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::EntryPayload;
use tally_node::ledger::{
    Account, ApplyContext, Command, CommandResult, LedgerBatch, MemState, TxnOutcome,
};
use tally_node::raft::{Entry, RaftNode, RequestKind, StoredMembership};
use tally_node::storage::codec::{decode, to_bytes};
use tally_node::storage::ledger::{digest, write_mutations, DigestReport};
use tally_node::storage::{KeyRange, Space, WriteBatch};

use crate::storage::Spaces;
use crate::workload::applied_index;
use crate::world::{Ack, History};

/// A short description of a framed log entry, for reports.
pub fn describe_entry(bytes: &[u8]) -> String {
    match decode::<Entry>(Space::RaftLog, bytes) {
        Ok(entry) => {
            let payload = match &entry.payload {
                EntryPayload::Blank => "blank".to_string(),
                EntryPayload::Membership(_) => "membership".to_string(),
                EntryPayload::Normal(request) => match &request.kind {
                    RequestKind::Ledger(commands) => {
                        let items: Vec<String> = commands.iter().map(describe_command).collect();
                        format!("ledger[{}]", items.join(" | "))
                    }
                    RequestKind::Checkpoint => "checkpoint".to_string(),
                },
            };
            format!("{}:{payload}", entry.log_id)
        }
        Err(error) => format!("<undecodable: {error}>"),
    }
}

pub fn describe_result(result: &CommandResult) -> String {
    match result {
        CommandResult::Accounts(codes) => {
            let names: Vec<&str> = codes.iter().map(|code| code.name()).collect();
            format!("accounts[{}]", names.join(","))
        }
        CommandResult::Transfers(codes) => {
            let names: Vec<&str> = codes.iter().map(|code| code.name()).collect();
            format!("transfers[{}]", names.join(","))
        }
        CommandResult::Txn(txn) => match &txn.outcome {
            TxnOutcome::Committed => format!("txn committed {:?}", txn.record_versions),
            other => format!("txn {other:?}"),
        },
        CommandResult::TooManyEvents => "too_many_events".to_string(),
    }
}

fn describe_command(command: &Command) -> String {
    match command {
        Command::CreateAccounts(accounts) => {
            let ids: Vec<String> = accounts.iter().map(|a| format!("{:#x}", a.id)).collect();
            format!("create_accounts[{}]", ids.join(","))
        }
        Command::CreateTransfers(transfers) => {
            let items: Vec<String> = transfers
                .iter()
                .map(|t| {
                    format!(
                        "{:#x}:{}->{} amount {} flags {:?}",
                        t.id,
                        t.debit_account_id,
                        t.credit_account_id,
                        t.amount,
                        t.flags.names()
                    )
                })
                .collect();
            format!("create_transfers[{}]", items.join("; "))
        }
        Command::Txn(txn) => format!(
            "txn({} conditions, {} record ops, {} transfers)",
            txn.conditions.len(),
            txn.record_ops.len(),
            txn.transfers.len()
        ),
    }
}

/// The reference model after replaying the committed log.
#[derive(Default)]
pub struct Model {
    state: MemState,
    /// The model's state laid out as a replica stores it, for digests.
    store: Spaces,
    /// Encoded command -> (log index, the model's result) for every time it was committed.
    occurrences: BTreeMap<Vec<u8>, Vec<(u64, CommandResult)>>,
    /// Account id -> its value after each change: (log index, account).
    accounts: BTreeMap<u128, Vec<(u64, Account)>>,
    pub digests: BTreeMap<u64, DigestReport>,
    /// The model's state digest at each log index a crash check needs.
    states: BTreeMap<u64, DigestReport>,
    /// Every membership entry of the committed log, by index.
    memberships: BTreeMap<u64, StoredMembership>,
    pub last_index: u64,
}

impl Model {
    /// Replays every applied entry in index order.
    pub fn replay(history: &History) -> Result<Model, String> {
        let mut model = Model::default();
        let wanted: BTreeSet<u64> = crate::durability::wanted_indexes(&history.crashes).collect();
        let mut previous: Option<u64> = None;
        for (index, (_, bytes)) in &history.applied {
            if let Some(previous) = previous {
                if *index != previous + 1 {
                    return Err(format!(
                        "committed log has a hole: entries {}..{index} were never seen applied",
                        previous + 1
                    ));
                }
            }
            previous = Some(*index);
            let entry: Entry = decode(Space::RaftLog, bytes)
                .map_err(|error| format!("applied entry {index} is undecodable: {error}"))?;
            if let EntryPayload::Membership(membership) = &entry.payload {
                model.memberships.insert(
                    *index,
                    StoredMembership::new(Some(entry.log_id), membership.clone()),
                );
            }
            if let EntryPayload::Normal(request) = &entry.payload {
                match &request.kind {
                    RequestKind::Ledger(commands) => {
                        model.apply(*index, request.timestamp_ns, commands)?
                    }
                    RequestKind::Checkpoint => {
                        let report = digest(&model.store, *index)
                            .map_err(|error| format!("model digest failed: {error}"))?;
                        model.digests.insert(*index, report);
                    }
                }
            }
            model.last_index = *index;
            if wanted.contains(index) {
                model.record_state(*index)?;
            }
        }
        Ok(model)
    }

    fn record_state(&mut self, index: u64) -> Result<(), String> {
        let report =
            digest(&self.store, index).map_err(|error| format!("model digest failed: {error}"))?;
        self.states.insert(index, report);
        Ok(())
    }

    /// The model's state digest at `index`, if a crash check asked for it.
    pub fn state_at(&self, index: u64) -> Option<&DigestReport> {
        self.states.get(&index)
    }

    /// The membership in force once the entries up to `index` are applied.
    pub fn membership_at(&self, index: u64) -> StoredMembership {
        self.memberships
            .range(..=index)
            .next_back()
            .map(|(_, membership)| membership.clone())
            .unwrap_or_default()
    }

    fn apply(&mut self, index: u64, timestamp_ns: u64, commands: &[Command]) -> Result<(), String> {
        let context = ApplyContext { timestamp_ns };
        let mut batch = LedgerBatch::new(&self.state, &context);
        batch.expire_pending();
        let results: Vec<CommandResult> = commands.iter().map(|c| batch.apply(c)).collect();
        let mutations = batch.into_mutations();
        let mut writes = WriteBatch::default();
        write_mutations(&mutations, &mut writes);
        self.store.apply(&writes);
        for account in mutations.accounts.values() {
            self.accounts
                .entry(account.id)
                .or_default()
                .push((index, account.clone()));
        }
        self.state.commit(mutations);
        if !self.state.is_consistent() {
            return Err(format!(
                "conservation: the reference model is unbalanced after entry {index}"
            ));
        }
        for (command, result) in commands.iter().zip(results) {
            self.occurrences
                .entry(to_bytes(command))
                .or_default()
                .push((index, result));
        }
        Ok(())
    }

    fn account_at(&self, id: u128, index: u64) -> Option<&Account> {
        let changes = self.accounts.get(&id)?;
        changes
            .iter()
            .rev()
            .find(|(changed_at, _)| *changed_at <= index)
            .map(|(_, account)| account)
    }
}

/// Every acknowledged write is in the committed log, with the model's result for it.
fn check_acks(model: &Model, acks: &[Ack]) -> Result<(), String> {
    for ack in acks {
        let Some(occurrences) = model.occurrences.get(&to_bytes(&ack.command)) else {
            return Err(format!(
                "acknowledged write lost: client {} was told {} for {} but no committed entry \
                 holds it",
                ack.client,
                describe_result(&ack.result),
                describe_command(&ack.command)
            ));
        };
        if !occurrences.iter().any(|(_, result)| *result == ack.result) {
            let model: Vec<String> = occurrences
                .iter()
                .map(|(index, result)| format!("{} at index {index}", describe_result(result)))
                .collect();
            return Err(format!(
                "acknowledged result differs from the reference model: client {} was told {} \
                 for {}; the model says {}",
                ack.client,
                describe_result(&ack.result),
                describe_command(&ack.command),
                model.join(" / ")
            ));
        }
    }
    Ok(())
}

/// A read sees the model's state at its applied index, and that index covers every write
/// acknowledged before the read began (linearizability of reads).
fn check_reads(model: &Model, history: &History) -> Result<(), String> {
    let mut acks: Vec<(u64, u64)> = history
        .acks
        .iter()
        .filter_map(|ack| {
            let first = model.occurrences.get(&to_bytes(&ack.command))?.first()?.0;
            Some((ack.seq, first))
        })
        .collect();
    acks.sort_unstable();
    let mut covered: Vec<(u64, u64)> = Vec::with_capacity(acks.len());
    let mut highest = 0;
    for (seq, index) in acks {
        highest = highest.max(index);
        covered.push((seq, highest));
    }
    for read in &history.reads {
        let position = covered.partition_point(|(seq, _)| *seq < read.seq);
        let required = position.checked_sub(1).map_or(0, |at| covered[at].1);
        if read.applied_index < required {
            return Err(format!(
                "stale read: replica {} served account {} at applied index {} although a write \
                 committed at index {required} was acknowledged before the read began",
                read.node, read.account_id, read.applied_index
            ));
        }
        let expected = model.account_at(read.account_id, read.applied_index);
        if expected != read.account.as_ref() {
            return Err(format!(
                "read of account {} at replica {} (applied index {}) returned {:?}; the model \
                 has {:?} at that index",
                read.account_id, read.node, read.applied_index, read.account, expected
            ));
        }
    }
    Ok(())
}

/// Every replica's digest at every checkpoint it still remembers equals the model's, each
/// ledger balances, and every stored account respects its flags.
fn check_replicas(model: &Model, nodes: &[Arc<RaftNode>]) -> Result<(), String> {
    for node in nodes {
        for index in model.digests.keys() {
            let Some(report) = node.digest(*index) else {
                continue;
            };
            let report =
                report.map_err(|error| format!("replica {} digest failed: {error}", node.id()))?;
            let expected = &model.digests[index];
            if report.digest != expected.digest {
                return Err(format!(
                    "replica {} state digest at checkpoint {index} differs from the reference \
                     model's ({} accounts / {} transfers vs {} / {})",
                    node.id(),
                    report.accounts,
                    report.transfers,
                    expected.accounts,
                    expected.transfers
                ));
            }
            if let Some((ledger, _)) = report.ledgers.iter().find(|(_, t)| !t.is_balanced()) {
                return Err(format!(
                    "conservation: ledger {ledger} on replica {} does not balance at {index}",
                    node.id()
                ));
            }
        }
        check_flags(node)?;
    }
    Ok(())
}

fn check_flags(node: &RaftNode) -> Result<(), String> {
    let mut broken = None;
    node.storage()
        .scan(Space::Accounts, &KeyRange::all(), false, &mut |_, value| {
            match decode::<Account>(Space::Accounts, value) {
                Ok(account) if !account.respects_flags() => broken = Some(account),
                _ => {}
            }
            broken.is_none()
        })
        .map_err(|error| error.to_string())?;
    match broken {
        Some(account) => Err(format!(
            "balance flags broken on replica {}: account {} has debits {}+{} credits {}+{} \
             with flags {:?}",
            node.id(),
            account.id,
            account.debits_posted,
            account.debits_pending,
            account.credits_posted,
            account.credits_pending,
            account.flags.names()
        )),
        None => Ok(()),
    }
}

/// After convergence every replica holds exactly the model's final state.
fn check_final(model: &Model, nodes: &[Arc<RaftNode>]) -> Result<(), String> {
    let expected = digest(&model.store, model.last_index)
        .map_err(|error| format!("model digest failed: {error}"))?;
    for node in nodes {
        let view = node
            .storage_handle()
            .read_view()
            .map_err(|error| error.to_string())?;
        let applied = applied_index(view.as_ref());
        if applied != model.last_index {
            return Err(format!(
                "replica {} converged at applied index {applied} but the committed log ends at \
                 {}",
                node.id(),
                model.last_index
            ));
        }
        let report = digest(view.as_ref(), applied)
            .map_err(|error| format!("replica {} digest failed: {error}", node.id()))?;
        if report.digest != expected.digest {
            return Err(format!(
                "replica {} final state differs from the reference model at index {applied} \
                 ({} accounts / {} transfers / {} records vs {} / {} / {})",
                node.id(),
                report.accounts,
                report.transfers,
                report.records,
                expected.accounts,
                expected.transfers,
                expected.records
            ));
        }
    }
    Ok(())
}

/// A broken invariant the checker found, and the simulated moment it concerns, if it knows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub at_ms: Option<u64>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            at_ms: None,
        }
    }
}

/// Judges a finished run.
pub fn check(history: &History, nodes: &[Arc<RaftNode>]) -> Result<Model, Failure> {
    let model = Model::replay(history)?;
    crate::durability::check_crashes(&model, &history.crashes).map_err(|(message, at_ms)| {
        Failure {
            message,
            at_ms: Some(at_ms),
        }
    })?;
    check_acks(&model, &history.acks)?;
    check_reads(&model, history)?;
    check_replicas(&model, nodes)?;
    check_final(&model, nodes)?;
    Ok(model)
}
