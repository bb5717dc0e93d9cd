//! `tally-pay`: the payment service (`serve`) and the sandbox PSP (`sandbox-psp`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use figment::Figment;
use tally_payments::config::{flag, PayConfig};
use tally_payments::flows::Pay;

mod bench_cli;
mod keys_cli;
mod webhooks_cli;

#[derive(Parser)]
#[command(
    name = "tally-pay",
    version,
    about = "Tally's payment service: pay-in, deposits, refunds and payouts on the Tally ledger, \
             through a PSP; and a sandbox PSP to run it against"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the payment API (HTTP JSON; the OpenAPI document is at /openapi.json).
    ///
    /// Settings come from --config FILE (TOML sections [pay], [psp], [fees], [escrow], [risk],
    /// [worker], [billing], [api], [webhooks]), then TALLY_PAY__SECTION__KEY environment variables, then these flags,
    /// each overriding the one before; all are checked before the port is bound. `--help` lists
    /// every setting with its default.
    #[command(after_long_help = concat!(
        "Every setting, with its default (this is config/tally-pay.example.toml):\n\n",
        include_str!("../../config/tally-pay.example.toml")
    ))]
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// Ledger cluster nodes [default: 127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102].
        #[arg(long, value_name = "HOST:PORT[,...]", env = "TALLY_CLUSTER")]
        cluster: Option<String>,
        /// Base URL of the PSP [default: http://127.0.0.1:7400, the sandbox PSP].
        #[arg(long, value_name = "URL", env = "TALLY_PSP_URL")]
        psp: Option<String>,
        /// Dev mode (pay.dev): secrets not given fall back to the public development ones.
        #[arg(long)]
        dev: bool,
        /// Log lines as `text` (default) or `json` (one object per line) [pay.log_format].
        #[arg(long, value_name = "text|json")]
        log_format: Option<String>,
        /// Shut down when standard input closes (`tally-node dev` uses this).
        #[arg(long, hide = true)]
        exit_on_stdin_close: bool,
    },
    /// API keys, straight in the cluster (bootstrap): create, list, rotate, revoke.
    Keys(keys_cli::KeysArgs),
    /// Webhooks to the merchant, for development: `listen` stands in for the merchant's server.
    #[command(subcommand)]
    Webhooks(webhooks_cli::WebhooksCommand),
    /// Checkouts per second through tally-pay, the ledger and the PSP (defaults: `make run`).
    Bench(bench_cli::BenchArgs),
    /// Run the sandbox PSP: a Stripe-like HTTP API with test cards, idempotency keys, signed
    /// webhooks, asynchronous payouts, daily settlement reports and injectable faults.
    SandboxPsp(tally_psp_sandbox::cli::SandboxArgs),
    /// Reconcile the PSP's settlement report of a day with Tally's records and check the
    /// ledger (the same run as `POST /v1/reconciliations`; running it twice changes nothing).
    ///
    /// Exit code 0 when everything matched or was resolved, 1 when findings were queued for
    /// review or a ledger check failed, 2 when the run could not be made.
    Recon {
        /// The UTC day of the settlement report.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: chrono::NaiveDate,
        /// Output: a readable summary, the whole report as JSON, or its items as CSV.
        #[arg(long, value_enum, default_value_t = ReconFormat::Text)]
        format: ReconFormat,
        /// TOML configuration file (as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Ledger cluster nodes [default: as for `serve`].
        #[arg(long, value_name = "HOST:PORT[,...]", env = "TALLY_CLUSTER")]
        cluster: Option<String>,
        /// Base URL of the PSP [default: as for `serve`].
        #[arg(long, value_name = "URL", env = "TALLY_PSP_URL")]
        psp: Option<String>,
        /// Dev mode (pay.dev), as for `serve`.
        #[arg(long)]
        dev: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReconFormat {
    Text,
    Json,
    Csv,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve {
            config,
            listen,
            cluster,
            psp,
            exit_on_stdin_close,
            dev,
            log_format,
        } => {
            let flags = Figment::new()
                .merge(flag("pay.listen", listen))
                .merge(flag("pay.cluster", cluster))
                .merge(flag("psp.url", psp))
                .merge(flag("pay.dev", dev.then_some(true)))
                .merge(flag("pay.log_format", log_format));
            let config = load_config(config, flags)?;
            init_logs(&config.pay.log, &config.pay.log_format);
            runtime.block_on(serve(config, exit_on_stdin_close))
        }
        Command::Recon {
            date,
            format,
            config,
            cluster,
            psp,
            dev,
        } => {
            init_stderr_logs();
            let flags = Figment::new()
                .merge(flag("pay.cluster", cluster))
                .merge(flag("psp.url", psp))
                .merge(flag("pay.dev", dev.then_some(true)));
            let run = load_config(config, flags)
                .and_then(|config| runtime.block_on(recon(config, date, format)));
            let code = match run {
                Ok(code) => code,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    2
                }
            };
            std::process::exit(code)
        }
        Command::Keys(args) => {
            init_stderr_logs();
            keys_cli::run(&runtime, args)
        }
        Command::Webhooks(command) => runtime.block_on(webhooks_cli::run(command)),
        Command::Bench(args) => {
            init_stderr_logs();
            bench_cli::run(&runtime, args)
        }
        Command::SandboxPsp(args) => {
            init_logs("info", "text");
            runtime.block_on(tally_psp_sandbox::cli::run(args))
        }
    }
}

/// The configuration file, then `TALLY_PAY__` environment variables, then the flags; validated.
fn load_config(file: Option<PathBuf>, flags: Figment) -> anyhow::Result<PayConfig> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut config =
        PayConfig::load_with_flags(file.as_deref(), &env, flags).map_err(anyhow::Error::msg)?;
    config.apply_dev_defaults();
    if let Err(problems) = config.validate() {
        anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
    }
    Ok(config)
}

/// Runs one reconciliation and prints it; returns the exit code.
async fn recon(
    config: PayConfig,
    date: chrono::NaiveDate,
    format: ReconFormat,
) -> anyhow::Result<i32> {
    let pay = Pay::connect(config).await.map_err(anyhow::Error::msg)?;
    // The run's audit entries name the command line, not the worker.
    let actor = tally_payments::flows::audit::Actor::system("cli");
    let report = tally_payments::flows::audit::acting_as(actor, pay.reconcile(date))
        .await
        .with_context(|| format!("reconciling {date}"))?;
    let text = match format {
        ReconFormat::Text => report.render_text(),
        ReconFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        ReconFormat::Csv => report.to_csv()?,
    };
    write_stdout(&text)?;
    Ok(if report.summary.ok { 0 } else { 1 })
}

fn init_logs(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        // Colour only for a person at a terminal: log files get plain text.
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
}

/// Warnings and errors to stderr, for the commands whose stdout carries their output (JSON,
/// CSV, a key's secret), so that it stays clean.
fn init_stderr_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Writes to standard output; a reader that went away (`tally-pay recon ... | head`) is not an
/// error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

/// Resolves on Ctrl-C, SIGTERM, or (when asked) when standard input closes.
async fn shutdown_signal(exit_on_stdin_close: bool) {
    let stdin_closed = async {
        if !exit_on_stdin_close {
            return std::future::pending().await;
        }
        // The read runs on a plain thread, which does not keep the process alive at exit.
        let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(std::io::Read::read(&mut stdin, &mut buffer), Ok(count) if count > 0) {}
            let _ = closed.send(());
        });
        let _ = on_closed.await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = stdin_closed => {}
    }
}

async fn serve(config: PayConfig, exit_on_stdin_close: bool) -> anyhow::Result<()> {
    let pay = Pay::connect(config.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    // The platform's accounts must exist before the first payment; wait for the cluster.
    loop {
        match pay.ensure_system_accounts().await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "waiting for the ledger cluster");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(&config.pay.listen)
        .await
        .with_context(|| format!("binding {}", config.pay.listen))?;
    tracing::info!(listen = %config.pay.listen, cluster = %config.pay.cluster, psp = %config.psp.url,
        "tally-pay serving");
    tokio::spawn(tally_payments::flows::worker::run(Arc::clone(&pay)));
    // Objects from before the list index get their entries once, while the API already serves.
    let backfill = Arc::clone(&pay);
    tokio::spawn(async move {
        if let Err(error) = backfill.ensure_list_index().await {
            tracing::warn!(%error, "indexing earlier objects for the lists; the next start retries");
        }
    });
    // The peer address goes into audit entries and the per-address limit of failed logins.
    let app = tally_payments::edges::api::router(Arc::clone(&pay))
        .merge(tally_payments::edges::dashboard::router(pay))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(exit_on_stdin_close))
        .await
        .context("serving HTTP")
}
