//! openraft glue: the type config, the log store and state-machine adapter over [`Storage`],
//! group commit, and [`RaftNode`], the handle the gRPC layer and the simulator drive.
//!
//! openraft's types stay inside this module (and the network adapters), so an upgrade of the
//! pinned alpha touches few files.
//!
//! [`Storage`]: crate::storage::Storage

mod account_cache;
mod batcher;
mod error;
mod log_store;
mod node;
mod state_machine;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ledger::{Command, CommandResult};

pub use error::NodeError;
#[cfg(feature = "planted-bugs")]
pub use log_store::LogStoreFaults;
pub use log_store::{stored_purged, stored_vote, LogStore};
#[cfg(feature = "planted-bugs")]
pub use node::Faults;
pub use node::{NodeStatus, RaftNode, RaftSettings, ReadConsistency};
pub use state_machine::{
    applied_state_of, restore_backup, write_backup, BackupFile, SharedState, StateMachineStore,
    BACKUP_BLOB_PREFIX,
};

pub type NodeId = u64;

/// What a log entry carries: client commands packed by group commit, stamped with the
/// leader's clock (the only time the state machine ever sees).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub timestamp_ns: u64,
    pub kind: RequestKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestKind {
    /// One or more client requests, applied in order in one atomic write.
    Ledger(Vec<Command>),
    /// Every replica computes its state digest at this entry (for `tallyctl verify`).
    Checkpoint,
}

impl fmt::Display for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RequestKind::Ledger(commands) => {
                write!(formatter, "ledger({} commands)", commands.len())
            }
            RequestKind::Checkpoint => write!(formatter, "checkpoint"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ledger(Vec<CommandResult>),
    Checkpoint,
    Empty,
}

/// The async runtime: tokio, with openraft's randomness drawn from a seed so the simulator can
/// replay a run. Production seeds it from the clock (see [`RaftNode::start`]).
pub type Runtime =
    openraft_rt::deterministic_rng::DeterministicRng<openraft_rt_tokio::TokioRuntime>;

openraft::declare_raft_types!(
    /// Tally's openraft type configuration.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        AsyncRuntime = Runtime,
);

pub type LedgerRaft = openraft::Raft<TypeConfig, StateMachineStore>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotData = Box<dyn crate::storage::Blob>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// openraft's wire types, re-exported for the network adapters.
pub mod wire {
    pub use openraft::error::ReplicationClosed;
    pub use openraft::error::{RPCError, RaftError, StreamingError, Unreachable};
    pub use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
    pub use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    };
    pub use openraft::{BasicNode, OptionalSend};

    use super::TypeConfig;
    pub type AppendRequest = AppendEntriesRequest<TypeConfig>;
    pub type AppendResponse = AppendEntriesResponse<TypeConfig>;
    pub type VoteReq = VoteRequest<TypeConfig>;
    pub type VoteResp = VoteResponse<TypeConfig>;
    pub type SnapshotResp = SnapshotResponse<TypeConfig>;
    pub type TransferReq = TransferLeaderRequest<TypeConfig>;
    pub type TransferResp = TransferLeaderResponse<TypeConfig>;
    pub type RpcError = RPCError<TypeConfig>;
    pub type StreamError = StreamingError<TypeConfig>;
}
