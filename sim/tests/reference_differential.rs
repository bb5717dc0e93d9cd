//! The reference ledger against the node's ledger on random command streams, without a cluster:
//! every result and the whole state after every entry must be the same. The streams use few ids
//! so that resends, collisions, chains, holds and their expiry boundaries are common.

use std::collections::BTreeSet;

use tally_ledger::{
    Account, AccountFlags, ApplyContext, Command, CommandResult, Condition, LedgerBatch,
    LedgerState, MemState, RecordKey, RecordOp, Transfer, TransferFlags, Txn, TxnOutcome,
    NANOS_PER_SECOND,
};
use tally_sim::reference::Reference;
use tally_sim::rng::SimRng;

const SCENARIOS: u64 = 400;
const ENTRIES: usize = 40;
const ACCOUNT_IDS: u64 = 10;
const TRANSFER_IDS: u64 = 80;

struct Gen {
    rng: SimRng,
    /// Transfers sent so far, for resends.
    sent: Vec<Transfer>,
}

impl Gen {
    fn chance(&mut self, permille: u64) -> bool {
        self.rng.chance(permille)
    }

    fn amount(&mut self) -> u128 {
        match self.rng.below(20) {
            0 => 0,
            1 => u128::MAX,
            2 => u128::MAX / 2,
            _ => u128::from(self.rng.between(1, 60)),
        }
    }

    fn account(&mut self) -> Account {
        let flags = self.rng.pick(&[
            AccountFlags::empty(),
            AccountFlags::empty(),
            AccountFlags::HISTORY,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY,
            AccountFlags::CLOSED,
            AccountFlags::LINKED,
        ]);
        let mut account = Account {
            id: u128::from(self.rng.between(1, ACCOUNT_IDS)),
            ledger: if self.chance(850) { 1 } else { 2 },
            code: 1,
            flags,
            ..Account::default()
        };
        match self.rng.below(30) {
            0 => account.ledger = 0,
            1 => account.code = 0,
            2 => account.id = 0,
            3 => account.debits_posted = 1,
            4 => account.user_data_64 = 1,
            5 => account.flags = AccountFlags(1 << 9),
            _ => {}
        }
        account
    }

    fn transfer(&mut self) -> Transfer {
        let mut flags = TransferFlags::empty();
        let kind = self.rng.below(12);
        match kind {
            0..=2 => flags = TransferFlags::PENDING,
            3..=4 => flags = TransferFlags::POST_PENDING_TRANSFER,
            5 => flags = TransferFlags::VOID_PENDING_TRANSFER,
            6 => flags = TransferFlags::BALANCING_DEBIT,
            7 => flags = TransferFlags::BALANCING_CREDIT,
            8 if self.chance(100) => flags = TransferFlags(1 << 11),
            8 if self.chance(100) => {
                flags = TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER;
            }
            _ => {}
        }
        if self.chance(100) {
            flags = flags | TransferFlags::PENDING;
        }
        let resolves = kind == 3 || kind == 4 || kind == 5;
        let inherit = resolves && self.chance(700);
        let account = |gen: &mut Gen| u128::from(gen.rng.between(1, ACCOUNT_IDS + 1));
        Transfer {
            id: u128::from(self.rng.between(1, TRANSFER_IDS)),
            debit_account_id: if inherit { 0 } else { account(self) },
            credit_account_id: if inherit { 0 } else { account(self) },
            amount: match kind {
                5 if self.chance(700) => self.rng.pick(&[0, u128::MAX]),
                3..=4 if self.chance(300) => u128::MAX,
                _ => self.amount(),
            },
            pending_id: if resolves && self.chance(800) {
                self.earlier_pending()
            } else if resolves || self.chance(20) {
                u128::from(self.rng.between(1, TRANSFER_IDS))
            } else {
                0
            },
            user_data_64: self.rng.below(2),
            timeout: if flags.contains(TransferFlags::PENDING) || self.chance(20) {
                self.rng.pick(&[0, 1, 1, 2, 3]) as u32
            } else {
                0
            },
            ledger: if inherit && self.chance(500) {
                0
            } else if self.chance(900) {
                1
            } else {
                2
            },
            code: if inherit && self.chance(500) { 0 } else { 1 },
            flags,
            timestamp: if self.chance(10) { 1 } else { 0 },
            ..Transfer::default()
        }
    }

    /// The id of a pending transfer sent earlier (or a random id if there is none).
    fn earlier_pending(&mut self) -> u128 {
        let pending: Vec<u128> = self
            .sent
            .iter()
            .filter(|t| t.flags.contains(TransferFlags::PENDING))
            .map(|t| t.id)
            .collect();
        if pending.is_empty() {
            return u128::from(self.rng.between(1, TRANSFER_IDS));
        }
        pending[self.rng.below(pending.len() as u64) as usize]
    }

    /// A new transfer, or now and then one sent before, as it was or with one field changed.
    fn event(&mut self) -> Transfer {
        if self.sent.is_empty() || self.chance(800) {
            let transfer = self.transfer();
            self.sent.push(transfer.clone());
            return transfer;
        }
        let mut again = self.sent[self.rng.below(self.sent.len() as u64) as usize].clone();
        match self.rng.below(6) {
            0 => again.amount = again.amount.wrapping_add(1),
            1 => again.user_data_64 ^= 1,
            2 => again.flags = again.flags | TransferFlags::LINKED,
            _ => {}
        }
        again
    }

    fn linked<T>(&mut self, events: &mut [T], link: fn(&mut T)) {
        // Runs of linked events, the last sometimes left open.
        let count = events.len();
        for (index, event) in events.iter_mut().enumerate() {
            let last = index + 1 == count;
            if (!last && self.chance(500)) || (last && self.chance(80)) {
                link(event);
            }
        }
    }

    fn key(&mut self) -> RecordKey {
        let name = self.rng.below(4) as u8;
        if self.chance(20) {
            return RecordKey::new("", vec![name]);
        }
        RecordKey::new("ns", vec![name])
    }

    fn txn(&mut self) -> Txn {
        let conditions = (0..self.rng.below(3))
            .map(|_| {
                let key = self.key();
                if self.chance(400) {
                    Condition::Absent { key }
                } else {
                    let version = self.rng.below(4);
                    Condition::VersionEquals { key, version }
                }
            })
            .collect();
        let record_ops = (0..self.rng.below(3))
            .map(|_| {
                let key = self.key();
                if self.chance(250) {
                    RecordOp::Delete { key }
                } else {
                    RecordOp::Put {
                        key,
                        value: vec![self.rng.below(256) as u8],
                    }
                }
            })
            .collect();
        let accounts = (0..self.rng.below(2)).map(|_| self.account()).collect();
        let transfers = (0..self.rng.below(3)).map(|_| self.event()).collect();
        Txn {
            conditions,
            record_ops,
            accounts,
            transfers,
        }
    }

    fn command(&mut self) -> Command {
        match self.rng.below(10) {
            0..=1 => {
                let mut accounts: Vec<Account> = (0..self.rng.between(1, 3))
                    .map(|_| self.account())
                    .collect();
                self.linked(&mut accounts, |a| a.flags = a.flags | AccountFlags::LINKED);
                Command::CreateAccounts(accounts)
            }
            2..=7 => {
                let mut transfers: Vec<Transfer> =
                    (0..self.rng.between(0, 4)).map(|_| self.event()).collect();
                self.linked(&mut transfers, |t| {
                    t.flags = t.flags | TransferFlags::LINKED
                });
                Command::CreateTransfers(transfers)
            }
            _ => Command::Txn(self.txn()),
        }
    }
}

/// The production ledger's state after its entries.
fn production_entry(state: &mut MemState, at: u64, commands: &[Command]) -> Vec<CommandResult> {
    let context = ApplyContext { timestamp_ns: at };
    let mut batch = LedgerBatch::new(&*state, &context);
    batch.expire_pending();
    let results = commands
        .iter()
        .map(|command| batch.apply(command))
        .collect();
    let mutations = batch.into_mutations();
    state.commit(mutations);
    results
}

/// Every difference between the two states, as text (empty when they agree).
fn differences(state: &MemState, reference: &Reference) -> Vec<String> {
    let mut found = Vec::new();
    let accounts: Vec<Account> = state.accounts().cloned().collect();
    if accounts != reference.accounts() {
        found.push(format!(
            "accounts: production {accounts:?}\n reference {:?}",
            reference.accounts()
        ));
    }
    let transfers: Vec<&Transfer> = state.transfers().collect();
    let expected: Vec<&Transfer> = reference.transfers().values().collect();
    if transfers != expected {
        found.push(format!(
            "transfers: production {transfers:?}\n reference {expected:?}"
        ));
    }
    for id in 0..=TRANSFER_IDS as u128 + 1 {
        if state.pending_status(id) != reference.pending_status(id) {
            found.push(format!(
                "pending status of {id}: production {:?}, reference {:?}",
                state.pending_status(id),
                reference.pending_status(id)
            ));
        }
    }
    let expiries: Vec<(u64, u128)> = state.pending_expiries().copied().collect();
    let expected: Vec<(u64, u128)> = reference.pending_expiries().into_iter().collect();
    if expiries != expected {
        found.push(format!(
            "expiry index: production {expiries:?}, reference {expected:?}"
        ));
    }
    let records: Vec<_> = state.records().collect();
    let expected: Vec<_> = reference.records().values().collect();
    if records != expected {
        found.push(format!(
            "records: production {records:?}, reference {expected:?}"
        ));
    }
    for id in 0..=ACCOUNT_IDS as u128 + 1 {
        let history = state.balances(id, 0, 0, usize::MAX, false);
        let expected: Vec<_> = reference
            .balance_history()
            .range((id, 0)..=(id, u64::MAX))
            .map(|(_, balance)| balance.clone())
            .collect();
        if history != expected {
            found.push(format!(
                "balance history of {id}: production {history:?}, reference {expected:?}"
            ));
        }
        let index: Vec<u128> = state
            .account_transfers(id, 0, 0, usize::MAX, false)
            .iter()
            .map(|t| t.id)
            .collect();
        let expected: Vec<u128> = reference
            .account_transfers()
            .range((id, 0, 0)..=(id, u64::MAX, u128::MAX))
            .map(|(_, _, transfer)| *transfer)
            .collect();
        if index != expected {
            found.push(format!(
                "transfers of account {id}: production {index:?}, reference {expected:?}"
            ));
        }
    }
    if state.last_timestamp() != reference.last_timestamp() {
        found.push(format!(
            "last timestamp: production {}, reference {}",
            state.last_timestamp(),
            reference.last_timestamp()
        ));
    }
    found
}

/// The next entry's stamp: mostly a little later, often exactly around a pending expiry.
fn next_stamp(gen: &mut Gen, now: u64, reference: &Reference) -> u64 {
    let expiries: Vec<u64> = reference
        .pending_expiries()
        .iter()
        .map(|(at, _)| *at)
        .collect();
    if !expiries.is_empty() && gen.chance(500) {
        // From a few ns before an expiry up to it: the entry's own transfers reach past it.
        let at = expiries[gen.rng.below(expiries.len() as u64) as usize];
        return at.saturating_sub(gen.rng.below(5));
    }
    match gen.rng.below(6) {
        0 => now.saturating_sub(gen.rng.below(10)),
        1 => now + NANOS_PER_SECOND,
        _ => now + gen.rng.below(3 * NANOS_PER_SECOND / 2),
    }
}

/// The names of the codes and outcomes in `result`.
fn names(result: &CommandResult, seen: &mut BTreeSet<String>) {
    match result {
        CommandResult::Accounts(codes) => {
            seen.extend(codes.iter().map(|code| format!("account {}", code.name())));
        }
        CommandResult::Transfers(codes) => {
            seen.extend(codes.iter().map(|code| code.name().to_string()));
        }
        CommandResult::Txn(txn) => {
            let outcome = match &txn.outcome {
                TxnOutcome::Committed => "txn committed".to_string(),
                TxnOutcome::ConditionFailed { .. } => "txn condition failed".to_string(),
                TxnOutcome::RecordInvalid { .. } => "txn record invalid".to_string(),
                TxnOutcome::AccountFailed { .. } => "txn account failed".to_string(),
                TxnOutcome::TransferFailed { result, .. } => format!("txn {}", result.name()),
                TxnOutcome::TooManyOperations => "txn too many operations".to_string(),
            };
            seen.insert(outcome);
        }
        CommandResult::TooManyEvents => {
            seen.insert("too many events".to_string());
        }
    }
}

/// Codes the streams must reach, or the agreement means little.
const MUST_SEE: &[&str] = &[
    "ok",
    "exists",
    "linked_event_failed",
    "linked_event_chain_open",
    "exists_with_different_flags",
    "exists_with_different_amount",
    "pending_transfer_expired",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_has_different_amount",
    "exceeds_pending_transfer_amount",
    "exceeds_credits",
    "exceeds_debits",
    "debit_account_closed",
    "overflows_debits_posted",
    "account ok",
    "account exists",
    "account linked_event_failed",
    "txn committed",
    "txn condition failed",
    "txn record invalid",
    "txn exceeds_credits",
];

/// An entry aimed at a pending expiry: stamped `g` ns before it, with `g - 1`, `g` or `g + 1`
/// transfers ahead of a post or void of that pending transfer, so that its own timestamp is one
/// ns before, at or one ns after the expiry (unless earlier expiries take timestamps first).
fn aimed_entry(gen: &mut Gen, reference: &Reference) -> Option<(u64, Vec<Command>)> {
    let expiries: Vec<(u64, u128)> = reference.pending_expiries().into_iter().collect();
    if expiries.is_empty() {
        return None;
    }
    let (at, pending_id) = expiries[gen.rng.below(expiries.len() as u64) as usize];
    let before = gen.rng.between(1, 3);
    let ahead = before + gen.rng.below(3) - 1;
    // Accounts 2 and 3 have no limits: these transfers always go through.
    let mut transfers: Vec<Transfer> = (0..ahead)
        .map(|n| Transfer {
            id: 1_000_000 + u128::from(gen.rng.next_u64()) + u128::from(n),
            debit_account_id: 2,
            credit_account_id: 3,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        })
        .collect();
    let (flags, amount) = if gen.chance(500) {
        (TransferFlags::POST_PENDING_TRANSFER, u128::MAX)
    } else {
        (TransferFlags::VOID_PENDING_TRANSFER, 0)
    };
    transfers.push(Transfer {
        id: u128::from(gen.rng.between(1, TRANSFER_IDS)),
        pending_id,
        amount,
        flags,
        ..Transfer::default()
    });
    Some((at - before, vec![Command::CreateTransfers(transfers)]))
}

#[test]
fn the_reference_agrees_with_the_ledger_on_random_streams() {
    let mut seen = BTreeSet::new();
    let mut coverage = Vec::new();
    for scenario in 1..=SCENARIOS {
        let mut gen = Gen {
            rng: SimRng::new(scenario),
            sent: Vec::new(),
        };
        let mut state = MemState::new();
        let mut reference = Reference::new();
        let mut now = 1_000 * NANOS_PER_SECOND;
        let base: Vec<Account> = (1..=ACCOUNT_IDS)
            .map(|id| Account {
                id: u128::from(id),
                ledger: 1,
                code: 1,
                flags: match id % 4 {
                    0 => AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                    1 => AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
                    _ if id == ACCOUNT_IDS => AccountFlags::CLOSED,
                    _ => AccountFlags::HISTORY,
                },
                ..Account::default()
            })
            .collect();
        let mut entries = vec![vec![Command::CreateAccounts(base)]];
        for step in 0..ENTRIES {
            let aimed = match gen.chance(200) {
                true => aimed_entry(&mut gen, &reference),
                false => None,
            };
            if let Some((at, _)) = &aimed {
                now = *at;
            }
            let commands = match (entries.pop(), aimed) {
                (Some(commands), _) | (None, Some((_, commands))) => commands,
                (None, None) => (0..gen.rng.between(0, 3)).map(|_| gen.command()).collect(),
            };
            let produced = production_entry(&mut state, now, &commands);
            let report = reference.execute_entry(now, &commands);
            assert_eq!(
                produced, report.results,
                "scenario {scenario} entry {step} at {now}: {commands:?}"
            );
            report.results.iter().for_each(|r| names(r, &mut seen));
            let found = differences(&state, &reference);
            assert!(
                found.is_empty(),
                "scenario {scenario} entry {step} at {now}: {commands:?}\n{}",
                found.join("\n")
            );
            now = next_stamp(&mut gen, now, &reference);
        }
        coverage.push(reference.coverage());
    }
    let missing: Vec<&&str> = MUST_SEE
        .iter()
        .filter(|name| !seen.contains(**name))
        .collect();
    assert!(
        missing.is_empty(),
        "never reached {missing:?}; reached {seen:?}"
    );
    let at_expiry: Vec<u64> = (0..3)
        .map(|edge| coverage.iter().map(|c| c.resolve_at_expiry[edge]).sum())
        .collect();
    assert!(
        at_expiry.iter().all(|hits| *hits > 0),
        "posts and voids at expiry -1ns/0/+1ns: {at_expiry:?}"
    );
    assert!(coverage.iter().any(|c| c.expired_at_base > 0));
    for position in 0..3 {
        assert!(coverage.iter().any(|c| c.chain_failed_at[position] > 0));
    }
}
