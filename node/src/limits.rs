//! Named limits for everything the node accepts or produces; one place, checked at compile time.
//!
//! Every request, page, scan and background step is bounded by a constant here so that no input can
//! make the node do unbounded work. Add new limits at the end of the relevant section together with
//! a `const _: () = assert!(...)` for any relationship the code relies on.

// --- Ledger ----------------------------------------------------------------------------------------

/// The ledger's own limits (requests, records, expiry per apply, query pages), defined with the
/// state machine in `tally-ledger`.
pub use tally_ledger::limits::*;

// --- Ledger background work ----------------------------------------------------------------------

/// How often the leader looks for pending transfers whose timeout has passed, and proposes an
/// empty entry to expire them when no other traffic would (TigerBeetle's "pulse").
pub const EXPIRY_PULSE_INTERVAL_MS: u64 = 250;

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
