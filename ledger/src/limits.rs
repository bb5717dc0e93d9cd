//! Named limits of the ledger state machine: request sizes, record sizes, expiry work per apply
//! and query pages; checked at compile time.
//!
//! The node's `limits` module re-exports these beside its own (replication, gRPC, snapshots), so
//! every limit is still named in one place per crate. Add new limits at the end of the relevant
//! section together with a `const _: () = assert!(...)` for any relationship the code relies on.

// --- Ledger requests -----------------------------------------------------------------------------

/// Accounts or transfers in one request (one log entry's command).
pub const EVENTS_PER_REQUEST_MAX: usize = 8192;

/// Bytes of a record namespace (UTF-8).
pub const RECORD_NAMESPACE_BYTES_MAX: usize = 64;

/// Bytes of a record key.
pub const RECORD_KEY_BYTES_MAX: usize = 512;

/// Bytes of a record value.
pub const RECORD_VALUE_BYTES_MAX: usize = 64 * 1024;

/// Conditions plus record operations in one `Txn`.
pub const TXN_OPERATIONS_MAX: usize = 1024;

// --- Ledger background work ----------------------------------------------------------------------

/// Pending transfers expired by one apply; the rest are expired by the following applies.
pub const PENDING_EXPIRIES_PER_APPLY_MAX: usize = 8192;

// --- Ledger queries ------------------------------------------------------------------------------

/// Transfers returned by one page of an account's transfer history (also balance history).
pub const ACCOUNT_TRANSFERS_PAGE_MAX: usize = 8192;

/// Records returned by one page of a record scan.
pub const RECORD_SCAN_PAGE_MAX: usize = 1000;

// --- Relationships -------------------------------------------------------------------------------

const _: () = assert!(EVENTS_PER_REQUEST_MAX > 0);
const _: () = assert!(TXN_OPERATIONS_MAX > 0);
// A Txn's conditions and record operations fit in what a plain request may carry.
const _: () = assert!(TXN_OPERATIONS_MAX <= EVENTS_PER_REQUEST_MAX);
// Expiry keeps up with creation: one apply can expire every pending a full request created.
const _: () = assert!(PENDING_EXPIRIES_PER_APPLY_MAX >= EVENTS_PER_REQUEST_MAX);
// A page can hold everything one request created for a single account.
const _: () = assert!(ACCOUNT_TRANSFERS_PAGE_MAX >= EVENTS_PER_REQUEST_MAX);
const _: () = assert!(RECORD_SCAN_PAGE_MAX > 0);
// A record key always fits comfortably inside a value-sized buffer (codecs frame key and value).
const _: () = assert!(RECORD_NAMESPACE_BYTES_MAX + RECORD_KEY_BYTES_MAX < RECORD_VALUE_BYTES_MAX);
// Every record size fits in the u32 length prefixes of on-disk and wire codecs.
const _: () = assert!(RECORD_VALUE_BYTES_MAX <= u32::MAX as usize);
