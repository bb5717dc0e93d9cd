//! Result codes of the ledger: rejections are values, not errors.
//!
//! Both enums are numbered explicitly and in precedence order: when an event breaks several
//! rules, the rule with the lowest number is the one reported. (A post/void skips the account-id
//! rules and a plain transfer skips the pending-transfer rules; within each kind, codes are
//! checked in increasing order.)
//! The numbers are part of the wire and storage format: they are append-only and a number is never
//! reused, even when a code is retired.

use serde::{Deserialize, Serialize};

/// Declares a `#[repr(u32)]` result enum together with its number and name conversions.
macro_rules! result_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $number:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[repr(u32)]
        pub enum $name {
            $($variant = $number,)+
        }

        impl $name {
            /// Every code, in number order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            pub fn as_u32(self) -> u32 {
                self as u32
            }

            pub fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $($number => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The snake_case name used by the CLI, the API and the fixtures.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            pub fn is_ok(self) -> bool {
                self.as_u32() == 0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.name())
            }
        }
    };
}

result_enum! {
    /// Result of creating one account.
    CreateAccountResult {
        Ok = 0 => "ok",
        LinkedEventFailed = 1 => "linked_event_failed",
        LinkedEventChainOpen = 2 => "linked_event_chain_open",
        TimestampMustBeZero = 3 => "timestamp_must_be_zero",
        ReservedFlag = 4 => "reserved_flag",
        IdMustNotBeZero = 5 => "id_must_not_be_zero",
        IdMustNotBeIntMax = 6 => "id_must_not_be_int_max",
        FlagsAreMutuallyExclusive = 7 => "flags_are_mutually_exclusive",
        DebitsPendingMustBeZero = 8 => "debits_pending_must_be_zero",
        DebitsPostedMustBeZero = 9 => "debits_posted_must_be_zero",
        CreditsPendingMustBeZero = 10 => "credits_pending_must_be_zero",
        CreditsPostedMustBeZero = 11 => "credits_posted_must_be_zero",
        LedgerMustNotBeZero = 12 => "ledger_must_not_be_zero",
        CodeMustNotBeZero = 13 => "code_must_not_be_zero",
        ExistsWithDifferentFlags = 14 => "exists_with_different_flags",
        ExistsWithDifferentUserData128 = 15 => "exists_with_different_user_data_128",
        ExistsWithDifferentUserData64 = 16 => "exists_with_different_user_data_64",
        ExistsWithDifferentUserData32 = 17 => "exists_with_different_user_data_32",
        ExistsWithDifferentLedger = 18 => "exists_with_different_ledger",
        ExistsWithDifferentCode = 19 => "exists_with_different_code",
        Exists = 20 => "exists",
        // The cluster ran out of unique u64 timestamps (only with a clock stamped near u64::MAX).
        TimestampExhausted = 21 => "timestamp_exhausted",
    }
}

result_enum! {
    /// Result of creating one transfer.
    CreateTransferResult {
        Ok = 0 => "ok",
        LinkedEventFailed = 1 => "linked_event_failed",
        LinkedEventChainOpen = 2 => "linked_event_chain_open",
        TimestampMustBeZero = 3 => "timestamp_must_be_zero",
        ReservedFlag = 4 => "reserved_flag",
        IdMustNotBeZero = 5 => "id_must_not_be_zero",
        IdMustNotBeIntMax = 6 => "id_must_not_be_int_max",
        FlagsAreMutuallyExclusive = 7 => "flags_are_mutually_exclusive",
        DebitAccountIdMustNotBeZero = 8 => "debit_account_id_must_not_be_zero",
        DebitAccountIdMustNotBeIntMax = 9 => "debit_account_id_must_not_be_int_max",
        CreditAccountIdMustNotBeZero = 10 => "credit_account_id_must_not_be_zero",
        CreditAccountIdMustNotBeIntMax = 11 => "credit_account_id_must_not_be_int_max",
        AccountsMustBeDifferent = 12 => "accounts_must_be_different",
        PendingIdMustBeZero = 13 => "pending_id_must_be_zero",
        PendingIdMustNotBeZero = 14 => "pending_id_must_not_be_zero",
        PendingIdMustNotBeIntMax = 15 => "pending_id_must_not_be_int_max",
        PendingIdMustBeDifferent = 16 => "pending_id_must_be_different",
        TimeoutReservedForPendingTransfer = 17 => "timeout_reserved_for_pending_transfer",
        AmountMustNotBeZero = 18 => "amount_must_not_be_zero",
        LedgerMustNotBeZero = 19 => "ledger_must_not_be_zero",
        CodeMustNotBeZero = 20 => "code_must_not_be_zero",
        ExistsWithDifferentFlags = 21 => "exists_with_different_flags",
        ExistsWithDifferentDebitAccountId = 22 => "exists_with_different_debit_account_id",
        ExistsWithDifferentCreditAccountId = 23 => "exists_with_different_credit_account_id",
        ExistsWithDifferentAmount = 24 => "exists_with_different_amount",
        ExistsWithDifferentPendingId = 25 => "exists_with_different_pending_id",
        ExistsWithDifferentUserData128 = 26 => "exists_with_different_user_data_128",
        ExistsWithDifferentUserData64 = 27 => "exists_with_different_user_data_64",
        ExistsWithDifferentUserData32 = 28 => "exists_with_different_user_data_32",
        ExistsWithDifferentTimeout = 29 => "exists_with_different_timeout",
        ExistsWithDifferentLedger = 30 => "exists_with_different_ledger",
        ExistsWithDifferentCode = 31 => "exists_with_different_code",
        Exists = 32 => "exists",
        DebitAccountNotFound = 33 => "debit_account_not_found",
        CreditAccountNotFound = 34 => "credit_account_not_found",
        AccountsMustHaveTheSameLedger = 35 => "accounts_must_have_the_same_ledger",
        TransferMustHaveTheSameLedgerAsAccounts = 36
            => "transfer_must_have_the_same_ledger_as_accounts",
        PendingTransferNotFound = 37 => "pending_transfer_not_found",
        PendingTransferNotPending = 38 => "pending_transfer_not_pending",
        PendingTransferHasDifferentDebitAccountId = 39
            => "pending_transfer_has_different_debit_account_id",
        PendingTransferHasDifferentCreditAccountId = 40
            => "pending_transfer_has_different_credit_account_id",
        PendingTransferHasDifferentLedger = 41 => "pending_transfer_has_different_ledger",
        PendingTransferHasDifferentCode = 42 => "pending_transfer_has_different_code",
        ExceedsPendingTransferAmount = 43 => "exceeds_pending_transfer_amount",
        PendingTransferHasDifferentAmount = 44 => "pending_transfer_has_different_amount",
        PendingTransferAlreadyPosted = 45 => "pending_transfer_already_posted",
        PendingTransferAlreadyVoided = 46 => "pending_transfer_already_voided",
        PendingTransferExpired = 47 => "pending_transfer_expired",
        DebitAccountClosed = 48 => "debit_account_closed",
        CreditAccountClosed = 49 => "credit_account_closed",
        OverflowsDebitsPending = 50 => "overflows_debits_pending",
        OverflowsCreditsPending = 51 => "overflows_credits_pending",
        OverflowsDebitsPosted = 52 => "overflows_debits_posted",
        OverflowsCreditsPosted = 53 => "overflows_credits_posted",
        OverflowsDebits = 54 => "overflows_debits",
        OverflowsCredits = 55 => "overflows_credits",
        OverflowsTimeout = 56 => "overflows_timeout",
        ExceedsCredits = 57 => "exceeds_credits",
        ExceedsDebits = 58 => "exceeds_debits",
        // The cluster ran out of unique u64 timestamps (only with a clock stamped near u64::MAX).
        TimestampExhausted = 59 => "timestamp_exhausted",
    }
}

/// How a `Txn` ended. Anything but `Committed` means the Txn changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    Committed,
    /// Condition `index` did not hold; `actual_version` is the record's version (0 = absent).
    ConditionFailed {
        index: u32,
        actual_version: u64,
    },
    /// Record operation `index` is malformed (empty or oversized namespace, key or value).
    RecordInvalid {
        index: u32,
        reason: String,
    },
    AccountFailed {
        index: u32,
        result: CreateAccountResult,
    },
    TransferFailed {
        index: u32,
        result: CreateTransferResult,
    },
    /// More conditions plus record operations than `TXN_OPERATIONS_MAX`.
    TooManyOperations,
}

/// Result of a `Txn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    pub outcome: TxnOutcome,
    /// New version per `Put` (0 per `Delete`), in `record_ops` order; empty unless committed.
    pub record_versions: Vec<u64>,
}

impl TxnResult {
    pub fn failed(outcome: TxnOutcome) -> Self {
        debug_assert!(outcome != TxnOutcome::Committed);
        Self {
            outcome,
            record_versions: Vec::new(),
        }
    }

    pub fn is_committed(&self) -> bool {
        self.outcome == TxnOutcome::Committed
    }
}

/// Result of one command: one code per event, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
    Txn(TxnResult),
    /// More events than `EVENTS_PER_REQUEST_MAX`; nothing was applied.
    TooManyEvents,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn check_numbering(numbers: Vec<u32>, names: Vec<&'static str>) {
        let expected: Vec<u32> = (0..numbers.len() as u32).collect();
        assert_eq!(numbers, expected, "codes must be numbered 0.. without gaps");
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "names must be unique");
    }

    #[test]
    fn account_results_are_numbered_and_named() {
        let all = CreateAccountResult::ALL;
        check_numbering(
            all.iter().map(|r| r.as_u32()).collect(),
            all.iter().map(|r| r.name()).collect(),
        );
        for result in all {
            assert_eq!(
                CreateAccountResult::from_u32(result.as_u32()),
                Some(*result)
            );
            assert_eq!(CreateAccountResult::from_name(result.name()), Some(*result));
        }
        assert_eq!(CreateAccountResult::from_u32(all.len() as u32), None);
    }

    #[test]
    fn transfer_results_are_numbered_and_named() {
        let all = CreateTransferResult::ALL;
        check_numbering(
            all.iter().map(|r| r.as_u32()).collect(),
            all.iter().map(|r| r.name()).collect(),
        );
        for result in all {
            assert_eq!(
                CreateTransferResult::from_u32(result.as_u32()),
                Some(*result)
            );
            assert_eq!(
                CreateTransferResult::from_name(result.name()),
                Some(*result)
            );
        }
        assert_eq!(CreateTransferResult::from_name("nope"), None);
    }

    /// Clients, the API and stored fixtures rely on these numbers and names (they were checked
    /// against a client-side copy of the tables before the client used these enums directly).
    #[test]
    fn wire_numbers_and_names_stay_put() {
        let snake_case = |name: &str| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        assert!(CreateAccountResult::ALL
            .iter()
            .all(|r| snake_case(r.name())));
        assert!(CreateTransferResult::ALL
            .iter()
            .all(|r| snake_case(r.name())));
        let accounts = [(0, "ok"), (20, "exists"), (21, "timestamp_exhausted")];
        for (number, name) in accounts {
            assert_eq!(CreateAccountResult::from_u32(number).unwrap().name(), name);
        }
        let transfers = [
            (0, "ok"),
            (24, "exists_with_different_amount"),
            (32, "exists"),
            (47, "pending_transfer_expired"),
            (57, "exceeds_credits"),
            (59, "timestamp_exhausted"),
        ];
        for (number, name) in transfers {
            assert_eq!(CreateTransferResult::from_u32(number).unwrap().name(), name);
        }
        assert_eq!(CreateAccountResult::ALL.len(), 22);
        assert_eq!(CreateTransferResult::ALL.len(), 60);
    }
}
