//! The client against fake in-process Admin servers: leader hints, failover past a dead node,
//! and rejections returned without retrying.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tally_client::{Client, ClientError, ClientOptions, LEADER_METADATA_KEY};
use tally_proto::v1;
use tally_proto::v1::admin_server::{Admin, AdminServer};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// A node that is either the leader or a follower pointing at `leader_hint`.
struct FakeNode {
    leader_hint: Option<String>,
    calls: Arc<AtomicU32>,
}

impl FakeNode {
    fn not_leader(&self) -> Status {
        let mut status = Status::unavailable("not leader");
        if let Some(hint) = &self.leader_hint {
            status
                .metadata_mut()
                .insert(LEADER_METADATA_KEY, hint.parse().unwrap());
        }
        status
    }

    fn is_leader(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.leader_hint.is_none()
    }
}

#[tonic::async_trait]
impl Admin for FakeNode {
    async fn init_cluster(
        &self,
        _: Request<v1::InitClusterRequest>,
    ) -> Result<Response<v1::InitClusterReply>, Status> {
        Err(Status::failed_precondition("already initialized"))
    }

    async fn add_learner(
        &self,
        _: Request<v1::AddLearnerRequest>,
    ) -> Result<Response<v1::AddLearnerReply>, Status> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        Err(Status::invalid_argument("node.addr must not be empty"))
    }

    async fn change_membership(
        &self,
        _: Request<v1::ChangeMembershipRequest>,
    ) -> Result<Response<v1::ChangeMembershipReply>, Status> {
        Err(self.not_leader())
    }

    async fn status(
        &self,
        _: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusReply>, Status> {
        Ok(Response::new(v1::StatusReply {
            id: 9,
            role: "follower".into(),
            ..Default::default()
        }))
    }

    async fn checkpoint(
        &self,
        _: Request<v1::CheckpointRequest>,
    ) -> Result<Response<v1::CheckpointReply>, Status> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        Ok(Response::new(v1::CheckpointReply { log_index: 7 }))
    }

    async fn get_digest(
        &self,
        _: Request<v1::GetDigestRequest>,
    ) -> Result<Response<v1::GetDigestReply>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn transfer_leader(
        &self,
        _: Request<v1::TransferLeaderRequest>,
    ) -> Result<Response<v1::TransferLeaderReply>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    type BackupStream = futures::stream::Empty<Result<v1::BackupChunk, Status>>;

    async fn backup(
        &self,
        _: Request<v1::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
}

/// Serves `node` on a free localhost port; returns `host:port`.
async fn serve(node: FakeNode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AdminServer::new(node))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    addr
}

/// A localhost address nobody listens on.
async fn dead_addr() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

fn options() -> ClientOptions {
    ClientOptions {
        tls: None,
        token: None,
        request_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        fail_fast_on_refused: false,
        coalesce: true,
    }
}

#[tokio::test]
async fn refused_everywhere_fails_at_once_when_asked() {
    let addrs = vec![dead_addr().await, dead_addr().await];
    let patient = Client::connect(addrs.clone(), options()).await.unwrap();
    let started = std::time::Instant::now();
    let error = patient.lookup_accounts(&[1]).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(5));

    let hasty = ClientOptions {
        deadline: Duration::from_secs(30),
        fail_fast_on_refused: true,
        ..options()
    };
    let client = Client::connect(addrs.clone(), hasty).await.unwrap();
    let started = std::time::Instant::now();
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match &error {
        ClientError::Refused { addrs: refused } => {
            for addr in &addrs {
                assert!(refused.contains(addr.as_str()), "{refused}");
            }
        }
        other => panic!("expected Refused, got {other}"),
    }
    assert!(error.is_unreachable());
}

#[tokio::test]
async fn follows_the_leader_hint_past_a_dead_node() {
    let leader_calls = Arc::new(AtomicU32::new(0));
    let follower_calls = Arc::new(AtomicU32::new(0));
    let leader = serve(FakeNode {
        leader_hint: None,
        calls: Arc::clone(&leader_calls),
    })
    .await;
    let follower = serve(FakeNode {
        leader_hint: Some(format!("2={leader}")),
        calls: Arc::clone(&follower_calls),
    })
    .await;
    let dead = dead_addr().await;
    // The leader is not in the list: the client learns it from the follower's hint.
    let client = Client::connect(vec![dead.clone(), follower.clone()], options())
        .await
        .unwrap();

    assert_eq!(client.checkpoint().await.unwrap(), 7);
    assert_eq!(client.leader().as_deref(), Some(leader.as_str()));
    assert_eq!(client.addrs(), vec![dead, follower, leader.clone()]);
    assert_eq!(follower_calls.load(Ordering::SeqCst), 1);

    // The next call goes straight to the known leader.
    assert_eq!(client.checkpoint().await.unwrap(), 7);
    assert_eq!(follower_calls.load(Ordering::SeqCst), 1);
    assert_eq!(leader_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn rejections_are_returned_without_retrying() {
    let calls = Arc::new(AtomicU32::new(0));
    let leader = serve(FakeNode {
        leader_hint: None,
        calls: Arc::clone(&calls),
    })
    .await;
    let client = Client::connect(vec![leader.clone()], options())
        .await
        .unwrap();
    let error = client
        .add_learner(v1::Node {
            id: 4,
            addr: String::new(),
        })
        .await
        .unwrap_err();
    match error {
        ClientError::Rejected { code, message } => {
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert_eq!(message, "node.addr must not be empty");
        }
        other => panic!("expected a rejection, got {other}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let error = client.init_cluster(&leader, Vec::new()).await.unwrap_err();
    assert!(matches!(
        error,
        ClientError::Rejected {
            code: tonic::Code::FailedPrecondition,
            ..
        }
    ));
    assert_eq!(client.status(&leader).await.unwrap().id, 9);
}

#[tokio::test]
async fn a_cluster_without_a_leader_times_out_with_the_last_error() {
    let follower = serve(FakeNode {
        leader_hint: Some(String::from("garbage")),
        calls: Arc::new(AtomicU32::new(0)),
    })
    .await;
    let client = Client::connect(
        vec![follower],
        ClientOptions {
            deadline: Duration::from_millis(300),
            ..options()
        },
    )
    .await
    .unwrap();
    let error = client.change_membership(vec![1], vec![]).await.unwrap_err();
    match &error {
        ClientError::Timeout {
            attempts,
            last_error,
            ..
        } => {
            assert!(*attempts > 1);
            assert!(last_error.contains("not leader"), "{last_error}");
        }
        other => panic!("expected a timeout, got {other}"),
    }
}
