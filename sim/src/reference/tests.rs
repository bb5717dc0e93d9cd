//! The reference's rules on small hand-worked cases, answers written out by hand.

use tally_ledger::{
    Account, AccountFlags, Command, CommandResult, Condition, CreateAccountResult as A,
    CreateTransferResult as T, PendingStatus, RecordKey, RecordOp, Transfer, TransferFlags, Txn,
    TxnOutcome, TxnResult, NANOS_PER_SECOND,
};

use super::Reference;

const START: u64 = 10 * NANOS_PER_SECOND;

fn account(id: u128, flags: AccountFlags) -> Account {
    Account {
        id,
        ledger: 1,
        code: 1,
        flags,
        ..Account::default()
    }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    }
}

fn flagged(mut transfer: Transfer, flags: TransferFlags) -> Transfer {
    transfer.flags = flags;
    transfer
}

fn resolve(id: u128, pending_id: u128, amount: u128, flags: TransferFlags) -> Transfer {
    Transfer {
        id,
        pending_id,
        amount,
        flags,
        ..Transfer::default()
    }
}

fn transfers(codes: &[T]) -> CommandResult {
    CommandResult::Transfers(codes.to_vec())
}

/// A ledger with plain accounts 1, 2 and 3 and account 4 limited to its credits, created at
/// `START` (timestamps START..START+3).
fn ledger() -> Reference {
    let mut reference = Reference::new();
    let accounts = vec![
        account(1, AccountFlags::empty()),
        account(2, AccountFlags::HISTORY),
        account(3, AccountFlags::empty()),
        account(4, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
    ];
    let report = reference.execute_entry(START, &[Command::CreateAccounts(accounts)]);
    assert_eq!(
        report.results,
        vec![CommandResult::Accounts(vec![A::Ok; 4])]
    );
    reference
}

fn one(reference: &mut Reference, at: u64, command: Command) -> CommandResult {
    let mut report = reference.execute_entry(at, &[command]);
    report.results.pop().unwrap_or(CommandResult::TooManyEvents)
}

#[test]
fn timestamps_increase_even_when_the_stamp_goes_back() {
    let mut reference = ledger();
    assert_eq!(reference.account(4).map(|a| a.timestamp), Some(START + 3));
    let result = one(
        &mut reference,
        5,
        Command::CreateTransfers(vec![transfer(9, 1, 2, 5)]),
    );
    assert_eq!(result, transfers(&[T::Ok]));
    assert_eq!(reference.transfer(9).map(|t| t.timestamp), Some(START + 4));
    // An entry that creates nothing still moves the clock to its stamp.
    one(
        &mut reference,
        START + 100,
        Command::CreateTransfers(vec![]),
    );
    assert_eq!(reference.last_timestamp(), START + 99);
}

#[test]
fn a_chain_failing_anywhere_leaves_nothing_and_gives_its_timestamps_back() {
    for failing in 0..3 {
        let mut reference = ledger();
        let mut chain: Vec<Transfer> = (0..3)
            .map(|i| flagged(transfer(10 + i, 1, 3, 5), TransferFlags::LINKED))
            .collect();
        chain[2].flags = TransferFlags::empty();
        chain[failing].amount = 0;
        let mut expected = vec![T::LinkedEventFailed; 3];
        expected[failing] = T::AmountMustNotBeZero;
        let result = one(&mut reference, START + 10, Command::CreateTransfers(chain));
        assert_eq!(result, transfers(&expected), "failing at {failing}");
        assert!(reference.transfers().is_empty());
        assert_eq!(reference.account(1).map(|a| a.debits_posted), Some(0));
        let after = one(
            &mut reference,
            START + 10,
            Command::CreateTransfers(vec![transfer(20, 1, 3, 5)]),
        );
        assert_eq!(after, transfers(&[T::Ok]));
        assert_eq!(
            reference.transfer(20).map(|t| t.timestamp),
            Some(START + 10)
        );
    }
}

#[test]
fn a_chain_sees_its_own_earlier_events_and_an_exists_breaks_it() {
    let mut reference = ledger();
    let linked = TransferFlags::LINKED;
    let chain = vec![
        flagged(transfer(1, 1, 4, 7), linked),
        // Account 4 may spend what the first event credited it.
        flagged(transfer(2, 4, 3, 7), linked),
        transfer(1, 1, 4, 7),
    ];
    let result = one(&mut reference, START + 10, Command::CreateTransfers(chain));
    let expected = [
        T::LinkedEventFailed,
        T::LinkedEventFailed,
        T::ExistsWithDifferentFlags,
    ];
    assert_eq!(result, transfers(&expected));
    assert!(reference.transfers().is_empty());
}

#[test]
fn a_chain_left_open_answers_chain_open_everywhere() {
    let mut reference = ledger();
    let linked = TransferFlags::LINKED;
    let command = Command::CreateTransfers(vec![
        transfer(1, 1, 2, 5),
        flagged(transfer(2, 1, 2, 5), linked),
        flagged(transfer(3, 1, 2, 0), linked),
    ]);
    let result = one(&mut reference, START + 10, command);
    let expected = [T::Ok, T::LinkedEventChainOpen, T::LinkedEventChainOpen];
    assert_eq!(result, transfers(&expected));
    assert_eq!(reference.transfers().len(), 1);
}

/// A pending transfer of 10 from 1 to 2 with a 1 s timeout, created second in its entry:
/// returns its expiry.
fn hold(reference: &mut Reference) -> u64 {
    let at = START + NANOS_PER_SECOND;
    let pending = Transfer {
        timeout: 1,
        ..flagged(transfer(50, 1, 2, 10), TransferFlags::PENDING)
    };
    let command = Command::CreateTransfers(vec![transfer(49, 3, 1, 1), pending]);
    assert_eq!(one(reference, at, command), transfers(&[T::Ok, T::Ok]));
    at + 1 + NANOS_PER_SECOND
}

#[test]
fn a_post_one_ns_before_expiry_posts() {
    let mut reference = ledger();
    let expires_at = hold(&mut reference);
    let post = resolve(60, 50, u128::MAX, TransferFlags::POST_PENDING_TRANSFER);
    let result = one(
        &mut reference,
        expires_at - 1,
        Command::CreateTransfers(vec![post]),
    );
    assert_eq!(result, transfers(&[T::Ok]));
    assert_eq!(reference.pending_status(50), Some(PendingStatus::Posted));
    assert_eq!(reference.transfer(60).map(|t| t.amount), Some(10));
    assert_eq!(reference.account(2).map(|a| a.credits_posted), Some(10));
    assert_eq!(reference.coverage().resolve_at_expiry, [1, 0, 0]);
}

#[test]
fn a_void_stamped_at_expiry_is_too_late_even_before_the_expiry_ran() {
    let mut reference = ledger();
    let expires_at = hold(&mut reference);
    let void = resolve(60, 50, 0, TransferFlags::VOID_PENDING_TRANSFER);
    // The entry starts 1 ns before the expiry; the filler takes that timestamp.
    let command = Command::CreateTransfers(vec![transfer(59, 3, 1, 1), void]);
    let result = one(&mut reference, expires_at - 1, command);
    assert_eq!(result, transfers(&[T::Ok, T::PendingTransferExpired]));
    assert_eq!(reference.pending_status(50), Some(PendingStatus::Pending));
    assert_eq!(reference.account(1).map(|a| a.debits_pending), Some(10));
    assert_eq!(reference.coverage().resolve_at_expiry, [0, 1, 0]);
    // The next entry expires it, releasing the reservation.
    let report = reference.execute_entry(expires_at, &[]);
    assert_eq!(report.journal.expired, vec![50]);
    assert_eq!(reference.pending_status(50), Some(PendingStatus::Expired));
    assert_eq!(reference.account(1).map(|a| a.debits_pending), Some(0));
    assert!(reference.pending_expiries().is_empty());
}

#[test]
fn an_entry_starting_at_the_expiry_expires_first() {
    let mut reference = ledger();
    let expires_at = hold(&mut reference);
    let post = resolve(60, 50, 3, TransferFlags::POST_PENDING_TRANSFER);
    let command = Command::CreateTransfers(vec![post, transfer(61, 3, 1, 1)]);
    let result = one(&mut reference, expires_at, command);
    assert_eq!(result, transfers(&[T::PendingTransferExpired, T::Ok]));
    assert_eq!(reference.pending_status(50), Some(PendingStatus::Expired));
    // The expiry took the entry's first timestamp.
    assert_eq!(
        reference.transfer(61).map(|t| t.timestamp),
        Some(expires_at + 1)
    );
    assert_eq!(reference.coverage().expired_at_base, 1);
    // Account 2 keeps history: created, the hold, and its expiry.
    let history: Vec<u64> = reference
        .balance_history()
        .keys()
        .filter(|(id, _)| *id == 2)
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(history, vec![expires_at - NANOS_PER_SECOND, expires_at]);
}

#[test]
fn balancing_debits_stop_at_the_credits_left() {
    let mut reference = ledger();
    let pending = flagged(transfer(3, 1, 3, 20), TransferFlags::PENDING);
    let setup = vec![transfer(1, 2, 1, 100), transfer(2, 1, 3, 30), pending];
    let result = one(&mut reference, START + 10, Command::CreateTransfers(setup));
    assert_eq!(result, transfers(&[T::Ok; 3]));
    let balancing = flagged(transfer(4, 1, 3, 1000), TransferFlags::BALANCING_DEBIT);
    let command = Command::CreateTransfers(vec![balancing.clone()]);
    assert_eq!(
        one(&mut reference, START + 20, command),
        transfers(&[T::Ok])
    );
    assert_eq!(reference.transfer(4).map(|t| t.amount), Some(50));
    let again = flagged(transfer(5, 1, 3, 1), TransferFlags::BALANCING_DEBIT);
    let resend_more = Transfer {
        amount: 60,
        ..balancing.clone()
    };
    let resend_less = Transfer {
        amount: 40,
        ..balancing
    };
    let command = Command::CreateTransfers(vec![again, resend_more, resend_less]);
    let expected = [T::ExceedsCredits, T::Exists, T::ExistsWithDifferentAmount];
    assert_eq!(
        one(&mut reference, START + 30, command),
        transfers(&expected)
    );
}

#[test]
fn limits_count_pending_debits_and_posts_resend_as_exists() {
    let mut reference = ledger();
    let fund = transfer(1, 1, 4, 10);
    let hold = flagged(transfer(2, 4, 3, 8), TransferFlags::PENDING);
    let over = transfer(3, 4, 3, 3);
    let command = Command::CreateTransfers(vec![fund, hold, over]);
    let expected = [T::Ok, T::Ok, T::ExceedsCredits];
    assert_eq!(
        one(&mut reference, START + 10, command),
        transfers(&expected)
    );
    let post = resolve(4, 2, u128::MAX, TransferFlags::POST_PENDING_TRANSFER);
    let explicit = Transfer {
        amount: 8,
        ..post.clone()
    };
    let partial = Transfer {
        amount: 5,
        ..post.clone()
    };
    let command = Command::CreateTransfers(vec![post.clone(), post, explicit, partial]);
    let expected = [T::Ok, T::Exists, T::Exists, T::ExistsWithDifferentAmount];
    assert_eq!(
        one(&mut reference, START + 20, command),
        transfers(&expected)
    );
    let twice = resolve(5, 2, 0, TransferFlags::VOID_PENDING_TRANSFER);
    let command = Command::CreateTransfers(vec![twice]);
    let expected = [T::PendingTransferAlreadyPosted];
    assert_eq!(
        one(&mut reference, START + 30, command),
        transfers(&expected)
    );
}

fn key(name: &str) -> RecordKey {
    RecordKey::new("test", name.as_bytes().to_vec())
}

fn put(name: &str) -> RecordOp {
    RecordOp::Put {
        key: key(name),
        value: vec![1],
    }
}

fn txn_result(outcome: TxnOutcome, record_versions: Vec<u64>) -> CommandResult {
    CommandResult::Txn(TxnResult {
        outcome,
        record_versions,
    })
}

#[test]
fn a_txn_is_all_or_nothing() {
    let mut reference = ledger();
    let first = Txn {
        conditions: vec![Condition::Absent { key: key("a") }],
        record_ops: vec![put("a"), put("a")],
        ..Txn::default()
    };
    let result = one(&mut reference, START + 10, Command::Txn(first));
    assert_eq!(result, txn_result(TxnOutcome::Committed, vec![1, 2]));
    // The condition fails although its transfer would have gone through.
    let late_condition = Txn {
        conditions: vec![
            Condition::VersionEquals {
                key: key("a"),
                version: 2,
            },
            Condition::Absent { key: key("a") },
        ],
        record_ops: vec![put("b")],
        transfers: vec![transfer(1, 1, 2, 5)],
        ..Txn::default()
    };
    let result = one(&mut reference, START + 20, Command::Txn(late_condition));
    let failed = TxnOutcome::ConditionFailed {
        index: 1,
        actual_version: 2,
    };
    assert_eq!(result, txn_result(failed, vec![]));
    assert!(reference.transfers().is_empty());
    assert_eq!(reference.coverage().txn_condition_failed_with_transfers, 1);
    // A transfer failing after an account and a transfer were created undoes both.
    let late_transfer = Txn {
        accounts: vec![account(7, AccountFlags::LINKED)],
        transfers: vec![transfer(2, 1, 7, 5), transfer(3, 7, 7, 5)],
        record_ops: vec![RecordOp::Delete { key: key("a") }],
        ..Txn::default()
    };
    let result = one(
        &mut reference,
        START + 30,
        Command::Txn(late_transfer.clone()),
    );
    let failed = TxnOutcome::TransferFailed {
        index: 1,
        result: T::AccountsMustBeDifferent,
    };
    assert_eq!(result, txn_result(failed, vec![]));
    assert!(reference.account(7).is_none() && reference.transfers().is_empty());
    assert_eq!(reference.record(&key("a")).map(|r| r.version), Some(2));
    let mut fixed = late_transfer;
    fixed.transfers.pop();
    fixed.record_ops.push(put("a"));
    let result = one(&mut reference, START + 40, Command::Txn(fixed));
    assert_eq!(result, txn_result(TxnOutcome::Committed, vec![0, 1]));
    assert_eq!(
        reference.account(7).map(|a| (a.credits_posted, a.flags)),
        Some((5, AccountFlags::LINKED))
    );
}

#[test]
fn malformed_record_ops_are_named() {
    let mut reference = ledger();
    let txn = Txn {
        record_ops: vec![put("ok"), RecordOp::Delete { key: key("") }],
        ..Txn::default()
    };
    let result = one(&mut reference, START + 10, Command::Txn(txn));
    let invalid = TxnOutcome::RecordInvalid {
        index: 1,
        reason: "key_must_not_be_empty".to_string(),
    };
    assert_eq!(result, txn_result(invalid, vec![]));
}

#[test]
fn account_rules_come_in_code_order() {
    let mut reference = ledger();
    let both = account(
        9,
        AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
    );
    let mut different = account(1, AccountFlags::empty());
    different.code = 2;
    let mut chain = vec![
        account(10, AccountFlags::LINKED),
        account(11, AccountFlags::empty()),
    ];
    chain[1].ledger = 0;
    let mut command = vec![both, different, account(2, AccountFlags::HISTORY)];
    command.extend(chain);
    let result = one(&mut reference, START + 10, Command::CreateAccounts(command));
    let expected = vec![
        A::FlagsAreMutuallyExclusive,
        A::ExistsWithDifferentCode,
        A::Exists,
        A::LinkedEventFailed,
        A::LedgerMustNotBeZero,
    ];
    assert_eq!(result, CommandResult::Accounts(expected));
    assert!(reference.account(10).is_none());
}
