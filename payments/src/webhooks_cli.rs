//! `tally-pay webhooks listen`: a webhook endpoint for development. It checks each delivery's
//! `tally-signature` with the endpoint's secret, as a merchant's server must, prints every event
//! it accepts as one JSON line on standard output, and answers 200; a delivery whose signature
//! does not verify gets 400 and a line on standard error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tally_payments::edges::psp::webhook;
use tally_payments::flows::SIGNATURE_HEADER;

/// How far a delivery's timestamp may be from now.
const TOLERANCE: Duration = Duration::from_secs(300);

#[derive(clap::Args)]
pub struct ListenArgs {
    /// Address to listen on; every path accepts deliveries.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7500")]
    listen: String,
    /// The endpoint's signing secret (`whsec_…`, shown when the endpoint was created).
    #[arg(long, env = "TALLY_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Exit after this many events were accepted [default: run until interrupted].
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

#[derive(clap::Subcommand)]
pub enum WebhooksCommand {
    /// Receive webhook deliveries: check each signature, print each event as a JSON line.
    Listen(ListenArgs),
}

struct Listener {
    secret: String,
    accepted: AtomicU64,
    done: tokio::sync::Notify,
    count: Option<u64>,
}

pub async fn run(command: WebhooksCommand) -> anyhow::Result<()> {
    let WebhooksCommand::Listen(args) = command;
    if !args.secret.starts_with("whsec_") {
        anyhow::bail!("--secret must be the endpoint's signing secret (whsec_…)");
    }
    let state = Arc::new(Listener {
        secret: args.secret,
        accepted: AtomicU64::new(0),
        done: tokio::sync::Notify::new(),
        count: args.count,
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!("tally-pay webhooks: listening on http://{}", args.listen);
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&state));
    let until_done = async move { state.done.notified().await };
    axum::serve(listener, app)
        .with_graceful_shutdown(until_done)
        .await
        .context("serving")
}

async fn receive(
    State(state): State<Arc<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Err(error) = webhook::verify(state.secret.as_bytes(), signature, &body, now, TOLERANCE) {
        eprintln!("tally-pay webhooks: refused a delivery: {error}");
        return StatusCode::BAD_REQUEST;
    }
    println!("{}", String::from_utf8_lossy(&body));
    let accepted = state.accepted.fetch_add(1, Ordering::SeqCst) + 1;
    if state.count.is_some_and(|count| accepted >= count) {
        state.done.notify_one();
    }
    StatusCode::OK
}
