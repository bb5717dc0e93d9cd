//! Starts, kills and restarts real `tally-node` processes; polls for conditions with deadlines.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tally_client::{Client, ClientOptions};
use tally_proto::v1;
use tokio::time::Instant;

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

pub struct TestNode {
    pub id: u64,
    pub addr: String,
    pub data: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl TestNode {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let child = Command::new(binary("tally-node"))
            .args([
                "serve",
                "--id",
                &self.id.to_string(),
                "--listen",
                &self.addr,
                "--data",
            ])
            .arg(&self.data)
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
    pub client: Client,
}

impl TestCluster {
    /// Starts `count` nodes with extra `TALLY__…` settings, forms the cluster, waits for a leader.
    pub async fn start(count: u64, env: &[(&str, &str)]) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("TALLY__NODE__LOG".into(), "info,openraft=warn".into()));
        let mut nodes: Vec<TestNode> = (1..=count)
            .map(|id| TestNode {
                id,
                addr: format!("127.0.0.1:{}", free_port()),
                data: dir.path().join(format!("node-{id}")),
                log: dir.path().join(format!("node-{id}.log")),
                env: env.clone(),
                child: None,
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        let addrs: Vec<String> = nodes.iter().map(|node| node.addr.clone()).collect();
        let options = ClientOptions {
            deadline: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        let client = Client::connect(addrs, options).await.expect("client");
        let cluster = TestCluster {
            _dir: dir,
            nodes,
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

    pub async fn status(&self, id: u64) -> Option<v1::StatusReply> {
        self.client.status(&self.node(id).addr).await.ok()
    }

    /// Waits until the running nodes agree on one leader, and returns it.
    pub async fn leader(&self) -> u64 {
        eventually(
            CONVERGE_TIMEOUT,
            "a leader that every running node agrees on",
            || async {
                let mut leader = None;
                for node in self.nodes.iter().filter(|node| node.child.is_some()) {
                    let status = self.status(node.id).await?;
                    if status.leader_id == 0
                        || leader.is_some_and(|known| known != status.leader_id)
                    {
                        return None;
                    }
                    leader = Some(status.leader_id);
                }
                let leader = leader?;
                let status = self.status(leader).await?;
                (status.role == "leader").then_some(leader)
            },
        )
        .await
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
