//! [`SimNetwork`]: openraft's network as the simulator's world: a message is delivered by calling
//! the target replica's handler directly, after the world decided its fate (delay, loss,
//! duplication, a partition or a paused endpoint holding it). Reordering follows from random
//! delays and late duplicates. A lost message is never answered: the sender's RPC deadline
//! turns it into `Unreachable`, as on a real network.

use std::fmt;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use tally_node::raft::wire::*;
use tally_node::raft::{NodeId, RaftNode, Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote};

use crate::world::World;

#[derive(Debug)]
struct NetFailure {
    from: NodeId,
    to: NodeId,
    reason: String,
}

impl fmt::Display for NetFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "sim rpc {} -> {}: {}",
            self.from, self.to, self.reason
        )
    }
}

impl std::error::Error for NetFailure {}

/// Creates one [`SimNetwork`] per peer for one incarnation of one replica.
pub struct SimNetworkFactory {
    world: Arc<World>,
    from: NodeId,
    incarnation: u64,
}

impl SimNetworkFactory {
    pub fn new(world: Arc<World>, from: NodeId, incarnation: u64) -> Self {
        SimNetworkFactory {
            world,
            from,
            incarnation,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for SimNetworkFactory {
    type Network = SimNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        SimNetwork {
            world: self.world.clone(),
            from: self.from,
            incarnation: self.incarnation,
            target,
        }
    }
}

pub struct SimNetwork {
    world: Arc<World>,
    from: NodeId,
    incarnation: u64,
    target: NodeId,
}

impl SimNetwork {
    fn unreachable(&self, reason: impl Into<String>) -> Unreachable<TypeConfig> {
        Unreachable::new(&NetFailure {
            from: self.from,
            to: self.target,
            reason: reason.into(),
        })
    }

    /// One request/response exchange: request leg, the target's handler, response leg.
    async fn exchange<Req, Resp, H, F>(
        world: Arc<World>,
        (from, incarnation, to): (NodeId, u64, NodeId),
        kind: &'static str,
        request: Req,
        handle: H,
    ) -> Result<Resp, String>
    where
        H: FnOnce(Arc<RaftNode>, Req) -> F,
        F: Future<Output = Result<Resp, String>>,
    {
        world.transit(from, incarnation, to, kind).await?;
        let (node, target_incarnation) = world
            .live_node(to)
            .ok_or_else(|| "target is down".to_string())?;
        let response = handle(node, request).await?;
        world.transit(to, target_incarnation, from, "reply").await?;
        Ok(response)
    }

    async fn call<Req, Resp, H, F>(
        &self,
        kind: &'static str,
        request: Req,
        option: &RPCOption,
        handle: H,
    ) -> Result<Resp, RpcError>
    where
        Req: Clone + Send + 'static,
        Resp: Send + 'static,
        H: Fn(Arc<RaftNode>, Req) -> F + Clone + Send + 'static,
        F: Future<Output = Result<Resp, String>> + Send,
    {
        let route = (self.from, self.incarnation, self.target);
        if self.world.duplicate_message() {
            let world = self.world.clone();
            let copy = request.clone();
            let handle = handle.clone();
            crate::spawn(async move {
                let _ = Self::exchange(world, route, "duplicate", copy, handle).await;
            });
        }
        let exchange = Self::exchange(self.world.clone(), route, kind, request, handle);
        match tokio::time::timeout(option.hard_ttl(), exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(reason)) => Err(RPCError::Unreachable(self.unreachable(reason))),
            Err(_) => Err(RPCError::Unreachable(self.unreachable("timed out"))),
        }
    }
}

async fn install_snapshot(
    node: Arc<RaftNode>,
    (vote, meta): (Vote, SnapshotMeta),
    data: Vec<u8>,
    name: String,
) -> Result<SnapshotResp, String> {
    let storage = node.storage_handle();
    let mut blob = storage.create_blob(&name).map_err(|e| e.to_string())?;
    blob.write_all(&data).map_err(|e| e.to_string())?;
    blob.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let received = Snapshot {
        meta,
        snapshot: blob,
    };
    let result = node
        .scoped(node.raft().install_full_snapshot(vote, received))
        .await;
    let _ = storage.remove_blob(&name);
    result.map_err(|error| error.to_string())
}

fn read_all(mut blob: SnapshotData) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    blob.seek(SeekFrom::Start(0))
        .and_then(|_| blob.read_to_end(&mut data))
        .map_err(|error| error.to_string())?;
    Ok(data)
}

impl RaftNetworkV2<TypeConfig> for SimNetwork {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendRequest,
        option: RPCOption,
    ) -> Result<AppendResponse, RpcError> {
        self.call("append", rpc, &option, |node, rpc| async move {
            let result = node.scoped(node.raft().append_entries(rpc)).await;
            result.map_err(|error| error.to_string())
        })
        .await
    }

    async fn vote(&mut self, rpc: VoteReq, option: RPCOption) -> Result<VoteResp, RpcError> {
        let world = self.world.clone();
        self.call("vote", rpc, &option, move |node, rpc| {
            let world = world.clone();
            async move {
                let response = node
                    .scoped(node.raft().vote(rpc))
                    .await
                    .map_err(|error| error.to_string())?;
                world.observe_vote(node.id(), &response.vote, response.vote_granted);
                Ok(response)
            }
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResp, StreamError> {
        let meta = snapshot.meta.clone();
        let data = read_all(snapshot.snapshot)
            .map_err(|reason| StreamingError::Unreachable(self.unreachable(reason)))?;
        let name = format!("incoming-{}-{}", self.from, self.world.next_seq());
        self.world.note(&format!(
            "snapshot {}->{} upto {:?} bytes {}",
            self.from,
            self.target,
            meta.last_log_id.as_ref().map(|log_id| log_id.index()),
            data.len()
        ));
        let request = (vote, meta);
        let route = (self.from, self.incarnation, self.target);
        let exchange = Self::exchange(
            self.world.clone(),
            route,
            "snapshot",
            request,
            move |node, request| install_snapshot(node, request, data, name),
        );
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            outcome = tokio::time::timeout(option.hard_ttl(), exchange) => match outcome {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(reason)) => Err(StreamingError::Unreachable(self.unreachable(reason))),
                Err(_) => Err(StreamingError::Unreachable(self.unreachable("timed out"))),
            },
        }
    }
}
