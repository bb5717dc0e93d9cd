//! The checker: replays the committed log (as the replicas applied it) through two models and
//! judges the run's history against them. The independent reference ledger ([`Reference`]) gives
//! the right answer for every command: the node's own ledger code (`LedgerBatch` over `MemState`,
//! replayed here too) must agree with it on every entry, in what it answers and what it changes;
//! every acknowledged result must be the reference's answer to some commit of that command; reads
//! must see the reference's accounts; and every converged replica must store exactly the
//! reference's ledger. The node's ledger model also lays its state out as a replica stores it, so
//! replica digests at every checkpoint are compared against it; conservation and balance flags
//! are checked on top.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::EntryPayload;
use tally_ledger::{
    Account, ApplyContext, Command, CommandResult, LedgerBatch, MemState, TxnOutcome,
};
use tally_node::raft::{applied_state_of, Entry, RaftNode, RequestKind, StoredMembership};
use tally_node::storage::codec::{decode, to_bytes};
use tally_node::storage::ledger::{digest, write_mutations, DigestReport};
use tally_node::storage::{KeyRange, Space, WriteBatch};

use crate::compare;
use crate::reference::{Coverage, Reference};
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

pub fn describe_command(command: &Command) -> String {
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

/// The two models after replaying the committed log.
#[derive(Default)]
pub struct Model {
    /// The node's ledger code over `MemState`: replicas' digests are compared against it.
    state: MemState,
    /// The node ledger model's state laid out as a replica stores it, for digests.
    store: Spaces,
    /// The independent reference ledger: the judge of every answer and of the final state.
    reference: Reference,
    /// Encoded command -> (log index, the reference's result) for every time it was committed.
    occurrences: BTreeMap<Vec<u8>, Vec<(u64, CommandResult)>>,
    /// Account id -> its value in the reference after each change: (log index, account).
    accounts: BTreeMap<u128, Vec<(u64, Account)>>,
    /// Transfer id -> (log index, command position) of the commit that created it.
    created_by: BTreeMap<u128, (u64, usize)>,
    /// Transfer id -> what the reference answered every commit that carried it.
    answers: BTreeMap<u128, Vec<String>>,
    pub digests: BTreeMap<u64, DigestReport>,
    /// The model's state digest at each log index a crash check needs.
    states: BTreeMap<u64, DigestReport>,
    /// Every membership entry of the committed log, by index.
    memberships: BTreeMap<u64, StoredMembership>,
    pub last_index: u64,
    /// Ledger entries and commands replayed.
    entries: u64,
    commands: u64,
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
        self.state.commit(mutations.clone());
        if !self.state.is_consistent() {
            return Err(format!(
                "conservation: the node's ledger model is unbalanced after entry {index}"
            ));
        }
        let report = self.reference.execute_entry(timestamp_ns, commands);
        self.entries += 1;
        self.commands += commands.len() as u64;
        for (position, (command, (theirs, ours))) in commands
            .iter()
            .zip(results.iter().zip(&report.results))
            .enumerate()
        {
            if theirs != ours {
                return Err(format!(
                    "ledger answer differs from the reference at log index {index} (stamped \
                     {timestamp_ns}), command {} of {}: {}: the node's ledger answered {}, the \
                     reference {}",
                    position + 1,
                    commands.len(),
                    describe_command(command),
                    describe_result(theirs),
                    describe_result(ours)
                ));
            }
        }
        compare::entry_changes(&self.state, &mutations, &self.reference, &report.journal).map_err(
            |difference| {
                let described: Vec<String> = commands.iter().map(describe_command).collect();
                format!(
                    "ledger state differs from the reference after log index {index} (stamped \
                     {timestamp_ns}; expired {:?}; commands [{}]): {difference}",
                    report.journal.expired,
                    described.join(" | ")
                )
            },
        )?;
        for id in &report.journal.accounts {
            if let Some(account) = self.reference.account(*id) {
                self.accounts.entry(*id).or_default().push((index, account));
            }
        }
        for (position, id) in &report.journal.transfers {
            self.created_by.insert(*id, (index, *position));
        }
        for (command, result) in commands.iter().zip(report.results) {
            self.note_answers(index, command, &result);
            self.occurrences
                .entry(to_bytes(command))
                .or_default()
                .push((index, result));
        }
        Ok(())
    }

    /// Remembers, per transfer id, what the reference answered the commands that carried it.
    fn note_answers(&mut self, index: u64, command: &Command, result: &CommandResult) {
        match (command, result) {
            (Command::CreateTransfers(transfers), CommandResult::Transfers(codes)) => {
                for (transfer, code) in transfers.iter().zip(codes) {
                    self.answers
                        .entry(transfer.id)
                        .or_default()
                        .push(format!("{} at index {index}", code.name()));
                }
            }
            (Command::Txn(txn), _) => {
                for transfer in &txn.transfers {
                    self.answers
                        .entry(transfer.id)
                        .or_default()
                        .push(format!("{} at index {index}", describe_result(result)));
                }
            }
            (Command::CreateTransfers(transfers), _) => {
                for transfer in transfers {
                    self.answers
                        .entry(transfer.id)
                        .or_default()
                        .push(format!("{} at index {index}", describe_result(result)));
                }
            }
            _ => {}
        }
    }

    fn account_at(&self, id: u128, index: u64) -> Option<&Account> {
        let changes = self.accounts.get(&id)?;
        changes
            .iter()
            .rev()
            .find(|(changed_at, _)| *changed_at <= index)
            .map(|(_, account)| account)
    }

    /// How much of the ledger's edges the run reached.
    pub fn coverage(&self) -> Coverage {
        self.reference.coverage()
    }

    /// One line for the run's trace: what was replayed and which edges were reached.
    pub fn summary(&self) -> String {
        let coverage = self.coverage();
        format!(
            "checker: {} ledger entries, {} commands, {} transfers agree with the reference; \
             posts/voids at expiry -1ns/0/+1ns {:?}, expired at entry start {}, chains failed \
             at first/middle/last {:?}, txns failed on a condition with transfers {}, txns \
             failed on a late transfer {}",
            self.entries,
            self.commands,
            self.reference.transfers().len(),
            coverage.resolve_at_expiry,
            coverage.expired_at_base,
            coverage.chain_failed_at,
            coverage.txn_condition_failed_with_transfers,
            coverage.txn_transfer_failed_late
        )
    }
}

/// Every acknowledged write is in the committed log, and was answered what the reference
/// answered one of its commits.
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
                "acknowledged result differs from the reference: client {} was told {} for {}; \
                 the reference answered {}",
                ack.client,
                describe_result(&ack.result),
                describe_command(&ack.command),
                model.join(" / ")
            ));
        }
    }
    Ok(())
}

/// A read sees the reference's account at its applied index, and that index covers every write
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
                "read of account {} at replica {} (applied index {}) returned {:?}; the \
                 reference has {:?} at that index",
                read.account_id, read.node, read.applied_index, read.account, expected
            ));
        }
    }
    Ok(())
}

/// Every replica's digest at every checkpoint it still remembers equals the node's ledger
/// model's, each ledger balances, and every stored account respects its flags.
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
                    "replica {} state digest at checkpoint {index} differs from the node's \
                     ledger model's ({} accounts / {} transfers vs {} / {})",
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

/// After convergence every replica holds exactly the reference's final ledger (and the node's
/// ledger model's digest).
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
        // The membership stored with the state is what a restart starts from: it must be the
        // committed log's at the applied index, however the replica got there (entries applied
        // or a snapshot installed).
        let (_, stored) = applied_state_of(view.as_ref())
            .map_err(|error| format!("replica {}: {error}", node.id()))?;
        let wanted = model.membership_at(applied);
        if stored.log_id() != wanted.log_id() || stored.membership() != wanted.membership() {
            return Err(format!(
                "replica {} stores membership {stored} with its state at index {applied}, but the \
                 committed log has {wanted} there",
                node.id()
            ));
        }
        compare::replica_transfers_created(
            node.id(),
            view.as_ref(),
            &model.created_by,
            &model.answers,
        )?;
        compare::replica_state(node.id(), view.as_ref(), &model.reference)?;
        let report = digest(view.as_ref(), applied)
            .map_err(|error| format!("replica {} digest failed: {error}", node.id()))?;
        if report.digest != expected.digest {
            return Err(format!(
                "replica {} final state differs from the node's ledger model at index {applied} \
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
    crate::durability::check_installs(&model, &history.installs).map_err(|(message, at_ms)| {
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
