//! `psp-sandbox`: the sandbox PSP on its own (`tally-pay sandbox-psp` runs the same thing).

use anyhow::Context as _;
use clap::Parser;

/// The sandbox PSP: a Stripe-like HTTP API with test cards, idempotency keys, signed webhooks,
/// asynchronous payouts, daily settlement reports and injectable faults.
#[derive(Parser)]
#[command(name = "psp-sandbox", version)]
struct Cli {
    #[command(flatten)]
    args: tally_psp_sandbox::cli::SandboxArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: log files get plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(tally_psp_sandbox::cli::run(cli.args))
}
