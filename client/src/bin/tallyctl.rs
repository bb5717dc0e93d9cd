//! `tallyctl`: the operator's CLI for a Tally cluster (bootstrap, membership, status, accounts
//! and transfers, verification, benchmarking).

/// `println!` for command output: a reader that went away (`tallyctl ... | head`) ends the
/// program quietly instead of panicking.
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output; see `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

#[path = "tallyctl/backup.rs"]
mod backup;
#[path = "tallyctl/bench.rs"]
mod bench;
#[path = "tallyctl/certs.rs"]
mod certs;
#[path = "tallyctl/cli.rs"]
mod cli;
#[path = "tallyctl/cluster.rs"]
mod cluster;
#[path = "tallyctl/ledger_commands.rs"]
mod ledger_commands;
#[path = "tallyctl/membership.rs"]
mod membership;
#[path = "tallyctl/output.rs"]
mod output;
#[path = "tallyctl/records.rs"]
mod records;
#[path = "tallyctl/verify.rs"]
mod verify;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tally_client::{Client, ClientError, ClientOptions, Credentials};

use crate::cli::{Cli, ClusterCommand, Command};

/// Longest time one attempt against one node may take.
const REQUEST_TIMEOUT_MAX: Duration = Duration::from_secs(2);

/// What every command needs.
pub struct Context {
    pub client: Client,
    pub json: bool,
    /// The --cluster addresses, as given.
    pub cluster: Vec<String>,
    /// The --timeout: per call (retries included) and for every wait.
    pub timeout: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit_code_of(&error)
        }
    }
}

/// Writes command output. When standard output is a closed pipe, exits at once with 0: the
/// reader took what it wanted. Any other write error ends the program with 1.
pub fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {error}");
        std::process::exit(1);
    }
}

/// Given no credentials at all for the default addresses (those of `tally-node dev`), uses the
/// admin certificate that `tally-node dev` made in its default data directory, so the quick start
/// works without `source .../tally.env`. Anything given explicitly wins.
fn use_dev_certificates(credentials: &mut Credentials, cluster: &[String]) {
    let default: Vec<&str> = cli::DEFAULT_CLUSTER.split(',').collect();
    let nothing_given = credentials.ca.is_none()
        && credentials.cert.is_none()
        && credentials.token.is_none()
        && !credentials.insecure;
    if !nothing_given || cluster.iter().map(String::as_str).ne(default) {
        return;
    }
    let certs = std::env::temp_dir().join("tally-dev").join("certs");
    let files = [
        certs.join("ca.pem"),
        certs.join("client-admin.pem"),
        certs.join("client-admin.key"),
    ];
    if files.iter().all(|file| file.exists()) {
        let [ca, cert, key] = files;
        credentials.ca = Some(ca);
        credentials.cert = Some(cert);
        credentials.key = Some(key);
    }
}

/// 2 when the cluster or a node could not be reached, 1 for everything else.
fn exit_code_of(error: &anyhow::Error) -> ExitCode {
    let unreachable = error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<ClientError>())
        .any(ClientError::is_unreachable);
    ExitCode::from(if unreachable { 2 } else { 1 })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Certs(command) = cli.command {
        return certs::run(command, cli.token.as_ref());
    }
    let timeout = Duration::from_secs_f64(cli.timeout);
    let mut options = ClientOptions {
        request_timeout: REQUEST_TIMEOUT_MAX.min(timeout),
        deadline: timeout,
        fail_fast_on_refused: true,
        ..ClientOptions::default()
    };
    let cluster: Vec<String> = cli
        .cluster
        .iter()
        .map(|addr| addr.trim().to_string())
        .filter(|addr| !addr.is_empty())
        .collect();
    let mut credentials = Credentials {
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        token: cli.token.clone(),
        insecure: cli.insecure,
    };
    use_dev_certificates(&mut credentials, &cluster);
    credentials.apply(&mut options)?;
    let client = Client::connect(cluster.clone(), options).await?;
    let context = Context {
        client,
        json: cli.json,
        cluster,
        timeout,
    };
    match cli.command {
        Command::Cluster(command) => cluster::run(&context, command).await,
        Command::Status => cluster::run(&context, ClusterCommand::Status).await,
        Command::Account(command) => ledger_commands::account(&context, command).await,
        Command::Transfer(command) => ledger_commands::transfer(&context, command).await,
        Command::Verify => verify::run(&context).await,
        Command::Bench(args) => bench::run(&context, args).await,
        Command::Record(command) => records::run(&context, command).await,
        Command::DeadLetters => records::dead_letters(&context).await,
        Command::Recon { date } => records::recon(&context, &date).await,
        Command::Audit {
            limit,
            after,
            action,
        } => records::audit(&context, limit, after.as_deref(), action.as_deref()).await,
        Command::Backup { to } => backup::run(&context, &to).await,
        Command::Certs(_) => unreachable!("handled before connecting"),
    }
}
