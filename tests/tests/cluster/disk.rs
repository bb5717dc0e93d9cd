//! A full disk: three nodes keep their data on a small tmpfs that the test mounts and unmounts.
//! When it fills, writes are refused at once with a "disk full" error, reads go on, and nothing is
//! damaged; when space returns, writes resume and the replicas agree.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tally_client::{AccountBuilder, ClientError, TransferBuilder};

use crate::harness::{binary, client_as, eventually, node_args, TestCerts, CONVERGE_TIMEOUT};

/// A tmpfs mounted for the test's lifetime.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "this test mounts a tmpfs to fill a disk safely and needs root (CI runs as root): \
             mount failed with {status}"
        );
        Mount(path.to_path_buf())
    }

    /// Bytes available to an unprivileged writer.
    fn available(&self) -> u64 {
        let output = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .expect("df prints the available bytes")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const MIB: u64 = 1 << 20;
const FREE_MIN: u64 = 96 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::create(&dir.path().join("certs"), 3);
    let mount = Mount::tmpfs(&dir.path().join("disk"), "640m");
    let addrs: Vec<String> = (0..3)
        .map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            format!("127.0.0.1:{port}")
        })
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let (cert, key) = certs.node_cert(id);
        let log = std::fs::File::create(dir.path().join(format!("node-{id}.log"))).unwrap();
        let child = Command::new(binary("tally-node"))
            .args([
                "serve",
                "--id",
                &id.to_string(),
                "--listen",
                &addrs[id as usize - 1],
            ])
            .arg("--data")
            .arg(mount.0.join(format!("node-{id}")))
            .args(node_args(&certs, cert, key))
            .env("TALLY__NODE__DISK_FREE_MIN_BYTES", FREE_MIN.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.push(Node(child));
    }
    let client = client_as(&addrs, &certs.credentials("admin"), Duration::from_secs(20)).await;
    let members: Vec<_> = (1..=3u64)
        .map(|id| tally_proto::v1::Node {
            id,
            addr: addrs[id as usize - 1].clone(),
        })
        .collect();
    eventually(CONVERGE_TIMEOUT, "the cluster to form", || {
        let (client, members, first) = (client.clone(), members.clone(), addrs[0].clone());
        async move { client.init_cluster(&first, members).await.ok() }
    })
    .await;
    eventually(CONVERGE_TIMEOUT, "the first write", || {
        let client = client.clone();
        async move {
            let accounts = vec![
                AccountBuilder::new(1, 1, 1).build(),
                AccountBuilder::new(2, 1, 1).build(),
            ];
            client.create_accounts(accounts).await.ok()
        }
    })
    .await;
    let transfer = |id: u128| TransferBuilder::new(id, 1, 2, 10, 1, 1).build();
    client.create_transfers(vec![transfer(10)]).await.unwrap();

    // Fill the disk to below the minimum.
    let filler = mount.0.join("filler");
    let fill = mount.available().saturating_sub(FREE_MIN / 2);
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; MIB as usize];
        let mut written = 0;
        while written < fill {
            let part = (fill - written).min(MIB) as usize;
            file.write_all(&chunk[..part]).unwrap();
            written += part as u64;
        }
        file.sync_all().unwrap();
    }
    assert!(mount.available() < FREE_MIN);
    let refused = client
        .create_transfers(vec![transfer(11)])
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Rejected { message, .. } if message.contains("disk full")),
        "{refused}"
    );
    // Reads go on, and show nothing of the refused write.
    let accounts = client.lookup_accounts(&[1, 2]).await.unwrap();
    assert_eq!(
        tally_client::Balances::of_account(&accounts[1]).credits_posted,
        10
    );
    assert!(client.lookup_transfers(&[11]).await.unwrap().is_empty());

    // Space returns: writes resume, and every replica holds the same state.
    std::fs::remove_file(&filler).unwrap();
    client.create_transfers(vec![transfer(11)]).await.unwrap();
    let accounts = client.lookup_accounts(&[1, 2]).await.unwrap();
    assert_eq!(
        tally_client::Balances::of_account(&accounts[1]).credits_posted,
        20
    );
    let index = client.checkpoint().await.unwrap();
    let mut digests = Vec::new();
    for addr in &addrs {
        let digest = eventually(CONVERGE_TIMEOUT, "every node's digest", || {
            let client = client.clone();
            let addr = addr.clone();
            async move {
                let reply = client.get_digest(&addr, index).await.ok()?;
                reply.ready.then_some(reply.digest)
            }
        })
        .await;
        digests.push(digest);
    }
    assert!(
        digests.iter().all(|digest| *digest == digests[0]),
        "{digests:?}"
    );
    drop(nodes);
}
