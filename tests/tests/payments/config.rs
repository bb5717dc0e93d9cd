//! `tally-pay serve` takes its settings from the config file, then `TALLY_PAY__SECTION__KEY`
//! environment variables, then flags, and checks them all before it reaches the ledger cluster
//! or binds its port: a bad configuration exits non-zero with every problem named.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{binary, eventually, output_text};

/// A tally-pay refused for its configuration exits at once; this only bounds a regression.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a tally-pay given a good configuration may take to call the ledger cluster.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Stands in for a ledger node: it accepts TCP connections and answers nothing, so a test sees
/// whether tally-pay tried to reach it (and tally-pay, waiting for the cluster, never binds).
struct FakeNode {
    listener: TcpListener,
    addr: String,
}

impl FakeNode {
    fn new() -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        FakeNode { listener, addr }
    }

    /// Whether a connection has arrived since the last call.
    fn was_reached(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// `tally-pay serve ARGS` with `env` and none of the test's own `TALLY_…` variables (some are
/// read as flags: `TALLY_CLUSTER`, `TALLY_PSP_URL`); plain text to the cluster; killed when
/// dropped.
fn tally_pay(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary("tally-pay"));
    command.arg("serve").args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TALLY_")) {
        command.env_remove(name);
    }
    command
        .env("TALLY_INSECURE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `tally-pay serve ARGS` with `env` until it exits.
async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let run = tally_pay(args, env).output();
    tokio::time::timeout(EXIT_TIMEOUT, run)
        .await
        .expect("tally-pay exits: its configuration was accepted")
        .expect("tally-pay starts")
}

/// Starts `tally-pay serve ARGS` with `env`, waits until it calls `expected`, stops it, and
/// checks that it called none of `others`.
async fn calls_only(
    args: &[&str],
    env: &[(&str, &str)],
    expected: &FakeNode,
    others: &[&FakeNode],
) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut pay = tally_pay(args, env)
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("tally-pay starts");
    let what = format!("tally-pay to call the ledger node at {}", expected.addr);
    eventually(CONNECT_TIMEOUT, &what, || {
        if let Some(status) = pay.try_wait().unwrap() {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!(
                "tally-pay exited ({status}) before calling {}: {text}",
                expected.addr
            );
        }
        std::future::ready(expected.was_reached().then_some(()))
    })
    .await;
    pay.kill().await.unwrap();
    for other in others {
        assert!(
            !other.was_reached(),
            "tally-pay called {} as well as {}",
            other.addr,
            expected.addr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_environment_which_overrides_the_file() {
    let (file_node, env_node, flag_node) = (FakeNode::new(), FakeNode::new(), FakeNode::new());
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pay.toml");
    // Dev mode is given by the file alone: without it the missing secrets stop tally-pay.
    std::fs::write(
        &config,
        format!("[pay]\ndev = true\ncluster = \"{}\"\n", file_node.addr),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let from_env = [("TALLY_PAY__PAY__CLUSTER", env_node.addr.as_str())];
    let file_only = ["--config", config, "--listen", &listen];
    let with_flag = [&file_only[..], &["--cluster", &flag_node.addr]].concat();

    calls_only(&with_flag, &from_env, &flag_node, &[&env_node, &file_node]).await;
    calls_only(&file_only, &from_env, &env_node, &[&file_node]).await;
    calls_only(&file_only, &[], &file_node, &[]).await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_stops_tally_pay_before_it_binds_its_port_or_reaches_the_cluster() {
    let cluster = FakeNode::new();
    // Held here: a tally-pay that bound before checking would fail with "binding …" instead.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let output = run_to_exit(
        &[
            "--dev",
            "--cluster",
            &cluster.addr,
            "--listen",
            &addr,
            "--log-format",
            "yaml",
        ],
        &[
            ("TALLY_PAY__FEES__PERCENT", "abc"),
            ("TALLY_PAY__PAY__CURRENCIES", "USD,XXX"),
        ],
    )
    .await;
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    // Two problems from the environment, one from a flag.
    for problem in [
        "invalid configuration",
        "fees.percent \"abc\"",
        "pay.currencies: unknown currency \"XXX\"",
        "pay.log_format \"yaml\"",
    ] {
        assert!(text.contains(problem), "{problem:?} in {text}");
    }
    assert!(!text.contains("binding"), "{text}");

    // The flags are checked with the rest, --listen too.
    let output = run_to_exit(
        &["--dev", "--cluster", &cluster.addr, "--listen", "nowhere"],
        &[],
    )
    .await;
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("pay.listen \"nowhere\""), "{text}");

    // So are unknown settings.
    let output = run_to_exit(
        &["--dev", "--cluster", &cluster.addr, "--listen", &addr],
        &[("TALLY_PAY__PSP__URLL", "x")],
    )
    .await;
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("urll"), "{text}");
    assert!(!text.contains("binding"), "{text}");

    assert!(
        !cluster.was_reached(),
        "a tally-pay with a bad configuration called the cluster"
    );
    drop(held);
}
