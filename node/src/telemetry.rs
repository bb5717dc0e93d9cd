//! The node's Prometheus endpoint: installs the exporter on `--metrics-listen` (its own HTTP
//! port, `GET /metrics`) and samples what is a state rather than an event (Raft role, indexes,
//! replication lag, RocksDB sizes) every [`SAMPLE_INTERVAL`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::metrics as m;
use crate::raft::RaftNode;
use crate::storage::Storage;

/// How often the state gauges are refreshed.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// Latency buckets (seconds): 50 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Batch-size buckets (requests per log entry), up to `REQUESTS_PER_ENTRY_MAX`.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

const ROLES: [&str; 5] = ["leader", "follower", "candidate", "learner", "shutdown"];

/// Starts the HTTP listener serving `/metrics`. Fails (naming the address) if it cannot bind.
pub fn install(listen: SocketAddr) -> anyhow::Result<()> {
    // Bind first so that a taken port is reported as such, not as a background error.
    std::net::TcpListener::bind(listen)
        .map_err(|error| anyhow::anyhow!("binding the metrics port {listen}: {error}"))?;
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| {
            builder
                .set_buckets_for_metric(Matcher::Full(m::GROUP_COMMIT_BATCH.into()), BATCH_BUCKETS)
        })
        .map_err(|error| anyhow::anyhow!("metrics buckets: {error}"))?
        .install()
        .map_err(|error| anyhow::anyhow!("starting the metrics endpoint on {listen}: {error}"))?;
    for (name, help) in m::ALL {
        metrics::describe_gauge!(*name, *help);
    }
    // Counters of rare events are exported from the start, at 0, rather than appearing only
    // after the first one (a snapshot every 20 000 entries).
    for name in [
        m::ENTRIES_APPLIED,
        m::EVENTS_APPLIED,
        m::SNAPSHOTS_BUILT,
        m::SNAPSHOTS_INSTALLED,
        m::LOG_PURGES,
    ] {
        metrics::counter!(name).increment(0);
    }
    Ok(())
}

/// Refreshes the state gauges until the task is dropped. The first sample is taken before this
/// returns its future, so the gauges are on the metrics page from the node's first answer on.
pub fn sample(
    node: Arc<RaftNode>,
    storage: Arc<dyn Storage>,
) -> impl std::future::Future<Output = ()> + Send {
    record_gauges(&node, storage.as_ref());
    async move {
        let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            record_gauges(&node, storage.as_ref());
        }
    }
}

fn record_gauges(node: &RaftNode, storage: &dyn Storage) {
    let status = node.status();
    for role in ROLES {
        let value = if role == status.role { 1.0 } else { 0.0 };
        metrics::gauge!(m::RAFT_ROLE, "role" => role).set(value);
    }
    metrics::gauge!(m::RAFT_TERM).set(status.term as f64);
    metrics::gauge!(m::RAFT_LEADER_ID).set(status.leader_id.unwrap_or(0) as f64);
    metrics::gauge!(m::RAFT_LAST_LOG_INDEX).set(status.last_log_index as f64);
    metrics::gauge!(m::RAFT_COMMITTED_INDEX).set(status.committed_index as f64);
    metrics::gauge!(m::RAFT_APPLIED_INDEX).set(status.last_applied as f64);
    let has_quorum = match status.quorum.has_quorum {
        Some(has) => has,
        None => status.leader_id.is_some(),
    };
    metrics::gauge!(m::RAFT_HAS_QUORUM).set(if has_quorum { 1.0 } else { 0.0 });
    for (id, follower) in &status.quorum.followers {
        let lag = status.last_log_index.saturating_sub(follower.matched_index);
        metrics::gauge!(m::RAFT_REPLICATION_LAG, "follower" => id.to_string()).set(lag as f64);
    }
    for (property, value) in storage.properties() {
        let name = match property {
            crate::storage::StorageProperty::LiveDataBytes => m::ROCKSDB_LIVE_DATA_BYTES,
            crate::storage::StorageProperty::PendingCompactionBytes => {
                m::ROCKSDB_PENDING_COMPACTION_BYTES
            }
        };
        metrics::gauge!(name).set(value as f64);
    }
}
