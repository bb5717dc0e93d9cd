//! `tally-node dev`: three `tally-node serve` child processes on loopback, initialized as one
//! cluster, plus (when the `tally-pay` binary sits next to this one) the sandbox PSP and the
//! payment service, kept running until Ctrl-C. A process that dies (say, you `kill -9` the leader
//! to watch a failover) is reported, not restarted, and the others keep serving.
//!
//! Security stays on: a throwaway CA and node and client certificates live under `DATA/certs/`
//! (reused while valid), the nodes serve TLS with roles, tally-pay gets a client certificate
//! with the ledger roles, and `DATA/tally.env` gives a shell the admin client's settings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use tally_proto::v1 as pb;
use tally_proto::v1::admin_client::AdminClient;
use tally_tls::{Authority, Validity};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

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

/// The dev client identities and their roles (in the nodes' `[auth.roles]`).
const DEV_ADMIN: &str = "admin";
const DEV_ADMIN_ROLES: &str = r#"["admin", "ledger.read", "ledger.write", "records.write"]"#;
const DEV_PAY: &str = "tally-pay";
const DEV_PAY_ROLES: &str = r#"["ledger.read", "ledger.write", "records.write"]"#;
/// Dev certificates are renewed when they expire within this many days.
const DEV_CERT_DAYS: i64 = 365;

/// A certificate and its key.
#[derive(Clone, Debug)]
struct CertPair {
    cert: PathBuf,
    key: PathBuf,
}

/// Every certificate the dev cluster uses, under `DATA/certs/`.
#[derive(Clone, Debug)]
struct DevCerts {
    ca: PathBuf,
    nodes: Vec<CertPair>,
    admin: CertPair,
    pay: CertPair,
}

/// Reuses the certificates under `dir` if every one is still valid for the addresses, else
/// makes a new CA and issues them all again.
fn dev_certs(dir: &Path, addrs: &[String]) -> Result<DevCerts, String> {
    let pair = |stem: &str| CertPair {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    let certs = DevCerts {
        ca: dir.join(tally_tls::CA_CERT_FILE),
        nodes: (1..=addrs.len() as u64)
            .map(|id| pair(&tally_tls::node_name(id)))
            .collect(),
        admin: pair(&format!("client-{DEV_ADMIN}")),
        pay: pair(&format!("client-{DEV_PAY}")),
    };
    if dev_certs_valid(&certs).is_ok() {
        return Ok(certs);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|error| format!("cannot remove {}: {error}", dir.display()))?;
    }
    let error = |error: tally_tls::TlsError| error.to_string();
    let authority = Authority::create("Tally dev CA (throwaway)", Validity::days(DEV_CERT_DAYS))
        .map_err(error)?;
    authority.write(dir).map_err(error)?;
    let validity = Validity::days(DEV_CERT_DAYS);
    for (index, addr) in addrs.iter().enumerate() {
        let host = addr
            .rsplit_once(':')
            .map_or(addr.as_str(), |(host, _)| host);
        let hosts = vec![host.to_string(), "localhost".to_string()];
        let id = index as u64 + 1;
        let issued = authority.issue_node(id, &hosts, validity).map_err(error)?;
        issued
            .write(dir, &tally_tls::node_name(id))
            .map_err(error)?;
    }
    for name in [DEV_ADMIN, DEV_PAY] {
        let issued = authority.issue_client(name, validity).map_err(error)?;
        issued
            .write(dir, &format!("client-{name}"))
            .map_err(error)?;
    }
    dev_certs_valid(&certs)?;
    Ok(certs)
}

fn dev_certs_valid(certs: &DevCerts) -> Result<(), String> {
    let ca = tally_tls::load_ca(&certs.ca).map_err(|error| error.to_string())?;
    for (index, node) in certs.nodes.iter().enumerate() {
        let id = index as u64 + 1;
        tally_tls::load_node_identity(&certs.ca, &ca, &node.cert, &node.key, id, "127.0.0.1")
            .map_err(|error| error.to_string())?;
    }
    for client in [&certs.admin, &certs.pay] {
        tally_tls::load_client_identity(&certs.ca, &ca, &client.cert, &client.key)
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// The nodes' shared config: who holds which roles.
fn write_node_config(path: &Path) -> Result<(), String> {
    let text = format!(
        "# Written by `tally-node dev`: the roles of the dev client certificates.\n\
         [auth.roles]\n{DEV_ADMIN} = {DEV_ADMIN_ROLES}\n\"{DEV_PAY}\" = {DEV_PAY_ROLES}\n"
    );
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Writes `export NAME='value'` lines, so `source FILE` sets them in a shell.
pub fn write_env_file(path: &Path, variables: &[(&str, String)]) -> Result<(), String> {
    let mut text = String::from("# Written by `tally-node dev`. Use with: source this file\n");
    for (name, value) in variables {
        let quoted = value.replace('\'', "'\\''");
        text.push_str(&format!("export {name}='{quoted}'\n"));
    }
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
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
    let addrs: Vec<String> = (1..=DEV_NODES)
        .map(|id| format!("127.0.0.1:{}", args.port + (id as u16) - 1))
        .collect();
    let certs = dev_certs(&data.join("certs"), &addrs)?;
    let node_config = data.join("node.toml");
    write_node_config(&node_config)?;
    write_env_file(
        &data.join("tally.env"),
        &[
            ("TALLY_CLUSTER", addrs.join(",")),
            ("TALLY_CA", certs.ca.display().to_string()),
            ("TALLY_CERT", certs.admin.cert.display().to_string()),
            ("TALLY_KEY", certs.admin.key.display().to_string()),
        ],
    )?;
    let mut nodes = Vec::new();
    for id in 1..=DEV_NODES {
        let addr = addrs[id as usize - 1].clone();
        let node_certs = &certs.nodes[id as usize - 1];
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
            .arg("--config")
            .arg(&node_config)
            .arg("--ca")
            .arg(&certs.ca)
            .arg("--cert")
            .arg(&node_certs.cert)
            .arg("--key")
            .arg(&node_certs.key)
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
        let leader = form_cluster(&nodes, &certs).await?;
        println!("cluster ready: leader is node {leader}");
        if !args.no_payments {
            start_payments(&executable, &data, &args, &certs, &mut nodes)?;
        }
        println!(
            "try: source {}; tallyctl status   (Ctrl-C stops everything)",
            data.join("tally.env").display()
        );
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
    certs: &DevCerts,
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
            .env("TALLY_CA", &certs.ca)
            .env("TALLY_CERT", &certs.pay.cert)
            .env("TALLY_KEY", &certs.pay.key)
            .env_remove("TALLY_TOKEN")
            .env_remove("TALLY_INSECURE")
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

/// The admin client's TLS settings, read once.
fn admin_tls(certs: &DevCerts) -> Result<ClientTlsConfig, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&certs.ca)?))
        .identity(Identity::from_pem(
            read(&certs.admin.cert)?,
            read(&certs.admin.key)?,
        )))
}

async fn admin(
    addr: &str,
    tls: &ClientTlsConfig,
) -> Option<AdminClient<tonic::transport::Channel>> {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .ok()?
        .tls_config(tls.clone())
        .ok()?;
    Some(AdminClient::new(endpoint.connect().await.ok()?))
}

/// Initializes the cluster unless it already is (a dev cluster restarted on its old data), and
/// waits for a leader.
async fn form_cluster(nodes: &[DevNode], certs: &DevCerts) -> Result<u64, String> {
    let tls = admin_tls(certs)?;
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
        if let Some(mut client) = admin(&nodes[0].addr, &tls).await {
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
