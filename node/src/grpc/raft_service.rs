//! The internal `Raft` service: peers' AppendEntries, Vote and snapshot streams, handed to
//! openraft. Answers are `Result<_, String>` encoded with the node's codec.

use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tally_proto::v1 as pb;
use tally_proto::v1::raft_server::Raft;
use tonic::{Request, Response, Status, Streaming};

use crate::raft::wire::*;
use crate::raft::{RaftNode, Snapshot, SnapshotMeta, Vote};
use crate::storage::codec::{from_bytes, to_bytes};
use crate::storage::snapshot::verify_snapshot;

pub struct RaftApi {
    node: Arc<RaftNode>,
    incoming: AtomicU64,
}

impl RaftApi {
    pub fn new(node: Arc<RaftNode>) -> Self {
        RaftApi {
            node,
            incoming: AtomicU64::new(0),
        }
    }
}

fn answer<T: serde::Serialize>(result: Result<T, String>) -> Response<pb::RaftPayload> {
    Response::new(pb::RaftPayload {
        data: to_bytes(&result),
    })
}

/// Refuses a Raft call from a peer speaking a newer protocol than this node (a call without the
/// header comes from a node that predates versioning: version 1).
fn check_version<T>(request: &Request<T>) -> Result<(), Status> {
    use super::network::{RAFT_PROTOCOL_VERSION, RAFT_VERSION_HEADER};
    let version = match request.metadata().get(RAFT_VERSION_HEADER) {
        None => 1,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or_else(|| Status::invalid_argument("unreadable tally-raft-version"))?,
    };
    if version > RAFT_PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "the peer speaks Raft protocol {version}, this node only {RAFT_PROTOCOL_VERSION}: \
             upgrade this node"
        )));
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(payload: &pb::RaftPayload) -> Result<T, Status> {
    from_bytes(&payload.data)
        .map_err(|error| Status::invalid_argument(format!("undecodable raft message: {error}")))
}

impl RaftApi {
    /// Receives a snapshot stream into a blob, checking each chunk's crc32 and offset.
    async fn receive_snapshot(
        &self,
        mut stream: Streaming<pb::SnapshotChunk>,
    ) -> Result<(Vote, Snapshot, String), Status> {
        let name = format!(
            "incoming-{}-{}.bin",
            self.node.id(),
            self.incoming.fetch_add(1, Ordering::Relaxed)
        );
        let storage = self.node.storage_handle();
        let mut blob = storage
            .create_blob(&name)
            .map_err(|error| Status::internal(error.to_string()))?;
        let mut header: Option<(Vote, SnapshotMeta)> = None;
        let mut offset = 0u64;
        loop {
            let chunk = stream
                .message()
                .await?
                .ok_or_else(|| Status::data_loss("snapshot stream ended before done"))?;
            if header.is_none() {
                header = Some(from_bytes(&chunk.meta).map_err(|error| {
                    Status::invalid_argument(format!("snapshot meta: {error}"))
                })?);
            }
            if chunk.offset != offset {
                return Err(Status::data_loss(format!(
                    "snapshot chunk at {} where {offset} was expected",
                    chunk.offset
                )));
            }
            if crc32fast::hash(&chunk.data) != chunk.crc32 {
                return Err(Status::data_loss(format!(
                    "snapshot chunk at {offset} fails its crc32"
                )));
            }
            blob.write_all(&chunk.data)
                .map_err(|error| Status::internal(error.to_string()))?;
            offset += chunk.data.len() as u64;
            if chunk.done {
                break;
            }
        }
        blob.flush()
            .map_err(|error| Status::internal(error.to_string()))?;
        verify_snapshot(blob.as_mut()).map_err(|error| Status::data_loss(error.to_string()))?;
        blob.seek(SeekFrom::Start(0))
            .map_err(|error| Status::internal(error.to_string()))?;
        let (vote, meta) = header.ok_or_else(|| Status::data_loss("empty snapshot stream"))?;
        Ok((
            vote,
            Snapshot {
                meta,
                snapshot: blob,
            },
            name,
        ))
    }
}

#[tonic::async_trait]
impl Raft for RaftApi {
    async fn append_entries(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        check_version(&request)?;
        let rpc: AppendRequest = decode(request.get_ref())?;
        let result = self.node.scoped(self.node.raft().append_entries(rpc)).await;
        Ok(answer(result.map_err(|error| error.to_string())))
    }

    async fn vote(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        check_version(&request)?;
        let rpc: VoteReq = decode(request.get_ref())?;
        let result = self.node.scoped(self.node.raft().vote(rpc)).await;
        Ok(answer(result.map_err(|error| error.to_string())))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        check_version(&request)?;
        let rpc: TransferReq = decode(request.get_ref())?;
        let result = self
            .node
            .scoped(self.node.raft().handle_transfer_leader(rpc))
            .await;
        Ok(answer(result.map_err(|error| error.to_string())))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        check_version(&request)?;
        let (vote, snapshot, name) = self.receive_snapshot(request.into_inner()).await?;
        let result = self
            .node
            .scoped(self.node.raft().install_full_snapshot(vote, snapshot))
            .await;
        let _ = self.node.storage_handle().remove_blob(&name);
        Ok(answer::<SnapshotResp>(
            result.map_err(|error| error.to_string()),
        ))
    }
}
