//! Differential test: `LedgerBatch` + `MemState` against a deliberately naive reference model.
//!
//! The model keeps only the accepted transfers and the pending statuses and recomputes every
//! balance from scratch; linked chains and Txns are modelled by evaluating on a clone and keeping
//! it only on success. After every batch the test compares each result code's class, every
//! balance, every stored transfer, the pending statuses and per-ledger conservation.
//!
//! Replay a failure with `LEDGER_MODEL_SEED=<seed> cargo test -p tally-ledger --test ledger_model`;
//! `LEDGER_MODEL_CASES` changes the number of cases.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use tally_ledger::{
    ledger_totals, Account, AccountFlags, ApplyContext, Command, CommandResult,
    CreateAccountResult, CreateTransferResult, LedgerBatch, LedgerState, MemState, PendingStatus,
    RecordKey, RecordOp, Transfer, TransferFlags, Txn, TxnOutcome,
};

const SECOND_NS: u64 = 1_000_000_000;
const START_NS: u64 = 1_000 * SECOND_NS;
/// Accounts 1..=4 are on ledger 1, account 5 on ledger 2; id 6 never exists.
const ACCOUNTS: u128 = 5;
const SEED_DEFAULT: u64 = 0x7a11_1ed6;
const CASES_DEFAULT: u32 = 256;

// --- Generated scenarios -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Pending,
    Post,
    Void,
    BalancingDebit,
    BalancingCredit,
}

#[derive(Debug, Clone)]
struct TransferSpec {
    id: u128,
    kind: Kind,
    debit: u128,
    credit: u128,
    amount: u128,
    pending_id: u128,
    /// For a post/void: refer to an accepted pending transfer (index modulo their number) instead
    /// of `pending_id`, so that most posts and voids find their pending transfer.
    pending_pick: Option<usize>,
    timeout: u32,
    ledger: u32,
    linked: bool,
    /// A post/void that leaves accounts and ledger zero to inherit them from the pending transfer.
    inherit: bool,
    /// A post/void of "the full pending amount" (u128::MAX; 0 for a void) instead of `amount`.
    full_amount: bool,
    user_data_64: u64,
}

#[derive(Debug, Clone)]
enum EventSpec {
    New(TransferSpec),
    /// Resubmit an earlier request exactly (index modulo the number submitted so far).
    Retry(usize),
}

#[derive(Debug, Clone)]
enum CommandSpec {
    Transfers(Vec<EventSpec>),
    Txn(Vec<EventSpec>),
}

#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    commands: Vec<CommandSpec>,
}

#[derive(Debug, Clone)]
struct Scenario {
    account_flags: Vec<AccountFlags>,
    steps: Vec<Step>,
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Plain),
        3 => Just(Kind::Pending),
        3 => Just(Kind::Post),
        1 => Just(Kind::Void),
        1 => Just(Kind::BalancingDebit),
        1 => Just(Kind::BalancingCredit),
    ]
}

fn amount_strategy() -> impl Strategy<Value = u128> {
    prop_oneof![20 => 1u128..=100, 1 => Just(0u128), 1 => Just(u128::MAX)]
}

fn timeout_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![2 => Just(0u32), 1 => 1u32..=3]
}

fn account_strategy() -> impl Strategy<Value = u128> {
    // Mostly the four ledger-1 accounts, sometimes the ledger-2 one or one that does not exist.
    prop_oneof![8 => 1u128..=4, 1 => Just(ACCOUNTS), 1 => Just(ACCOUNTS + 1)]
}

fn transfer_strategy() -> impl Strategy<Value = TransferSpec> {
    let pending_pick = prop::option::weighted(0.85, any::<usize>());
    (
        (
            1u128..=40,
            kind_strategy(),
            account_strategy(),
            account_strategy(),
        ),
        (
            amount_strategy(),
            1u128..=40,
            pending_pick,
            timeout_strategy(),
        ),
        (
            prop_oneof![9 => Just(1u32), 1 => Just(2u32)],
            prop::bool::weighted(0.15),
        ),
        (
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.5),
            0u64..=1,
        ),
    )
        .prop_map(
            |(accounts, pending, (ledger, linked), (inherit, full_amount, user_data_64))| {
                let (id, kind, debit, mut credit) = accounts;
                // Same-account transfers are one rejection among many; keep them rare.
                if credit == debit && id % 8 != 0 {
                    credit = debit % 4 + 1;
                }
                let (amount, pending_id, pending_pick, timeout) = pending;
                TransferSpec {
                    id,
                    kind,
                    debit,
                    credit,
                    amount,
                    pending_id,
                    pending_pick,
                    timeout,
                    ledger,
                    linked,
                    inherit,
                    full_amount,
                    user_data_64,
                }
            },
        )
}

fn event_strategy() -> impl Strategy<Value = EventSpec> {
    prop_oneof![
        4 => transfer_strategy().prop_map(EventSpec::New),
        1 => any::<usize>().prop_map(EventSpec::Retry),
    ]
}

fn command_strategy() -> impl Strategy<Value = CommandSpec> {
    prop_oneof![
        4 => prop::collection::vec(event_strategy(), 0..=5).prop_map(CommandSpec::Transfers),
        1 => prop::collection::vec(event_strategy(), 1..=3).prop_map(CommandSpec::Txn),
    ]
}

fn flags_strategy() -> impl Strategy<Value = AccountFlags> {
    prop_oneof![
        4 => Just(AccountFlags::empty()),
        2 => Just(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        2 => Just(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
        1 => Just(AccountFlags::HISTORY),
        1 => Just(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY),
        1 => Just(AccountFlags::CLOSED),
    ]
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    let step = (
        0u64..=2500,
        prop::collection::vec(command_strategy(), 1..=2),
    )
        .prop_map(|(advance_ms, commands)| Step {
            advance_ms,
            commands,
        });
    (
        prop::collection::vec(flags_strategy(), ACCOUNTS as usize),
        prop::collection::vec(step, 1..=30),
    )
        .prop_map(|(account_flags, steps)| Scenario {
            account_flags,
            steps,
        })
}

fn to_transfer(spec: &TransferSpec) -> Transfer {
    let mut flags = match spec.kind {
        Kind::Plain => TransferFlags::empty(),
        Kind::Pending => TransferFlags::PENDING,
        Kind::Post => TransferFlags::POST_PENDING_TRANSFER,
        Kind::Void => TransferFlags::VOID_PENDING_TRANSFER,
        Kind::BalancingDebit => TransferFlags::BALANCING_DEBIT,
        Kind::BalancingCredit => TransferFlags::BALANCING_CREDIT,
    };
    if spec.linked {
        flags = flags | TransferFlags::LINKED;
    }
    let two_phase = matches!(spec.kind, Kind::Post | Kind::Void);
    let inherit = two_phase && spec.inherit;
    let amount = match spec.kind {
        Kind::Post if spec.full_amount => u128::MAX,
        Kind::Void if spec.full_amount => 0,
        _ => spec.amount,
    };
    Transfer {
        id: spec.id,
        debit_account_id: if inherit { 0 } else { spec.debit },
        credit_account_id: if inherit { 0 } else { spec.credit },
        amount,
        pending_id: if two_phase { spec.pending_id } else { 0 },
        user_data_64: spec.user_data_64,
        timeout: if spec.kind == Kind::Pending {
            spec.timeout
        } else {
            0
        },
        ledger: if inherit { 0 } else { spec.ledger },
        code: 1,
        flags,
        ..Transfer::default()
    }
}

// --- The reference model -------------------------------------------------------------------------

/// What the ledger must answer, as far as the model tells codes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Ok,
    Exists,
    ExistsDifferent,
    LinkedFailed,
    ChainOpen,
    Rejected,
}

fn classify(result: CreateTransferResult) -> Class {
    match result {
        CreateTransferResult::Ok => Class::Ok,
        CreateTransferResult::Exists => Class::Exists,
        CreateTransferResult::LinkedEventFailed => Class::LinkedFailed,
        CreateTransferResult::LinkedEventChainOpen => Class::ChainOpen,
        other if other.name().starts_with("exists_with_different_") => Class::ExistsDifferent,
        _ => Class::Rejected,
    }
}

/// An accepted transfer: the request as sent plus what it resolved to.
#[derive(Debug, Clone)]
struct Accepted {
    request: Transfer,
    debit: u128,
    credit: u128,
    ledger: u32,
    amount: u128,
    timestamp: u64,
}

impl Accepted {
    fn kind(&self) -> Kind {
        kind_of(&self.request)
    }
}

fn kind_of(transfer: &Transfer) -> Kind {
    let flags = transfer.flags;
    if flags.contains(TransferFlags::PENDING) {
        Kind::Pending
    } else if flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
        Kind::Post
    } else if flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
        Kind::Void
    } else if flags.contains(TransferFlags::BALANCING_DEBIT) {
        Kind::BalancingDebit
    } else if flags.contains(TransferFlags::BALANCING_CREDIT) {
        Kind::BalancingCredit
    } else {
        Kind::Plain
    }
}

/// Balances as [debits_pending, debits_posted, credits_pending, credits_posted].
type Balances = [u128; 4];

#[derive(Debug, Clone, Default)]
struct Model {
    accounts: BTreeMap<u128, (u32, AccountFlags)>,
    transfers: BTreeMap<u128, Accepted>,
    status: BTreeMap<u128, PendingStatus>,
    last_timestamp: u64,
    next_timestamp: u64,
    txn_commits: u64,
}

impl Model {
    /// Recomputes an account's balances from every accepted transfer.
    fn balances(&self, account: u128) -> Balances {
        let mut sums = [0u128; 4];
        for accepted in self.transfers.values() {
            let (pending, posted) = match accepted.kind() {
                Kind::Pending if self.status[&accepted.request.id] == PendingStatus::Pending => {
                    (accepted.amount, 0)
                }
                Kind::Pending | Kind::Void => (0, 0),
                _ => (0, accepted.amount),
            };
            if accepted.debit == account {
                sums[0] += pending;
                sums[1] += posted;
            }
            if accepted.credit == account {
                sums[2] += pending;
                sums[3] += posted;
            }
        }
        sums
    }

    fn begin_batch(&mut self, at: u64) {
        self.next_timestamp = at.max(self.last_timestamp + 1);
        let now = self.next_timestamp;
        let mut due: Vec<(u64, u128)> = self
            .transfers
            .values()
            .filter(|a| a.kind() == Kind::Pending && a.request.timeout > 0)
            .filter(|a| self.status[&a.request.id] == PendingStatus::Pending)
            .map(|a| {
                (
                    a.timestamp + u64::from(a.request.timeout) * SECOND_NS,
                    a.request.id,
                )
            })
            .filter(|(expires_at, _)| *expires_at <= now)
            .collect();
        due.sort();
        for (_, id) in due {
            self.status.insert(id, PendingStatus::Expired);
            self.next_timestamp += 1;
        }
    }

    fn end_batch(&mut self) {
        self.last_timestamp = self.last_timestamp.max(self.next_timestamp - 1);
    }

    /// Applies a request's events with linked-chain semantics.
    fn apply_transfers(&mut self, events: &[Transfer]) -> Vec<Class> {
        let mut classes = Vec::new();
        let mut start = 0;
        while start < events.len() {
            let linked = |t: &Transfer| t.flags.contains(TransferFlags::LINKED);
            let Some(end) = (start..events.len()).find(|&j| !linked(&events[j])) else {
                classes.extend(std::iter::repeat_n(Class::ChainOpen, events.len() - start));
                break;
            };
            let mut trial = self.clone();
            let failure = (start..=end).find_map(|k| match trial.apply_one(&events[k]) {
                Class::Ok => None,
                class => Some((k, class)),
            });
            match failure {
                None => {
                    *self = trial;
                    classes.extend(std::iter::repeat_n(Class::Ok, end + 1 - start));
                }
                Some((failed, class)) => classes.extend((start..=end).map(|k| {
                    if k == failed {
                        class
                    } else {
                        Class::LinkedFailed
                    }
                })),
            }
            start = end + 1;
        }
        classes
    }

    /// Applies a Txn's transfers: all or nothing, `exists` counts as success. Returns the index
    /// and class of the failing transfer, if any.
    fn apply_txn(&mut self, events: &[Transfer]) -> Option<(u32, Class)> {
        let mut trial = self.clone();
        for (index, event) in events.iter().enumerate() {
            match trial.apply_one(event) {
                Class::Ok | Class::Exists => {}
                class => return Some((index as u32, class)),
            }
        }
        // The Txn also puts one record, which takes a timestamp.
        trial.next_timestamp += 1;
        trial.txn_commits += 1;
        *self = trial;
        None
    }

    fn apply_one(&mut self, request: &Transfer) -> Class {
        let timestamp = self.next_timestamp;
        match self.evaluate(request, timestamp) {
            Ok(accepted) => {
                match accepted.kind() {
                    Kind::Pending => {
                        self.status.insert(request.id, PendingStatus::Pending);
                    }
                    Kind::Post => {
                        self.status
                            .insert(request.pending_id, PendingStatus::Posted);
                    }
                    Kind::Void => {
                        self.status
                            .insert(request.pending_id, PendingStatus::Voided);
                    }
                    _ => {}
                }
                self.transfers.insert(request.id, accepted);
                self.next_timestamp += 1;
                Class::Ok
            }
            Err(class) => class,
        }
    }

    fn evaluate(&self, request: &Transfer, timestamp: u64) -> Result<Accepted, Class> {
        match kind_of(request) {
            Kind::Post | Kind::Void => self.evaluate_two_phase(request, timestamp),
            _ => self.evaluate_plain(request, timestamp),
        }
    }

    fn exists_class(&self, request: &Transfer) -> Option<Class> {
        let stored = self.transfers.get(&request.id)?;
        let two_phase = matches!(kind_of(request), Kind::Post | Kind::Void);
        let wild = |asked: u128, have: u128| asked == have || (two_phase && asked == 0);
        let original = &stored.request;
        let same = request.flags == original.flags
            && wild(request.debit_account_id, stored.debit)
            && wild(request.credit_account_id, stored.credit)
            && wild(request.ledger.into(), stored.ledger.into())
            && request.pending_id == original.pending_id
            && request.user_data_64 == original.user_data_64
            && request.timeout == original.timeout
            && request.code == original.code
            && self.amount_matches(request, stored);
        Some(if same {
            Class::Exists
        } else {
            Class::ExistsDifferent
        })
    }

    fn amount_matches(&self, request: &Transfer, stored: &Accepted) -> bool {
        let pending_amount = || {
            self.transfers
                .get(&stored.request.pending_id)
                .map(|p| p.amount)
        };
        match kind_of(request) {
            Kind::BalancingDebit | Kind::BalancingCredit => request.amount >= stored.amount,
            Kind::Post if request.amount == u128::MAX => pending_amount() == Some(stored.amount),
            Kind::Void if request.amount == 0 || request.amount == u128::MAX => {
                pending_amount() == Some(stored.amount)
            }
            _ => request.amount == stored.amount,
        }
    }

    fn evaluate_two_phase(&self, request: &Transfer, timestamp: u64) -> Result<Accepted, Class> {
        let post = kind_of(request) == Kind::Post;
        if (post && request.amount == 0) || request.pending_id == request.id {
            return Err(Class::Rejected);
        }
        if let Some(class) = self.exists_class(request) {
            return Err(class);
        }
        let pending = self
            .transfers
            .get(&request.pending_id)
            .ok_or(Class::Rejected)?;
        let mismatch = |asked: u128, have: u128| asked != 0 && asked != have;
        if pending.kind() != Kind::Pending
            || mismatch(request.debit_account_id, pending.debit)
            || mismatch(request.credit_account_id, pending.credit)
            || mismatch(request.ledger.into(), pending.ledger.into())
        {
            return Err(Class::Rejected);
        }
        let full = request.amount == u128::MAX || (!post && request.amount == 0);
        let amount = if full { pending.amount } else { request.amount };
        let bad_amount = amount > pending.amount || (!post && amount != pending.amount);
        let expires_at = pending.timestamp + u64::from(pending.request.timeout) * SECOND_NS;
        let expired = pending.request.timeout > 0 && expires_at <= timestamp;
        let not_pending = self.status[&pending.request.id] != PendingStatus::Pending;
        let closed = post && (self.closed(pending.debit) || self.closed(pending.credit));
        if bad_amount || not_pending || expired || closed {
            return Err(Class::Rejected);
        }
        Ok(Accepted {
            request: request.clone(),
            debit: pending.debit,
            credit: pending.credit,
            ledger: pending.ledger,
            amount,
            timestamp,
        })
    }

    fn closed(&self, account: u128) -> bool {
        self.accounts[&account].1.contains(AccountFlags::CLOSED)
    }

    fn evaluate_plain(&self, request: &Transfer, timestamp: u64) -> Result<Accepted, Class> {
        let (debit, credit) = (request.debit_account_id, request.credit_account_id);
        if debit == credit || request.amount == 0 {
            return Err(Class::Rejected);
        }
        if let Some(class) = self.exists_class(request) {
            return Err(class);
        }
        let (Some(&(debit_ledger, debit_flags)), Some(&(credit_ledger, credit_flags))) =
            (self.accounts.get(&debit), self.accounts.get(&credit))
        else {
            return Err(Class::Rejected);
        };
        if debit_ledger != credit_ledger || request.ledger != debit_ledger {
            return Err(Class::Rejected);
        }
        if self.closed(debit) || self.closed(credit) {
            return Err(Class::Rejected);
        }
        let (d, c) = (self.balances(debit), self.balances(credit));
        let amount = self.balancing_amount(request, d, c)?;
        let pending = kind_of(request) == Kind::Pending;
        let fits = |x: u128, y: u128| x.checked_add(y).is_some();
        let overflow = (pending && (!fits(d[0], amount) || !fits(c[2], amount)))
            || !fits(d[1], amount)
            || !fits(c[3], amount)
            || !fits(d[0] + d[1], amount)
            || !fits(c[2] + c[3], amount);
        let over_debit = debit_flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && !overflow
            && d[0] + d[1] + amount > d[3];
        let over_credit = credit_flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && !overflow
            && c[2] + c[3] + amount > c[1];
        if overflow || over_debit || over_credit {
            return Err(Class::Rejected);
        }
        Ok(Accepted {
            request: request.clone(),
            debit,
            credit,
            ledger: request.ledger,
            amount,
            timestamp,
        })
    }

    fn balancing_amount(
        &self,
        request: &Transfer,
        d: Balances,
        c: Balances,
    ) -> Result<u128, Class> {
        let amount = match kind_of(request) {
            Kind::BalancingDebit => request
                .amount
                .min(d[3].saturating_sub(d[0].saturating_add(d[1]))),
            Kind::BalancingCredit => request
                .amount
                .min(c[1].saturating_sub(c[2].saturating_add(c[3]))),
            _ => return Ok(request.amount),
        };
        if amount == 0 {
            return Err(Class::Rejected);
        }
        Ok(amount)
    }
}

// --- Running a scenario --------------------------------------------------------------------------

struct Harness {
    state: MemState,
    model: Model,
    submitted: Vec<Transfer>,
    at: u64,
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl Harness {
    fn new(account_flags: &[AccountFlags]) -> Result<Self, TestCaseError> {
        let mut harness = Harness {
            state: MemState::new(),
            model: Model::default(),
            submitted: Vec::new(),
            at: START_NS,
        };
        let accounts: Vec<Account> = (1..=ACCOUNTS)
            .zip(account_flags)
            .map(|(id, flags)| Account {
                id,
                ledger: if id == ACCOUNTS { 2 } else { 1 },
                code: 1,
                flags: *flags,
                ..Account::default()
            })
            .collect();
        let mut batch = LedgerBatch::new(
            &harness.state,
            &ApplyContext {
                timestamp_ns: START_NS,
            },
        );
        let result = batch.apply(&Command::CreateAccounts(accounts.clone()));
        let expected = vec![CreateAccountResult::Ok; accounts.len()];
        if result != CommandResult::Accounts(expected) {
            return Err(fail(format!("creating accounts: {result:?}")));
        }
        harness.state.commit(batch.into_mutations());
        harness.model.begin_batch(START_NS);
        for account in &accounts {
            harness
                .model
                .accounts
                .insert(account.id, (account.ledger, account.flags));
            harness.model.next_timestamp += 1;
        }
        harness.model.end_batch();
        Ok(harness)
    }

    fn resolve(&mut self, events: &[EventSpec]) -> Vec<Transfer> {
        let mut transfers = Vec::new();
        for event in events {
            let transfer = match event {
                EventSpec::New(spec) => self.with_pending_pick(spec, to_transfer(spec)),
                EventSpec::Retry(_) if self.submitted.is_empty() => continue,
                EventSpec::Retry(index) => self.submitted[index % self.submitted.len()].clone(),
            };
            self.submitted.push(transfer.clone());
            transfers.push(transfer);
        }
        transfers
    }

    /// Points a post/void at an earlier pending request when the spec asks for it.
    fn with_pending_pick(&self, spec: &TransferSpec, mut transfer: Transfer) -> Transfer {
        let two_phase = matches!(spec.kind, Kind::Post | Kind::Void);
        let pendings: Vec<u128> = self
            .model
            .transfers
            .values()
            .filter(|accepted| accepted.kind() == Kind::Pending)
            .map(|accepted| accepted.request.id)
            .collect();
        if let (true, Some(pick), false) = (two_phase, spec.pending_pick, pendings.is_empty()) {
            transfer.pending_id = pendings[pick % pendings.len()];
        }
        transfer
    }

    fn build_command(&mut self, spec: &CommandSpec) -> Command {
        match spec {
            CommandSpec::Transfers(events) => Command::CreateTransfers(self.resolve(events)),
            CommandSpec::Txn(events) => Command::Txn(Txn {
                transfers: self.resolve(events),
                record_ops: vec![RecordOp::Put {
                    key: txn_key(),
                    value: b"x".to_vec(),
                }],
                ..Txn::default()
            }),
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        self.at += step.advance_ms * 1_000_000;
        let commands: Vec<Command> = step
            .commands
            .iter()
            .map(|c| self.build_command(c))
            .collect();
        let mut batch = LedgerBatch::new(
            &self.state,
            &ApplyContext {
                timestamp_ns: self.at,
            },
        );
        batch.expire_pending();
        let results: Vec<CommandResult> = commands.iter().map(|c| batch.apply(c)).collect();
        let mutations = batch.into_mutations();
        self.state.commit(mutations);
        self.model.begin_batch(self.at);
        for (command, result) in commands.iter().zip(&results) {
            self.check_result(command, result)?;
        }
        self.model.end_batch();
        self.check_state()
    }

    fn check_result(
        &mut self,
        command: &Command,
        result: &CommandResult,
    ) -> Result<(), TestCaseError> {
        match (command, result) {
            (Command::CreateTransfers(events), CommandResult::Transfers(actual)) => {
                let expected = self.model.apply_transfers(events);
                let actual: Vec<Class> = actual.iter().map(|r| classify(*r)).collect();
                if expected != actual {
                    return Err(fail(format!(
                        "transfers {events:#?}\nexpected {expected:?}\ngot {result:?}"
                    )));
                }
                Ok(())
            }
            (Command::Txn(txn), CommandResult::Txn(actual)) => {
                let expected = self.model.apply_txn(&txn.transfers);
                let got = match &actual.outcome {
                    TxnOutcome::Committed => None,
                    TxnOutcome::TransferFailed { index, result } => {
                        Some((*index, classify(*result)))
                    }
                    other => return Err(fail(format!("unexpected txn outcome {other:?}"))),
                };
                if expected != got {
                    return Err(fail(format!(
                        "txn {:#?}\nexpected {expected:?}\ngot {actual:?}",
                        txn.transfers
                    )));
                }
                Ok(())
            }
            _ => Err(fail(format!(
                "result {result:?} does not fit command {command:?}"
            ))),
        }
    }

    fn check_state(&self) -> Result<(), TestCaseError> {
        for id in 1..=ACCOUNTS {
            let account = self
                .state
                .account(id)
                .ok_or_else(|| fail(format!("account {id} lost")))?;
            let actual = [
                account.debits_pending,
                account.debits_posted,
                account.credits_pending,
                account.credits_posted,
            ];
            let expected = self.model.balances(id);
            prop_assert_eq!(actual, expected, "balances of account {}", id);
            self.check_history(&account)?;
        }
        self.check_transfers()?;
        for totals in ledger_totals(self.state.accounts()).values() {
            prop_assert!(totals.is_balanced(), "ledger not balanced: {:?}", totals);
        }
        prop_assert!(self.state.is_consistent());
        prop_assert_eq!(self.state.last_timestamp(), self.model.last_timestamp);
        let version = self.state.record(&txn_key()).map_or(0, |r| r.version);
        prop_assert_eq!(version, self.model.txn_commits);
        Ok(())
    }

    fn check_transfers(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.state.transfers().count(), self.model.transfers.len());
        for (id, accepted) in &self.model.transfers {
            let stored = self
                .state
                .transfer(*id)
                .ok_or_else(|| fail(format!("transfer {id} lost")))?;
            prop_assert_eq!(stored.amount, accepted.amount, "amount of transfer {}", id);
            prop_assert_eq!(
                stored.timestamp,
                accepted.timestamp,
                "timestamp of transfer {}",
                id
            );
            prop_assert_eq!(stored.debit_account_id, accepted.debit);
            prop_assert_eq!(stored.credit_account_id, accepted.credit);
            if accepted.kind() == Kind::Pending {
                prop_assert_eq!(self.state.pending_status(*id), Some(self.model.status[id]));
            }
        }
        Ok(())
    }

    /// The newest history entry of a `history` account equals its current balances.
    fn check_history(&self, account: &Account) -> Result<(), TestCaseError> {
        if !account.flags.contains(AccountFlags::HISTORY) {
            prop_assert!(self.state.balances(account.id, 0, 0, 1, true).is_empty());
            return Ok(());
        }
        if let Some(latest) = self.state.balances(account.id, 0, 0, 1, true).pop() {
            let expected = account.balance_at(latest.timestamp);
            prop_assert_eq!(latest, expected);
        }
        Ok(())
    }
}

fn txn_key() -> RecordKey {
    RecordKey::new("model", "txn")
}

fn run_scenario(scenario: Scenario) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(&scenario.account_flags)?;
    for step in &scenario.steps {
        harness.step(step)?;
    }
    Ok(())
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

#[test]
fn ledger_matches_reference_model() {
    let seed = env_number("LEDGER_MODEL_SEED").unwrap_or(SEED_DEFAULT);
    let cases = env_number("LEDGER_MODEL_CASES").map_or(CASES_DEFAULT, |n| n as u32);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    match runner.run(&scenario_strategy(), run_scenario) {
        Ok(()) => {}
        Err(TestError::Fail(reason, scenario)) => panic!(
            "{reason}\nminimal scenario: {scenario:#?}\nseed {seed}; replay: \
             LEDGER_MODEL_SEED={seed} cargo test -p tally-ledger --test ledger_model"
        ),
        Err(error) => panic!("seed {seed}: {error}"),
    }
}
