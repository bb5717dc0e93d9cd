//! The sandbox PSP: a stand-in for an outside payment service provider, a real HTTP server with
//! Stripe-like semantics (test cards, idempotency keys, signed webhooks, asynchronous payouts,
//! daily settlement reports) and injectable faults. The quick start and the tests use it in
//! place of a real PSP. It knows nothing of its clients: tally-pay reaches it only through its
//! HTTP API ([`wire`]), as it would a real PSP.
//!
//! Charges and refunds succeed or fail at once (by test card, `cards.rs`), but for the 3-D
//! Secure test card, whose charge waits (`requires_action`) for its challenge page
//! (`GET /3ds/{challenge}`, `model/three_ds.rs`) to be completed, failed or abandoned. A payout is
//! `pending` for `payout_delay`, then `paid`, or `failed` with `account_closed` when it goes to
//! account number [`CLOSED_ACCOUNT_NUMBER`] or to an IBAN ending in [`CLOSED_IBAN_SUFFIX`].
//! Webhooks (`charge.succeeded`, `charge.failed`, `charge.authorized` (a challenge completed
//! for an authorization), `refund.succeeded`, `payout.paid`, `payout.failed`) are [`wire::Event`]s in JSON, signed as `signing.rs` describes.
//!
//! All state is in memory behind one mutex (`sandbox.rs`). The API is described in `api/`,
//! idempotency in `idempotency.rs`, the faults in `faults.rs`, the settlement report and its
//! adjustments in `settlement.rs`. `tally-pay sandbox-psp` and the `psp-sandbox` binary both
//! run it through [`cli`].

mod api;
mod bank;
mod cards;
pub mod cli;
mod config;
mod constants;
mod error;
mod faults;
mod fx;
mod idempotency;
mod model;
mod sandbox;
mod settlement;
mod signing;
mod tls_listener;
mod webhooks;
pub mod wire;

use std::sync::Arc;

use anyhow::Context as _;

pub use config::SandboxConfig;
pub use constants::{AMOUNT_MAX, PAYOUT_DELAY_MAX, THREE_DS_TIMEOUT_MAX};
pub use faults::Faults;
pub use model::{CLOSED_ACCOUNT_NUMBER, CLOSED_IBAN_SUFFIX};
pub use signing::SIGNATURE_HEADER;

use sandbox::Sandbox;

/// Binds `config.listen` and serves until the process ends.
pub async fn run(config: SandboxConfig) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the sandbox PSP to {}", config.listen))?;
    serve(config, listener).await
}

/// Serves the sandbox API on `listener` until the process ends.
pub async fn serve(config: SandboxConfig, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let address = listener.local_addr().context("sandbox listener address")?;
    let state_path = config.state_path.clone();
    let tls = match &config.tls {
        Some((cert, key)) => Some(tally_tls::load_server_config(cert, key)?),
        None => None,
    };
    let webhook_ca = match &config.webhook_ca {
        Some(path) => {
            tally_tls::load_ca(path)?;
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    // Challenge pages are linked at the public URL, by default this listener's own address.
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = SandboxConfig {
        public_url: Some(
            config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{address}")),
        ),
        ..config
    };
    let sandbox = Arc::new(Sandbox::new(config, webhook_ca.as_deref())?);
    if let Some(path) = &state_path {
        sandbox.load(path)?;
    }
    tracing::info!(
        %address,
        https = tls.is_some(),
        faults = %sandbox.lock().faults,
        "sandbox PSP listening"
    );
    let app = api::router(sandbox);
    match tls {
        Some(tls) => axum::serve(tls_listener::TlsListener::new(listener, tls)?, app)
            .await
            .context("serving the sandbox PSP"),
        None => axum::serve(listener, app)
            .await
            .context("serving the sandbox PSP"),
    }
}
