//! Starts, kills and restarts real `tally-node` processes; polls for conditions with deadlines.
//! Every cluster runs with TLS and roles, as in production: a CA and certificates are made per
//! cluster ([`TestCerts`]), and the harness's own client is the `admin` identity.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tally_client::{Client, ClientOptions, Credentials, Secret};
use tally_proto::v1;
use tally_proto::v1::ledger_client::LedgerClient;
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How long a cluster may take to elect a leader, or a node to catch up.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A binary built by `cargo test --workspace`, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so it is built",
        path.display()
    );
    path
}

/// A command's stdout and stderr, for assertion messages.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

/// Client identities of a test cluster and their roles in the nodes' `[auth.roles]`.
pub const IDENTITIES: &[(&str, &str)] = &[
    (
        "admin",
        r#"["admin", "ledger.read", "ledger.write", "records.write"]"#,
    ),
    (
        "tally-pay",
        r#"["ledger.read", "ledger.write", "records.write"]"#,
    ),
    ("reader", r#"["ledger.read"]"#),
    ("token-reader", r#"["ledger.read"]"#),
];

/// The bearer token of the `token-reader` identity (its SHA-256 is in the nodes' config).
pub const READER_TOKEN: &str = "tally-test-token-reader-0123456789";

/// A cluster's CA, node certificates and client certificates, plus the nodes' config file.
pub async fn client_as(addrs: &[String], credentials: &Credentials, deadline: Duration) -> Client {
    let mut options = ClientOptions {
        deadline,
        request_timeout: deadline.min(Duration::from_secs(5)),
        ..ClientOptions::default()
    };
    credentials.apply(&mut options).expect("credentials");
    Client::connect(addrs.to_vec(), options)
        .await
        .expect("client")
}

pub struct TestCerts {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub authority: tally_tls::Authority,
    pub node_config: PathBuf,
}

impl TestCerts {
    /// Makes a CA, a certificate for each of `count` nodes on 127.0.0.1, one per client identity.
    pub fn create(dir: &Path, count: u64) -> TestCerts {
        let hosts: Vec<String> = (1..=count).map(|_| "127.0.0.1".to_string()).collect();
        TestCerts::create_for_hosts(dir, &hosts)
    }

    /// As [`TestCerts::create`], node `i + 1`'s certificate naming `hosts[i]` (the host or IP
    /// address clients dial it at).
    pub fn create_for_hosts(dir: &Path, hosts: &[String]) -> TestCerts {
        let authority =
            tally_tls::Authority::create("test CA", tally_tls::Validity::days(30)).expect("CA");
        let ca = authority.write(dir).expect("write CA");
        for (id, host) in (1..).zip(hosts) {
            authority
                .issue_node(
                    id,
                    std::slice::from_ref(host),
                    tally_tls::Validity::days(30),
                )
                .expect("node cert")
                .write(dir, &tally_tls::node_name(id))
                .expect("write node cert");
        }
        let mut config = String::from("[auth.roles]\n");
        for (name, roles) in IDENTITIES {
            authority
                .issue_client(name, tally_tls::Validity::days(30))
                .expect("client cert")
                .write(dir, &format!("client-{name}"))
                .expect("write client cert");
            config.push_str(&format!("\"{name}\" = {roles}\n"));
        }
        config.push_str(&format!(
            "[auth.tokens]\n\"token-reader\" = \"{}\"\n",
            tally_tls::token_sha256_hex(READER_TOKEN)
        ));
        let node_config = dir.join("node.toml");
        std::fs::write(&node_config, config).expect("write node config");
        TestCerts {
            dir: dir.to_path_buf(),
            ca,
            authority,
            node_config,
        }
    }

    pub fn node_cert(&self, id: u64) -> (PathBuf, PathBuf) {
        let stem = tally_tls::node_name(id);
        (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
        )
    }

    pub fn client_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("client-{name}.pem")),
            self.dir.join(format!("client-{name}.key")),
        )
    }

    /// `TALLY_CA`, `TALLY_CERT`, `TALLY_KEY` for the client identity `name` (for tallyctl and
    /// tally-pay processes).
    pub fn env(&self, name: &str) -> Vec<(String, String)> {
        let (cert, key) = self.client_cert(name);
        vec![
            ("TALLY_CA".into(), self.ca.display().to_string()),
            ("TALLY_CERT".into(), cert.display().to_string()),
            ("TALLY_KEY".into(), key.display().to_string()),
        ]
    }

    /// Credentials of the client identity `name`.
    pub fn credentials(&self, name: &str) -> Credentials {
        let (cert, key) = self.client_cert(name);
        Credentials {
            ca: Some(self.ca.clone()),
            cert: Some(cert),
            key: Some(key),
            token: None,
            insecure: false,
        }
    }

    /// Credentials with the CA only and a bearer token.
    pub fn token_credentials(&self, token: &str) -> Credentials {
        Credentials {
            ca: Some(self.ca.clone()),
            cert: None,
            key: None,
            token: Some(Secret::new(token)),
            insecure: false,
        }
    }
}

pub struct TestNode {
    pub id: u64,
    pub addr: String,
    /// Where the node serves `GET /metrics` (empty: no metrics endpoint; each extra port is one
    /// more chance of colliding with another test's).
    pub metrics_addr: String,
    pub data: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    /// Extra flags, e.g. the certificate paths.
    args: Vec<std::ffi::OsString>,
    /// A command the node is started through (its binary and flags follow), e.g.
    /// `ip netns exec NS`; empty: the binary is started directly.
    launcher: Vec<std::ffi::OsString>,
    child: Option<Child>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestNode {
    /// `kill -9`, if running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let mut command = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary("tally-node"));
                command
            }
            None => Command::new(binary("tally-node")),
        };
        let child = command
            .args([
                "serve",
                "--id",
                &self.id.to_string(),
                "--listen",
                &self.addr,
                "--data",
            ])
            .arg(&self.data)
            .args(
                (!self.metrics_addr.is_empty())
                    .then_some(["--metrics-listen", self.metrics_addr.as_str()])
                    .into_iter()
                    .flatten(),
            )
            .args(&self.args)
            .envs(
                self.env
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tally-node");
        self.child = Some(child);
    }
}

pub struct TestCluster {
    /// Holds every node's data and log; removed when the cluster drops.
    _dir: tempfile::TempDir,
    pub nodes: Vec<TestNode>,
    pub certs: TestCerts,
    /// The `admin` identity's client.
    pub client: Client,
    /// Whether nodes serve metrics (also those started later with `spawn_node`).
    with_metrics: bool,
}

fn metrics_addr(with_metrics: bool) -> String {
    if with_metrics {
        format!("127.0.0.1:{}", free_port())
    } else {
        String::new()
    }
}

/// Where a node of [`TestCluster::start_placed`] listens, and how its process is started.
pub struct Placement {
    /// `IP:PORT`; its certificate names the IP.
    pub addr: String,
    /// See `TestNode::launcher`.
    pub launcher: Vec<std::ffi::OsString>,
}

impl TestCluster {
    /// Starts `count` nodes with extra `TALLY__…` settings, forms the cluster, waits for a leader.
    pub async fn start(count: u64, env: &[(&str, &str)]) -> TestCluster {
        Self::start_with(count, env, false).await
    }

    /// As [`TestCluster::start`], every node also serving metrics (`TestNode::metrics_addr`).
    pub async fn start_with_metrics(count: u64, env: &[(&str, &str)]) -> TestCluster {
        Self::start_with(count, env, true).await
    }

    async fn start_with(count: u64, env: &[(&str, &str)], with_metrics: bool) -> TestCluster {
        let placements: Vec<Placement> = (1..=count)
            .map(|_| Placement {
                addr: format!("127.0.0.1:{}", free_port()),
                launcher: Vec::new(),
            })
            .collect();
        Self::start_nodes(&placements, env, with_metrics).await
    }

    /// As [`TestCluster::start`], node `i + 1` listening and started as `placements[i]` says
    /// (e.g. inside a network namespace), without metrics.
    pub async fn start_placed(placements: &[Placement], env: &[(&str, &str)]) -> TestCluster {
        Self::start_nodes(placements, env, false).await
    }

    async fn start_nodes(
        placements: &[Placement],
        env: &[(&str, &str)],
        with_metrics: bool,
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("TALLY__NODE__LOG".into(), "info,openraft=warn".into()));
        let hosts: Vec<String> = placements
            .iter()
            .map(|placement| {
                let (host, _port) = placement.addr.rsplit_once(':').expect("IP:PORT");
                host.to_string()
            })
            .collect();
        let certs = TestCerts::create_for_hosts(&dir.path().join("certs"), &hosts);
        let mut nodes: Vec<TestNode> = (1..)
            .zip(placements)
            .map(|(id, placement)| {
                let (cert, key) = certs.node_cert(id);
                TestNode {
                    id,
                    addr: placement.addr.clone(),
                    metrics_addr: metrics_addr(with_metrics),
                    data: dir.path().join(format!("node-{id}")),
                    log: dir.path().join(format!("node-{id}.log")),
                    env: env.clone(),
                    args: node_args(&certs, cert, key),
                    launcher: placement.launcher.clone(),
                    child: None,
                }
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        let addrs: Vec<String> = nodes.iter().map(|node| node.addr.clone()).collect();
        let client = client_as(&addrs, &certs.credentials("admin"), Duration::from_secs(60)).await;
        let cluster = TestCluster {
            _dir: dir,
            nodes,
            with_metrics,
            certs,
            client,
        };
        let members: Vec<v1::Node> = cluster
            .nodes
            .iter()
            .map(|node| v1::Node {
                id: node.id,
                addr: node.addr.clone(),
            })
            .collect();
        let first = cluster.nodes[0].addr.clone();
        eventually(CONVERGE_TIMEOUT, "node 1 to accept init", || {
            let client = cluster.client.clone();
            let members = members.clone();
            let first = first.clone();
            async move { client.init_cluster(&first, members).await.ok() }
        })
        .await;
        cluster.leader().await;
        cluster
    }

    /// Starts a node `id` that is not a member, with `certs`' CA, certificate and config.
    pub fn spawn_node(&self, id: u64, certs: &TestCerts) -> TestNode {
        let (cert, key) = certs.node_cert(id);
        let mut node = TestNode {
            id,
            addr: format!("127.0.0.1:{}", free_port()),
            metrics_addr: metrics_addr(self.with_metrics),
            data: self.dir().join(format!("extra-node-{id}")),
            log: self.dir().join(format!("extra-node-{id}.log")),
            env: vec![("TALLY__NODE__LOG".into(), "info,openraft=warn".into())],
            args: node_args(certs, cert, key),
            launcher: Vec::new(),
            child: None,
        };
        node.spawn();
        node
    }

    /// A client of this cluster with `credentials` and a call deadline of `deadline`.
    pub async fn client_with(&self, credentials: &Credentials, deadline: Duration) -> Client {
        client_as(&self.addrs(), credentials, deadline).await
    }

    /// The directory holding the nodes' data, logs and certificates.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn node(&self, id: u64) -> &TestNode {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .expect("node id")
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.addr.clone()).collect()
    }

    pub fn cluster_arg(&self) -> String {
        self.addrs().join(",")
    }

    /// Runs `tallyctl ARGS` as the admin identity against this cluster.
    pub fn tallyctl(&self, args: &[&str]) -> std::process::Output {
        self.tallyctl_at(&self.cluster_arg(), args)
    }

    /// Runs `tallyctl ARGS` as the admin identity against the nodes at `addrs`.
    pub fn tallyctl_at(&self, addrs: &str, args: &[&str]) -> std::process::Output {
        Command::new(binary("tallyctl"))
            .args(["--cluster", addrs])
            .args(args)
            .envs(self.certs.env("admin"))
            .stdin(Stdio::null())
            .output()
            .expect("run tallyctl")
    }

    pub async fn status(&self, id: u64) -> Option<v1::StatusReply> {
        self.client.status(&self.node(id).addr).await.ok()
    }

    /// A raw gRPC Ledger client to node `id` as the admin identity, past `tally-client`: for
    /// requests the ledger's types cannot express (malformed fields).
    pub fn ledger_grpc(&self, id: u64) -> LedgerClient<Channel> {
        let (cert, key) = self.certs.client_cert("admin");
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(&self.certs.ca).expect("read CA"),
            ))
            .identity(Identity::from_pem(
                std::fs::read(cert).expect("read cert"),
                std::fs::read(key).expect("read key"),
            ));
        let channel = Endpoint::from_shared(format!("https://{}", self.node(id).addr))
            .expect("endpoint")
            .tls_config(tls)
            .expect("TLS config")
            .connect_lazy();
        LedgerClient::new(channel)
    }

    /// Waits until the running nodes agree on one leader, and returns it.
    pub async fn leader(&self) -> u64 {
        let running: Vec<u64> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.id)
            .collect();
        eventually(
            CONVERGE_TIMEOUT,
            "a leader that every running node agrees on",
            || self.agreed_leader(&running),
        )
        .await
    }

    /// The leader the nodes `ids` all name now, if they agree on one of them and it says it
    /// leads (one poll: `None` while they disagree or someone is silent).
    pub async fn agreed_leader(&self, ids: &[u64]) -> Option<u64> {
        let mut leader = None;
        for id in ids {
            let status = self.status(*id).await?;
            if status.leader_id == 0 || leader.is_some_and(|known| known != status.leader_id) {
                return None;
            }
            leader = Some(status.leader_id);
        }
        let leader = leader.filter(|leader| ids.contains(leader))?;
        (self.status(leader).await?.role == "leader").then_some(leader)
    }

    /// `kill -9`.
    pub fn kill(&mut self, id: u64) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.id == id)
            .expect("node id");
        if let Some(mut child) = node.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    pub fn restart(&mut self, id: u64) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.id == id)
            .expect("node id");
        assert!(node.child.is_none(), "node {id} is still running");
        node.spawn();
    }

    /// Waits until every running node has applied at least what the leader had applied when
    /// this was called, and returns that index.
    pub async fn wait_caught_up(&self) -> u64 {
        let leader = self.leader().await;
        let target = self
            .status(leader)
            .await
            .expect("leader status")
            .last_applied;
        eventually(
            CONVERGE_TIMEOUT,
            "every node to catch up with the leader",
            || async {
                for node in self.nodes.iter().filter(|node| node.child.is_some()) {
                    if self.status(node.id).await?.last_applied < target {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await;
        target
    }

    /// Proposes a checkpoint and returns each running node's digest at it.
    pub async fn digests(&self) -> Vec<(u64, v1::GetDigestReply)> {
        let index = self.client.checkpoint().await.expect("checkpoint");
        let mut digests = Vec::new();
        for node in self.nodes.iter().filter(|node| node.child.is_some()) {
            let digest = eventually(CONVERGE_TIMEOUT, "the checkpoint digest", || async {
                let reply = self.client.get_digest(&node.addr, index).await.ok()?;
                reply.ready.then_some(reply)
            })
            .await;
            digests.push((node.id, digest));
        }
        digests
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The flags that give a node its config (roles), the CA, and its certificate and key.
pub fn node_args(certs: &TestCerts, cert: PathBuf, key: PathBuf) -> Vec<std::ffi::OsString> {
    vec![
        "--config".into(),
        certs.node_config.clone().into(),
        "--ca".into(),
        certs.ca.clone().into(),
        "--cert".into(),
        cert.into(),
        "--key".into(),
        key.into(),
    ]
}
