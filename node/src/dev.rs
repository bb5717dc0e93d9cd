//! `tally-node dev`: three `tally-node serve` child processes on loopback, initialized as one
//! cluster, plus (when the `tally-pay` binary sits next to this one) the sandbox PSP and the
//! payment service, kept running until Ctrl-C or SIGTERM. A child that dies (say, you `kill -9`
//! the leader to watch a failover) is reported and restarted; the others keep serving.
//!
//! Security stays on: a throwaway CA and node and client certificates live under `DATA/certs/`
//! (reused while valid), the nodes serve TLS with roles, tally-pay gets a client certificate
//! with the ledger roles, and `DATA/tally.env` gives a shell the admin client's settings.
//!
//! The children never outlive this process: each is started with its stdin on a pipe that only
//! this process holds, and with `--exit-on-stdin-close`, so when this process ends in any way
//! (even SIGKILL) the pipe closes and every child shuts down.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
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
/// Wait before a dead child is started again (its port must be free and its peers notice).
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// A child that dies this many times within `RESTART_WINDOW` is not restarted again.
const RESTARTS_MAX: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Args)]
#[command(
    after_help = "Example:\n  tally-node dev                       # nodes on 127.0.0.1:7100-7102\n  \
source \"${TMPDIR:-/tmp}/tally-dev/tally.env\"   # TALLY_CLUSTER and the other addresses\n  \
tallyctl status\n\n\
Every child's output goes to a log file under the data directory. A child that dies is restarted\n\
after a second (at most 5 times a minute). Ctrl-C or SIGTERM stops everything; so does killing\n\
this process in any other way."
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
    #[arg(long, default_value_t = 7400)]
    psp_port: u16,
    /// Start only the ledger cluster, without tally-pay and the sandbox PSP.
    #[arg(long)]
    no_payments: bool,
}

/// Each dev node serves its metrics on its gRPC port plus this.
pub const METRICS_PORT_OFFSET: u16 = 100;

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

/// One supervised child process and how to start it again.
struct DevProcess {
    /// Node id, or 0 for the payment processes.
    id: u64,
    name: String,
    addr: String,
    program: PathBuf,
    arguments: Vec<OsString>,
    /// Variables set for the child (and `TALLY_TOKEN`, `TALLY_INSECURE` removed).
    environment: Vec<(&'static str, OsString)>,
    log_path: PathBuf,
    /// Where the current pid is written (for scripts: `kill -9 $(cat node-1.pid)`).
    pid_path: PathBuf,
    child: Option<Child>,
    /// When the child was last seen to die; it is restarted `RESTART_DELAY` later.
    died_at: Option<Instant>,
    restarts: Vec<Instant>,
    given_up: bool,
}

impl DevProcess {
    /// A process not started yet; its log and pid files are `DATA/STEM.log` and `DATA/STEM.pid`.
    fn new(
        (id, name, addr): (u64, String, String),
        program: PathBuf,
        arguments: Vec<OsString>,
        environment: Vec<(&'static str, OsString)>,
        data: &Path,
        stem: &str,
    ) -> DevProcess {
        DevProcess {
            id,
            name,
            addr,
            program,
            arguments,
            environment,
            log_path: data.join(format!("{stem}.log")),
            pid_path: data.join(format!("{stem}.pid")),
            child: None,
            died_at: None,
            restarts: Vec::new(),
            given_up: false,
        }
    }

    fn start(&mut self) -> Result<u32, String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|error| format!("cannot open {}: {error}", self.log_path.display()))?;
        let child = Command::new(&self.program)
            .args(&self.arguments)
            .envs(self.environment.iter().map(|(name, value)| (name, value)))
            .env_remove("TALLY_TOKEN")
            .env_remove("TALLY_INSECURE")
            .arg("--exit-on-stdin-close")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", self.name))?;
        let pid = child.id();
        std::fs::write(&self.pid_path, format!("{pid}\n"))
            .map_err(|error| format!("cannot write {}: {error}", self.pid_path.display()))?;
        self.child = Some(child);
        self.died_at = None;
        Ok(pid)
    }

    /// The exit status if the child has exited since the last look.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

pub fn run(args: DevArgs) -> ExitCode {
    let mut processes = Vec::new();
    let outcome = run_dev(args, &mut processes);
    stop_all(&mut processes);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tally-node dev: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_dev(args: DevArgs, processes: &mut Vec<DevProcess>) -> Result<(), String> {
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("tally-dev"));
    if args.port > u16::MAX - (DEV_NODES as u16) - METRICS_PORT_OFFSET {
        return Err(format!(
            "--port {} leaves no room for {DEV_NODES} nodes and their metrics ports (+{METRICS_PORT_OFFSET})",
            args.port
        ));
    }
    check_ports_free(&args)?;
    if args.fresh && data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(|error| format!("cannot remove {}: {error}", data.display()))?;
    }
    std::fs::create_dir_all(&data)
        .map_err(|error| format!("cannot create {}: {error}", data.display()))?;
    let data = data
        .canonicalize()
        .map_err(|error| format!("cannot resolve {}: {error}", data.display()))?;
    let executable = std::env::current_exe()
        .map_err(|error| format!("cannot find my own executable: {error}"))?;
    println!("tally dev cluster, data under {}", data.display());
    let addrs: Vec<String> = (1..=DEV_NODES)
        .map(|id| format!("127.0.0.1:{}", args.port + (id as u16) - 1))
        .collect();
    let certs = dev_certs(&data.join("certs"), &addrs)?;
    let node_config = data.join("node.toml");
    write_node_config(&node_config)?;
    for id in 1..=DEV_NODES {
        let addr = addrs[id as usize - 1].clone();
        let node_certs = &certs.nodes[id as usize - 1];
        let mut arguments: Vec<OsString> = ["serve", "--id", &id.to_string(), "--listen", &addr]
            .iter()
            .map(OsString::from)
            .collect();
        let metrics = metrics_addr(&addr)?;
        arguments.push("--metrics-listen".into());
        arguments.push(metrics.clone().into());
        for (flag, path) in [
            ("--data", data.join(format!("node-{id}"))),
            ("--config", node_config.clone()),
            ("--ca", certs.ca.clone()),
            ("--cert", node_certs.cert.clone()),
            ("--key", node_certs.key.clone()),
        ] {
            arguments.push(flag.into());
            arguments.push(path.into_os_string());
        }
        let mut process = DevProcess::new(
            (id, format!("node {id}"), addr),
            executable.clone(),
            arguments,
            Vec::new(),
            &data,
            &format!("node-{id}"),
        );
        let pid = process.start()?;
        println!(
            "  node {id}  addr {}  metrics http://{metrics}/metrics  pid {pid}  log {}",
            process.addr,
            process.log_path.display()
        );
        processes.push(process);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(async {
        let leader = form_cluster(processes, &certs).await?;
        println!("cluster ready: leader is node {leader}");
        let mut environment = vec![
            ("TALLY_CLUSTER".to_string(), addrs.join(",")),
            ("TALLY_CA".to_string(), certs.ca.display().to_string()),
            (
                "TALLY_CERT".to_string(),
                certs.admin.cert.display().to_string(),
            ),
            (
                "TALLY_KEY".to_string(),
                certs.admin.key.display().to_string(),
            ),
            ("TALLY_DEV_DIR".to_string(), data.display().to_string()),
        ];
        if !args.no_payments {
            environment.extend(start_payments(
                &executable,
                &data,
                &args,
                &certs,
                processes,
            )?);
        }
        let env_path = data.join("tally.env");
        write_env_file(&env_path, &environment)?;
        println!("settings for your shell (also in {}):", env_path.display());
        for (name, value) in &environment {
            println!("  export {name}={}", shell_quote(value));
        }
        println!(
            "try: source {}; tallyctl status   (Ctrl-C stops everything)",
            shell_quote(&env_path.display().to_string())
        );
        supervise(processes).await
    })
}

/// Where node `addr`'s metrics are served in dev mode: its gRPC port + [`METRICS_PORT_OFFSET`].
fn metrics_addr(addr: &str) -> Result<String, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("{addr} is not HOST:PORT"))?;
    let port = port
        .checked_add(METRICS_PORT_OFFSET)
        .ok_or_else(|| format!("port {port} + {METRICS_PORT_OFFSET} is out of range"))?;
    Ok(format!("{host}:{port}"))
}

/// Refuses to start when a port is taken: the new nodes would die, and the checks below would
/// reach whichever cluster holds the ports and report success.
fn check_ports_free(args: &DevArgs) -> Result<(), String> {
    let mut ports: Vec<(u16, String)> = (0..DEV_NODES as u16)
        .map(|offset| (args.port + offset, format!("node {}", offset + 1)))
        .chain((0..DEV_NODES as u16).map(|offset| {
            let port = args.port.saturating_add(offset + METRICS_PORT_OFFSET);
            (port, format!("node {}'s metrics", offset + 1))
        }))
        .collect();
    if !args.no_payments {
        ports.push((args.pay_port, "tally-pay".into()));
        ports.push((args.psp_port, "the sandbox PSP".into()));
    }
    for (index, (port, name)) in ports.iter().enumerate() {
        if ports[..index].iter().any(|(other, _)| other == port) {
            return Err(format!("port {port} is given twice (for {name})"));
        }
        if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", *port)) {
            return Err(format!(
                "port {port} (for {name}) is not free: {error}. Is another `tally-node dev` \
                 running? Stop it, or choose other ports with --port, --pay-port and --psp-port"
            ));
        }
    }
    Ok(())
}

/// Writes `export NAME='value'` lines, so `source FILE` is all a shell needs.
pub fn write_env_file(path: &Path, variables: &[(String, String)]) -> Result<(), String> {
    let mut text =
        String::from("# Written by `tally-node dev`: `source` this file to use the dev cluster.\n");
    for (name, value) in variables {
        text.push_str(&format!("export {name}={}\n", shell_quote(value)));
    }
    let temporary = path.with_extension("env.tmp");
    let mut file = std::fs::File::create(&temporary)
        .map_err(|error| format!("cannot create {}: {error}", temporary.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Quotes a value for a POSIX shell when it needs it.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:,=@%+".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// Starts the sandbox PSP and tally-pay next to the cluster, if `tally-pay` was built; returns
/// the environment variables that point at them.
fn start_payments(
    executable: &Path,
    data: &Path,
    args: &DevArgs,
    certs: &DevCerts,
    processes: &mut Vec<DevProcess>,
) -> Result<Vec<(String, String)>, String> {
    let pay = executable.with_file_name(format!("tally-pay{}", std::env::consts::EXE_SUFFIX));
    if !pay.exists() {
        println!(
            "payments not started: {} is missing (build it with `cargo build --workspace --bins`)",
            pay.display()
        );
        return Ok(Vec::new());
    }
    let psp_addr = format!("127.0.0.1:{}", args.psp_port);
    let pay_addr = format!("127.0.0.1:{}", args.pay_port);
    let cluster: Vec<String> = processes.iter().map(|node| node.addr.clone()).collect();
    let webhook_url = format!("http://{pay_addr}/v1/webhooks/psp");
    let psp_url = format!("http://{psp_addr}");
    let pay_url = format!("http://{pay_addr}");
    let psp_state = data.join("sandbox-psp.json");
    let cluster = cluster.join(",");
    let commands: [(&str, &str, Vec<OsString>); 2] = [
        (
            "sandbox PSP",
            &psp_addr,
            vec![
                "sandbox-psp".into(),
                "--listen".into(),
                psp_addr.clone().into(),
                "--webhook-url".into(),
                webhook_url.into(),
                "--state".into(),
                psp_state.into_os_string(),
            ],
        ),
        (
            "tally-pay",
            &pay_addr,
            [
                "serve",
                "--dev",
                "--listen",
                &pay_addr,
                "--cluster",
                &cluster,
                "--psp",
                &psp_url,
            ]
            .iter()
            .map(OsString::from)
            .collect(),
        ),
    ];
    for (name, addr, arguments) in commands {
        let file_name = name.replace(' ', "-").to_lowercase();
        let mut process = DevProcess::new(
            (0, name.to_string(), addr.to_string()),
            pay.clone(),
            arguments,
            vec![
                ("TALLY_CA", certs.ca.clone().into_os_string()),
                ("TALLY_CERT", certs.pay.cert.clone().into_os_string()),
                ("TALLY_KEY", certs.pay.key.clone().into_os_string()),
            ],
            data,
            &file_name,
        );
        let pid = process.start()?;
        println!(
            "  {name}  http://{addr}  pid {pid}  log {}",
            process.log_path.display()
        );
        processes.push(process);
    }
    println!("payments API: {pay_url}/openapi.json");
    let secret = create_quickstart_key(&pay, &cluster, certs)?;
    println!("a secret API key for the quick start is in TALLY_PAY_KEY (tally.env)");
    // Dev mode only: the throwaway key is printed so a newcomer can sign in at once.
    println!("dashboard: {pay_url}/dashboard  (sign in with the key {secret})");
    Ok(vec![
        ("TALLY_PAY_URL".to_string(), pay_url),
        ("TALLY_PSP_URL".to_string(), psp_url),
        ("TALLY_PAY_KEY".to_string(), secret),
        // Every `tally-pay` command run from this shell (recon, keys) uses the development
        // secrets too, as the dev tally-pay does.
        ("TALLY_PAY__PAY__DEV".to_string(), "true".to_string()),
    ])
}

/// Creates a secret API key (every scope) named `quickstart` straight in the cluster, with
/// tally-pay's certificate; returns the secret. Each start makes a new one.
fn create_quickstart_key(pay: &Path, cluster: &str, certs: &DevCerts) -> Result<String, String> {
    let output = Command::new(pay)
        .args([
            "keys",
            "create",
            "--name",
            "quickstart",
            "--kind",
            "secret",
            "--json",
        ])
        .args(["--cluster", cluster])
        .env("TALLY_CA", &certs.ca)
        .env("TALLY_CERT", &certs.pay.cert)
        .env("TALLY_KEY", &certs.pay.key)
        .env_remove("TALLY_TOKEN")
        .env_remove("TALLY_INSECURE")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run tally-pay keys create: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "tally-pay keys create failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let created: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("tally-pay keys create answered no JSON: {error}"))?;
    created["secret"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "tally-pay keys create answered no secret".to_string())
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
/// waits for a leader. Fails at once when a node dies while the cluster forms.
async fn form_cluster(nodes: &mut [DevProcess], certs: &DevCerts) -> Result<u64, String> {
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
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        for node in nodes.iter_mut() {
            if let Some(status) = node.exited() {
                return Err(format!(
                    "{} exited while the cluster was starting ({status}); see {}",
                    node.name,
                    node.log_path.display()
                ));
            }
        }
        if Instant::now() > deadline {
            return Err("the cluster did not elect a leader in time; see the node logs".into());
        }
        let Some(mut client) = admin(&nodes[0].addr, &tls).await else {
            continue;
        };
        let Ok(status) = client.status(pb::StatusRequest {}).await else {
            continue;
        };
        let status = status.into_inner();
        if status.id != nodes[0].id {
            return Err(format!(
                "{} answers as node {}: another cluster holds its port",
                nodes[0].addr, status.id
            ));
        }
        if status.leader_id != 0 {
            return Ok(status.leader_id);
        }
        if status.voters.is_empty() && !initialized {
            client
                .init_cluster(pb::InitClusterRequest {
                    nodes: members.clone(),
                })
                .await
                .map_err(|error| format!("initializing the cluster: {}", error.message()))?;
            initialized = true;
        }
    }
}

/// Watches the children until Ctrl-C or SIGTERM, restarting any that dies.
async fn supervise(processes: &mut [DevProcess]) -> Result<(), String> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| format!("cannot watch for SIGTERM: {error}"))?;
    let mut check = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = check.tick() => restart_dead(processes),
        }
    }
}

fn restart_dead(processes: &mut [DevProcess]) {
    let now = Instant::now();
    for process in processes.iter_mut().filter(|process| !process.given_up) {
        let pid = process.pid();
        if let Some(status) = process.exited() {
            process
                .restarts
                .retain(|at| now.duration_since(*at) < RESTART_WINDOW);
            if process.restarts.len() >= RESTARTS_MAX {
                process.given_up = true;
                println!(
                    "{} (pid {}) exited: {status}; it died {RESTARTS_MAX} times within {}s, \
                     not restarting it again (see {})",
                    process.name,
                    pid.unwrap_or(0),
                    RESTART_WINDOW.as_secs(),
                    process.log_path.display()
                );
                continue;
            }
            println!(
                "{} (pid {}) exited: {status}; restarting it in {}s, the others keep serving",
                process.name,
                pid.unwrap_or(0),
                RESTART_DELAY.as_secs()
            );
            process.died_at = Some(now);
        }
        if let Some(died_at) = process.died_at {
            if now.duration_since(died_at) >= RESTART_DELAY {
                process.restarts.push(now);
                match process.start() {
                    Ok(pid) => println!("{} restarted (pid {pid})", process.name),
                    Err(error) => {
                        process.given_up = true;
                        println!("{error}");
                    }
                }
            }
        }
    }
}

/// Asks every child to stop (SIGTERM via closing its stdin pipe and `kill`), then kills what is
/// left after `STOP_TIMEOUT`.
fn stop_all(processes: &mut [DevProcess]) {
    for process in processes.iter_mut() {
        if let Some(child) = process.child.as_mut() {
            drop(child.stdin.take());
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .stderr(Stdio::null())
                .status();
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for process in processes.iter_mut() {
        if let Some(mut child) = process.child.take() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&process.pid_path);
    }
    if !processes.is_empty() {
        println!("cluster stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quote_leaves_plain_values_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("127.0.0.1:7100,127.0.0.1:7101"),
            "127.0.0.1:7100,127.0.0.1:7101"
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
