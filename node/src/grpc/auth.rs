//! Who may call what: the one table of gRPC method -> required [`Role`], the [`AuthPolicy`]
//! (identities -> roles, token hashes -> identities, from the node's `[auth]` config), and the
//! tower layer that checks every request before it reaches a service. A caller is identified by
//! a bearer token (`authorization: Bearer ...`) or else by its client certificate's common
//! name; node certificates (`CN=node-N`, issued for server use) carry the `node` role.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

/// A permission a gRPC method requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read accounts, transfers, balances, records and the node's status.
    LedgerRead,
    /// Create accounts and transfers (move money).
    LedgerWrite,
    /// Write records (tally-pay's objects) through `SubmitTxn`.
    RecordsWrite,
    /// Cluster operations: init, membership, checkpoints, digests.
    Admin,
    /// Raft traffic between nodes; held only by node certificates.
    Node,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::LedgerRead,
        Role::LedgerWrite,
        Role::RecordsWrite,
        Role::Admin,
        Role::Node,
    ];

    /// The role's name in config files and docs.
    pub fn name(self) -> &'static str {
        match self {
            Role::LedgerRead => "ledger.read",
            Role::LedgerWrite => "ledger.write",
            Role::RecordsWrite => "records.write",
            Role::Admin => "admin",
            Role::Node => "node",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Every gRPC method and the role it requires: the one place this is decided. `docs/SECURITY.md`
/// shows the same table; `tests::doc_table_matches_code` keeps them equal and checks that every
/// method in the proto descriptors is listed.
pub const METHOD_ROLES: &[(&str, Role)] = &[
    ("/tally.v1.Ledger/CreateAccounts", Role::LedgerWrite),
    ("/tally.v1.Ledger/CreateTransfers", Role::LedgerWrite),
    // Also needs ledger.write when the txn creates accounts or transfers (checked by the service).
    ("/tally.v1.Ledger/SubmitTxn", Role::RecordsWrite),
    ("/tally.v1.Ledger/LookupAccounts", Role::LedgerRead),
    ("/tally.v1.Ledger/LookupTransfers", Role::LedgerRead),
    ("/tally.v1.Ledger/GetAccountTransfers", Role::LedgerRead),
    ("/tally.v1.Ledger/GetAccountBalances", Role::LedgerRead),
    ("/tally.v1.Ledger/GetRecord", Role::LedgerRead),
    ("/tally.v1.Ledger/ScanRecords", Role::LedgerRead),
    ("/tally.v1.Admin/InitCluster", Role::Admin),
    ("/tally.v1.Admin/AddLearner", Role::Admin),
    ("/tally.v1.Admin/ChangeMembership", Role::Admin),
    ("/tally.v1.Admin/Status", Role::LedgerRead),
    ("/tally.v1.Admin/Checkpoint", Role::Admin),
    ("/tally.v1.Admin/GetDigest", Role::Admin),
    ("/tally.v1.Admin/Backup", Role::Admin),
    ("/tally.v1.Admin/TransferLeader", Role::Admin),
    ("/tally.v1.Raft/AppendEntries", Role::Node),
    ("/tally.v1.Raft/Vote", Role::Node),
    ("/tally.v1.Raft/InstallSnapshot", Role::Node),
    ("/tally.v1.Raft/TransferLeader", Role::Node),
];

/// The role `path` (`/package.Service/Method`) requires; `None` for an unknown method.
pub fn required_role(path: &str) -> Option<Role> {
    METHOD_ROLES
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(_, role)| *role)
}

/// The authenticated caller, put into each request's extensions for services that check more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub roles: BTreeSet<Role>,
}

impl Caller {
    /// Fails with PERMISSION_DENIED naming the missing role.
    pub fn require(&self, role: Role, what: &str) -> Result<(), Status> {
        if self.roles.contains(&role) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "identity {:?} lacks the role {role} required to {what}",
                self.name
            )))
        }
    }
}

/// The node's access rules, built from its `[auth]` config.
#[derive(Clone, Debug, Default)]
pub struct AuthPolicy {
    /// False only for an `--insecure` node: every caller holds every role.
    enabled: bool,
    roles: BTreeMap<String, BTreeSet<Role>>,
    /// SHA-256 (hex) of a token -> the identity it stands for.
    token_hashes: BTreeMap<String, String>,
}

impl AuthPolicy {
    /// No checks at all: for a plain-text (`--insecure`) node, where nothing proves who a caller is.
    pub fn disabled() -> AuthPolicy {
        AuthPolicy::default()
    }

    /// `roles`: identity name -> role names; `tokens`: identity name -> SHA-256 hex of its token.
    pub fn new(
        roles: &BTreeMap<String, Vec<String>>,
        tokens: &BTreeMap<String, String>,
    ) -> Result<AuthPolicy, Vec<String>> {
        let mut problems = Vec::new();
        let mut policy = AuthPolicy {
            enabled: true,
            ..AuthPolicy::default()
        };
        for (name, names) in roles {
            if let Err(problem) = tally_tls::check_identity_name(name) {
                problems.push(format!("auth.roles.{name}: {problem}"));
            }
            let mut set = BTreeSet::new();
            for role in names {
                match Role::parse(role) {
                    Some(Role::Node) => problems.push(format!(
                        "auth.roles.{name}: the node role is held only by node certificates"
                    )),
                    Some(role) => {
                        set.insert(role);
                    }
                    None => problems.push(format!(
                        "auth.roles.{name}: unknown role {role:?} (known: ledger.read, \
                         ledger.write, records.write, admin)"
                    )),
                }
            }
            policy.roles.insert(name.clone(), set);
        }
        for (name, hash) in tokens {
            let hash = hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(format!(
                    "auth.tokens.{name}: expected the SHA-256 of the token as 64 hex digits \
                     (tallyctl certs token-hash), never the token itself"
                ));
            }
            if name.starts_with(tally_tls::NODE_NAME_PREFIX) {
                problems.push(format!(
                    "auth.tokens.{name}: node identities need certificates"
                ));
            }
            policy.token_hashes.insert(hash, name.clone());
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Decides one call. `bearer` is the `authorization` metadata value, if any; `peer` is the
    /// identity from the verified client certificate, if any.
    pub fn authorize(
        &self,
        path: &str,
        bearer: Option<&str>,
        peer: Option<tally_tls::PeerIdentity>,
    ) -> Result<Caller, Status> {
        let Some(required) = required_role(path) else {
            return Err(Status::unimplemented(format!("unknown method {path}")));
        };
        if !self.enabled {
            return Ok(Caller {
                name: "anonymous".into(),
                roles: Role::ALL.into_iter().collect(),
            });
        }
        let caller = self.identify(bearer, peer)?;
        caller.require(required, &format!("call {path}"))?;
        Ok(caller)
    }

    fn identify(
        &self,
        bearer: Option<&str>,
        peer: Option<tally_tls::PeerIdentity>,
    ) -> Result<Caller, Status> {
        if let Some(value) = bearer {
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| {
                    Status::unauthenticated("the authorization metadata must be `Bearer <token>`")
                })?;
            let hash = tally_tls::token_sha256_hex(token.trim());
            let name = self
                .token_hashes
                .get(&hash)
                .ok_or_else(|| Status::unauthenticated("unknown token"))?;
            return Ok(self.caller(name, false));
        }
        match peer {
            Some(peer) => Ok(self.caller(&peer.name, peer.is_node)),
            None => Err(Status::unauthenticated(
                "no credentials: present a client certificate signed by the cluster CA \
                 (--cert/--key, TALLY_CERT/TALLY_KEY) or a token (--token, TALLY_TOKEN)",
            )),
        }
    }

    fn caller(&self, name: &str, is_node: bool) -> Caller {
        let mut roles = self.roles.get(name).cloned().unwrap_or_default();
        if is_node {
            roles.insert(Role::Node);
        }
        Caller {
            name: name.to_string(),
            roles,
        }
    }
}

/// What the layer does with each request.
#[derive(Clone, Debug)]
enum Mode {
    Check(Arc<AuthPolicy>),
    /// A plain-text connection reached a TLS node: refuse with an explanation.
    RefusePlainText,
}

/// The tower layer that runs [`AuthPolicy::authorize`] on every request.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    mode: Mode,
}

impl AuthLayer {
    pub fn new(policy: Arc<AuthPolicy>) -> AuthLayer {
        AuthLayer {
            mode: Mode::Check(policy),
        }
    }

    /// For plain-text connections to a node that serves TLS.
    pub fn refuse_plain_text() -> AuthLayer {
        AuthLayer {
            mode: Mode::RefusePlainText,
        }
    }
}

/// Message a plain-text client gets from a TLS node.
pub const TLS_REQUIRED_MESSAGE: &str = "this node requires TLS: connect with the cluster CA \
     certificate (--ca / TALLY_CA) and a client certificate (--cert/--key) or a token (--token)";

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            mode: self.mode.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    mode: Mode,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<futures::future::Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let decision = match &self.mode {
            Mode::RefusePlainText => Err(Status::unauthenticated(TLS_REQUIRED_MESSAGE)),
            Mode::Check(policy) => {
                let bearer = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|value| value.to_str().unwrap_or("invalid"));
                let peer = request
                    .extensions()
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(|info| info.peer_certs())
                    .and_then(|certs| certs.first().and_then(tally_tls::peer_identity));
                policy.authorize(request.uri().path(), bearer, peer)
            }
        };
        match decision {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                futures::future::Either::Right(self.inner.call(request))
            }
            Err(status) => {
                tracing::debug!(path = request.uri().path(), code = ?status.code(), "refused");
                futures::future::Either::Left(futures::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_tls::PeerIdentity;

    fn policy() -> AuthPolicy {
        let roles = BTreeMap::from([
            ("reader".to_string(), vec!["ledger.read".to_string()]),
            (
                "pay".to_string(),
                vec!["ledger.read", "ledger.write", "records.write"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
            ),
        ]);
        let tokens = BTreeMap::from([("reader".to_string(), tally_tls::token_sha256_hex("tok"))]);
        AuthPolicy::new(&roles, &tokens).unwrap()
    }

    fn peer(name: &str, is_node: bool) -> Option<PeerIdentity> {
        Some(PeerIdentity {
            name: name.into(),
            is_node,
        })
    }

    #[test]
    fn roles_are_checked_per_method() {
        let policy = policy();
        let read = "/tally.v1.Ledger/LookupAccounts";
        let write = "/tally.v1.Ledger/CreateTransfers";
        assert!(policy.authorize(read, None, peer("reader", false)).is_ok());
        let denied = policy
            .authorize(write, None, peer("reader", false))
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("ledger.write"), "{denied:?}");
        assert!(policy.authorize(write, None, peer("pay", false)).is_ok());
        // Tokens identify by hash; a wrong token is unauthenticated, not anonymous.
        assert!(policy.authorize(read, Some("Bearer tok"), None).is_ok());
        let unknown = policy
            .authorize(read, Some("Bearer nope"), None)
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::Unauthenticated);
        let none = policy.authorize(read, None, None).unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn only_node_certificates_may_send_raft_messages() {
        let policy = policy();
        let append = "/tally.v1.Raft/AppendEntries";
        assert!(policy.authorize(append, None, peer("node-2", true)).is_ok());
        let denied = policy
            .authorize(append, None, peer("pay", false))
            .unwrap_err();
        assert!(denied.message().contains("node"), "{denied:?}");
        // A client certificate named like a node is still not a node certificate.
        assert!(policy
            .authorize(append, None, peer("node-2", false))
            .is_err());
        let unknown = policy.authorize("/tally.v1.Ledger/Nope", None, peer("pay", false));
        assert_eq!(unknown.unwrap_err().code(), tonic::Code::Unimplemented);
    }

    #[test]
    fn bad_config_is_listed() {
        let roles = BTreeMap::from([(
            "x".to_string(),
            vec!["ledger.raed".to_string(), "node".to_string()],
        )]);
        let tokens = BTreeMap::from([("t".to_string(), "plaintext-token".to_string())]);
        let problems = AuthPolicy::new(&roles, &tokens).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn disabled_policy_lets_everything_through() {
        let policy = AuthPolicy::disabled();
        assert!(policy
            .authorize("/tally.v1.Admin/InitCluster", None, None)
            .is_ok());
    }
}
