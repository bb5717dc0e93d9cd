//! The ledger cluster as tally-pay sees it: each configured node's own Raft status, asked
//! concurrently, for the dashboard's cluster page.

use tally_client::NodeStatus;

use crate::flows::Pay;

/// One configured node: its status, or why it did not answer.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The address tally-pay is configured with (`pay.cluster`).
    pub addr: String,
    pub status: Result<NodeStatus, String>,
    /// Log entries the node's applied index is behind the leader's last log index; `None`
    /// without an answering leader or from a node that did not answer.
    pub lag: Option<u64>,
}

impl NodeView {
    pub fn is_leader(&self) -> bool {
        self.status.as_ref().is_ok_and(|s| s.role == "leader")
    }
}

impl Pay {
    /// The status of every node of `pay.cluster`; a node that does not answer within the
    /// client's request timeout is shown as down with the error.
    pub async fn cluster_status(&self) -> Vec<NodeView> {
        let client = self.store.client();
        let addrs = self.config.cluster_addrs();
        let answers =
            futures::future::join_all(addrs.iter().map(|addr| async move {
                client.node_status(addr).await.map_err(|e| e.to_string())
            }))
            .await;
        let leader_last = answers
            .iter()
            .filter_map(|a| a.as_ref().ok())
            .find(|s| s.role == "leader")
            .map(|s| s.last_log_index);
        addrs
            .into_iter()
            .zip(answers)
            .map(|(addr, status)| {
                let lag = match (&status, leader_last) {
                    (Ok(s), Some(last)) => Some(last.saturating_sub(s.last_applied)),
                    _ => None,
                };
                NodeView { addr, status, lag }
            })
            .collect()
    }
}
