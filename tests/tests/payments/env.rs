//! A whole Tally installation for one test: 3 ledger nodes, the sandbox PSP and tally-pay, all
//! real processes on loopback; HTTP helpers for both APIs and ledger readers for the chart of
//! accounts.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::{self, code};
use tally_payments::domain::ids;
use tally_payments::domain::money::{Currency, FeeRule};

use crate::harness::{binary, eventually, TestCluster, CONVERGE_TIMEOUT};

pub const PSP_API_KEY: &str = "sk_test_tally";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret";
/// tally-pay's PSP timeout in the tests: generous, so that a loaded CI machine does not turn a
/// plain test into a timeout test. Tests of timeouts set [`SHORT_PSP_TIMEOUT`].
pub const PSP_TIMEOUT_MS: u64 = 3000;

/// A PSP timeout shorter than the sandbox's `hang`, for the tests of lost answers.
pub const SHORT_PSP_TIMEOUT: (&str, &str) = ("TALLY_PAY__PSP__TIMEOUT_MS", "800");

/// tally-pay's data key in the tests (`KEY_ID:BASE64` of 32 bytes), and its raw bytes.
pub const DATA_KEY: &str = "test1:dGFsbHktdGVzdC1kYXRhLWtleS0wMTIzNDU2Nzg5YWI=";
pub const DATA_KEY_BYTES: &str = "tally-test-data-key-0123456789ab";

pub const CARD_OK: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

struct Proc {
    child: Option<Child>,
}

impl Proc {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct PayEnv {
    pub cluster: TestCluster,
    pub pay_url: String,
    pub psp_url: String,
    /// Sends the environment's secret API key with every request.
    pub http: reqwest::Client,
    /// Sends no API key.
    pub anonymous: reqwest::Client,
    /// The secret key (all scopes) the tests call tally-pay with, and its id.
    pub api_key: String,
    pub api_key_id: String,
    pay_addr: String,
    psp_addr: String,
    pay: Proc,
    /// More tally-pay processes on the same cluster ([`PayEnv::start_another_pay`]).
    more_pay: Vec<Proc>,
    psp: Proc,
    logs: tempfile::TempDir,
    pay_starts: u32,
    pay_env: Vec<(String, String)>,
    /// The sandbox PSP's certificate and key when it serves HTTPS.
    psp_tls: Option<(PathBuf, PathBuf)>,
    /// More flags of the sandbox PSP ([`PayEnv::start_with_psp_args`]).
    psp_args: Vec<String>,
}

impl PayEnv {
    /// Starts everything; `faults` is the sandbox's fault spec (set at start, replace it later
    /// with [`PayEnv::set_faults`]); `pay_env` adds `TALLY_PAY__…` settings.
    pub async fn start(faults: &str, pay_env: &[(&str, &str)]) -> PayEnv {
        Self::start_with(faults, pay_env, false, &[]).await
    }

    /// As [`PayEnv::start`], with more flags for the sandbox PSP (e.g. `--three-ds-timeout-s`).
    pub async fn start_with_psp_args(
        faults: &str,
        pay_env: &[(&str, &str)],
        psp_args: &[&str],
    ) -> PayEnv {
        Self::start_with(faults, pay_env, false, psp_args).await
    }

    /// As [`PayEnv::start`], with the sandbox PSP serving HTTPS (a certificate from the test
    /// cluster's CA) and tally-pay trusting that CA through `psp.ca`.
    pub async fn start_https_psp(faults: &str, pay_env: &[(&str, &str)]) -> PayEnv {
        Self::start_with(faults, pay_env, true, &[]).await
    }

    async fn start_with(
        faults: &str,
        pay_env: &[(&str, &str)],
        https_psp: bool,
        psp_args: &[&str],
    ) -> PayEnv {
        tally_tls::install_crypto_provider();
        let cluster = TestCluster::start(3, &[]).await;
        let logs = tempfile::tempdir().expect("temp dir");
        let pay_addr = format!("127.0.0.1:{}", free_port());
        let psp_addr = format!("127.0.0.1:{}", free_port());
        let (api_key_id, api_key) = create_key(&cluster, "tests", "secret", &[]);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {api_key}").parse().unwrap(),
        );
        let mut env = PayEnv {
            cluster,
            pay_url: format!("http://{pay_addr}"),
            psp_url: format!("{}://{psp_addr}", if https_psp { "https" } else { "http" }),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .default_headers(headers.clone())
                .build()
                .unwrap(),
            anonymous: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            api_key,
            api_key_id,
            pay_addr,
            psp_addr,
            pay: Proc { child: None },
            more_pay: Vec::new(),
            psp: Proc { child: None },
            logs,
            pay_starts: 0,
            pay_env: pay_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            psp_tls: None,
            psp_args: psp_args.iter().map(|arg| arg.to_string()).collect(),
        };
        if https_psp {
            let certs = &env.cluster.certs;
            let (cert, key) = certs
                .authority
                .issue_server("psp", &["127.0.0.1".into()], tally_tls::Validity::days(30))
                .expect("PSP certificate")
                .write(&certs.dir, "psp")
                .expect("write the PSP certificate");
            env.psp_tls = Some((cert, key));
            let ca = certs.ca.display().to_string();
            env.pay_env.push(("TALLY_PAY__PSP__CA".into(), ca));
            // The tests' own clients talk to the PSP too: they trust the CA as well.
            let root = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
            let with_root = |client: reqwest::ClientBuilder| {
                client
                    .timeout(Duration::from_secs(60))
                    .add_root_certificate(root.clone())
                    .build()
                    .unwrap()
            };
            env.anonymous = with_root(reqwest::Client::builder());
            env.http = with_root(reqwest::Client::builder().default_headers(headers));
        }
        env.start_psp(faults);
        env.start_pay();
        env.wait_healthy().await;
        env
    }

    fn log(&self, name: &str) -> std::fs::File {
        let path: PathBuf = self.logs.path().join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("log file")
    }

    fn start_psp(&mut self, faults: &str) {
        let log = self.log("psp.log");
        let child = Command::new(binary("tally-pay"))
            .args([
                "sandbox-psp",
                "--listen",
                &self.psp_addr,
                "--webhook-url",
                &format!("{}/v1/webhooks/psp", self.pay_url),
                "--webhook-secret",
                WEBHOOK_SECRET,
                "--api-key",
                PSP_API_KEY,
                "--payout-delay-ms",
                "300",
                "--faults",
                faults,
            ])
            .args(&self.psp_args)
            .args(self.psp_tls.iter().flat_map(|(cert, key)| {
                [
                    "--tls-cert".as_ref(),
                    cert.as_os_str(),
                    "--tls-key".as_ref(),
                    key.as_os_str(),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the sandbox PSP");
        self.psp.child = Some(child);
    }

    fn start_pay(&mut self) {
        self.pay_starts += 1;
        let log = self.log(&format!("pay-{}.log", self.pay_starts));
        let child = self.pay_command(&self.pay_addr.clone(), log);
        self.pay.child = Some(child);
    }

    /// Starts one more tally-pay process on the same cluster and PSP, on an address of its own,
    /// waits until it answers, and returns its URL. It runs until the environment is dropped.
    pub async fn start_another_pay(&mut self) -> String {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = self.log(&format!("pay-more-{}.log", self.more_pay.len() + 1));
        let child = self.pay_command(&addr, log);
        self.more_pay.push(Proc { child: Some(child) });
        let url = format!("http://{addr}");
        eventually(
            CONVERGE_TIMEOUT,
            "the other tally-pay to answer",
            || async {
                let response = self
                    .anonymous
                    .get(format!("{url}/healthz"))
                    .send()
                    .await
                    .ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await;
        url
    }

    fn pay_command(&self, addr: &str, log: std::fs::File) -> std::process::Child {
        Command::new(binary("tally-pay"))
            .args([
                "serve",
                "--listen",
                addr,
                "--cluster",
                &self.cluster.cluster_arg(),
                "--psp",
                &self.psp_url,
            ])
            .env("TALLY_PAY__PSP__API_KEY", PSP_API_KEY)
            .env("TALLY_PAY__PSP__WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("TALLY_PAY__PSP__TIMEOUT_MS", PSP_TIMEOUT_MS.to_string())
            .env("TALLY_PAY__WORKER__INTERVAL_MS", "100")
            .env("TALLY_PAY__WORKER__BACKOFF_INITIAL_MS", "100")
            .env("TALLY_PAY__WORKER__BACKOFF_MAX_MS", "1000")
            .env("TALLY_PAY__RISK__VELOCITY_MAX", "100000")
            // Captured money available at once, as the tests written before escrow expect; the
            // escrow tests set their own hold period (a later setting wins).
            .env("TALLY_PAY__ESCROW__HOLD_PERIOD_S", "0")
            .env("TALLY_PAY__PAY__LOG", "info")
            .envs(self.cluster.certs.env("tally-pay"))
            .env("TALLY_PAY__PAY__ENCRYPTION_KEY", DATA_KEY)
            // Limits out of the way of load tests; the limit tests set their own.
            .env("TALLY_PAY__API__RATE_PER_S", "100000")
            .env("TALLY_PAY__API__RATE_BURST", "100000")
            .env("TALLY_PAY__API__AUTH_FAILURES_PER_MINUTE", "100000")
            .envs(self.pay_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tally-pay")
    }

    async fn wait_healthy(&self) {
        eventually(CONVERGE_TIMEOUT, "tally-pay to answer", || async {
            let url = format!("{}/healthz", self.pay_url);
            let response = self.anonymous.get(&url).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        for url in [format!("{}/v1/charges", self.psp_url)] {
            eventually(CONVERGE_TIMEOUT, &format!("{url} to answer"), || async {
                let response = self
                    .anonymous
                    .get(&url)
                    .bearer_auth(PSP_API_KEY)
                    .send()
                    .await
                    .ok()?;
                response.status().is_success().then_some(())
            })
            .await;
        }
    }

    /// `kill -9` of tally-pay.
    pub fn kill_pay(&mut self) {
        self.pay.kill();
    }

    /// Adds or replaces a `TALLY_PAY__…` setting of the next tally-pay start.
    pub fn set_pay_env(&mut self, key: &str, value: &str) {
        self.pay_env.retain(|(k, _)| k != key);
        self.pay_env.push((key.to_string(), value.to_string()));
    }

    /// Starts a new tally-pay process on the same address and waits until it answers.
    pub async fn restart_pay(&mut self) {
        self.start_pay();
        self.wait_healthy().await;
    }

    /// The tally-pay process log so far (for assertion messages).
    pub fn pay_log(&self) -> String {
        std::fs::read_to_string(
            self.logs
                .path()
                .join(format!("pay-{}.log", self.pay_starts)),
        )
        .unwrap_or_default()
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Response {
        let mut request = self.http.post(format!("{}{path}", self.pay_url)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        Response::of(request.send().await.expect("tally-pay answers")).await
    }

    /// A cheap clonable handle for client tasks.
    pub fn handle(&self) -> Handle {
        Handle {
            http: self.http.clone(),
            pay_url: self.pay_url.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        Response::of(
            self.http
                .get(format!("{}{path}", self.pay_url))
                .send()
                .await
                .expect("tally-pay answers"),
        )
        .await
    }

    pub async fn psp_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.psp_url))
            .bearer_auth(PSP_API_KEY)
            .send()
            .await
            .expect("the sandbox answers")
            .json()
            .await
            .expect("JSON from the sandbox")
    }

    /// A POST to the sandbox PSP's control routes; the answer's JSON.
    pub async fn psp_post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.psp_url))
            .bearer_auth(PSP_API_KEY)
            .json(body)
            .send()
            .await
            .expect("the sandbox answers");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON from the sandbox");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn set_faults(&self, spec: &str) {
        let response = self
            .http
            .post(format!("{}/_sandbox/faults", self.psp_url))
            .bearer_auth(PSP_API_KEY)
            .body(spec.to_string())
            .send()
            .await
            .expect("the sandbox answers");
        assert!(response.status().is_success(), "setting faults {spec}");
    }

    /// Every charge the PSP has, as JSON objects.
    pub async fn psp_charges(&self) -> Vec<Value> {
        self.psp_get("/v1/charges")
            .await
            .as_array()
            .cloned()
            .expect("a list of charges")
    }

    pub async fn customer_with_card(&self, card_number: &str) -> (String, String) {
        let customer = self
            .post(
                "/v1/customers",
                None,
                &json!({"name": "Ada Buyer", "email": "ada@example.com"}),
            )
            .await
            .expect(201);
        let customer_id = customer["id"].as_str().unwrap().to_string();
        let card_id = self.add_card(&customer_id, card_number).await;
        (customer_id, card_id)
    }

    /// Tokenizes a card at the PSP (as a browser would) and adds the token to the customer.
    pub async fn add_card(&self, customer_id: &str, card_number: &str) -> String {
        let token: Value = self
            .http
            .post(format!("{}/v1/tokens", self.psp_url))
            .bearer_auth("pk_test_browser")
            .json(&json!({"number": card_number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["token"].as_str().expect("a token").to_string();
        let card = self
            .post(
                &format!("/v1/customers/{customer_id}/cards"),
                None,
                &json!({ "token": token }),
            )
            .await
            .expect(201);
        card["id"].as_str().unwrap().to_string()
    }

    pub async fn seller(&self, name: &str) -> String {
        let seller = self
            .post(
                "/v1/sellers",
                None,
                &json!({"name": name, "email": format!("{}@example.com", name.to_lowercase())}),
            )
            .await
            .expect(201);
        seller["id"].as_str().unwrap().to_string()
    }

    pub async fn seller_with_bank(&self, name: &str) -> String {
        let id = self.seller(name).await;
        self.post(
            &format!("/v1/sellers/{id}/bank_accounts"),
            None,
            &json!({"holder_name": name, "iban": "DE89 3704 0044 0532 0130 00"}),
        )
        .await
        .expect(201);
        id
    }

    /// A seller with a bank account and `amount` (USD minor units) paid in by a new customer
    /// under the Idempotency-Key `key`, settled; returns the seller's id.
    pub async fn funded_seller(&self, name: &str, key: &str, amount: u64) -> String {
        let (customer, card) = self.customer_with_card(CARD_OK).await;
        let seller = self.seller_with_bank(name).await;
        let payment = self
            .post(
                "/v1/payments",
                Some(key),
                &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                        "orders": [{"seller_id": seller, "amount": amount}]}),
            )
            .await
            .expect(201);
        let settled = self
            .wait_payment_settled(payment["id"].as_str().unwrap())
            .await;
        assert_eq!(settled["status"], "succeeded", "{settled}");
        seller
    }

    /// Net balance of a ledger account: (credits_posted - debits_posted) as i128, and pending
    /// credits and debits.
    pub async fn account(&self, id: u128) -> Balance {
        let accounts = self
            .cluster
            .client
            .lookup_accounts(&[id])
            .await
            .expect("lookup");
        let account = accounts.first().expect("the account exists");
        let b = tally_client::Balances::of_account(account);
        Balance {
            credits_posted: b.credits_posted,
            debits_posted: b.debits_posted,
            credits_pending: b.credits_pending,
            debits_pending: b.debits_pending,
        }
    }

    pub async fn seller_wallet(&self, seller_id: &str) -> Balance {
        let owner = ids::number(ids::SELLER, seller_id).unwrap();
        self.account(chart::account_id(code::SELLER_WALLET, usd(), owner))
            .await
    }

    /// The types of the events of `object_id`, oldest first.
    pub async fn event_types(&self, object_id: &str) -> Vec<String> {
        let page = self
            .get(&format!("/v1/events?object_id={object_id}&limit=100"))
            .await
            .expect(200);
        let mut types: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        types.reverse();
        types
    }

    /// The seller's pending (escrow) account in the USD ledger.
    pub async fn seller_pending(&self, seller_id: &str) -> Balance {
        let owner = ids::number(ids::SELLER, seller_id).unwrap();
        self.account(chart::account_id(code::SELLER_PENDING, usd(), owner))
            .await
    }

    pub async fn system(&self, code: u16) -> Balance {
        self.account(chart::system_account(code, usd())).await
    }

    /// Waits until the payment's status is terminal and returns it.
    pub async fn wait_payment_settled(&self, payment_id: &str) -> Value {
        eventually(
            Duration::from_secs(120),
            &format!("payment {payment_id} to settle"),
            || async {
                let payment = self.get(&format!("/v1/payments/{payment_id}")).await;
                let status = payment.body["status"].as_str()?.to_string();
                (status != "processing").then_some(payment.body)
            },
        )
        .await
    }

    /// Waits until the payout is `paid`.
    pub async fn wait_payout_paid(&self, payout_id: &str) {
        eventually(Duration::from_secs(60), "the payout to be paid", || async {
            let p = self.get(&format!("/v1/payouts/{payout_id}")).await.body;
            (p["status"] == "paid").then_some(())
        })
        .await;
    }

    /// Checks that every ledger balances (debits = credits) on every replica: `tallyctl verify`.
    pub fn verify_ledger(&self) {
        let output = Command::new(binary("tallyctl"))
            // A follower may lag for a while on a loaded machine: verify waits for it.
            .args([
                "--cluster",
                &self.cluster.cluster_arg(),
                "--timeout",
                "120",
                "verify",
            ])
            .envs(self.cluster.certs.env("admin"))
            .output()
            .expect("run tallyctl verify");
        assert!(
            output.status.success(),
            "tallyctl verify failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// What concurrent client tasks hold: the HTTP client and tally-pay's address.
#[derive(Clone)]
pub struct Handle {
    http: reqwest::Client,
    pay_url: String,
}

impl Handle {
    /// One POST with an empty JSON body; `None` when the connection failed (a killed server).
    pub async fn post_once_raw(&self, path: &str) -> Option<Response> {
        let request = self
            .http
            .post(format!("{}{path}", self.pay_url))
            .json(&json!({}));
        Some(Response::of(request.send().await.ok()?).await)
    }

    /// One POST with an Idempotency-Key, no retry.
    pub async fn post_once(&self, path: &str, key: &str, body: &Value) -> Response {
        let request = self
            .http
            .post(format!("{}{path}", self.pay_url))
            .header("Idempotency-Key", key)
            .json(body);
        Response::of(request.send().await.expect("tally-pay answers")).await
    }

    /// GETs until tally-pay answers 200 and `ready` accepts the body (through a restart of
    /// tally-pay, whose connection errors and 5xx answers are retried); returns that body.
    pub async fn get_until(&self, path: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(180), what, || async {
            let request = self.http.get(format!("{}{path}", self.pay_url));
            let response = Response::of(request.send().await.ok()?).await;
            (response.status == 200 && ready(&response.body)).then_some(response.body)
        })
        .await
    }

    /// POSTs until tally-pay gives an answer that is not "busy or unavailable" (409 while the
    /// key is held, 5xx, connection errors): how a client retries with the same key.
    pub async fn post_until_settled(&self, path: &str, key: &str, body: &Value) -> Response {
        eventually(Duration::from_secs(180), "a definite answer", || async {
            let request = self
                .http
                .post(format!("{}{path}", self.pay_url))
                .header("Idempotency-Key", key)
                .json(body);
            let response = Response::of(request.send().await.ok()?).await;
            (response.status != 409 && response.status < 500).then_some(response)
        })
        .await
    }
}

/// A service-wide escrow hold period of a day, far longer than any test runs: only the releases
/// a test asks for move money out of escrow.
pub const HOLD_A_DAY: (&str, &str) = ("TALLY_PAY__ESCROW__HOLD_PERIOD_S", "86400");

/// The platform fee of `amount` under tally-pay's default fee rule (2.5 % + 30 minor units, half
/// away from zero).
pub fn fee(amount: u64) -> u64 {
    FeeRule {
        percent: "2.5".parse().unwrap(),
        fixed: 30,
    }
    .fee(amount)
}

pub fn usd() -> Currency {
    Currency::by_code("USD").unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub credits_posted: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub debits_pending: u128,
}

impl Balance {
    /// Credits minus debits, posted only.
    pub fn net_credit(&self) -> i128 {
        self.credits_posted as i128 - self.debits_posted as i128
    }
}

pub struct Response {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Response {
    async fn of(response: reqwest::Response) -> Response {
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Response {
            status,
            body,
            replayed,
        }
    }

    /// The body, after checking the status.
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        self.body
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }
}

/// Helpers of the reconciliation and reporting tests.
impl PayEnv {
    /// Replaces the sandbox's settlement report adjustments (a JSON list).
    pub async fn set_settlement_adjustments(&self, adjustments: &Value) {
        let response = self
            .http
            .post(format!("{}/_sandbox/settlement_adjustments", self.psp_url))
            .bearer_auth(PSP_API_KEY)
            .json(adjustments)
            .send()
            .await
            .expect("the sandbox answers");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "setting adjustments: {status} {body}");
    }

    /// Key and version of every record in `namespace` whose key starts with `prefix`.
    pub async fn record_versions(&self, namespace: &str, prefix: &str) -> Vec<(String, u64)> {
        let mut all = Vec::new();
        let mut after = Vec::new();
        loop {
            let page = self
                .cluster
                .client
                .scan_records(namespace, prefix.as_bytes(), &after, 0)
                .await
                .expect("scan records");
            let Some(last) = page.last() else {
                return all;
            };
            after = last.key.key.clone();
            all.extend(
                page.iter()
                    .map(|r| (String::from_utf8_lossy(&r.key.key).into_owned(), r.version)),
            );
        }
    }

    pub async fn customer_wallet(&self, customer_id: &str) -> Balance {
        let owner = ids::number(ids::CUSTOMER, customer_id).unwrap();
        self.account(chart::account_id(code::CUSTOMER_WALLET, usd(), owner))
            .await
    }

    /// Runs `tally-pay ARGS` configured like the test's tally-pay (cluster, PSP, keys).
    pub fn tally_pay_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary("tally-pay"))
            .args(args)
            .args([
                "--cluster",
                &self.cluster.cluster_arg(),
                "--psp",
                &self.psp_url,
            ])
            .env("TALLY_PAY__PSP__API_KEY", PSP_API_KEY)
            .env("TALLY_PAY__PSP__WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("TALLY_PAY__PSP__TIMEOUT_MS", "10000")
            .envs(self.cluster.certs.env("tally-pay"))
            .env("TALLY_PAY__PAY__ENCRYPTION_KEY", DATA_KEY)
            .envs(self.pay_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("run tally-pay")
    }

    /// Runs `tallyctl --cluster ... ARGS`.
    pub fn tallyctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary("tallyctl"))
            .args(["--cluster", &self.cluster.cluster_arg()])
            .args(args)
            .envs(self.cluster.certs.env("admin"))
            .stdin(Stdio::null())
            .output()
            .expect("run tallyctl")
    }
}

/// Creates an API key with `tally-pay keys create` straight in the cluster; returns (id, secret).
pub fn create_key(
    cluster: &TestCluster,
    name: &str,
    kind: &str,
    scopes: &[&str],
) -> (String, String) {
    let cluster_arg = cluster.cluster_arg();
    let mut command = Command::new(binary("tally-pay"));
    command.envs(cluster.certs.env("tally-pay"));
    command.args([
        "keys",
        "create",
        "--name",
        name,
        "--kind",
        kind,
        "--json",
        "--cluster",
        &cluster_arg,
    ]);
    if !scopes.is_empty() {
        command.args(["--scopes", &scopes.join(",")]);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("run tally-pay keys create");
    assert!(
        output.status.success(),
        "tally-pay keys create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON from keys create");
    (
        created["id"].as_str().expect("an id").to_string(),
        created["secret"].as_str().expect("a secret").to_string(),
    )
}

/// Requests with a chosen API key (or none).
impl PayEnv {
    pub async fn get_as(&self, path: &str, api_key: Option<&str>) -> Response {
        let mut request = self.anonymous.get(format!("{}{path}", self.pay_url));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        Response::of(request.send().await.expect("tally-pay answers")).await
    }

    pub async fn post_as(
        &self,
        path: &str,
        idempotency_key: Option<&str>,
        body: &Value,
        api_key: Option<&str>,
    ) -> Response {
        let mut request = self
            .anonymous
            .post(format!("{}{path}", self.pay_url))
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        Response::of(request.send().await.expect("tally-pay answers")).await
    }

    /// Runs `tally-pay keys ARGS --cluster ...`.
    pub fn keys_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary("tally-pay"))
            .envs(self.cluster.certs.env("tally-pay"))
            .arg("keys")
            .args(args)
            .args(["--cluster", &self.cluster.cluster_arg()])
            .stdin(Stdio::null())
            .output()
            .expect("run tally-pay keys")
    }

    /// Creates a key of `kind` with `scopes` through the API; returns (id, secret).
    pub async fn api_key(&self, kind: &str, scopes: &[&str]) -> (String, String) {
        let created = self
            .post(
                "/v1/api_keys",
                None,
                &json!({"name": format!("{kind} key"), "kind": kind, "scopes": scopes}),
            )
            .await
            .expect(201);
        (
            created["id"].as_str().unwrap().to_string(),
            created["secret"].as_str().unwrap().to_string(),
        )
    }

    /// Every file under the nodes' data directories and the logs of tally-pay and the nodes.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = vec![self.logs.path().to_path_buf()];
        if let Some(parent) = self.cluster.nodes[0].data.parent() {
            roots.push(parent.to_path_buf());
        }
        let mut files = Vec::new();
        while let Some(path) = roots.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    roots.push(entry.path());
                }
            } else if path.is_file() {
                files.push(path);
            }
        }
        files
    }
}

/// The UTC day now, `YYYY-MM-DD`.
pub fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tally_payments::flows::reports::day_of(now.as_nanos() as u64).to_string()
}

/// Now as an RFC 3339 time (milliseconds).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tally_payments::flows::reports::time_of(now.as_nanos() as u64)
}
