//! The clients: concurrent tasks sending the real command mix (accounts, single and linked
//! transfers, two-phase holds with post, partial post, void and expiry, `Txn`s with record
//! conditions, lookups, invalid requests, deliberate resends), each to a random replica, timing
//! out and retrying with the same ids. Some requests aim at the ledger's edges: linked chains
//! that fail at a chosen position, `Txn`s that fail on a condition after their transfers would
//! have gone through (or on a late transfer), and posts and voids stamped one nanosecond before,
//! at, and one nanosecond after their hold's expiry (see [`Client::probe_expiry`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tally_ledger::{
    Account, AccountFlags, Command, CommandResult, Condition, CreateAccountResult,
    CreateTransferResult, RecordKey, RecordOp, Transfer, TransferFlags, Txn, TxnOutcome,
    NANOS_PER_SECOND,
};
use tally_node::raft::{LogId, NodeError, NodeId, ReadConsistency};
use tally_node::storage::codec::decode;
use tally_node::storage::ledger::{read_account, read_transfer};
use tally_node::storage::{ReadView, Space};

use crate::config::Plant;
use crate::rng::SimRng;
use crate::world::{Ack, ReadSeen, World};

/// A request not answered within this is retried (same ids).
const REQUEST_TIMEOUT_MS: u64 = 1_500;
/// Attempts before a client gives up on a request while faults are on (its outcome unknown).
const ATTEMPTS_WHILE_FAULTY: u32 = 6;
const LEDGER_MAIN: u32 = 1;
const LEDGER_OTHER: u32 = 2;
/// Base accounts on the main ledger without balance limits: a transfer between two of them
/// always succeeds.
const FREE_ACCOUNTS: [u128; 3] = [1, 2, 6];
/// The base account whose debits must not exceed its credits (and has no credits to speak of).
const LIMITED_ACCOUNT: u128 = 3;
/// Entry timestamps are whole simulated milliseconds; within an entry every created object
/// takes the next nanosecond.
const NANOS_PER_MS: u64 = 1_000_000;
/// An expiry probe aims its post or void at most this many objects into an entry.
const PROBE_OFFSET_MAX: u64 = 4;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// What every client knows: the accounts that exist.
#[derive(Default)]
pub struct Known {
    accounts: Mutex<Vec<(u128, u32)>>,
}

impl Known {
    fn add(&self, id: u128, ledger: u32) {
        let mut accounts = lock(&self.accounts);
        if !accounts.iter().any(|(known, _)| *known == id) {
            accounts.push((id, ledger));
        }
    }

    fn pick(&self, rng: &mut SimRng) -> Option<(u128, u32)> {
        let accounts = lock(&self.accounts);
        if accounts.is_empty() {
            return None;
        }
        Some(accounts[rng.below(accounts.len() as u64) as usize])
    }
}

fn account(id: u128, ledger: u32, flags: AccountFlags) -> Account {
    Account {
        id,
        ledger,
        code: 1,
        flags,
        ..Account::default()
    }
}

/// The accounts every run starts with: plain, with history, and both balance limits.
pub fn base_accounts() -> Vec<Account> {
    let limited = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
    vec![
        account(1, LEDGER_MAIN, AccountFlags::empty()),
        account(2, LEDGER_MAIN, AccountFlags::HISTORY),
        account(3, LEDGER_MAIN, limited),
        account(4, LEDGER_MAIN, limited | AccountFlags::HISTORY),
        account(5, LEDGER_MAIN, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
        account(6, LEDGER_MAIN, AccountFlags::empty()),
        account(7, LEDGER_OTHER, AccountFlags::empty()),
        account(8, LEDGER_OTHER, limited),
    ]
}

pub fn learn_base(known: &Known) {
    for account in base_accounts() {
        known.add(account.id, account.ledger);
    }
}

enum Op {
    Write(Command),
    Lookup(u128),
    /// A hold whose post or void is aimed at its expiry.
    ProbeExpiry,
}

/// A pending transfer this client created.
#[derive(Clone, Copy)]
struct Hold {
    id: u128,
    amount: u128,
}

pub struct Client {
    id: u64,
    rng: SimRng,
    next_id: u64,
    holds: Vec<Hold>,
    /// Record versions as this client last saw them.
    versions: BTreeMap<RecordKey, u64>,
    acked: Vec<Command>,
    leader_hint: Option<NodeId>,
    /// Send the next request to this replica first (an aimed request goes to the leader).
    aimed: Option<NodeId>,
}

impl Client {
    pub fn new(id: u64, rng: SimRng) -> Client {
        Client {
            id,
            rng,
            next_id: 0,
            holds: Vec::new(),
            versions: BTreeMap::new(),
            acked: Vec::new(),
            leader_hint: None,
            aimed: None,
        }
    }

    fn fresh_id(&mut self) -> u128 {
        self.next_id += 1;
        (u128::from(self.id + 1) << 64) | u128::from(self.next_id)
    }

    fn transfer(&mut self, known: &Known, flags: TransferFlags) -> Transfer {
        let (debit, ledger) = known.pick(&mut self.rng).unwrap_or((1, LEDGER_MAIN));
        let (credit, _) = known.pick(&mut self.rng).unwrap_or((2, LEDGER_MAIN));
        Transfer {
            id: self.fresh_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: u128::from(self.rng.between(1, 60)),
            ledger,
            code: 1,
            flags,
            ..Transfer::default()
        }
    }

    fn next_op(&mut self, known: &Known) -> Op {
        let roll = self.rng.below(100);
        match roll {
            0..=6 => Op::Write(self.create_accounts(known)),
            7..=31 => {
                // Now and then a balancing transfer: the node caps its amount at what the
                // balance allows, a path plain transfers never take.
                let flags = match self.rng.below(10) {
                    0 => TransferFlags::BALANCING_DEBIT,
                    1 => TransferFlags::BALANCING_CREDIT,
                    _ => TransferFlags::empty(),
                };
                Op::Write(Command::CreateTransfers(vec![self.transfer(known, flags)]))
            }
            32..=37 => Op::Write(self.linked_chain(known)),
            38..=43 => Op::Write(self.failing_chain()),
            44..=45 => Op::Write(self.failing_account_chain()),
            46..=52 => Op::Write(self.hold(known)),
            53..=59 => Op::Write(self.resolve_hold(known)),
            60..=62 => Op::ProbeExpiry,
            63..=68 => Op::Write(self.txn(known)),
            69..=72 => Op::Write(self.txn_edge()),
            73..=82 => Op::Lookup(known.pick(&mut self.rng).map_or(1, |(id, _)| id)),
            83..=89 => Op::Write(self.invalid(known)),
            _ => match self.acked.len() {
                0 => Op::Lookup(1),
                count => {
                    let index = self.rng.below(count as u64) as usize;
                    let resend = self.acked[index].clone();
                    // Half the resends change one field: the id is the same, so the node must
                    // answer `exists_with_different_*`, never apply it.
                    if self.rng.chance(500) {
                        Op::Write(self.altered(resend))
                    } else {
                        Op::Write(resend)
                    }
                }
            },
        }
    }

    /// A plain transfer of 1 between two accounts that always accept it.
    fn free_transfer(&mut self) -> Transfer {
        let debit = self.rng.pick(&FREE_ACCOUNTS);
        let others: Vec<u128> = FREE_ACCOUNTS.into_iter().filter(|a| *a != debit).collect();
        let credit = self.rng.pick(&others);
        Transfer {
            id: self.fresh_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: 1,
            ledger: LEDGER_MAIN,
            code: 1,
            ..Transfer::default()
        }
    }

    /// A linked chain of 2 to 4 transfers that would all succeed but for the one at a chosen
    /// position (the last included), which fails on a field, on a balance, on an id seen earlier
    /// in the chain, on a missing pending transfer, or on a pending transfer the chain already
    /// posted.
    fn failing_chain(&mut self) -> Command {
        let length = self.rng.between(2, 4) as usize;
        let failing = self.rng.below(length as u64) as usize;
        let mut chain: Vec<Transfer> = (0..length).map(|_| self.free_transfer()).collect();
        match self.rng.below(5) {
            0 => chain[failing].amount = 0,
            1 => {
                chain[failing].debit_account_id = LIMITED_ACCOUNT;
                chain[failing].credit_account_id = 1;
                chain[failing].amount = 1 << 100;
            }
            2 if failing > 0 => chain[failing] = chain[failing - 1].clone(),
            3 if failing >= 2 => {
                let pending = &mut chain[failing - 2];
                pending.flags = TransferFlags::PENDING;
                let pending_id = pending.id;
                for at in [failing - 1, failing] {
                    chain[at] = Transfer {
                        id: self.fresh_id(),
                        pending_id,
                        amount: u128::MAX,
                        flags: TransferFlags::POST_PENDING_TRANSFER,
                        ..Transfer::default()
                    };
                }
            }
            _ => {
                chain[failing] = Transfer {
                    id: self.fresh_id(),
                    pending_id: self.fresh_id(),
                    amount: u128::MAX,
                    flags: TransferFlags::VOID_PENDING_TRANSFER,
                    ..Transfer::default()
                };
            }
        }
        for transfer in &mut chain[..length - 1] {
            transfer.flags = transfer.flags | TransferFlags::LINKED;
        }
        Command::CreateTransfers(chain)
    }

    /// A linked chain of new accounts, one of them (at a chosen position) invalid or an
    /// existing account sent again.
    fn failing_account_chain(&mut self) -> Command {
        let length = self.rng.between(2, 3) as usize;
        let failing = self.rng.below(length as u64) as usize;
        let mut chain: Vec<Account> = (0..length)
            .map(|_| {
                let id = self.fresh_id();
                account(id, LEDGER_MAIN, AccountFlags::empty())
            })
            .collect();
        match self.rng.below(3) {
            0 => chain[failing].code = 0,
            1 => chain[failing].ledger = 0,
            _ => chain[failing].id = self.rng.pick(&FREE_ACCOUNTS),
        }
        for account in &mut chain[..length - 1] {
            account.flags = account.flags | AccountFlags::LINKED;
        }
        Command::CreateAccounts(chain)
    }

    /// A `Txn` at an edge: a condition that fails after transfers that would have gone
    /// through, a transfer that fails after an account and a transfer were created, a new
    /// account used by the same `Txn`, or a malformed record after good transfers.
    fn txn_edge(&mut self) -> Command {
        let key = RecordKey::new(
            format!("client-{}", self.id),
            vec![b'e', self.rng.below(3) as u8],
        );
        let believed = self.versions.get(&key).copied().unwrap_or(0);
        let put = RecordOp::Put {
            key: key.clone(),
            value: self.rng.next_u64().to_le_bytes().to_vec(),
        };
        let holds = if believed == 0 {
            Condition::Absent { key: key.clone() }
        } else {
            Condition::VersionEquals {
                key: key.clone(),
                version: believed,
            }
        };
        let new_account = account(self.fresh_id(), LEDGER_MAIN, AccountFlags::empty());
        let into_new = Transfer {
            credit_account_id: new_account.id,
            ..self.free_transfer()
        };
        let txn = match self.rng.below(4) {
            0 => {
                let fresh = RecordKey::new(format!("client-{}", self.id), vec![b'f']);
                let wrong = Condition::VersionEquals {
                    key,
                    version: believed + self.rng.between(1, 3),
                };
                Txn {
                    conditions: vec![Condition::Absent { key: fresh }, wrong],
                    record_ops: vec![put],
                    accounts: vec![new_account],
                    transfers: vec![self.free_transfer(), into_new],
                }
            }
            1 => {
                let mut overdraw = Transfer {
                    debit_account_id: new_account.id,
                    credit_account_id: 1,
                    ..self.free_transfer()
                };
                overdraw.flags = TransferFlags::BALANCING_DEBIT;
                // The new account has nothing to give; as a plain transfer it would still fail
                // on a field.
                if self.rng.chance(500) {
                    overdraw.flags = TransferFlags::empty();
                    overdraw.code = 0;
                }
                Txn {
                    conditions: vec![holds],
                    record_ops: vec![put],
                    accounts: vec![new_account],
                    transfers: vec![self.free_transfer(), overdraw],
                }
            }
            2 => {
                let out_of_new = Transfer {
                    debit_account_id: new_account.id,
                    credit_account_id: 6,
                    ..self.free_transfer()
                };
                Txn {
                    conditions: vec![holds],
                    record_ops: vec![put],
                    accounts: vec![new_account],
                    transfers: vec![into_new, out_of_new],
                }
            }
            _ => Txn {
                conditions: vec![holds],
                record_ops: vec![
                    put,
                    RecordOp::Delete {
                        key: RecordKey::new(format!("client-{}", self.id), Vec::new()),
                    },
                ],
                accounts: Vec::new(),
                transfers: vec![self.free_transfer()],
            },
        };
        Command::Txn(txn)
    }

    /// `command` with one field of one of its transfers (or accounts) changed.
    fn altered(&mut self, command: Command) -> Command {
        match command {
            Command::CreateTransfers(mut transfers) if !transfers.is_empty() => {
                let index = self.rng.below(transfers.len() as u64) as usize;
                let transfer = &mut transfers[index];
                match self.rng.below(6) {
                    0 => transfer.amount ^= 1,
                    1 => transfer.user_data_64 ^= 1,
                    2 => transfer.code = transfer.code.wrapping_add(1).max(1),
                    3 => {
                        std::mem::swap(
                            &mut transfer.debit_account_id,
                            &mut transfer.credit_account_id,
                        );
                    }
                    4 => transfer.user_data_128 ^= 1,
                    _ => transfer.user_data_32 ^= 1,
                }
                Command::CreateTransfers(transfers)
            }
            Command::CreateAccounts(mut accounts) if !accounts.is_empty() => {
                let index = self.rng.below(accounts.len() as u64) as usize;
                let account = &mut accounts[index];
                match self.rng.below(3) {
                    0 => account.code = account.code.wrapping_add(1).max(1),
                    1 => account.user_data_64 ^= 1,
                    _ => account.flags = account.flags | AccountFlags::CLOSED,
                }
                Command::CreateAccounts(accounts)
            }
            other => other,
        }
    }

    fn create_accounts(&mut self, _known: &Known) -> Command {
        let count = self.rng.between(1, 3);
        let mut accounts = Vec::new();
        for _ in 0..count {
            let flags = self.rng.pick(&[
                AccountFlags::empty(),
                AccountFlags::HISTORY,
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
                // Closed from the start: every transfer touching it must be refused.
                AccountFlags::CLOSED,
            ]);
            let ledger = if self.rng.chance(800) {
                LEDGER_MAIN
            } else {
                LEDGER_OTHER
            };
            let id = self.fresh_id();
            accounts.push(account(id, ledger, flags));
        }
        if accounts.len() > 1 && self.rng.chance(300) {
            accounts[0].flags = accounts[0].flags | AccountFlags::LINKED;
            if self.rng.chance(300) {
                accounts[1].ledger = 0;
            }
        }
        Command::CreateAccounts(accounts)
    }

    fn linked_chain(&mut self, known: &Known) -> Command {
        let length = self.rng.between(2, 3);
        let mut chain: Vec<Transfer> = (0..length)
            .map(|_| self.transfer(known, TransferFlags::LINKED))
            .collect();
        if let Some(last) = chain.last_mut() {
            last.flags = TransferFlags::empty();
        }
        if self.rng.chance(200) {
            // An open chain: the last event still says linked.
            chain[0].flags = TransferFlags::LINKED;
            if let Some(last) = chain.last_mut() {
                last.flags = TransferFlags::LINKED;
            }
        }
        Command::CreateTransfers(chain)
    }

    fn hold(&mut self, known: &Known) -> Command {
        let mut transfer = self.transfer(known, TransferFlags::PENDING);
        transfer.timeout = self.rng.pick(&[0, 0, 1, 2, 3]) as u32;
        Command::CreateTransfers(vec![transfer])
    }

    fn resolve_hold(&mut self, known: &Known) -> Command {
        if self.holds.is_empty() {
            return self.hold(known);
        }
        let index = self.rng.below(self.holds.len() as u64) as usize;
        let hold = self.holds.swap_remove(index);
        let post = self.rng.chance(600);
        let amount = match self.rng.below(5) {
            0 => u128::MAX,
            1 => hold.amount,
            2 => hold.amount / 2 + 1,
            // One unit over the hold: the edge of `exceeds_pending_transfer_amount`.
            3 => hold.amount.saturating_add(1),
            _ => 0,
        };
        let flags = if post {
            TransferFlags::POST_PENDING_TRANSFER
        } else {
            TransferFlags::VOID_PENDING_TRANSFER
        };
        Command::CreateTransfers(vec![Transfer {
            id: self.fresh_id(),
            pending_id: hold.id,
            amount,
            flags,
            ..Transfer::default()
        }])
    }

    fn txn(&mut self, known: &Known) -> Command {
        let namespace = if self.rng.chance(500) {
            "shared".to_string()
        } else {
            format!("client-{}", self.id)
        };
        let key = RecordKey::new(namespace, vec![b'k', self.rng.below(3) as u8]);
        let believed = self.versions.get(&key).copied().unwrap_or(0);
        let condition = if believed == 0 {
            Condition::Absent { key: key.clone() }
        } else {
            Condition::VersionEquals {
                key: key.clone(),
                version: believed,
            }
        };
        let op = if self.rng.chance(200) {
            RecordOp::Delete { key }
        } else {
            let value = self.rng.next_u64().to_le_bytes().to_vec();
            RecordOp::Put { key, value }
        };
        let transfers = if self.rng.chance(400) {
            vec![self.transfer(known, TransferFlags::empty())]
        } else {
            Vec::new()
        };
        Command::Txn(Txn {
            conditions: vec![condition],
            record_ops: vec![op],
            accounts: Vec::new(),
            transfers,
        })
    }

    fn invalid(&mut self, known: &Known) -> Command {
        let mut transfer = self.transfer(known, TransferFlags::empty());
        match self.rng.below(5) {
            0 => transfer.amount = 0,
            1 => transfer.credit_account_id = transfer.debit_account_id,
            2 => transfer.timestamp = 1,
            3 => transfer.flags = TransferFlags(1 << 12),
            _ => transfer.debit_account_id = u128::from(self.rng.next_u64()) << 70,
        }
        Command::CreateTransfers(vec![transfer])
    }

    /// Reads a transfer on the leader after a read barrier (to aim a request at its timestamp).
    async fn read_transfer(&mut self, world: &World, id: u128) -> Option<Transfer> {
        let node = world.node(world.leader()?)?;
        let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
        let barrier = node.read_barrier(ReadConsistency::Linearizable);
        tokio::time::timeout(timeout, barrier).await.ok()?.ok()?;
        let view = node.storage_handle().read_view().ok()?;
        read_transfer(view.as_ref(), id).ok().flatten()
    }

    /// Creates a hold with a 1 s timeout (0 to 2 transfers ahead of it in its entry, so its
    /// expiry lands 0 to 2 ns past a millisecond), reads its timestamp, then sends a post or
    /// void to the leader at the millisecond its expiry falls in, behind enough transfers that
    /// its own timestamp is one ns before, at, or one ns after the expiry. Entries are stamped
    /// on whole simulated milliseconds and the leader stamps a request the moment it arrives,
    /// so the aim is exact unless other requests share the entry (which moves it, harmlessly).
    /// With no transfer ahead of the hold, "at the expiry" is the entry's first timestamp: the
    /// entry expires the hold before the post or void runs.
    async fn probe_expiry(&mut self, world: &World, known: &Known) {
        let ahead = self.rng.between(0, 2);
        let mut transfers: Vec<Transfer> = (0..ahead).map(|_| self.free_transfer()).collect();
        let hold = Transfer {
            flags: TransferFlags::PENDING,
            timeout: 1,
            amount: u128::from(self.rng.between(1, 60)),
            ..self.free_transfer()
        };
        transfers.push(hold.clone());
        let command = Command::CreateTransfers(transfers);
        let Some(result) = self.submit(world, &command).await else {
            return;
        };
        self.learn(&command, &result, known);
        self.holds.retain(|held| held.id != hold.id);
        let created = matches!(&result, CommandResult::Transfers(codes)
            if codes.last() == Some(&CreateTransferResult::Ok));
        if !created {
            return;
        }
        let Some(stored) = self.read_transfer(world, hold.id).await else {
            return;
        };
        let expires_at = stored
            .timestamp
            .saturating_add(u64::from(stored.timeout) * NANOS_PER_SECOND);
        let into_ms = expires_at % NANOS_PER_MS;
        // Objects ahead of the post or void in its entry: into_ms - 1, into_ms or into_ms + 1.
        let ahead = (into_ms + self.rng.below(3)).saturating_sub(1);
        let entry_at = expires_at - into_ms;
        let now = world.clock_ns();
        if ahead <= PROBE_OFFSET_MAX && entry_at > now {
            tokio::time::sleep(Duration::from_nanos(entry_at - now)).await;
            self.aimed = world.leader();
        }
        let mut transfers: Vec<Transfer> = (0..ahead.min(PROBE_OFFSET_MAX))
            .map(|_| self.free_transfer())
            .collect();
        let (flags, amount) = if self.rng.chance(500) {
            let amount = self
                .rng
                .pick(&[u128::MAX, hold.amount, hold.amount / 2 + 1]);
            (TransferFlags::POST_PENDING_TRANSFER, amount)
        } else {
            (
                TransferFlags::VOID_PENDING_TRANSFER,
                self.rng.pick(&[0, hold.amount]),
            )
        };
        transfers.push(Transfer {
            id: self.fresh_id(),
            pending_id: hold.id,
            amount,
            flags,
            ..Transfer::default()
        });
        let command = Command::CreateTransfers(transfers);
        if let Some(result) = self.submit(world, &command).await {
            self.learn(&command, &result, known);
        }
    }

    /// What an acknowledged result teaches the client.
    fn learn(&mut self, command: &Command, result: &CommandResult, known: &Known) {
        match (command, result) {
            (Command::CreateAccounts(accounts), CommandResult::Accounts(results)) => {
                for (account, result) in accounts.iter().zip(results) {
                    if matches!(
                        result,
                        CreateAccountResult::Ok | CreateAccountResult::Exists
                    ) {
                        known.add(account.id, account.ledger);
                    }
                }
            }
            (Command::CreateTransfers(transfers), CommandResult::Transfers(results)) => {
                for (transfer, result) in transfers.iter().zip(results) {
                    let created = *result == CreateTransferResult::Ok;
                    if created && transfer.flags.contains(TransferFlags::PENDING) {
                        self.holds.push(Hold {
                            id: transfer.id,
                            amount: transfer.amount,
                        });
                    }
                }
            }
            (Command::Txn(txn), CommandResult::Txn(outcome)) => {
                if outcome.is_committed() {
                    for (op, version) in txn.record_ops.iter().zip(&outcome.record_versions) {
                        self.versions.insert(op.key().clone(), *version);
                    }
                    for account in &txn.accounts {
                        known.add(account.id, account.ledger);
                    }
                } else if let TxnOutcome::ConditionFailed {
                    index,
                    actual_version,
                } = outcome.outcome
                {
                    // Learn the actual version from the failure and try with it next time.
                    if let Some(condition) = txn.conditions.get(index as usize) {
                        self.versions
                            .insert(condition.key().clone(), actual_version);
                    }
                }
            }
            _ => {}
        }
        if self.acked.len() < 64 {
            self.acked.push(command.clone());
        }
    }

    fn pick_node(&mut self, world: &World) -> NodeId {
        if let Some(aimed) = self.aimed.take() {
            return aimed;
        }
        let ids = world.node_ids();
        match self.leader_hint.take() {
            Some(hint) if self.rng.chance(800) => hint,
            _ => ids[self.rng.below(ids.len() as u64) as usize],
        }
    }

    /// Sends a command until it is acknowledged; gives up while faults are on after a few tries,
    /// and past the liveness deadline once they healed.
    pub async fn submit(&mut self, world: &World, command: &Command) -> Option<CommandResult> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            if world.is_healed() {
                if world.past_liveness_deadline() {
                    world.fail(format!(
                        "liveness: client {} request not acknowledged within {} ms after the \
                         faults healed",
                        self.id,
                        crate::run::LIVENESS_MS
                    ));
                    return None;
                }
            } else if attempts > ATTEMPTS_WHILE_FAULTY {
                world.note(&format!("client {} gives up (outcome unknown)", self.id));
                return None;
            }
            let target = self.pick_node(world);
            let Some(node) = world.node(target) else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
            match tokio::time::timeout(timeout, node.submit(command.clone())).await {
                Ok(Ok(result)) => {
                    let seq = world.next_seq();
                    world.note(&format!(
                        "client {} ack from {target}: {}",
                        self.id,
                        crate::checker::describe_result(&result)
                    ));
                    world.record_ack(Ack {
                        seq,
                        client: self.id,
                        command: command.clone(),
                        result: result.clone(),
                    });
                    return Some(result);
                }
                Ok(Err(NodeError::NotLeader { leader_id, .. })) => {
                    self.leader_hint = leader_id;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(Err(error)) => {
                    world.note(&format!("client {} error from {target}: {error}", self.id));
                    tokio::time::sleep(Duration::from_millis(self.rng.between(10, 50))).await;
                }
                Err(_) => world.note(&format!("client {} timeout at {target}", self.id)),
            }
        }
    }

    /// Looks an account up and records what it saw and at which applied index.
    async fn lookup(&mut self, world: &World, account_id: u128) {
        let target = self.pick_node(world);
        let Some(node) = world.node(target) else {
            return;
        };
        let seq = world.next_seq();
        if world.plant != Some(Plant::StaleRead) {
            let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
            let barrier = node.read_barrier(ReadConsistency::Linearizable);
            match tokio::time::timeout(timeout, barrier).await {
                Ok(Ok(())) => {}
                Ok(Err(NodeError::NotLeader { leader_id, .. })) => {
                    self.leader_hint = leader_id;
                    return;
                }
                _ => return,
            }
        }
        let Ok(view) = node.storage_handle().read_view() else {
            return;
        };
        let applied_index = applied_index(view.as_ref());
        let Ok(account) = read_account(view.as_ref(), account_id) else {
            world.fail(format!(
                "replica {target} failed to read account {account_id}"
            ));
            return;
        };
        world.record_read(ReadSeen {
            seq,
            node: target,
            applied_index,
            account_id,
            account,
        });
    }
}

/// The applied index stored with the state (0 before anything was applied).
pub fn applied_index(view: &dyn ReadView) -> u64 {
    view.get(Space::StateMeta, b"last_applied")
        .ok()
        .flatten()
        .and_then(|bytes| decode::<Option<LogId>>(Space::StateMeta, &bytes).ok())
        .flatten()
        .map_or(0, |log_id| log_id.index())
}

/// One client: think, send, learn, until the workload ends.
pub async fn run_client(world: Arc<World>, known: Arc<Known>, mut client: Client, end_ms: u64) {
    while world.now_ms() < end_ms && world.violation().is_none() {
        let think = client.rng.between(0, 15);
        tokio::time::sleep(Duration::from_millis(think)).await;
        match client.next_op(&known) {
            Op::Write(command) => {
                if let Some(result) = client.submit(&world, &command).await {
                    client.learn(&command, &result, &known);
                }
            }
            Op::Lookup(account_id) => client.lookup(&world, account_id).await,
            Op::ProbeExpiry => client.probe_expiry(&world, &known).await,
        }
    }
}
