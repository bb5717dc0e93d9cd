//! Named limits for everything the node accepts or produces; one place, checked at compile time.
//!
//! Every request, page, scan and background step is bounded by a constant here so that no input can
//! make the node do unbounded work. Add new limits at the end of the relevant section together with
//! a `const _: () = assert!(...)` for any relationship the code relies on.

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

/// How often the leader looks for pending transfers whose timeout has passed, and proposes an
/// empty entry to expire them when no other traffic would (TigerBeetle's "pulse").
pub const EXPIRY_PULSE_INTERVAL_MS: u64 = 250;

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

// --- Replication and group commit ----------------------------------------------------------------

/// Client requests the leader packs into one log entry (group commit).
pub const REQUESTS_PER_ENTRY_MAX: usize = 256;

/// Events (accounts, transfers, Txn items) packed into one log entry.
pub const EVENTS_PER_ENTRY_MAX: usize = 16 * 1024;

/// Log entries proposed by the group-commit stage and not yet committed.
pub const ENTRIES_IN_FLIGHT_MAX: usize = 8;

/// Client requests waiting for the group-commit stage; beyond it callers wait (back-pressure).
pub const REQUEST_QUEUE_MAX: usize = 4096;

/// Bytes of one gRPC message, in either direction (8192 transfers encode to about 2 MiB).
pub const GRPC_MESSAGE_BYTES_MAX: usize = 16 << 20;

/// Default of `node.disk_free_min_bytes`: room for RocksDB's write-ahead log, a memtable flush
/// and a compaction step after the last write admitted.
pub const DISK_FREE_MIN_BYTES_DEFAULT: u64 = 256 << 20;

/// Streams a client may reset before the server has accepted them, per connection, before the
/// connection is closed (h2 defaults to 20: too few for clients with short deadlines).
pub const HTTP2_PENDING_ACCEPT_RESET_STREAMS_MAX: usize = 1024;

/// Bytes of snapshot data per streamed chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Time a new connection has to send its first byte (TLS or plain text is decided by it).
pub const TLS_FIRST_BYTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Time a TLS handshake may take, on the server and on node-to-node connections.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Log entries kept behind a snapshot before they are purged.
pub const LOG_ENTRIES_KEPT_BEHIND_SNAPSHOT: u64 = 1000;

/// Log entries applied since the last snapshot that trigger a new one.
pub const LOG_ENTRIES_BETWEEN_SNAPSHOTS: u64 = 20_000;

const _: () = assert!(EVENTS_PER_ENTRY_MAX >= EVENTS_PER_REQUEST_MAX);
const _: () = assert!(REQUESTS_PER_ENTRY_MAX > 0 && ENTRIES_IN_FLIGHT_MAX > 0);
// The largest request (a full batch) fits in one gRPC message with room for framing.
const _: () = assert!(EVENTS_PER_REQUEST_MAX * 256 < GRPC_MESSAGE_BYTES_MAX);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES < GRPC_MESSAGE_BYTES_MAX);
