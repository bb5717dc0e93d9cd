//! Ledger data types: accounts, transfers, records, commands and their flags.

use serde::{Deserialize, Serialize};

/// Declares a flags newtype over `u16` with named bits and the name helpers used by the CLI and the
/// fixtures. A macro keeps the two flag types (accounts, transfers) from drifting apart.
macro_rules! flags_type {
    ($(#[$meta:meta])* $name:ident { $($bit:ident = $value:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            Default,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            Serialize,
            Deserialize,
        )]
        pub struct $name(pub u16);

        impl $name {
            $(pub const $bit: Self = Self($value);)+
            /// Every bit with a meaning; any other bit set is `reserved_flag`.
            pub const KNOWN: Self = Self(0 $(| $value)+);
            const NAMED: &'static [(Self, &'static str)] = &[$((Self::$bit, $text),)+];

            pub const fn empty() -> Self {
                Self(0)
            }

            pub const fn bits(self) -> u16 {
                self.0
            }

            /// True when every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// True when a bit outside `KNOWN` is set.
            pub const fn has_reserved(self) -> bool {
                self.0 & !Self::KNOWN.0 != 0
            }

            /// Parses a comma (or `|`) separated list of snake_case names; empty or `none` = none.
            pub fn from_names(text: &str) -> Result<Self, String> {
                let mut flags = Self::empty();
                for part in text.split([',', '|']).map(str::trim) {
                    if part.is_empty() || part == "none" {
                        continue;
                    }
                    let found = Self::NAMED.iter().find(|(_, name)| *name == part);
                    match found {
                        Some((flag, _)) => flags = flags.union(*flag),
                        None => {
                            return Err(format!("unknown {} name: {part:?}", stringify!($name)))
                        }
                    }
                }
                Ok(flags)
            }

            /// Names of the known bits that are set, lowest bit first (reserved bits have no name).
            pub fn names(self) -> Vec<&'static str> {
                Self::NAMED
                    .iter()
                    .filter(|(flag, _)| self.contains(*flag))
                    .map(|(_, name)| *name)
                    .collect()
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, other: Self) -> Self {
                self.union(other)
            }
        }
    };
}

flags_type! {
    /// Account flags (TigerBeetle's account flags without the ones Tally does not need).
    AccountFlags {
        LINKED = 1 => "linked",
        DEBITS_MUST_NOT_EXCEED_CREDITS = 2 => "debits_must_not_exceed_credits",
        CREDITS_MUST_NOT_EXCEED_DEBITS = 4 => "credits_must_not_exceed_debits",
        HISTORY = 8 => "history",
        CLOSED = 16 => "closed",
    }
}

flags_type! {
    /// Transfer flags.
    TransferFlags {
        LINKED = 1 => "linked",
        PENDING = 2 => "pending",
        POST_PENDING_TRANSFER = 4 => "post_pending_transfer",
        VOID_PENDING_TRANSFER = 8 => "void_pending_transfer",
        BALANCING_DEBIT = 16 => "balancing_debit",
        BALANCING_CREDIT = 32 => "balancing_credit",
    }
}

/// An account. Balances and timestamp are set by the ledger; a create request must leave them zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: AccountFlags,
    pub timestamp: u64,
}

impl Account {
    /// Debits posted plus pending; `None` when the sum does not fit (never for a stored account).
    pub fn debits_total(&self) -> Option<u128> {
        self.debits_posted.checked_add(self.debits_pending)
    }

    /// Credits posted plus pending; `None` when the sum does not fit (never for a stored account).
    pub fn credits_total(&self) -> Option<u128> {
        self.credits_posted.checked_add(self.credits_pending)
    }

    /// True when the balances respect the account's limit flags and both totals fit in a u128.
    pub fn respects_flags(&self) -> bool {
        let (Some(debits), Some(credits)) = (self.debits_total(), self.credits_total()) else {
            return false;
        };
        let flags = self.flags;
        let debits_ok = !flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            || debits <= self.credits_posted;
        let credits_ok = !flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            || credits <= self.debits_posted;
        debits_ok && credits_ok
    }

    /// The account's balances at its last change, as stored in balance history.
    pub fn balance_at(&self, timestamp: u64) -> Balance {
        Balance {
            account_id: self.id,
            timestamp,
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
        }
    }
}

/// A transfer. `timestamp` is set by the ledger; a create request must leave it zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Seconds after `timestamp` at which a pending transfer expires; 0 = never.
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: TransferFlags,
    pub timestamp: u64,
}

/// Nanoseconds per second, for turning a transfer's `timeout` into an expiry timestamp.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

impl Transfer {
    /// True for a post or void of a pending transfer.
    pub fn is_post_or_void(&self) -> bool {
        self.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || self.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
    }

    /// True when the amount is computed from balances (an upper bound in the request).
    pub fn is_balancing(&self) -> bool {
        self.flags.contains(TransferFlags::BALANCING_DEBIT)
            || self.flags.contains(TransferFlags::BALANCING_CREDIT)
    }

    /// Expiry of a pending transfer in ns, or `None` when it never expires or the sum overflows.
    pub fn expires_at(&self) -> Option<u64> {
        if !self.flags.contains(TransferFlags::PENDING) || self.timeout == 0 {
            return None;
        }
        let timeout_ns = u64::from(self.timeout).checked_mul(NANOS_PER_SECOND)?;
        self.timestamp.checked_add(timeout_ns)
    }
}

/// State of a pending transfer. Numbered for codecs; 0 stays unused so "no status" is distinct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum PendingStatus {
    Pending = 1,
    Posted = 2,
    Voided = 3,
    Expired = 4,
}

impl PendingStatus {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Pending),
            2 => Some(Self::Posted),
            3 => Some(Self::Voided),
            4 => Some(Self::Expired),
            _ => None,
        }
    }
}

/// Key of a record; ordered by namespace, then key bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    pub namespace: String,
    pub key: Vec<u8>,
}

impl RecordKey {
    pub fn new(namespace: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        Self {
            namespace: namespace.into(),
            key: key.into(),
        }
    }
}

/// A record: versioned bytes under a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: RecordKey,
    pub value: Vec<u8>,
    /// 1 on the first put (also after a delete), +1 on each later put.
    pub version: u64,
    /// Timestamp of the last put.
    pub timestamp: u64,
}

/// A precondition of a `Txn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// The record exists with this version (version 0 means: the record is absent).
    VersionEquals { key: RecordKey, version: u64 },
    /// The record does not exist.
    Absent { key: RecordKey },
}

impl Condition {
    pub fn key(&self) -> &RecordKey {
        match self {
            Condition::VersionEquals { key, .. } | Condition::Absent { key } => key,
        }
    }
}

/// A record write inside a `Txn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordOp {
    Put { key: RecordKey, value: Vec<u8> },
    Delete { key: RecordKey },
}

impl RecordOp {
    pub fn key(&self) -> &RecordKey {
        match self {
            RecordOp::Put { key, .. } | RecordOp::Delete { key } => key,
        }
    }
}

/// An atomic transaction: conditions, record writes, accounts and transfers; all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub conditions: Vec<Condition>,
    pub record_ops: Vec<RecordOp>,
    pub accounts: Vec<Account>,
    pub transfers: Vec<Transfer>,
}

/// One command of a log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateAccounts(Vec<Account>),
    CreateTransfers(Vec<Transfer>),
    Txn(Txn),
}

/// An account's balances right after the change at `timestamp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub account_id: u128,
    pub timestamp: u64,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_round_trip() {
        let flags = AccountFlags::from_names("history, debits_must_not_exceed_credits").unwrap();
        assert_eq!(
            flags,
            AccountFlags::HISTORY | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
        );
        assert_eq!(
            flags.names(),
            vec!["debits_must_not_exceed_credits", "history"]
        );
        assert_eq!(AccountFlags::from_names("").unwrap(), AccountFlags::empty());
        assert!(TransferFlags::from_names("pending|bogus").is_err());
        assert_eq!(TransferFlags::KNOWN.bits(), 63);
        assert!(TransferFlags(64).has_reserved());
    }

    #[test]
    fn pending_status_codec_round_trips() {
        for value in 0..=u8::MAX {
            if let Some(status) = PendingStatus::from_u8(value) {
                assert_eq!(status.as_u8(), value);
            }
        }
        assert_eq!(PendingStatus::from_u8(0), None);
    }

    #[test]
    fn expiry_never_overflows() {
        let transfer = Transfer {
            flags: TransferFlags::PENDING,
            timeout: u32::MAX,
            timestamp: u64::MAX - 1,
            ..Transfer::default()
        };
        assert_eq!(transfer.expires_at(), None);
    }
}
