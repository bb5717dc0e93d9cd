//! Every metric the node exports, named once. Recorded through the `metrics` facade, which does
//! nothing until a recorder is installed: `tally-node serve --metrics-listen` installs the
//! Prometheus exporter (`telemetry.rs`); the simulator and unit tests install none.

/// Gauge, 1 for the node's current role (label `role`: leader, follower, candidate, learner,
/// shutdown), 0 for the others.
pub const RAFT_ROLE: &str = "tally_raft_role";
pub const RAFT_TERM: &str = "tally_raft_term";
/// 0 while no leader is known.
pub const RAFT_LEADER_ID: &str = "tally_raft_leader_id";
pub const RAFT_LAST_LOG_INDEX: &str = "tally_raft_last_log_index";
pub const RAFT_COMMITTED_INDEX: &str = "tally_raft_committed_index";
pub const RAFT_APPLIED_INDEX: &str = "tally_raft_applied_index";
/// Leader only, label `follower`: entries the member is behind the leader's last index.
pub const RAFT_REPLICATION_LAG: &str = "tally_raft_replication_lag_entries";
/// 1 when this node leads and a majority answers it (or it does not lead but a leader is known).
pub const RAFT_HAS_QUORUM: &str = "tally_raft_has_quorum";
/// Counters.
pub const ENTRIES_APPLIED: &str = "tally_entries_applied_total";
pub const EVENTS_APPLIED: &str = "tally_events_applied_total";
pub const SNAPSHOTS_BUILT: &str = "tally_snapshots_built_total";
pub const SNAPSHOTS_INSTALLED: &str = "tally_snapshots_installed_total";
pub const LOG_PURGES: &str = "tally_log_purges_total";
/// Label `method` (e.g. `Ledger/CreateTransfers`) and `code` (gRPC code name, `Ok` on success).
pub const GRPC_REQUESTS: &str = "tally_grpc_requests_total";
/// Histograms.
pub const GROUP_COMMIT_BATCH: &str = "tally_group_commit_batch_requests";
pub const STORAGE_FSYNC_SECONDS: &str = "tally_storage_fsync_seconds";
pub const APPLY_SECONDS: &str = "tally_apply_seconds";
/// Label `method`.
pub const GRPC_REQUEST_SECONDS: &str = "tally_grpc_request_seconds";
/// Gauges from RocksDB.
pub const ROCKSDB_LIVE_DATA_BYTES: &str = "tally_rocksdb_live_data_bytes";
pub const ROCKSDB_PENDING_COMPACTION_BYTES: &str = "tally_rocksdb_pending_compaction_bytes";

/// Every metric name, for the docs test and the exporter's help texts.
pub const ALL: &[(&str, &str)] = &[
    (RAFT_ROLE, "1 for the node's current Raft role (label role)"),
    (RAFT_TERM, "current Raft term"),
    (RAFT_LEADER_ID, "id of the known leader, 0 if none"),
    (RAFT_LAST_LOG_INDEX, "index of the last entry in the log"),
    (RAFT_COMMITTED_INDEX, "index of the last committed entry"),
    (RAFT_APPLIED_INDEX, "index of the last applied entry"),
    (
        RAFT_REPLICATION_LAG,
        "entries a member is behind the leader (leader only, label follower)",
    ),
    (
        RAFT_HAS_QUORUM,
        "1 while a leader that can reach a majority is known",
    ),
    (ENTRIES_APPLIED, "log entries applied to the ledger"),
    (EVENTS_APPLIED, "accounts, transfers and txns applied"),
    (SNAPSHOTS_BUILT, "snapshots built"),
    (SNAPSHOTS_INSTALLED, "snapshots installed from the leader"),
    (LOG_PURGES, "log purges (entries dropped behind a snapshot)"),
    (GRPC_REQUESTS, "gRPC requests by method and result code"),
    (
        GROUP_COMMIT_BATCH,
        "client requests packed into one log entry",
    ),
    (
        STORAGE_FSYNC_SECONDS,
        "time of one fsync of the write-ahead log",
    ),
    (APPLY_SECONDS, "time to apply one log entry"),
    (GRPC_REQUEST_SECONDS, "gRPC request latency by method"),
    (ROCKSDB_LIVE_DATA_BYTES, "RocksDB's estimate of live data"),
    (
        ROCKSDB_PENDING_COMPACTION_BYTES,
        "RocksDB's estimate of bytes compaction must rewrite",
    ),
];
