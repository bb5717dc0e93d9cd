//! [`NodeError`], what a [`RaftNode`](super::RaftNode) call fails with, and the mapping of
//! openraft's write errors onto it. Its own module, so the node and group commit (`batcher`)
//! both use it without importing each other.

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;

use super::{NodeId, TypeConfig};

/// Why a node call failed; the gRPC layer turns it into a `Status` in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("not leader")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    #[error("the entry was discarded by a leader change; its outcome is unknown, retry with the same ids: {0}")]
    OutcomeUnknown(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Writes are refused: the storage is (nearly) full.
    #[error("{0}")]
    DiskFull(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("the node stopped: {0}")]
    Fatal(String),
}

/// The answer of a node that is not the leader, naming the leader when it knows it.
pub(super) fn forward(leader_id: Option<NodeId>, leader_node: Option<BasicNode>) -> NodeError {
    NodeError::NotLeader {
        leader_id,
        leader_addr: leader_node.map(|node| node.addr),
    }
}

/// openraft's answer to a client write, as a `NodeError`.
pub(super) fn map_write_error(
    error: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
) -> NodeError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(to)) => {
            forward(to.leader_id, to.leader_node)
        }
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(to)) => {
            NodeError::OutcomeUnknown(to.to_string())
        }
        RaftError::APIError(other) => NodeError::Invalid(other.to_string()),
        RaftError::Fatal(fatal) => NodeError::Fatal(fatal.to_string()),
    }
}
