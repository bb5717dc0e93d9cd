//! A node's Raft status in plain Rust types, so callers above the client (tally-pay's dashboard)
//! see no protobuf.

use crate::{Client, ClientError};

/// What one node says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub addr: String,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    pub term: u64,
    /// The leader it knows of, if any.
    pub leader_id: Option<u64>,
    pub last_log_index: u64,
    pub last_applied: u64,
    /// On a leader: a majority of the voters acknowledged it recently.
    pub has_quorum: bool,
    /// On a leader: every other member as the leader sees it.
    pub followers: Vec<FollowerStatus>,
}

/// A member as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    pub id: u64,
    pub voter: bool,
    /// The last log index the leader knows the member holds.
    pub matched_index: u64,
    /// Milliseconds since the member last answered the leader; `None` if it never has.
    pub ack_age_ms: Option<u64>,
}

impl Client {
    /// The Raft status of the node at `addr`.
    pub async fn node_status(&self, addr: &str) -> Result<NodeStatus, ClientError> {
        let reply = self.status(addr).await?;
        Ok(NodeStatus {
            id: reply.id,
            addr: reply.addr,
            role: reply.role,
            term: reply.term,
            leader_id: (reply.leader_id != 0).then_some(reply.leader_id),
            last_log_index: reply.last_log_index,
            last_applied: reply.last_applied,
            has_quorum: reply.has_quorum,
            followers: reply
                .followers
                .into_iter()
                .map(|f| FollowerStatus {
                    id: f.id,
                    voter: f.voter,
                    matched_index: f.matched_index,
                    ack_age_ms: f.answered.then_some(f.ack_age_ms),
                })
                .collect(),
        })
    }
}
