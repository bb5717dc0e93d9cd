//! The command line of the sandbox PSP, shared by the `psp-sandbox` binary and
//! `tally-pay sandbox-psp`: the same flags, defaults and output in both.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::SandboxConfig;
use crate::faults::Faults;

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7400")]
    listen: String,
    /// Where to POST webhooks (tally-pay's /v1/webhooks/psp).
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/v1/webhooks/psp"
    )]
    webhook_url: String,
    /// Shared webhook signing secret.
    #[arg(
        long,
        default_value = "whsec_tally_dev",
        env = "TALLY_SANDBOX_WEBHOOK_SECRET"
    )]
    webhook_secret: String,
    /// API key clients must send as a bearer token.
    #[arg(long, default_value = "sk_test_tally", env = "TALLY_SANDBOX_API_KEY")]
    api_key: String,
    /// Faults, e.g. `latency=20ms,error_rate=0.05,timeout_after_success=0.1,hang=10s,
    /// duplicate_webhooks=0.1,lost_webhooks=0.05,reorder_webhooks=0.1,seed=42`.
    #[arg(long, value_name = "SPEC", default_value = "")]
    faults: String,
    /// Delay before a payout is reported paid, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    payout_delay_ms: u64,
    /// Keep the books (tokens, charges, refunds, payouts, idempotency keys) in this file,
    /// saved after every change and read back at start-up; without it they live in memory.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Serve HTTPS with this certificate (PEM); needs --tls-key. Clients then trust its CA
    /// (tally-pay: psp.ca / TALLY_PAY__PSP__CA).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra CA (PEM) trusted for an https:// --webhook-url, besides the public roots.
    #[arg(long, value_name = "FILE")]
    webhook_ca: Option<PathBuf>,
    /// Seconds a 3-D Secure challenge (test card 4000 0000 0000 3220) waits for the customer;
    /// then its charge fails with `authentication_failed`.
    #[arg(long, value_name = "S", default_value_t = 600)]
    three_ds_timeout_s: u64,
    /// The base URL browsers reach this sandbox at, for the 3-D Secure challenge pages
    /// (default: the listen address, http:// or https://).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Shut down when standard input closes (`tally-node dev` uses this).
    #[arg(long, hide = true)]
    exit_on_stdin_close: bool,
}

impl SandboxArgs {
    /// The settings these flags give; the rest keep [`SandboxConfig::default`].
    pub fn config(self) -> anyhow::Result<SandboxConfig> {
        let faults = Faults::parse(&self.faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
        let listen = &self.listen;
        Ok(SandboxConfig {
            listen: listen
                .parse()
                .with_context(|| format!("--listen {listen:?} is not IP:PORT"))?,
            api_key: self.api_key,
            webhook_url: Some(self.webhook_url).filter(|url| !url.is_empty()),
            webhook_secret: self.webhook_secret.into_bytes(),
            faults,
            payout_delay: Duration::from_millis(self.payout_delay_ms),
            state_path: self.state,
            tls: self.tls_cert.zip(self.tls_key),
            webhook_ca: self.webhook_ca,
            three_ds_timeout: Duration::from_secs(self.three_ds_timeout_s),
            public_url: self.public_url,
            ..SandboxConfig::default()
        })
    }
}

/// Runs the sandbox until Ctrl-C, SIGTERM, or (with `--exit-on-stdin-close`) the end of
/// standard input.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let exit_on_stdin_close = args.exit_on_stdin_close;
    let config = args.config()?;
    tokio::select! {
        served = crate::run(config) => served,
        () = shutdown_signal(exit_on_stdin_close) => Ok(()),
    }
}

/// Resolves on Ctrl-C, SIGTERM, or (when asked) when standard input closes.
async fn shutdown_signal(exit_on_stdin_close: bool) {
    let stdin_closed = async {
        if !exit_on_stdin_close {
            return std::future::pending().await;
        }
        // A plain thread blocks on the read; it does not keep the process alive at exit.
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
