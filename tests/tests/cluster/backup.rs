//! `tallyctl backup` takes an online, consistent backup while the cluster takes writes;
//! `tally-node restore` refuses a damaged backup, naming the file, and otherwise loads it into new
//! data directories from which a new cluster forms and reports the backup's digest.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tally_client::{AccountBuilder, TransferBuilder};
use tally_proto::v1;

use crate::harness::{binary, eventually, output_text, TestCluster, CONVERGE_TIMEOUT};

fn restore(from: &std::path::Path, data: &std::path::Path) -> Output {
    Command::new(binary("tally-node"))
        .args(["restore", "--from"])
        .arg(from)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .expect("run tally-node restore")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_into_a_new_cluster_with_the_same_digest() {
    let cluster = TestCluster::start(3, &[]).await;
    let accounts: Vec<_> = (1..=20u128)
        .map(|id| AccountBuilder::new(id, 1, 1).build())
        .collect();
    cluster.client.create_accounts(accounts).await.unwrap();
    let transfers: Vec<_> = (0..200u128)
        .map(|n| TransferBuilder::new(1000 + n, 1 + n % 20, 1 + (n + 7) % 20, 3, 1, 1).build())
        .collect();
    cluster.client.create_transfers(transfers).await.unwrap();

    // Writes keep coming while the backup streams.
    let writer = cluster.client.clone();
    let load = tokio::spawn(async move {
        for n in 0..100u128 {
            let transfer = TransferBuilder::new(5000 + n, 2, 3, 1, 1, 1).build();
            writer.create_transfers(vec![transfer]).await.unwrap();
        }
    });
    let dir = cluster.dir().join("backup");
    let dir_arg = dir.display().to_string();
    let backup = cluster.tallyctl(&["backup", "--to", &dir_arg]);
    assert!(backup.status.success(), "{}", output_text(&backup));
    load.await.unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let digest = manifest["digest"].as_str().unwrap().to_string();
    assert!(
        manifest["applied_index"].as_u64().unwrap() > 0,
        "{manifest}"
    );
    assert_eq!(digest.len(), 64, "{manifest}");
    assert_eq!(manifest["files"][0]["name"], "state.snapshot");
    // Into an existing backup directory: refused.
    let again = cluster.tallyctl(&["backup", "--to", &dir_arg]);
    assert!(!again.status.success(), "{}", output_text(&again));

    // A copy with one flipped byte: refused, naming the file.
    let damaged = cluster.dir().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::copy(dir.join("MANIFEST.json"), damaged.join("MANIFEST.json")).unwrap();
    let mut bytes = std::fs::read(dir.join("state.snapshot")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(damaged.join("state.snapshot"), bytes).unwrap();
    let refused = restore(&damaged, &cluster.dir().join("never"));
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains("state.snapshot is damaged"),
        "{}",
        output_text(&refused)
    );
    assert!(
        !cluster.dir().join("never").join("db").exists(),
        "nothing was created"
    );

    // The good backup, into three new data directories; a new cluster forms on them.
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let data = cluster.dir().join(format!("extra-node-{id}"));
        let restored = restore(&dir, &data);
        assert!(restored.status.success(), "{}", output_text(&restored));
        assert!(
            output_text(&restored).contains(&digest),
            "{}",
            output_text(&restored)
        );
        nodes.push(cluster.spawn_node(id, &cluster.certs));
    }
    let members: Vec<v1::Node> = nodes
        .iter()
        .map(|node| v1::Node {
            id: node.id,
            addr: node.addr.clone(),
        })
        .collect();
    let first = nodes[0].addr.clone();
    eventually(CONVERGE_TIMEOUT, "the new cluster to accept init", || {
        let client = cluster.client.clone();
        let (members, first) = (members.clone(), first.clone());
        async move { client.init_cluster(&first, members).await.ok() }
    })
    .await;
    let new_addrs: Vec<String> = nodes.iter().map(|node| node.addr.clone()).collect();
    let verified = eventually(
        Duration::from_secs(60),
        "tallyctl verify on the new cluster",
        || {
            let output = cluster.tallyctl_at(&new_addrs.join(","), &["verify"]);
            async move { output.status.success().then_some(output) }
        },
    )
    .await;
    assert!(
        output_text(&verified).contains(&format!("digest {digest}")),
        "{}",
        output_text(&verified)
    );
}

/// A data directory written by a newer tally-node (a higher `FORMAT`) is refused at start-up
/// with an error that says so, and is left as it was.
#[test]
fn a_node_refuses_a_data_directory_of_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("FORMAT"), "99\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(binary("tally-node"))
        .args(["serve", "--insecure", "--id", "1", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("data format 99, newer than the 1"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        std::fs::read_to_string(data.join("FORMAT")).unwrap(),
        "99\n"
    );
    let entries: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing but FORMAT: {entries:?}");
}
