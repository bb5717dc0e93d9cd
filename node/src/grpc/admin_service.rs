//! The operators' `Admin` service: bootstrap, membership, status, checkpoints and digests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tally_proto::v1 as pb;
use tally_proto::v1::admin_server::Admin;
use tonic::{Request, Response, Status};

use super::audit::{self, Origin};
use super::status_of;
use crate::raft::{NodeStatus, RaftNode};

pub struct AdminApi {
    node: Arc<RaftNode>,
}

impl AdminApi {
    pub fn new(node: Arc<RaftNode>) -> Self {
        AdminApi { node }
    }
}

fn node_list(nodes: &BTreeMap<u64, String>) -> Vec<pb::Node> {
    nodes
        .iter()
        .map(|(id, addr)| pb::Node {
            id: *id,
            addr: addr.clone(),
        })
        .collect()
}

fn status_to_pb(status: NodeStatus) -> pb::StatusReply {
    pb::StatusReply {
        id: status.id,
        addr: status.addr,
        role: status.role.to_string(),
        term: status.term,
        leader_id: status.leader_id.unwrap_or(0),
        leader_addr: status.leader_addr.unwrap_or_default(),
        last_log_index: status.last_log_index,
        last_applied: status.last_applied,
        snapshot_index: status.snapshot_index,
        purged_index: status.purged_index,
        voters: node_list(&status.voters),
        learners: node_list(&status.learners),
        has_quorum: status.quorum.has_quorum == Some(true),
        quorum_ack_age_ms: status.quorum.quorum_ack_age_ms.unwrap_or(0),
        has_quorum_ack: status.quorum.quorum_ack_age_ms.is_some(),
        followers: status
            .quorum
            .followers
            .iter()
            .map(|(id, view)| pb::FollowerProgress {
                id: *id,
                voter: view.is_voter,
                matched_index: view.matched_index,
                ack_age_ms: view.ack_age_ms.unwrap_or(0),
                answered: view.ack_age_ms.is_some(),
            })
            .collect(),
    }
}

fn checked_node(node: &pb::Node) -> Result<(u64, String), Status> {
    if node.id == 0 {
        return Err(Status::invalid_argument("node ids start at 1"));
    }
    if node.addr.parse::<std::net::SocketAddr>().is_err() && !node.addr.contains(':') {
        return Err(Status::invalid_argument(format!(
            "node {}: address {:?} is not HOST:PORT",
            node.id, node.addr
        )));
    }
    Ok((node.id, node.addr.clone()))
}

/// Bytes per streamed backup chunk.
const BACKUP_CHUNK_BYTES: usize = 1 << 20;

type BackupStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

/// Writes the backup (off the async workers), then streams a header chunk, the file in chunks and
/// a last chunk, then removes the file. The response starts at once: the client's per-attempt
/// timeout is not spent waiting for a large backup to be written.
fn stream_backup(node: Arc<RaftNode>) -> BackupStream {
    use std::io::Read as _;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<pb::BackupChunk, Status>>(4);
    crate::clock::spawn(async move {
        let writer = node.clone();
        let file = match tokio::task::spawn_blocking(move || writer.backup()).await {
            Ok(Ok(file)) => file,
            Ok(Err(error)) => {
                let _ = sender.send(Err(status_of(error))).await;
                return;
            }
            Err(error) => {
                let _ = sender
                    .send(Err(Status::internal(format!(
                        "the backup task failed: {error}"
                    ))))
                    .await;
                return;
            }
        };
        tracing::info!(
            applied_index = file.applied_index,
            bytes = file.bytes,
            "streaming a backup"
        );
        let storage = node.storage_handle();
        let mut blob = match storage.open_blob(&file.blob) {
            Ok(Some(blob)) => blob,
            Ok(None) => {
                let _ = sender
                    .send(Err(Status::internal("the backup file vanished")))
                    .await;
                return;
            }
            Err(error) => {
                let _ = sender
                    .send(Err(Status::internal(format!(
                        "opening the backup: {error}"
                    ))))
                    .await;
                return;
            }
        };
        let mut pending = Some(pb::BackupChunk {
            applied_index: file.applied_index,
            applied_term: file.applied_term,
            digest: file.digest.clone(),
            total_bytes: file.bytes,
            ..Default::default()
        });
        loop {
            let chunk = if let Some(header) = pending.take() {
                Ok(header)
            } else {
                let mut data = vec![0u8; BACKUP_CHUNK_BYTES];
                match blob.read(&mut data) {
                    Ok(0) => Ok(pb::BackupChunk {
                        last: true,
                        ..Default::default()
                    }),
                    Ok(read) => {
                        data.truncate(read);
                        Ok(pb::BackupChunk {
                            data,
                            ..Default::default()
                        })
                    }
                    Err(error) => Err(Status::internal(format!("reading the backup: {error}"))),
                }
            };
            let done = !matches!(&chunk, Ok(chunk) if !chunk.last);
            if sender.send(chunk).await.is_err() || done {
                break;
            }
        }
        drop(blob);
        if let Err(error) = storage.remove_blob(&file.blob) {
            tracing::warn!(%error, blob = %file.blob, "removing a streamed backup");
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Box::pin(stream)
}

#[tonic::async_trait]
impl Admin for AdminApi {
    type BackupStream = BackupStream;

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let origin = Origin::of(&request, "Backup");
        tracing::info!(actor = ?origin, "backup requested");
        self.node
            .read_barrier(crate::raft::ReadConsistency::Linearizable)
            .await
            .map_err(status_of)?;
        Ok(Response::new(stream_backup(self.node.clone())))
    }

    async fn init_cluster(
        &self,
        request: Request<pb::InitClusterRequest>,
    ) -> Result<Response<pb::InitClusterReply>, Status> {
        let request = request.into_inner();
        if request.nodes.is_empty() {
            return Err(Status::invalid_argument("name at least one node"));
        }
        let mut members = BTreeMap::new();
        for node in &request.nodes {
            let (id, addr) = checked_node(node)?;
            if members.insert(id, addr).is_some() {
                return Err(Status::invalid_argument(format!(
                    "node {id} is listed twice"
                )));
            }
        }
        if !members.contains_key(&self.node.id()) {
            return Err(Status::invalid_argument(format!(
                "this node ({}) is not in the list; send init to one of the listed nodes",
                self.node.id()
            )));
        }
        self.node.initialize(members).await.map_err(status_of)?;
        Ok(Response::new(pb::InitClusterReply {}))
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::AddLearnerReply>, Status> {
        let origin = Origin::of(&request, "AddLearner");
        let node = request
            .into_inner()
            .node
            .ok_or_else(|| Status::invalid_argument("node is missing"))?;
        let (id, addr) = checked_node(&node)?;
        audit::record(
            &self.node,
            &origin,
            "cluster.add_learner",
            format!("node-{id} {addr}"),
        )
        .await?;
        let log_index = self.node.add_learner(id, addr).await.map_err(status_of)?;
        Ok(Response::new(pb::AddLearnerReply { log_index }))
    }

    async fn change_membership(
        &self,
        request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::ChangeMembershipReply>, Status> {
        let origin = Origin::of(&request, "ChangeMembership");
        let request = request.into_inner();
        let voters: BTreeSet<u64> = request.voters.into_iter().collect();
        let remove: BTreeSet<u64> = request.remove.into_iter().collect();
        if voters.is_empty() && remove.is_empty() {
            return Err(Status::invalid_argument("name voters or nodes to remove"));
        }
        if let Some(both) = voters.intersection(&remove).next() {
            return Err(Status::invalid_argument(format!(
                "node {both} is both a voter and removed"
            )));
        }
        let described = format!("voters {voters:?} remove {remove:?}");
        audit::record(&self.node, &origin, "cluster.change_membership", described).await?;
        let log_index = self
            .node
            .change_membership(voters, remove)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ChangeMembershipReply { log_index }))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderReply>, Status> {
        let origin = Origin::of(&request, "TransferLeader");
        let to = request.into_inner().to;
        audit::record(
            &self.node,
            &origin,
            "cluster.transfer_leader",
            format!("node-{to}"),
        )
        .await?;
        let term = self
            .node
            .transfer_leader(to, std::time::Duration::from_secs(10))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::TransferLeaderReply {
            leader_id: to,
            term,
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        Ok(Response::new(status_to_pb(self.node.status())))
    }

    async fn checkpoint(
        &self,
        _request: Request<pb::CheckpointRequest>,
    ) -> Result<Response<pb::CheckpointReply>, Status> {
        let log_index = self.node.checkpoint().await.map_err(status_of)?;
        Ok(Response::new(pb::CheckpointReply { log_index }))
    }

    async fn get_digest(
        &self,
        request: Request<pb::GetDigestRequest>,
    ) -> Result<Response<pb::GetDigestReply>, Status> {
        let log_index = request.into_inner().log_index;
        let Some(report) = self.node.digest(log_index) else {
            if self.node.status().last_applied >= log_index {
                return Err(Status::not_found(format!(
                    "no digest at index {log_index}: it was not a checkpoint, or this node restarted or installed a snapshot since"
                )));
            }
            return Ok(Response::new(pb::GetDigestReply {
                ready: false,
                log_index,
                ..Default::default()
            }));
        };
        let report = report
            .map_err(|error| Status::data_loss(format!("computing the digest failed: {error}")))?;
        let ledgers = report
            .ledgers
            .iter()
            .map(|(ledger, totals)| pb::LedgerTotals {
                ledger: *ledger,
                debits_pending: Some(totals.debits_pending.into()),
                debits_posted: Some(totals.debits_posted.into()),
                credits_pending: Some(totals.credits_pending.into()),
                credits_posted: Some(totals.credits_posted.into()),
                accounts: report.ledger_accounts.get(ledger).copied().unwrap_or(0),
            })
            .collect();
        Ok(Response::new(pb::GetDigestReply {
            ready: true,
            log_index,
            digest: report.digest,
            ledgers,
            accounts: report.accounts,
            transfers: report.transfers,
            records: report.records,
        }))
    }
}
