//! Names of result codes and flag bits, as the node numbers them (`node/src/ledger/results.rs`,
//! `node/src/ledger/types.rs`). The client does not depend on `tally-node`, so these tables are
//! copies; the integration tests cross-check them against the node's enums. Both lists are
//! append-only on the node side, so a newer node may send a number missing here: it is shown as
//! `unknown_result_<n>`.

/// The result code of a successful create (`ok`), for accounts and transfers alike.
pub const RESULT_OK: u32 = 0;
/// `exists` for accounts: the same account was created before (a retried request).
pub const ACCOUNT_RESULT_EXISTS: u32 = 20;
/// `exists` for transfers: the same transfer was created before (a retried request).
pub const TRANSFER_RESULT_EXISTS: u32 = 32;

/// Account result codes, index = number.
pub const ACCOUNT_RESULTS: &[&str] = &[
    "ok",
    "linked_event_failed",
    "linked_event_chain_open",
    "timestamp_must_be_zero",
    "reserved_flag",
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "flags_are_mutually_exclusive",
    "debits_pending_must_be_zero",
    "debits_posted_must_be_zero",
    "credits_pending_must_be_zero",
    "credits_posted_must_be_zero",
    "ledger_must_not_be_zero",
    "code_must_not_be_zero",
    "exists_with_different_flags",
    "exists_with_different_user_data_128",
    "exists_with_different_user_data_64",
    "exists_with_different_user_data_32",
    "exists_with_different_ledger",
    "exists_with_different_code",
    "exists",
    "timestamp_exhausted",
];

/// Transfer result codes, index = number.
pub const TRANSFER_RESULTS: &[&str] = &[
    "ok",
    "linked_event_failed",
    "linked_event_chain_open",
    "timestamp_must_be_zero",
    "reserved_flag",
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "flags_are_mutually_exclusive",
    "debit_account_id_must_not_be_zero",
    "debit_account_id_must_not_be_int_max",
    "credit_account_id_must_not_be_zero",
    "credit_account_id_must_not_be_int_max",
    "accounts_must_be_different",
    "pending_id_must_be_zero",
    "pending_id_must_not_be_zero",
    "pending_id_must_not_be_int_max",
    "pending_id_must_be_different",
    "timeout_reserved_for_pending_transfer",
    "amount_must_not_be_zero",
    "ledger_must_not_be_zero",
    "code_must_not_be_zero",
    "exists_with_different_flags",
    "exists_with_different_debit_account_id",
    "exists_with_different_credit_account_id",
    "exists_with_different_amount",
    "exists_with_different_pending_id",
    "exists_with_different_user_data_128",
    "exists_with_different_user_data_64",
    "exists_with_different_user_data_32",
    "exists_with_different_timeout",
    "exists_with_different_ledger",
    "exists_with_different_code",
    "exists",
    "debit_account_not_found",
    "credit_account_not_found",
    "accounts_must_have_the_same_ledger",
    "transfer_must_have_the_same_ledger_as_accounts",
    "pending_transfer_not_found",
    "pending_transfer_not_pending",
    "pending_transfer_has_different_debit_account_id",
    "pending_transfer_has_different_credit_account_id",
    "pending_transfer_has_different_ledger",
    "pending_transfer_has_different_code",
    "exceeds_pending_transfer_amount",
    "pending_transfer_has_different_amount",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "debit_account_closed",
    "credit_account_closed",
    "overflows_debits_pending",
    "overflows_credits_pending",
    "overflows_debits_posted",
    "overflows_credits_posted",
    "overflows_debits",
    "overflows_credits",
    "overflows_timeout",
    "exceeds_credits",
    "exceeds_debits",
    "timestamp_exhausted",
];

/// Account flag bits and their names.
pub const ACCOUNT_FLAGS: &[(u32, &str)] = &[
    (1, "linked"),
    (2, "debits_must_not_exceed_credits"),
    (4, "credits_must_not_exceed_debits"),
    (8, "history"),
    (16, "closed"),
];

/// Transfer flag bits and their names.
pub const TRANSFER_FLAGS: &[(u32, &str)] = &[
    (1, "linked"),
    (2, "pending"),
    (4, "post_pending_transfer"),
    (8, "void_pending_transfer"),
    (16, "balancing_debit"),
    (32, "balancing_credit"),
];

/// Where a transfer stands: a plain (single-phase) transfer, or a pending transfer that is still
/// pending, was posted, voided, or expired (its timeout passed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferState {
    Single,
    Pending,
    Posted,
    Voided,
    Expired,
}

impl TransferState {
    /// From the node's code (`LookupTransfersReply.states`). A code this client does not know
    /// (from a newer node) reads as pending: as far as it can tell, the amount is still held.
    pub fn from_code(code: u32) -> TransferState {
        match code {
            0 => TransferState::Single,
            2 => TransferState::Posted,
            3 => TransferState::Voided,
            4 => TransferState::Expired,
            _ => TransferState::Pending,
        }
    }

    /// `single`, `pending`, `posted`, `voided` or `expired`.
    pub fn name(self) -> &'static str {
        match self {
            TransferState::Single => "single",
            TransferState::Pending => "pending",
            TransferState::Posted => "posted",
            TransferState::Voided => "voided",
            TransferState::Expired => "expired",
        }
    }
}

/// Account flag bits, for building accounts.
pub mod account_flags {
    /// Links this account to the next one in the batch: all succeed or none.
    pub const LINKED: u32 = 1;
    /// Debits may not exceed credits (e.g. a wallet that cannot be overdrawn).
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: u32 = 2;
    /// Credits may not exceed debits.
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: u32 = 4;
    /// Keep the balance history of this account.
    pub const HISTORY: u32 = 8;
    /// The account takes no new transfers.
    pub const CLOSED: u32 = 16;
}

/// Transfer flag bits, for building transfers.
pub mod transfer_flags {
    /// Links this transfer to the next one in the batch: all succeed or none.
    pub const LINKED: u32 = 1;
    /// Reserve the amount (two-phase transfer, first phase).
    pub const PENDING: u32 = 2;
    /// Post (capture) the pending transfer named by `pending_id`.
    pub const POST_PENDING_TRANSFER: u32 = 4;
    /// Void (release) the pending transfer named by `pending_id`.
    pub const VOID_PENDING_TRANSFER: u32 = 8;
    /// Transfer at most `amount`, as much as the debit account's balance allows.
    pub const BALANCING_DEBIT: u32 = 16;
    /// Transfer at most `amount`, as much as the credit account's balance allows.
    pub const BALANCING_CREDIT: u32 = 32;
}

/// The name of an account result code, `None` if this client does not know the number.
pub fn account_result_name(code: u32) -> Option<&'static str> {
    ACCOUNT_RESULTS.get(code as usize).copied()
}

/// The name of a transfer result code, `None` if this client does not know the number.
pub fn transfer_result_name(code: u32) -> Option<&'static str> {
    TRANSFER_RESULTS.get(code as usize).copied()
}

/// A printable account result: its name, or `unknown_result_<n>`.
pub fn describe_account_result(code: u32) -> String {
    account_result_name(code)
        .map(str::to_string)
        .unwrap_or_else(|| format!("unknown_result_{code}"))
}

/// A printable transfer result: its name, or `unknown_result_<n>`.
pub fn describe_transfer_result(code: u32) -> String {
    transfer_result_name(code)
        .map(str::to_string)
        .unwrap_or_else(|| format!("unknown_result_{code}"))
}

/// An unknown flag name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown flag `{name}`; known flags: {known}")]
pub struct UnknownFlag {
    /// The name that was not recognized.
    pub name: String,
    /// The known names, comma separated.
    pub known: String,
}

/// Parses a comma separated list of flag names (`"history,closed"`; empty or `none` = no flag)
/// against `table` ([`ACCOUNT_FLAGS`] or [`TRANSFER_FLAGS`]). Dashes are accepted for underscores.
pub fn parse_flags(table: &[(u32, &str)], text: &str) -> Result<u32, UnknownFlag> {
    let mut bits = 0;
    for part in text.split([',', '|']).map(str::trim) {
        if part.is_empty() || part == "none" {
            continue;
        }
        let name = part.replace('-', "_");
        match table.iter().find(|(_, known)| *known == name) {
            Some((bit, _)) => bits |= bit,
            None => {
                return Err(UnknownFlag {
                    name: part.to_string(),
                    known: table
                        .iter()
                        .map(|(_, known)| *known)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    Ok(bits)
}

/// The names of the bits set in `bits`, in bit order; unknown bits as `bit_<n>`.
pub fn flag_names(table: &[(u32, &str)], bits: u32) -> Vec<String> {
    (0..32)
        .map(|shift| 1u32 << shift)
        .filter(|bit| bits & bit != 0)
        .map(|bit| match table.iter().find(|(known, _)| *known == bit) {
            Some((_, name)) => name.to_string(),
            None => format!("bit_{bit}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn assert_unique(names: &[&str]) {
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|name| name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
    }

    #[test]
    fn result_tables_are_unique_snake_case_and_anchor_known_codes() {
        assert_unique(ACCOUNT_RESULTS);
        assert_unique(TRANSFER_RESULTS);
        assert_eq!(account_result_name(RESULT_OK), Some("ok"));
        assert_eq!(transfer_result_name(RESULT_OK), Some("ok"));
        assert_eq!(account_result_name(ACCOUNT_RESULT_EXISTS), Some("exists"));
        assert_eq!(transfer_result_name(TRANSFER_RESULT_EXISTS), Some("exists"));
        assert_eq!(transfer_result_name(57), Some("exceeds_credits"));
        assert_eq!(transfer_result_name(47), Some("pending_transfer_expired"));
        assert_eq!(describe_account_result(999), "unknown_result_999");
        assert_eq!(describe_transfer_result(24), "exists_with_different_amount");
    }

    #[test]
    fn flag_tables_are_single_distinct_bits() {
        for table in [ACCOUNT_FLAGS, TRANSFER_FLAGS] {
            let mut seen = 0;
            for (bit, _) in table {
                assert_eq!(bit.count_ones(), 1);
                assert_eq!(seen & bit, 0);
                seen |= bit;
            }
        }
        assert_eq!(
            parse_flags(ACCOUNT_FLAGS, "history").unwrap(),
            account_flags::HISTORY
        );
        assert_eq!(
            parse_flags(TRANSFER_FLAGS, "balancing_credit").unwrap(),
            transfer_flags::BALANCING_CREDIT
        );
    }

    #[test]
    fn parses_and_names_flags() {
        let bits = parse_flags(ACCOUNT_FLAGS, "history, debits-must-not-exceed-credits").unwrap();
        assert_eq!(bits, 2 | 8);
        assert_eq!(
            flag_names(ACCOUNT_FLAGS, bits),
            vec!["debits_must_not_exceed_credits", "history"]
        );
        assert_eq!(parse_flags(TRANSFER_FLAGS, "").unwrap(), 0);
        assert_eq!(parse_flags(TRANSFER_FLAGS, "none").unwrap(), 0);
        assert_eq!(parse_flags(TRANSFER_FLAGS, "linked|pending").unwrap(), 3);
        assert_eq!(flag_names(TRANSFER_FLAGS, 1 | 64), vec!["linked", "bit_64"]);
        let error = parse_flags(ACCOUNT_FLAGS, "history,frozen").unwrap_err();
        assert_eq!(error.name, "frozen");
        assert!(error.to_string().contains("closed"), "{error}");
    }
}
