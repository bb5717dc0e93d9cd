//! [`GrpcNetwork`]: openraft's network over tonic. Messages are the node's own bincode
//! encoding inside protobuf `bytes`; snapshots stream in crc32-checked chunks.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tally_proto::v1 as pb;
use tally_proto::v1::raft_client::RaftClient;
use tonic::transport::{Channel, Endpoint};

use super::NodeTls;
use crate::limits::{GRPC_MESSAGE_BYTES_MAX, SNAPSHOT_CHUNK_BYTES};
use crate::raft::wire::*;
use crate::raft::{NodeId, Snapshot, SnapshotData, TypeConfig, Vote};
use crate::storage::codec::{from_bytes, to_bytes};

/// Creates one [`GrpcNetwork`] per peer: mutual TLS with the node's certificate when `tls` is
/// set, plain text for an `--insecure` node.
#[derive(Debug, Clone, Default)]
pub struct GrpcNetworkFactory {
    tls: Option<NodeTls>,
}

impl GrpcNetworkFactory {
    pub fn new(tls: Option<NodeTls>) -> Self {
        GrpcNetworkFactory { tls }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetworkFactory {
    type Network = GrpcNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        GrpcNetwork::new(target, &node.addr, self.tls.as_ref())
    }
}

pub struct GrpcNetwork {
    target: NodeId,
    client: Result<RaftClient<Channel>, String>,
    /// Whether the last call failed, and how many have failed in a row: the first failure and
    /// the recovery are logged, the calls in between only counted (heartbeats fail 10 times a
    /// second while a peer is down).
    down: AtomicBool,
    failures_in_a_row: AtomicU64,
}

/// The Raft protocol version this node speaks, sent with every Raft call (`tally-raft-version`);
/// a node refuses calls of a newer version than its own.
pub const RAFT_PROTOCOL_VERSION: u32 = 1;
pub const RAFT_VERSION_HEADER: &str = "tally-raft-version";

#[derive(Debug, thiserror::Error)]
#[error("raft rpc to node {target}: {message}")]
struct RpcFailure {
    target: NodeId,
    message: String,
}

impl GrpcNetwork {
    fn new(target: NodeId, addr: &str, tls: Option<&NodeTls>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .and_then(|endpoint| match tls {
                Some(tls) => endpoint.tls_config(tls.peer_config(target)),
                None => Ok(endpoint),
            })
            .map(|endpoint| {
                let channel = endpoint
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .connect_lazy();
                RaftClient::new(channel)
                    .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX * 4)
                    .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX * 4)
            })
            .map_err(|error| format!("bad address {addr:?}: {error}"));
        GrpcNetwork {
            target,
            client,
            down: AtomicBool::new(false),
            failures_in_a_row: AtomicU64::new(0),
        }
    }

    fn failure(&self, message: impl Into<String>) -> RpcFailure {
        RpcFailure {
            target: self.target,
            message: message.into(),
        }
    }

    fn client(&self) -> Result<RaftClient<Channel>, RpcError> {
        self.client
            .clone()
            .map_err(|message| RPCError::Unreachable(Unreachable::new(&self.failure(message))))
    }

    fn unreachable(&self, message: impl Into<String>) -> RpcError {
        RPCError::Unreachable(Unreachable::new(&self.failure(message)))
    }

    /// Sends one unary RPC with a deadline and decodes the answer.
    async fn call<Req, Resp, F, Fut>(
        &self,
        request: &Req,
        option: &RPCOption,
        send: F,
    ) -> Result<Resp, RpcError>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        F: FnOnce(RaftClient<Channel>, tonic::Request<pb::RaftPayload>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<pb::RaftPayload>, tonic::Status>>,
    {
        let outcome = async {
            let request = with_version(pb::RaftPayload {
                data: to_bytes(request),
            });
            let answer = tokio::time::timeout(option.hard_ttl(), send(self.client()?, request))
                .await
                .map_err(|_| self.unreachable(format!("timed out after {:?}", option.hard_ttl())))?
                .map_err(|status| self.unreachable(status.to_string()))?;
            let result: Result<Resp, String> = from_bytes(&answer.into_inner().data)
                .map_err(|error| self.unreachable(format!("bad answer: {error}")))?;
            result.map_err(|message| self.unreachable(message))
        }
        .await;
        self.note_health(outcome.as_ref().err());
        outcome
    }

    /// Logs the first failure to reach the peer and its recovery; counts the rest.
    fn note_health(&self, error: Option<&RpcError>) {
        match error {
            Some(error) => {
                let failures = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        peer = self.target,
                        %error,
                        "peer unreachable; further failures are counted until it answers again"
                    );
                } else if failures.is_multiple_of(600) {
                    tracing::warn!(peer = self.target, failures, "peer still unreachable");
                }
            }
            None => {
                if self.down.swap(false, Ordering::Relaxed) {
                    let failures = self.failures_in_a_row.swap(0, Ordering::Relaxed);
                    tracing::info!(peer = self.target, failures, "peer reachable again");
                }
            }
        }
    }
}

/// Wraps a Raft message with this node's protocol version.
fn with_version<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        RAFT_VERSION_HEADER,
        tonic::metadata::MetadataValue::from(RAFT_PROTOCOL_VERSION),
    );
    request
}

fn snapshot_chunks(
    vote: Vote,
    snapshot: Snapshot,
) -> impl futures::Stream<Item = pb::SnapshotChunk> + Send + 'static {
    let meta = to_bytes(&(vote, snapshot.meta));
    let state = (Some(meta), snapshot.snapshot, 0u64, false);
    futures::stream::unfold(
        state,
        |(meta, mut blob, offset, finished): (Option<Vec<u8>>, SnapshotData, u64, bool)| async move {
            if finished {
                return None;
            }
            let mut data = vec![0u8; SNAPSHOT_CHUNK_BYTES];
            let mut filled = 0;
            while filled < data.len() {
                match blob.read(&mut data[filled..]) {
                    Ok(0) => break,
                    Ok(read) => filled += read,
                    // The receiver sees a short, unfinished stream and rejects it.
                    Err(_) => return None,
                }
            }
            data.truncate(filled);
            let done = filled < SNAPSHOT_CHUNK_BYTES;
            let chunk = pb::SnapshotChunk {
                meta: meta.unwrap_or_default(),
                offset,
                crc32: crc32fast::hash(&data),
                data,
                done,
            };
            Some((chunk, (None, blob, offset + filled as u64, done)))
        },
    )
}

impl RaftNetworkV2<TypeConfig> for GrpcNetwork {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendRequest,
        option: RPCOption,
    ) -> Result<AppendResponse, RpcError> {
        self.call(&rpc, &option, |mut client, payload| async move {
            client.append_entries(payload).await
        })
        .await
    }

    async fn vote(&mut self, rpc: VoteReq, option: RPCOption) -> Result<VoteResp, RpcError> {
        self.call(&rpc, &option, |mut client, payload| async move {
            client.vote(payload).await
        })
        .await
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferReq,
        option: RPCOption,
    ) -> Result<TransferResp, RpcError> {
        self.call(&rpc, &option, |mut client, payload| async move {
            client.transfer_leader(payload).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResp, StreamError> {
        let mut client = self.client()?;
        let send = client.install_snapshot(with_version(snapshot_chunks(vote, snapshot)));
        let answer = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            answer = send => answer,
        };
        let answer = answer.map_err(|status| self.unreachable(status.to_string()))?;
        let result: Result<SnapshotResp, String> = from_bytes(&answer.into_inner().data)
            .map_err(|error| self.unreachable(format!("bad answer: {error}")))?;
        result.map_err(|message| {
            StreamingError::Unreachable(Unreachable::new(&self.failure(message)))
        })
    }
}
