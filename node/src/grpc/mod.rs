//! tonic services (ledger API, admin, Raft RPCs) and the gRPC Raft network; protobuf stays here.

mod admin_service;
mod convert;
mod ledger_service;
mod network;
mod raft_service;

use std::net::SocketAddr;
use std::sync::Arc;

use tally_proto::v1::admin_server::AdminServer;
use tally_proto::v1::ledger_server::LedgerServer;
use tally_proto::v1::raft_server::RaftServer;
use tonic::metadata::MetadataValue;
use tonic::Status;

use crate::limits::GRPC_MESSAGE_BYTES_MAX;
use crate::raft::{NodeError, RaftNode};

pub use network::{GrpcNetwork, GrpcNetworkFactory};

/// Metadata key of the leader hint on a "not leader" answer: `<id>=<host:port>`.
pub const LEADER_METADATA_KEY: &str = "x-tally-leader";

/// The one place node errors become gRPC statuses.
pub fn status_of(error: NodeError) -> Status {
    match error {
        NodeError::NotLeader {
            leader_id,
            leader_addr,
        } => {
            let mut status = Status::unavailable("not leader");
            if let (Some(id), Some(addr)) = (leader_id, leader_addr) {
                if let Ok(value) = MetadataValue::try_from(format!("{id}={addr}")) {
                    status.metadata_mut().insert(LEADER_METADATA_KEY, value);
                }
            }
            status
        }
        NodeError::OutcomeUnknown(message) => Status::unavailable(format!(
            "outcome unknown, retry with the same ids: {message}"
        )),
        NodeError::Unavailable(message) => Status::unavailable(message),
        NodeError::Invalid(message) => Status::invalid_argument(message),
        NodeError::Storage(message) => Status::internal(format!("storage: {message}")),
        NodeError::Fatal(message) => Status::internal(format!("node stopped: {message}")),
    }
}

/// Serves every service on `listener` until `shutdown` completes.
pub async fn serve(
    node: Arc<RaftNode>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let ledger = LedgerServer::new(ledger_service::LedgerApi::new(node.clone()))
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
    let admin = AdminServer::new(admin_service::AdminApi::new(node.clone()));
    let raft = RaftServer::new(raft_service::RaftApi::new(node))
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX * 4)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX * 4);
    let incoming = tokio_stream_of(listener);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(ledger)
        .add_service(admin)
        .add_service(raft)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _): (_, SocketAddr)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}
