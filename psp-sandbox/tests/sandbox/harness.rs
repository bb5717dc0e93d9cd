//! A sandbox started in process on an ephemeral port, and plain HTTP calls to it.

use std::time::Duration;

use tally_psp_sandbox::{Faults, SandboxConfig};

pub const API_KEY: &str = "sk_test_tally";
pub const PUBLISHABLE_KEY: &str = "pk_test_browser";

pub struct Harness {
    pub base_url: String,
    pub http: reqwest::Client,
}

/// Starts a sandbox with `faults` and payouts settling after `payout_delay`; no webhooks.
pub async fn start(faults: &str, payout_delay: Duration) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = SandboxConfig {
        listen: address,
        faults: Faults::parse(faults).unwrap(),
        payout_delay,
        ..SandboxConfig::default()
    };
    tokio::spawn(tally_psp_sandbox::serve(config, listener));
    Harness {
        base_url: format!("http://{address}"),
        http: reqwest::Client::new(),
    }
}

impl Harness {
    /// `POST /v1/tokens` as a buyer's browser sends it (publishable key).
    pub async fn post_token(&self, card: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/v1/tokens", self.base_url))
            .bearer_auth(PUBLISHABLE_KEY)
            .json(card)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn post_sandbox(&self, path: &str, body: String) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(API_KEY)
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A JSON `POST` with the secret key and an `Idempotency-Key`.
    pub async fn post_keyed(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(API_KEY)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// A `GET` with the secret key, the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }
}
