//! `Client`: one lazily connected channel per node, the current leader, and the retry loop that
//! every leader-bound call goes through.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tally_ledger::{
    Account, Balance, CreateAccountResult, CreateTransferResult, PendingStatus, Record, RecordKey,
    Transfer, Txn, TxnResult,
};
use tally_proto::v1;
use tally_proto::v1::admin_client::AdminClient;
use tally_proto::v1::ledger_client::LedgerClient;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Response, Status};

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::ClientTlsConfig;

use crate::address::NodeAddress;
use crate::convert;
use crate::credentials::{Secret, TlsOptions};
use crate::error::ClientError;
use crate::retry::{classify, Backoff, Disposition, Jitter};

/// Largest reply the client decodes (pages of transfers or records can be large).
const REPLY_SIZE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Timeouts, backoff and credentials of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// TLS settings; `None` is plain text, which only a node started with `--insecure` accepts.
    pub tls: Option<TlsOptions>,
    /// Bearer token sent with every call (`authorization: Bearer ...`); the node maps its hash to
    /// an identity. An alternative to a client certificate.
    pub token: Option<Secret>,
    /// Time allowed for one attempt (connect + request + reply) against one node.
    pub request_timeout: Duration,
    /// Total time for one call, all retries included.
    pub deadline: Duration,
    /// Backoff before the first retry on the next node; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Largest backoff between two attempts.
    pub backoff_max: Duration,
    /// Give up at once, with [`ClientError::Refused`], when every node has refused the
    /// connection (nothing listens at any address), instead of retrying until the deadline.
    /// Right for a command line; a long-running service may rather wait out a full restart.
    pub fail_fast_on_refused: bool,
    /// Pack concurrent `create_transfers` calls of this client into shared requests
    /// ([`crate::coalesce`]); results are the same as sending each alone.
    pub coalesce: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            tls: None,
            token: None,
            // Short enough to move on from a hung leader soon after a new one is elected
            // (about 1.5 s), long enough for the largest batch to commit on a loaded cluster.
            request_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            fail_fast_on_refused: false,
            coalesce: true,
        }
    }
}

/// A handle to a Tally cluster. Cloning is cheap (an `Arc`); clones share channels and the
/// knowledge of who the leader is, so one client can serve many tasks.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    options: ClientOptions,
    credentials: Credentials,
    routing: Mutex<Routing>,
    jitter: Jitter,
    /// The packing task's queue, started by the first `create_transfers` call.
    packer: std::sync::OnceLock<crate::coalesce::Queue>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Inner")
            .field("options", &self.options)
            .field("routing", &self.routing)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Routing {
    nodes: Vec<Node>,
    /// Index of the node the next call goes to.
    current: usize,
    /// Index of the node believed to be the leader, if any.
    leader: Option<usize>,
}

#[derive(Clone, Debug)]
struct Node {
    addr: NodeAddress,
    channel: Channel,
}

/// The loaded and checked credentials, shared by every channel.
#[derive(Clone)]
struct Credentials {
    tls: Option<ClientTlsConfig>,
    authorization: Option<MetadataValue<Ascii>>,
}

/// tonic's TLS config prints its key bytes; show only what is set.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("tls", &self.tls.is_some())
            .field("token", &self.authorization.is_some())
            .finish()
    }
}

impl Client {
    /// Creates a client for the cluster whose nodes listen at `addrs` (`host:port`, with or without
    /// `http://`). Connections are opened lazily, so this succeeds even if no node is up yet; the
    /// first call then retries until its deadline. Must be called inside a tokio runtime.
    pub async fn connect(
        addrs: Vec<String>,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::NoNodes);
        }
        let credentials = load_credentials(&options)?;
        let mut nodes: Vec<Node> = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            let addr = NodeAddress::parse(addr)?;
            if nodes.iter().any(|node| node.addr == addr) {
                continue;
            }
            let channel = open_channel(&addr, &options, &credentials)?;
            nodes.push(Node { addr, channel });
        }
        let routing = Routing {
            nodes,
            current: 0,
            leader: None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                options,
                credentials,
                routing: Mutex::new(routing),
                jitter: Jitter::from_clock(),
                packer: std::sync::OnceLock::new(),
            }),
        })
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Client {
        Client { inner }
    }

    /// The options this client was created with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The address of the node that last accepted a leader-only call or was named leader by a
    /// follower; `None` until then or after it failed.
    pub fn leader(&self) -> Option<String> {
        let routing = self.routing();
        routing
            .leader
            .map(|index| routing.nodes[index].addr.to_string())
    }

    /// Every node address the client knows: the ones given to [`Client::connect`] plus leaders
    /// learned from hints.
    pub fn addrs(&self) -> Vec<String> {
        let routing = self.routing();
        routing
            .nodes
            .iter()
            .map(|node| node.addr.to_string())
            .collect()
    }

    fn routing(&self) -> MutexGuard<'_, Routing> {
        // The lock is never held across an await or a panic-prone call, so poisoning cannot
        // leave the routing state half-updated; recover the guard.
        self.inner
            .routing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pick_node(&self) -> (usize, Node) {
        let routing = self.routing();
        (routing.current, routing.nodes[routing.current].clone())
    }

    fn mark_leader(&self, index: usize) {
        self.routing().leader = Some(index);
    }

    /// Moves on from the node at `failed` unless another task already did.
    fn advance_past(&self, failed: usize) {
        let mut routing = self.routing();
        if routing.leader == Some(failed) {
            routing.leader = None;
        }
        if routing.current == failed {
            routing.current = (failed + 1) % routing.nodes.len();
        }
    }

    fn redirect_to(&self, addr: &NodeAddress) -> Result<(), ClientError> {
        let mut routing = self.routing();
        let index = match routing.nodes.iter().position(|node| &node.addr == addr) {
            Some(index) => index,
            None => {
                let channel = open_channel(addr, &self.inner.options, &self.inner.credentials)?;
                routing.nodes.push(Node {
                    addr: addr.clone(),
                    channel,
                });
                routing.nodes.len() - 1
            }
        };
        routing.current = index;
        routing.leader = Some(index);
        Ok(())
    }

    fn channel_to(&self, addr: &NodeAddress) -> Result<Channel, ClientError> {
        let routing = self.routing();
        match routing.nodes.iter().find(|node| &node.addr == addr) {
            Some(node) => Ok(node.channel.clone()),
            None => open_channel(addr, &self.inner.options, &self.inner.credentials),
        }
    }

    /// Wraps a message with the client's credentials.
    fn request<Req>(&self, message: Req) -> tonic::Request<Req> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.inner.credentials.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// Sends `request` to the leader, following leader hints and retrying transport failures on
    /// the next node with backoff until the deadline. Always resends the same request.
    async fn call_leader<Req, Resp, Attempt, Fut>(
        &self,
        request: Req,
        send: Attempt,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        Attempt: Fn(Channel, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let options = &self.inner.options;
        let deadline = Instant::now() + options.deadline;
        let mut backoff = Backoff::new(options.backoff_initial, options.backoff_max);
        let mut attempts: u32 = 0;
        let mut redirects_in_a_row: usize = 0;
        // Nodes that refused the connection since the last answer of any other kind.
        let mut refused: Vec<String> = Vec::new();
        // The last error a node itself answered with (e.g. "NO QUORUM"): more telling, when the
        // deadline passes, than a dead node's connection error that came after it.
        let mut last_answer: Option<String> = None;
        loop {
            let (index, node) = self.pick_node();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt_timeout = options.request_timeout.min(remaining);
            attempts += 1;
            let attempt = send(node.channel, self.request(request.clone()));
            let status = match tokio::time::timeout(attempt_timeout, attempt).await {
                Ok(Ok(response)) => {
                    self.mark_leader(index);
                    return Ok(response.into_inner());
                }
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded(format!("no reply within {attempt_timeout:?}")),
            };
            let mut last_error =
                format!("{}: {:?}: {}", node.addr, status.code(), status.message());
            let redirect = matches!(classify(&status), Disposition::Redirect { .. });
            if is_answer(&status) && !redirect {
                last_answer = Some(last_error.clone());
            } else if let Some(answer) = &last_answer {
                last_error = answer.clone();
            }
            match classify(&status) {
                Disposition::Reject => {
                    return Err(ClientError::Rejected {
                        code: status.code(),
                        message: status.message().to_string(),
                    })
                }
                Disposition::Redirect { leader_id, addr } => {
                    tracing::debug!(from = %node.addr, leader_id, to = %addr, "not leader, redirected");
                    self.redirect_to(&addr)?;
                    redirects_in_a_row += 1;
                    let node_count = self.routing().nodes.len();
                    // Stale hints can point in a circle during an election; then back off.
                    if redirects_in_a_row <= node_count && Instant::now() < deadline {
                        continue;
                    }
                }
                Disposition::RetryNextNode => {
                    tracing::debug!(error = %last_error, "attempt failed, trying the next node");
                    self.advance_past(index);
                    if !is_connection_refused(&status) {
                        refused.clear();
                    } else if !refused.contains(&node.addr.to_string()) {
                        refused.push(node.addr.to_string());
                    }
                    if options.fail_fast_on_refused && refused.len() >= self.routing().nodes.len() {
                        return Err(ClientError::Refused {
                            addrs: refused.join(", "),
                        });
                    }
                }
            }
            redirects_in_a_row = 0;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClientError::Timeout {
                    deadline: options.deadline,
                    attempts,
                    last_error,
                });
            }
            let delay = backoff.next_delay(self.inner.jitter.next_u64());
            tokio::time::sleep(delay.min(remaining)).await;
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout {
                    deadline: options.deadline,
                    attempts,
                    last_error,
                });
            }
        }
    }

    /// Sends `request` once to the node at `addr`, within the request timeout. Used by admin calls
    /// that are about one particular node; the caller decides whether to poll.
    async fn call_node<Req, Resp, Fut>(
        &self,
        addr: &str,
        request: Req,
        send: impl FnOnce(Channel, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, ClientError>
    where
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let addr = NodeAddress::parse(addr)?;
        let channel = self.channel_to(&addr)?;
        let timeout = self.inner.options.request_timeout;
        let request = self.request(request);
        let status = match tokio::time::timeout(timeout, send(channel, request)).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => Status::deadline_exceeded(format!("no reply within {timeout:?}")),
        };
        match classify(&status) {
            Disposition::RetryNextNode => Err(ClientError::Unreachable {
                addr: addr.to_string(),
                message: format!("{:?}: {}", status.code(), status.message()),
            }),
            Disposition::Redirect { .. } | Disposition::Reject => Err(ClientError::Rejected {
                code: status.code(),
                message: status.message().to_string(),
            }),
        }
    }
}

/// True when the attempt failed because nothing listens at the address.
/// True when a node itself answered with `status`, rather than the transport failing to reach it
/// (connect errors, resets, timeouts carry a source error or no reply at all).
fn is_answer(status: &Status) -> bool {
    status.code() != tonic::Code::DeadlineExceeded
        && std::error::Error::source(status).is_none()
        && !status.message().contains("transport error")
        && !status.message().contains("connect error")
}

fn is_connection_refused(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = error.source();
    }
    false
}

fn load_credentials(options: &ClientOptions) -> Result<Credentials, ClientError> {
    let tls = options.tls.as_ref().map(TlsOptions::load).transpose()?;
    let authorization = match &options.token {
        Some(token) => {
            let mut value = MetadataValue::try_from(format!("Bearer {}", token.expose()))
                .map_err(|_| ClientError::Credentials("the token is not printable ASCII".into()))?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    Ok(Credentials { tls, authorization })
}

fn open_channel(
    addr: &NodeAddress,
    options: &ClientOptions,
    credentials: &Credentials,
) -> Result<Channel, ClientError> {
    let invalid = |error: tonic::transport::Error| ClientError::InvalidAddress {
        addr: addr.to_string(),
        reason: error.to_string(),
    };
    let mut endpoint =
        Endpoint::from_shared(addr.uri_with(credentials.tls.is_some())).map_err(invalid)?;
    if let Some(tls) = &credentials.tls {
        endpoint = endpoint.tls_config(tls.clone()).map_err(invalid)?;
    }
    Ok(endpoint
        .connect_timeout(options.request_timeout)
        .timeout(options.request_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

fn ledger(channel: Channel) -> LedgerClient<Channel> {
    LedgerClient::new(channel).max_decoding_message_size(REPLY_SIZE_MAX_BYTES)
}

fn admin(channel: Channel) -> AdminClient<Channel> {
    AdminClient::new(channel).max_decoding_message_size(REPLY_SIZE_MAX_BYTES)
}

fn check_result_count(sent: usize, results: &[u32]) -> Result<(), ClientError> {
    if sent == results.len() {
        Ok(())
    } else {
        Err(ClientError::InvalidReply(format!(
            "{} result codes for {sent} events",
            results.len()
        )))
    }
}

fn lookup_request(ids: &[u128]) -> v1::LookupRequest {
    v1::LookupRequest {
        ids: ids.iter().map(|id| v1::U128::from(*id)).collect(),
        stale_ok: false,
    }
}

/// Which of an account's transfers or balance history points to read, one page at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub account_id: u128,
    /// Inclusive; 0 = no bound.
    pub timestamp_min: u64,
    /// Inclusive; 0 = no bound.
    pub timestamp_max: u64,
    /// At most this many; 0 = the server's page maximum.
    pub limit: u32,
    /// Newest first.
    pub reversed: bool,
}

impl AccountFilter {
    fn to_pb(&self) -> v1::AccountFilter {
        v1::AccountFilter {
            account_id: Some(self.account_id.into()),
            timestamp_min: self.timestamp_min,
            timestamp_max: self.timestamp_max,
            limit: self.limit,
            reversed: self.reversed,
            stale_ok: false,
        }
    }
}

/// Ledger calls. Writes and linearizable reads go to the leader.
impl Client {
    /// Creates accounts as one atomic batch; returns one result per account, in order.
    pub async fn create_accounts(
        &self,
        accounts: Vec<Account>,
    ) -> Result<Vec<CreateAccountResult>, ClientError> {
        let sent = accounts.len();
        let accounts = accounts.iter().map(convert::account_to_pb).collect();
        let request = v1::CreateAccountsRequest { accounts };
        let reply = self
            .call_leader(request, |channel, request| async move {
                ledger(channel).create_accounts(request).await
            })
            .await?;
        check_result_count(sent, &reply.results)?;
        reply
            .results
            .into_iter()
            .map(convert::account_result_of)
            .collect()
    }

    /// Creates transfers as one batch; returns one result per transfer, in order. With
    /// [`ClientOptions::coalesce`] (the default), concurrent calls share requests.
    pub async fn create_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<CreateTransferResult>, ClientError> {
        if !self.inner.options.coalesce || !crate::coalesce::packable(&transfers) {
            return self.send_transfers(transfers).await;
        }
        let queue = self
            .inner
            .packer
            .get_or_init(|| crate::coalesce::start(Arc::downgrade(&self.inner)));
        crate::coalesce::submit(queue, transfers).await
    }

    /// Sends `transfers` as one request of their own.
    pub(crate) async fn send_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<CreateTransferResult>, ClientError> {
        let sent = transfers.len();
        let transfers = transfers.iter().map(convert::transfer_to_pb).collect();
        let request = v1::CreateTransfersRequest { transfers };
        let reply = self
            .call_leader(request, |channel, request| async move {
                ledger(channel).create_transfers(request).await
            })
            .await?;
        check_result_count(sent, &reply.results)?;
        reply
            .results
            .into_iter()
            .map(convert::transfer_result_of)
            .collect()
    }

    /// Applies a transaction (conditions + record ops + accounts + transfers), all or nothing.
    pub async fn submit_txn(&self, txn: &Txn) -> Result<TxnResult, ClientError> {
        let reply = self
            .call_leader(convert::txn_to_pb(txn), |channel, request| async move {
                ledger(channel).submit_txn(request).await
            })
            .await?;
        convert::txn_result_from_pb(reply)
    }

    /// Looks accounts up by id (linearizable). Ids that do not exist are left out.
    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, ClientError> {
        let reply = self
            .call_leader(lookup_request(ids), |channel, request| async move {
                ledger(channel).lookup_accounts(request).await
            })
            .await?;
        reply
            .accounts
            .iter()
            .map(convert::account_from_pb)
            .collect()
    }

    /// Looks transfers up by id (linearizable). Ids that do not exist are left out.
    pub async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, ClientError> {
        Ok(self
            .lookup_transfer_states(ids)
            .await?
            .into_iter()
            .map(|(transfer, _)| transfer)
            .collect())
    }

    /// Looks transfers up by id (linearizable), each with its [`PendingStatus`]: `None` for a
    /// single-phase transfer, else whether the pending transfer is still pending, or was posted,
    /// voided or expired.
    pub async fn lookup_transfer_states(
        &self,
        ids: &[u128],
    ) -> Result<Vec<(Transfer, Option<PendingStatus>)>, ClientError> {
        let reply = self
            .call_leader(lookup_request(ids), |channel, request| async move {
                ledger(channel).lookup_transfers(request).await
            })
            .await?;
        let mut states = reply.states.into_iter();
        reply
            .transfers
            .iter()
            .map(|transfer| {
                let state = convert::pending_status_of(states.next().unwrap_or(0));
                Ok((convert::transfer_from_pb(transfer)?, state))
            })
            .collect()
    }

    /// One page of an account's transfers, selected by `filter`.
    pub async fn account_transfers(
        &self,
        filter: AccountFilter,
    ) -> Result<Vec<Transfer>, ClientError> {
        let reply = self
            .call_leader(filter.to_pb(), |channel, request| async move {
                ledger(channel).get_account_transfers(request).await
            })
            .await?;
        reply
            .transfers
            .iter()
            .map(convert::transfer_from_pb)
            .collect()
    }

    /// One page of the balance history of an account with the `history` flag.
    pub async fn account_balances(
        &self,
        filter: AccountFilter,
    ) -> Result<Vec<Balance>, ClientError> {
        let account_id = filter.account_id;
        let reply = self
            .call_leader(filter.to_pb(), |channel, request| async move {
                ledger(channel).get_account_balances(request).await
            })
            .await?;
        Ok(reply
            .balances
            .iter()
            .map(|balance| convert::balance_from_pb(account_id, balance))
            .collect())
    }

    /// Reads one record (linearizable); `None` if it does not exist.
    pub async fn get_record(
        &self,
        namespace: &str,
        key: &[u8],
    ) -> Result<Option<Record>, ClientError> {
        let request = v1::GetRecordRequest {
            key: Some(convert::record_key_to_pb(&RecordKey::new(namespace, key))),
            stale_ok: false,
        };
        let reply = self
            .call_leader(request, |channel, request| async move {
                ledger(channel).get_record(request).await
            })
            .await?;
        reply.record.map(convert::record_from_pb).transpose()
    }

    /// One page (at most `limit` records, 0 = the server's maximum) of the records in `namespace`
    /// whose key starts with `prefix`, in key order, after `start_after` (empty = from the start).
    pub async fn scan_records(
        &self,
        namespace: &str,
        prefix: &[u8],
        start_after: &[u8],
        limit: u32,
    ) -> Result<Vec<Record>, ClientError> {
        let request = v1::ScanRecordsRequest {
            namespace: namespace.to_string(),
            prefix: prefix.to_vec(),
            start_after: start_after.to_vec(),
            limit,
            stale_ok: false,
        };
        let reply = self
            .call_leader(request, |channel, request| async move {
                ledger(channel).scan_records(request).await
            })
            .await?;
        reply
            .records
            .into_iter()
            .map(convert::record_from_pb)
            .collect()
    }
}

/// Admin calls. Membership changes and checkpoints go to the leader; status, init and digest
/// calls go once to the node named, within the request timeout.
impl Client {
    /// The Raft status of the node at `addr`.
    pub async fn status(&self, addr: &str) -> Result<v1::StatusReply, ClientError> {
        self.call_node(addr, v1::StatusRequest {}, |channel, request| async move {
            admin(channel).status(request).await
        })
        .await
    }

    /// Initializes a new cluster with `nodes` as its voters, by asking the node at `addr`.
    pub async fn init_cluster(&self, addr: &str, nodes: Vec<v1::Node>) -> Result<(), ClientError> {
        let request = v1::InitClusterRequest { nodes };
        self.call_node(addr, request, |channel, request| async move {
            admin(channel).init_cluster(request).await
        })
        .await?;
        Ok(())
    }

    /// Adds `node` as a learner; returns the log index of the membership entry.
    pub async fn add_learner(&self, node: v1::Node) -> Result<u64, ClientError> {
        let request = v1::AddLearnerRequest { node: Some(node) };
        let reply = self
            .call_leader(request, |channel, request| async move {
                admin(channel).add_learner(request).await
            })
            .await?;
        Ok(reply.log_index)
    }

    /// Sets the voters to exactly `voters` and removes the nodes in `remove` from the cluster;
    /// returns the log index of the membership entry.
    pub async fn change_membership(
        &self,
        voters: Vec<u64>,
        remove: Vec<u64>,
    ) -> Result<u64, ClientError> {
        let request = v1::ChangeMembershipRequest { voters, remove };
        let reply = self
            .call_leader(request, |channel, request| async move {
                admin(channel).change_membership(request).await
            })
            .await?;
        Ok(reply.log_index)
    }

    /// Hands leadership to voter `to`; returns the new term once it leads.
    pub async fn transfer_leader(&self, to: u64) -> Result<u64, ClientError> {
        let reply = self
            .call_leader(
                v1::TransferLeaderRequest { to },
                |channel, request| async move { admin(channel).transfer_leader(request).await },
            )
            .await?;
        Ok(reply.term)
    }

    /// Streams a consistent backup of the leader's applied state: `sink` receives the backup
    /// file's bytes in order. Returns the first chunk, which describes the backup (applied index
    /// and term, digest, size). A stream cut short is an error: discard what `sink` wrote.
    pub async fn backup(
        &self,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<v1::BackupChunk, ClientError> {
        let mut stream = self
            .call_leader(v1::BackupRequest {}, |channel, request| async move {
                admin(channel).backup(request).await
            })
            .await?;
        let broken = |status: Status| ClientError::Rejected {
            code: status.code(),
            message: format!("the backup stream broke: {}", status.message()),
        };
        let header = stream
            .message()
            .await
            .map_err(broken)?
            .ok_or_else(|| ClientError::InvalidReply("the backup stream was empty".into()))?;
        let mut received = 0u64;
        loop {
            match stream.message().await.map_err(broken)? {
                Some(chunk) if chunk.last => break,
                Some(chunk) => {
                    received += chunk.data.len() as u64;
                    sink(&chunk.data).map_err(|error| {
                        ClientError::InvalidReply(format!("writing the backup: {error}"))
                    })?;
                }
                None => {
                    return Err(ClientError::InvalidReply(
                        "the backup stream ended before its last chunk".into(),
                    ))
                }
            }
        }
        if received != header.total_bytes {
            return Err(ClientError::InvalidReply(format!(
                "the backup has {received} bytes, the node announced {}",
                header.total_bytes
            )));
        }
        Ok(header)
    }

    /// Proposes a checkpoint entry; returns its log index, at which every node computes a digest.
    pub async fn checkpoint(&self) -> Result<u64, ClientError> {
        let reply = self
            .call_leader(v1::CheckpointRequest {}, |channel, request| async move {
                admin(channel).checkpoint(request).await
            })
            .await?;
        Ok(reply.log_index)
    }

    /// The digest of the node at `addr` at checkpoint `log_index` (`ready == false` while the node
    /// has not applied it yet).
    pub async fn get_digest(
        &self,
        addr: &str,
        log_index: u64,
    ) -> Result<v1::GetDigestReply, ClientError> {
        let request = v1::GetDigestRequest { log_index };
        self.call_node(addr, request, |channel, request| async move {
            admin(channel).get_digest(request).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast_options() -> ClientOptions {
        ClientOptions {
            tls: None,
            token: None,
            request_timeout: Duration::from_millis(200),
            deadline: Duration::from_millis(600),
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
            fail_fast_on_refused: false,
            coalesce: true,
        }
    }

    #[tokio::test]
    async fn connect_validates_addresses() {
        let error = Client::connect(vec![], ClientOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::NoNodes));
        let error = Client::connect(vec!["nope".into()], ClientOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::InvalidAddress { .. }));
    }

    #[tokio::test]
    async fn connect_deduplicates_and_normalizes() {
        let client = Client::connect(
            vec![
                "127.0.0.1:1".into(),
                "http://127.0.0.1:1".into(),
                "127.0.0.1:2".into(),
            ],
            ClientOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(client.addrs(), vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(client.leader(), None);
    }

    #[tokio::test]
    async fn redirect_adds_unknown_leader_and_advance_skips_failed_node() {
        let client = Client::connect(
            vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
            fast_options(),
        )
        .await
        .unwrap();
        client
            .redirect_to(&NodeAddress::parse("127.0.0.1:3").unwrap())
            .unwrap();
        assert_eq!(client.leader().as_deref(), Some("127.0.0.1:3"));
        assert_eq!(client.pick_node().0, 2);
        client.advance_past(2);
        assert_eq!(client.leader(), None);
        assert_eq!(client.pick_node().0, 0);
        // A second task failing on the same node must not skip the next one.
        client.advance_past(2);
        assert_eq!(client.pick_node().0, 0);
    }

    #[tokio::test]
    async fn unreachable_cluster_times_out_at_the_deadline() {
        // Port 1 on localhost refuses connections, so every attempt fails fast.
        let client = Client::connect(
            vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
            fast_options(),
        )
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let error = client.checkpoint().await.unwrap_err();
        let elapsed = started.elapsed();
        match &error {
            ClientError::Timeout { attempts, .. } => assert!(*attempts >= 2, "{error}"),
            other => panic!("expected a timeout, got {other}"),
        }
        assert!(error.to_string().contains("tally-node dev"), "{error}");
        assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    #[tokio::test]
    async fn debug_output_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let authority = tally_tls::Authority::create("ca", tally_tls::Validity::days(1)).unwrap();
        let ca = authority.write(dir.path()).unwrap();
        let issued = authority
            .issue_client("ops", tally_tls::Validity::days(1))
            .unwrap();
        let (cert, key) = issued.write(dir.path(), "client-ops").unwrap();
        let options = ClientOptions {
            tls: Some(TlsOptions {
                ca,
                cert: Some(cert),
                key: Some(key),
            }),
            token: Some(Secret::new("tok_secret_value")),
            ..fast_options()
        };
        let client = Client::connect(vec!["127.0.0.1:1".into()], options)
            .await
            .unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("tok_secret_value"), "{debug}");
        assert!(!debug.contains(issued.key_pem.expose()), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    }

    #[tokio::test]
    async fn targeted_call_to_a_down_node_is_unreachable() {
        let client = Client::connect(vec!["127.0.0.1:1".into()], fast_options())
            .await
            .unwrap();
        let error = client.status("127.0.0.1:2").await.unwrap_err();
        assert!(matches!(error, ClientError::Unreachable { .. }), "{error}");
        assert!(error.is_unreachable());
    }
}
