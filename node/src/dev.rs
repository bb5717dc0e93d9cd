//! `tally-node dev`: three `tally-node serve` child processes on loopback, initialized as one
//! cluster, plus (when the `tally-pay` binary sits next to this one) the sandbox PSP and the
//! payment service, kept running until Ctrl-C. A process that dies (say, you `kill -9` the leader
//! to watch a failover) is reported, not restarted, and the others keep serving.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use tally_proto::v1 as pb;
use tally_proto::v1::admin_client::AdminClient;

/// Nodes in the dev cluster.
const DEV_NODES: u64 = 3;
/// How long the cluster may take to start and elect a leader.
const DEV_START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args)]
#[command(
    after_help = "Example:\n  tally-node dev                  # nodes on 127.0.0.1:7100-7102\n  \
tallyctl account create --id 1 --ledger 1 --code 1\n  tallyctl status"
)]
pub struct DevArgs {
    /// Data directory (each node uses a subdirectory). Default: $TMPDIR/tally-dev.
    #[arg(long)]
    data: Option<PathBuf>,
    /// First port; the nodes listen on PORT, PORT+1 and PORT+2.
    #[arg(long, default_value_t = 7100)]
    port: u16,
    /// Delete the data directory first instead of continuing with its ledger.
    #[arg(long)]
    fresh: bool,
    /// Port of the payment service (tally-pay's HTTP API).
    #[arg(long, default_value_t = 8080)]
    pay_port: u16,
    /// Port of the sandbox PSP.
    #[arg(long, default_value_t = 7200)]
    psp_port: u16,
    /// Start only the ledger cluster, without tally-pay and the sandbox PSP.
    #[arg(long)]
    no_payments: bool,
}

struct DevNode {
    id: u64,
    name: String,
    addr: String,
    child: Child,
    alive: bool,
}

pub fn run(args: DevArgs) -> ExitCode {
    match run_dev(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tally-node dev: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_dev(args: DevArgs) -> Result<(), String> {
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("tally-dev"));
    if args.port > u16::MAX - (DEV_NODES as u16) {
        return Err(format!(
            "--port {} leaves no room for {DEV_NODES} nodes",
            args.port
        ));
    }
    if args.fresh && data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(|error| format!("cannot remove {}: {error}", data.display()))?;
    }
    std::fs::create_dir_all(&data)
        .map_err(|error| format!("cannot create {}: {error}", data.display()))?;
    let executable = std::env::current_exe()
        .map_err(|error| format!("cannot find my own executable: {error}"))?;
    println!("tally dev cluster, data under {}", data.display());
    let mut nodes = Vec::new();
    for id in 1..=DEV_NODES {
        let addr = format!("127.0.0.1:{}", args.port + (id as u16) - 1);
        let node_dir = data.join(format!("node-{id}"));
        let log_path = data.join(format!("node-{id}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
        let child = Command::new(&executable)
            .args([
                "serve",
                "--id",
                &id.to_string(),
                "--listen",
                &addr,
                "--data",
            ])
            .arg(&node_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start node {id}: {error}"))?;
        println!(
            "  node {id}  addr {addr}  pid {}  log {}",
            child.id(),
            log_path.display()
        );
        nodes.push(DevNode {
            id,
            name: format!("node {id}"),
            addr,
            child,
            alive: true,
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    let outcome = runtime.block_on(async {
        let leader = form_cluster(&nodes).await?;
        println!("cluster ready: leader is node {leader}");
        if !args.no_payments {
            start_payments(&executable, &data, &args, &mut nodes)?;
        }
        println!("try: tallyctl status   (Ctrl-C stops everything)");
        supervise(&mut nodes).await;
        Ok::<(), String>(())
    });
    stop_all(&mut nodes);
    outcome
}

/// Starts the sandbox PSP and tally-pay next to the cluster, if `tally-pay` was built.
fn start_payments(
    executable: &std::path::Path,
    data: &std::path::Path,
    args: &DevArgs,
    processes: &mut Vec<DevNode>,
) -> Result<(), String> {
    let pay = executable.with_file_name(format!("tally-pay{}", std::env::consts::EXE_SUFFIX));
    if !pay.exists() {
        println!(
            "payments not started: {} is missing (build it with `cargo build --workspace --bins`)",
            pay.display()
        );
        return Ok(());
    }
    let psp_addr = format!("127.0.0.1:{}", args.psp_port);
    let pay_addr = format!("127.0.0.1:{}", args.pay_port);
    let cluster: Vec<String> = processes.iter().map(|node| node.addr.clone()).collect();
    let webhook_url = format!("http://{pay_addr}/v1/webhooks/psp");
    let psp_url = format!("http://{psp_addr}");
    let cluster = cluster.join(",");
    let commands: [(&str, &str, Vec<&str>); 2] = [
        (
            "sandbox PSP",
            &psp_addr,
            vec![
                "sandbox-psp",
                "--listen",
                &psp_addr,
                "--webhook-url",
                &webhook_url,
            ],
        ),
        (
            "tally-pay",
            &pay_addr,
            vec![
                "serve",
                "--listen",
                &pay_addr,
                "--cluster",
                &cluster,
                "--psp",
                &psp_url,
            ],
        ),
    ];
    for (name, addr, arguments) in commands {
        let log_path = data.join(format!("{}.log", name.replace(' ', "-").to_lowercase()));
        let log = std::fs::File::create(&log_path)
            .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
        let child = Command::new(&pay)
            .args(&arguments)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start {name}: {error}"))?;
        println!(
            "  {name}  http://{addr}  pid {}  log {}",
            child.id(),
            log_path.display()
        );
        processes.push(DevNode {
            id: 0,
            name: name.to_string(),
            addr: addr.to_string(),
            child,
            alive: true,
        });
    }
    println!("payments API: http://{pay_addr}/openapi.json");
    Ok(())
}

async fn admin(addr: &str) -> Option<AdminClient<tonic::transport::Channel>> {
    AdminClient::connect(format!("http://{addr}")).await.ok()
}

/// Initializes the cluster unless it already is (a dev cluster restarted on its old data), and
/// waits for a leader.
async fn form_cluster(nodes: &[DevNode]) -> Result<u64, String> {
    let deadline = Instant::now() + DEV_START_TIMEOUT;
    let members: Vec<pb::Node> = nodes
        .iter()
        .map(|node| pb::Node {
            id: node.id,
            addr: node.addr.clone(),
        })
        .collect();
    let mut initialized = false;
    loop {
        if Instant::now() > deadline {
            return Err("the cluster did not elect a leader in time; see the node logs".into());
        }
        if let Some(mut client) = admin(&nodes[0].addr).await {
            if let Ok(status) = client.status(pb::StatusRequest {}).await {
                let status = status.into_inner();
                if status.leader_id != 0 {
                    return Ok(status.leader_id);
                }
                if status.voters.is_empty() && !initialized {
                    client
                        .init_cluster(pb::InitClusterRequest {
                            nodes: members.clone(),
                        })
                        .await
                        .map_err(|error| {
                            format!("initializing the cluster: {}", error.message())
                        })?;
                    initialized = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn supervise(nodes: &mut [DevNode]) {
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = check.tick() => {
                for node in nodes.iter_mut().filter(|node| node.alive) {
                    if let Ok(Some(status)) = node.child.try_wait() {
                        node.alive = false;
                        println!("{} (pid {}) exited: {status}; the others keep serving", node.name, node.child.id());
                    }
                }
                if nodes.iter().all(|node| !node.alive) {
                    println!("every node has exited");
                    return;
                }
            }
        }
    }
}

fn stop_all(nodes: &mut [DevNode]) {
    for node in nodes.iter_mut().filter(|node| node.alive) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(node.child.id().to_string())
            .status();
    }
    for node in nodes.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = node.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
    println!("cluster stopped");
}
