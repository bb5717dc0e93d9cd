//! `tally-node serve` takes its settings from the config file, then `TALLY__SECTION__KEY`
//! environment variables, then flags, and checks them all before it opens its data directory or
//! binds a port: a bad configuration exits with code 2 and every problem named, whichever layer
//! it came from.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{binary, eventually, output_text};

/// A node refused for its configuration exits at once; this only bounds a regression.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node given a good configuration may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// `tally-node serve ARGS --exit-on-stdin-close` with `env` and none of the test's own `TALLY__`
/// variables; killed when dropped.
fn tally_node(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary("tally-node"));
    command.arg("serve").args(args).arg("--exit-on-stdin-close");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TALLY__")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).kill_on_drop(true);
    command
}

/// Runs `tally-node serve ARGS` until it exits. Its standard input is empty, so a node that got
/// past its checks stops by itself too: this cannot hang.
async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let run = tally_node(args, env).stdin(Stdio::null()).output();
    tokio::time::timeout(EXIT_TIMEOUT, run)
        .await
        .expect("tally-node exits")
        .expect("tally-node starts")
}

/// An address on loopback that was free a moment ago.
fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A port held by the test, so a node that tries to bind it fails with "binding …".
fn held_port() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The losing layers name ports the test holds: a node that took one of them would fail
    // with "binding …" and exit.
    let (_file_grpc, file_listen) = held_port();
    let (_env_grpc, env_listen) = held_port();
    let (_file_metrics, file_metrics) = held_port();
    let flag_listen = free_addr();
    let env_metrics = free_addr();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = 1\nlisten = \"{file_listen}\"\nmetrics_listen = \"{file_metrics}\"\n\
             data = \"{}\"\n",
            path(&data)
        ),
    )
    .unwrap();
    let log = dir.path().join("node.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut node = tally_node(
        &[
            "--config",
            path(&config),
            "--listen",
            &flag_listen,
            "--insecure",
        ],
        &[
            ("TALLY__NODE__LISTEN", &env_listen),
            ("TALLY__NODE__METRICS_LISTEN", &env_metrics),
        ],
    )
    .stdin(Stdio::piped())
    .stdout(log_file.try_clone().unwrap())
    .stderr(log_file)
    .spawn()
    .expect("tally-node starts");
    let node_log = || std::fs::read_to_string(&log).unwrap_or_default();

    eventually(
        LISTEN_TIMEOUT,
        "the node to listen on the flag's gRPC address and the environment's metrics address",
        || {
            let running = node.try_wait().unwrap().is_none();
            assert!(running, "tally-node exited: {}", node_log());
            let grpc = TcpStream::connect(&flag_listen).is_ok();
            let metrics = TcpStream::connect(&env_metrics).is_ok();
            std::future::ready((grpc && metrics).then_some(()))
        },
    )
    .await;
    // node.data and node.id came from the file alone.
    assert!(
        data.is_dir(),
        "no data directory from the file: {}",
        node_log()
    );
    assert!(node.try_wait().unwrap().is_none(), "{}", node_log());
    drop(node.stdin.take());
    let status = tokio::time::timeout(EXIT_TIMEOUT, node.wait())
        .await
        .expect("tally-node stops when its standard input closes")
        .unwrap();
    assert!(status.success(), "{status}: {}", node_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_stops_the_node_before_it_binds_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[raft]\nheartbeat_interval_ms = 0\n").unwrap();
    // Held here: a node that bound its ports before checking its configuration would fail
    // with "binding …" instead of listing the problems.
    let (grpc, grpc_addr) = held_port();
    let (metrics, metrics_addr) = held_port();
    let output = run_to_exit(
        &[
            "--config",
            path(&config),
            "--id",
            "1",
            "--listen",
            &grpc_addr,
            "--metrics-listen",
            &metrics_addr,
            "--data",
            path(&data),
            "--log-format",
            "yaml",
        ],
        &[("TALLY__TLS__CA", "ca.pem")],
    )
    .await;
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    // One problem from the file, one from a flag, two that no layer filled; the CA came from
    // the environment.
    for problem in [
        "tally-node: invalid configuration:",
        "raft.heartbeat_interval_ms must be positive",
        "node.log_format \"yaml\" must be `text` or `json`",
        "tls.cert must name a PEM file",
        "tls.key must name a PEM file",
    ] {
        assert!(text.contains(problem), "{problem:?} in {text}");
    }
    assert!(!text.contains("tls.ca must"), "{text}");
    assert!(!text.contains("binding"), "{text}");
    assert!(!data.exists(), "the data directory was created: {text}");

    // An unknown setting stops it the same way, named with the layer it came from.
    let output = run_to_exit(
        &["--insecure", "--id", "1", "--listen", &grpc_addr],
        &[("TALLY__NODE__COLOUR", "red")],
    )
    .await;
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("colour"), "{text}");
    assert!(text.contains("TALLY__"), "{text}");
    assert!(!text.contains("binding"), "{text}");

    // The held port does catch a node that binds: with a good configuration it gets that far.
    let output = run_to_exit(
        &[
            "--insecure",
            "--id",
            "1",
            "--listen",
            &grpc_addr,
            "--data",
            path(&data),
        ],
        &[],
    )
    .await;
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(&format!("binding {grpc_addr}")), "{text}");
    drop((grpc, metrics));
}
