//! The deployment files work: a 3-node cluster starts on loopback from exactly
//! `deploy/node-{1,2,3}.toml`, with only what differs between those machines and this one
//! (addresses, data and certificate paths) overridden through `TALLY__…` variables, as an
//! operator's environment file would. It forms, takes a write, and serves its metrics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::{binary, eventually, CONVERGE_TIMEOUT};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_starts_from_the_deploy_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let authority =
        tally_tls::Authority::create("deploy test CA", tally_tls::Validity::days(2)).unwrap();
    let ca = authority.write(&certs).unwrap();
    let (ops_cert, ops_key) = authority
        .issue_client("ops", tally_tls::Validity::days(2))
        .unwrap()
        .write(&certs, "client-ops")
        .unwrap();
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let metrics: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let (cert, key) = authority
            .issue_node(id, &["127.0.0.1".into()], tally_tls::Validity::days(2))
            .unwrap()
            .write(&certs, &tally_tls::node_name(id))
            .unwrap();
        let index = id as usize - 1;
        let log = std::fs::File::create(dir.path().join(format!("node-{id}.log"))).unwrap();
        let child = Command::new(binary("tally-node"))
            .args(["serve", "--config"])
            .arg(deploy_file(&format!("node-{id}.toml")))
            .env("TALLY__NODE__LISTEN", &addrs[index])
            .env("TALLY__NODE__ADVERTISE", &addrs[index])
            .env("TALLY__NODE__METRICS_LISTEN", &metrics[index])
            .env("TALLY__NODE__DATA", dir.path().join(format!("data-{id}")))
            .env("TALLY__TLS__CA", &ca)
            .env("TALLY__TLS__CERT", &cert)
            .env("TALLY__TLS__KEY", &key)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.push(Node(child));
    }

    let tallyctl = |args: &[&str]| {
        Command::new(binary("tallyctl"))
            .args(["--cluster", &addrs.join(",")])
            .args(args)
            .env("TALLY_CA", &ca)
            .env("TALLY_CERT", &ops_cert)
            .env("TALLY_KEY", &ops_key)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let members = format!("1={},2={},3={}", addrs[0], addrs[1], addrs[2]);
    let init = tallyctl(&["cluster", "init", "--nodes", &members]);
    assert!(
        init.status.success(),
        "{}{}",
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr)
    );
    let created = tallyctl(&[
        "account", "create", "--id", "1", "--ledger", "1", "--code", "1",
    ]);
    assert!(created.status.success(), "{created:?}");
    let status = tallyctl(&["status"]);
    assert!(status.status.success(), "{status:?}");

    // The files ask for JSON logs and a metrics port.
    let scraped = eventually(CONVERGE_TIMEOUT, "node 1's metrics", || async {
        let response = reqwest::get(format!("http://{}/metrics", metrics[0]))
            .await
            .ok()?;
        let text = response.text().await.ok()?;
        text.contains("tally_raft_term").then_some(text)
    })
    .await;
    assert!(scraped.contains("tally_entries_applied_total"));
    let log = std::fs::read_to_string(dir.path().join("node-1.log")).unwrap();
    let first = log.lines().next().expect("node 1 logged");
    let line: serde_json::Value = serde_json::from_str(first).expect("a JSON log line");
    assert!(
        line["level"].is_string() && line["message"].is_string(),
        "{first}"
    );
}
