//! tonic services (ledger API, admin, Raft RPCs) and the gRPC Raft network; protobuf stays here.

mod admin_service;
pub mod audit;
pub mod auth;
mod convert;
mod ledger_service;
mod network;
mod raft_service;
mod request_metrics;
mod tls;

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
pub use tls::NodeTls;

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
        // Not retryable on another node: the leader's disk stays full until someone frees it.
        NodeError::DiskFull(message) => Status::resource_exhausted(message),
        NodeError::Invalid(message) => Status::invalid_argument(message),
        NodeError::Storage(message) => Status::internal(format!("storage: {message}")),
        NodeError::Fatal(message) => Status::internal(format!("node stopped: {message}")),
    }
}

/// Serves every service on `listener` until `shutdown` completes. With `tls`, connections are
/// TLS (client certificates verified against the cluster CA when presented) and every request
/// passes the role check of `policy`; a plain-text connection is answered, on every call, with
/// UNAUTHENTICATED and [`auth::TLS_REQUIRED_MESSAGE`]. Without `tls` (an `--insecure` node),
/// everything is plain text.
pub async fn serve(
    node: Arc<RaftNode>,
    listener: tokio::net::TcpListener,
    tls: Option<NodeTls>,
    policy: Arc<auth::AuthPolicy>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    use futures::FutureExt;
    let shutdown = shutdown.shared();
    let Some(tls) = tls else {
        return routes(&node, auth::AuthLayer::new(policy), None)?
            .serve_with_incoming_shutdown(tokio_stream_of(listener), shutdown)
            .await;
    };
    let (tls_streams, plain_streams) = split_by_first_byte(listener);
    let secure = routes(&node, auth::AuthLayer::new(policy), Some(&tls))?
        .serve_with_incoming_shutdown(tls_streams, shutdown.clone());
    let plain = routes(&node, auth::AuthLayer::refuse_plain_text(), None)?
        .serve_with_incoming_shutdown(plain_streams, shutdown);
    let (secure, _) = futures::future::join(secure, plain).await;
    secure
}

type Routed = tonic::transport::server::Router<
    tower::layer::util::Stack<
        auth::AuthLayer,
        tower::layer::util::Stack<
            request_metrics::RequestMetricsLayer,
            tower::layer::util::Identity,
        >,
    >,
>;

fn routes(
    node: &Arc<RaftNode>,
    layer: auth::AuthLayer,
    tls: Option<&NodeTls>,
) -> Result<Routed, tonic::transport::Error> {
    let ledger = LedgerServer::new(ledger_service::LedgerApi::new(node.clone()))
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
    let admin = AdminServer::new(admin_service::AdminApi::new(node.clone()));
    let raft = RaftServer::new(raft_service::RaftApi::new(node.clone()))
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX * 4)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX * 4);
    let mut builder = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        // Clients that cancel many calls (short deadlines) reset their streams; h2's default
        // answers 20 such resets with GOAWAY, failing every other call on the connection.
        .http2_max_pending_accept_reset_streams(Some(
            crate::limits::HTTP2_PENDING_ACCEPT_RESET_STREAMS_MAX,
        ));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    Ok(builder
        .layer(request_metrics::RequestMetricsLayer)
        .layer(layer)
        .add_service(ledger)
        .add_service(admin)
        .add_service(raft))
}

/// First byte of a TLS handshake record; a plain-text HTTP/2 client starts with `P` (`PRI *`).
const TLS_HANDSHAKE_BYTE: u8 = 0x16;

type Streams = futures::stream::BoxStream<'static, Result<tokio::net::TcpStream, std::io::Error>>;

/// Accepts connections and sorts them by their first byte (peeked, not consumed) into TLS and
/// plain-text streams, so a plain-text client gets an answer that says what is wrong instead of
/// a reset. Each connection is sorted on its own task, so a silent one holds up no other.
fn split_by_first_byte(listener: tokio::net::TcpListener) -> (Streams, Streams) {
    use crate::limits::TLS_FIRST_BYTE_TIMEOUT;
    let (tls_sender, tls_receiver) = tokio::sync::mpsc::unbounded_channel();
    let (plain_sender, plain_receiver) = tokio::sync::mpsc::unbounded_channel();
    crate::clock::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (to_tls, to_plain) = (tls_sender.clone(), plain_sender.clone());
            crate::clock::spawn(async move {
                let mut first = [0u8; 1];
                let peeked = tokio::time::timeout(TLS_FIRST_BYTE_TIMEOUT, stream.peek(&mut first));
                match peeked.await {
                    Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_BYTE => {
                        let _ = to_tls.send(Ok(stream));
                    }
                    Ok(Ok(1)) => {
                        let _ = to_plain.send(Ok(stream));
                    }
                    // Closed, failed or silent: drop it.
                    _ => {}
                }
            });
            if tls_sender.is_closed() {
                return;
            }
        }
    });
    let receive = |receiver: tokio::sync::mpsc::UnboundedReceiver<_>| -> Streams {
        Box::pin(futures::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        ))
    };
    (receive(tls_receiver), receive(plain_receiver))
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
