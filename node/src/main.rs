//! `tally-node`: `serve` runs one ledger node; `dev` runs a local 3-node cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use figment::Figment;
use tally_node::clock::{Clock, SystemClock};
use tally_node::config::{flag, NodeConfig};
use tally_node::grpc::{self, GrpcNetworkFactory, NodeTls};
use tally_node::raft::RaftNode;
use tally_node::storage::RocksStorage;

mod dev;
mod restore;

#[derive(Parser)]
#[command(
    name = "tally-node",
    version,
    about = "Tally ledger node: a Raft-replicated double-entry ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node of a cluster.
    ///
    /// `--help` lists every setting ([node], [raft], [tls], [auth]) with its default.
    #[command(
        after_help = "Settings come from the config file, then TALLY__SECTION__KEY environment \
variables (e.g. TALLY__NODE__ID=2, TALLY__TLS__CA=/etc/tally/ca.pem), then these flags, each \
overriding the one before; all are checked before any port is bound. \
The config's [auth.roles] gives client identities their roles (docs/SECURITY.md); \
certificates come from `tallyctl certs`.\n\n\
Example: tally-node serve --id 1 --listen 127.0.0.1:7100 --data /var/lib/tally/1 \\\n  \
--ca certs/ca.pem --cert certs/node-1.pem --key certs/node-1.key --config node.toml\n\
Then form the cluster once: tallyctl cluster init --nodes 1=127.0.0.1:7100,2=127.0.0.1:7101,3=127.0.0.1:7102",
        after_long_help = concat!(
            "Settings come from the config file, then TALLY__SECTION__KEY environment variables, \
then these flags, each overriding the one before; all are checked before any port is bound. \
The config's [auth.roles] gives client identities their roles (docs/SECURITY.md); \
certificates come from `tallyctl certs`.\n\n\
Example: tally-node serve --id 1 --listen 127.0.0.1:7100 --data /var/lib/tally/1 \\\n  \
--ca certs/ca.pem --cert certs/node-1.pem --key certs/node-1.key --config node.toml\n\
Then form the cluster once: tallyctl cluster init --nodes 1=127.0.0.1:7100,2=127.0.0.1:7101,3=127.0.0.1:7102\n\n\
Every setting, with its default (this is config/tally-node.example.toml):\n\n",
            include_str!("../../config/tally-node.example.toml")
        )
    )]
    Serve(Box<ServeArgs>),
    /// Run a local 3-node cluster (three child processes) on loopback, initialized and ready.
    Dev(dev::DevArgs),
    /// Load a backup (`tallyctl backup --to DIR`) into a new data directory, checking every
    /// file first; the node started on it belongs to a new cluster formed with `cluster init`.
    #[command(
        after_help = "Example (each node of the new cluster, from the same backup):\n  \
tally-node restore --from /backups/tally-2026-12-01 --data /var/lib/tally/node\n\
Then start the nodes and form the cluster once: tallyctl cluster init --nodes 1=...,2=...,3=...\n\
Exit code 1, naming the file, when any file of the backup fails its checksum."
    )]
    Restore(restore::RestoreArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file with [node], [raft], [tls] and [auth] sections.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id (1 or more).
    #[arg(long)]
    id: Option<u64>,
    /// gRPC listen address, IP:PORT.
    #[arg(long)]
    listen: Option<String>,
    /// Address peers and clients use to reach this node (default: --listen).
    #[arg(long)]
    advertise: Option<String>,
    /// Data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Log filter (default "info,openraft=error"), e.g. "tally_node=debug,openraft=info".
    #[arg(long)]
    log: Option<String>,
    /// Log lines as `text` (default) or `json` (one object per line).
    #[arg(long, value_name = "text|json")]
    log_format: Option<String>,
    /// Serve Prometheus metrics at http://IP:PORT/metrics (default: none).
    #[arg(long, value_name = "IP:PORT")]
    metrics_listen: Option<String>,
    /// Cluster CA certificate (PEM); peers and clients must present certificates it signed.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// This node's certificate (PEM, from `tallyctl certs node`).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Plain text without authentication: anyone who reaches the port holds every role.
    /// For experiments only.
    #[arg(long)]
    insecure: bool,
    /// Shut down when standard input closes (`tally-node dev` uses this so that its children
    /// never outlive it).
    #[arg(long, hide = true)]
    exit_on_stdin_close: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve_main(*args),
        Command::Dev(args) => dev::run(args),
        Command::Restore(args) => restore::run(args),
    }
}

fn load_config(args: &ServeArgs) -> Result<NodeConfig, Vec<String>> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let flags = Figment::new()
        .merge(flag("node.id", args.id))
        .merge(flag("node.listen", args.listen.as_ref()))
        .merge(flag("node.advertise", args.advertise.as_ref()))
        .merge(flag("node.data", args.data.as_ref()))
        .merge(flag("node.log", args.log.as_ref()))
        .merge(flag("node.log_format", args.log_format.as_ref()))
        .merge(flag("node.metrics_listen", args.metrics_listen.as_ref()))
        .merge(flag("tls.ca", args.ca.as_ref()))
        .merge(flag("tls.cert", args.cert.as_ref()))
        .merge(flag("tls.key", args.key.as_ref()))
        .merge(flag("tls.insecure", args.insecure.then_some(true)));
    let config = NodeConfig::load_with_flags(args.config.as_deref(), &env, flags)
        .map_err(|error| vec![error])?;
    config.validate()?;
    Ok(config)
}

fn serve_main(args: ServeArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("tally-node: invalid configuration:");
            for problem in problems {
                eprintln!("  - {problem}");
            }
            return ExitCode::from(2);
        }
    };
    init_logging(&config.node.log, &config.node.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tally-node: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, args.exit_on_stdin_close)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tally-node: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        // Colour only for a person at a terminal: log files get plain text.
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

async fn serve(config: NodeConfig, exit_on_stdin_close: bool) -> anyhow::Result<()> {
    let tls = NodeTls::load(&config).context("loading the node's certificates")?;
    let policy = config
        .auth_policy()
        .map_err(|problems| anyhow::anyhow!("[auth]: {}", problems.join("; ")))?;
    if tls.is_none() {
        tracing::warn!(
            "--insecure: plain text and no authentication; anyone who can reach {} can read and \
             move money and change the cluster. Use TLS (--ca/--cert/--key) outside experiments",
            config.node.listen
        );
    }
    if !config.node.metrics_listen.is_empty() {
        let listen = config
            .node
            .metrics_listen
            .parse()
            .context("node.metrics_listen")?;
        tally_node::telemetry::install(listen)?;
        tracing::info!(%listen, "metrics at http://{listen}/metrics");
    }
    let storage: Arc<dyn tally_node::storage::Storage> =
        Arc::new(RocksStorage::open(&config.node.data).with_context(|| {
            format!("opening the data directory {}", config.node.data.display())
        })?);
    let listener = tokio::net::TcpListener::bind(&config.node.listen)
        .await
        .with_context(|| {
            format!(
                "binding {} (is another node using this port?)",
                config.node.listen
            )
        })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let seed = clock.now_ns() ^ config.node.id.rotate_left(32);
    let node = RaftNode::start(
        config.node.id,
        config.advertise(),
        storage.clone(),
        GrpcNetworkFactory::new(tls.clone()),
        &config.raft_settings(),
        clock,
        seed,
    )
    .await
    .map_err(|error| anyhow::anyhow!("starting raft: {error}"))?;
    tracing::info!(id = config.node.id, listen = %config.node.listen, data = %config.node.data.display(), "tally-node serving");
    let pulse = tokio::spawn(node.clone().run_expiry_pulse(Duration::from_millis(
        tally_node::limits::EXPIRY_PULSE_INTERVAL_MS,
    )));
    let events = tokio::spawn(node.clone().log_raft_events());
    let sampler = (!config.node.metrics_listen.is_empty())
        .then(|| tokio::spawn(tally_node::telemetry::sample(node.clone(), storage.clone())));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(grpc::serve(
        node.clone(),
        listener,
        tls,
        Arc::new(policy),
        async move {
            let _ = stopped.await;
        },
    ));
    shutdown_signal(exit_on_stdin_close).await;
    tracing::info!("shutting down");
    let _ = stop.send(());
    pulse.abort();
    events.abort();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    node.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(())
}

/// Resolves on Ctrl-C, SIGTERM, or (when asked) when standard input closes.
async fn shutdown_signal(exit_on_stdin_close: bool) {
    let stdin_closed = stdin_closed(exit_on_stdin_close);
    let interrupt = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = stdin_closed => {}
        }
    };
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Completes when standard input reaches end of file (never, if `watch` is false). The read runs
/// on a plain thread, which does not keep the process alive at exit.
async fn stdin_closed(watch: bool) {
    if !watch {
        return std::future::pending().await;
    }
    let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(std::io::Read::read(&mut stdin, &mut buffer), Ok(count) if count > 0) {}
        let _ = closed.send(());
    });
    let _ = on_closed.await;
}
