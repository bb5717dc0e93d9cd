//! `tally-node dev` as a newcomer runs it: the ports it is given, the environment file, a node
//! killed and restarted, output into a closed pipe, a restart that keeps the sandbox PSP's
//! books and appends to the logs, busy ports refused, and children that die with it however
//! it ends.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the dev cluster may take to come up (the first start builds nothing, but three
/// nodes elect a leader and tally-pay connects).
const START_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`",
        path.display()
    );
    path
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A first port with it and the next two free (and their metrics ports, 100 up), plus two more
/// free ports.
fn free_ports() -> (u16, u16, u16) {
    let mut candidate = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    loop {
        candidate = if candidate > 60_000 {
            20_000
        } else {
            candidate + 7
        };
        if (candidate..candidate + 5).all(port_is_free)
            && (candidate + 100..candidate + 103).all(port_is_free)
        {
            return (candidate, candidate + 3, candidate + 4);
        }
    }
}

/// Polls `check` every 50 ms (the poll interval, not a wait for the condition) until it is
/// true; panics naming `what` after `timeout`.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses; a zombie has exited.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

struct Dev {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(data: &Path, ports: (u16, u16, u16), payments: bool) -> Dev {
        let mut command = Command::new(binary("tally-node"));
        command
            .args(["dev", "--port", &ports.0.to_string()])
            .args([
                "--pay-port",
                &ports.1.to_string(),
                "--psp-port",
                &ports.2.to_string(),
            ])
            .arg("--data")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !payments {
            command.arg("--no-payments");
        }
        let mut child = command.spawn().expect("start tally-node dev");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Dev { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_for(&self, needle: &str, timeout: Duration) {
        eventually(timeout, needle, || self.output().contains(needle));
        assert!(!self.output().contains("panicked"), "{}", self.output());
    }

    /// Waits for the process to end; its exit status.
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut status = None;
        eventually(timeout, "tally-node dev to exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn child_pids(data: &Path) -> Vec<u32> {
    ["node-1", "node-2", "node-3", "tally-pay", "sandbox-psp"]
        .iter()
        .filter_map(|name| read_pid(&data.join(format!("{name}.pid"))))
        .collect()
}

#[test]
fn busy_ports_are_refused_before_anything_starts() {
    let ports = free_ports();
    let _taken = TcpListener::bind(("127.0.0.1", ports.0 + 1)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(data.path(), ports, false);
    let status = dev.wait_exit(STOP_TIMEOUT);
    assert!(!status.success(), "{}", dev.output());
    let output = dev.output();
    assert!(
        output.contains(&format!("port {} (for node 2) is not free", ports.0 + 1)),
        "{output}"
    );
    assert!(!output.contains("cluster ready"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_restarts_nodes_keeps_its_books_and_takes_its_children_along() {
    let ports = free_ports();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().canonicalize().unwrap();
    let cluster = format!(
        "127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
        ports.0,
        ports.0 + 1,
        ports.0 + 2
    );
    let mut dev = Dev::start(&data, ports, true);
    dev.wait_for("try: source", START_TIMEOUT);

    // The environment file and the printed exports name the ports in use.
    let env = std::fs::read_to_string(data.join("tally.env")).unwrap();
    assert!(
        env.contains(&format!("export TALLY_CLUSTER={cluster}\n")),
        "{env}"
    );
    assert!(
        env.contains(&format!(
            "export TALLY_PAY_URL=http://127.0.0.1:{}\n",
            ports.1
        )),
        "{env}"
    );
    assert!(
        env.contains(&format!(
            "export TALLY_PSP_URL=http://127.0.0.1:{}\n",
            ports.2
        )),
        "{env}"
    );
    assert!(dev
        .output()
        .contains(&format!("export TALLY_CLUSTER={cluster}")));

    // The dashboard's address and a key that signs in to it are printed.
    let output = dev.output();
    let line = output
        .lines()
        .find(|l| l.starts_with("dashboard: "))
        .unwrap_or_else(|| panic!("no dashboard line: {output}"));
    let dashboard = format!("http://127.0.0.1:{}/dashboard", ports.1);
    assert!(line.contains(&dashboard), "{line}");
    let key = line
        .split("sign in with the key ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no key in {line}"));
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{dashboard}/login"))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "signing in with the printed key");
    assert!(signed_in.headers().contains_key("set-cookie"));

    // Each node's metrics on its gRPC port + 100, printed at start.
    let http = reqwest::Client::new();
    for offset in 0..3u16 {
        let metrics = format!("http://127.0.0.1:{}/metrics", ports.0 + offset + 100);
        assert!(dev.output().contains(&metrics), "{}", dev.output());
        let text = http
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("tally_raft_term"), "{metrics}: {text}");
    }

    // A card tokenized at the sandbox PSP before a restart.
    let psp = format!("http://127.0.0.1:{}", ports.2);
    let token: serde_json::Value = http
        .post(format!("{psp}/v1/tokens"))
        .bearer_auth("pk_test_demo")
        .json(&serde_json::json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("a token").to_string();

    // A node killed with SIGKILL is restarted, and the cluster answers with all three.
    let killed = read_pid(&data.join("node-1.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-9", &killed.to_string()])
        .status()
        .unwrap()
        .success());
    dev.wait_for("node 1 restarted", Duration::from_secs(30));
    assert_ne!(read_pid(&data.join("node-1.pid")), Some(killed));
    // tallyctl with nothing but what tally.env sets (the cluster, the CA, the admin certificate).
    let tallyctl = |arguments: &str| {
        let mut command = Command::new("bash");
        command.arg("-c").arg(format!(
            "source '{}' && '{}' {arguments}",
            data.join("tally.env").display(),
            binary("tallyctl").display()
        ));
        command
    };
    let mut last = String::new();
    eventually(Duration::from_secs(60), "three nodes up", || {
        let output = tallyctl("--json status").output().unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        last.matches("\"up\":true").count() == 3
    });
    assert!(last.contains(&format!("127.0.0.1:{}", ports.0)), "{last}");

    // Output into a pipe whose reader has gone: a quiet exit 0, not a panic.
    let mut reader_gone = tallyctl("--json status")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(reader_gone.stdout.take());
    let closed = reader_gone.wait_with_output().unwrap();
    assert_eq!(
        closed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&closed.stderr)
    );
    assert!(!String::from_utf8_lossy(&closed.stderr).contains("panicked"));

    // SIGTERM, as a process manager sends it: everything stops.
    let children = child_pids(&data);
    assert_eq!(children.len(), 5, "{children:?}");
    dev.signal("-TERM");
    assert!(dev.wait_exit(STOP_TIMEOUT).success(), "{}", dev.output());
    eventually(STOP_TIMEOUT, "the children to exit after SIGTERM", || {
        !children.iter().any(|pid| alive(*pid))
    });

    // Started again on the same data: the sandbox PSP still knows the token, and the node logs
    // were appended to, not truncated.
    let mut dev = Dev::start(&data, ports, true);
    dev.wait_for("try: source", START_TIMEOUT);
    let known = http
        .get(format!("{psp}/v1/tokens/{token}"))
        .bearer_auth("sk_test_tally")
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), 200, "{}", known.text().await.unwrap());
    let log = std::fs::read_to_string(data.join("node-2.log")).unwrap();
    assert!(log.matches("tally-node serving").count() >= 2, "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log file: {log}");

    // SIGKILL leaves it no chance to clean up; the children still go.
    let children = child_pids(&data);
    assert_eq!(children.len(), 5, "{children:?}");
    dev.signal("-KILL");
    dev.wait_exit(STOP_TIMEOUT);
    eventually(STOP_TIMEOUT, "the children to exit after SIGKILL", || {
        !children.iter().any(|pid| alive(*pid))
    });
}
