//! `tally-pay bench`: checkouts per second through the whole stack (tally-pay, the ledger
//! cluster, the sandbox PSP), as an application server would send them: C concurrent clients,
//! N payments of 1-3 orders each, each with its own Idempotency-Key. A 429 is waited out (its
//! `Retry-After`) and retried with the same key; any other failure is counted, not retried.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::{json, Value};

/// Most payments one run may send.
pub const PAYMENTS_MAX: u64 = 10_000_000;
/// Most concurrent clients.
pub const CLIENTS_MAX: u64 = 1024;
/// Payments one customer makes at most (the risk rules limit a customer's velocity).
const PAYMENTS_PER_CUSTOMER: u64 = 200;
/// Sellers the orders are spread over.
const SELLERS: usize = 8;
/// The sandbox PSP's card that always succeeds.
const CARD_OK: &str = "4242424242424242";

#[derive(Args)]
#[command(after_help = "\
Defaults fit `make run`: tally-pay at $TALLY_PAY_URL (http://127.0.0.1:8080), the sandbox PSP at
$TALLY_PSP_URL (http://127.0.0.1:7400) and the quick-start key $TALLY_PAY_KEY, read from the
environment or else from the dev cluster's tally.env ($TMPDIR/tally-dev/tally.env).

Prints progress, a summary, and as its last line one JSON object: payments, orders, clients,
failed, throttled, seconds, payments_per_sec, orders_per_sec, p50_ms, p99_ms, p999_ms (the
latency of one checkout request).

Example:
  tally-pay bench --payments 2000 --clients 16")]
pub struct BenchArgs {
    /// Base URL of tally-pay.
    #[arg(long, value_name = "URL", env = "TALLY_PAY_URL")]
    url: Option<String>,
    /// Base URL of the PSP that tokenizes the test card (the sandbox PSP).
    #[arg(long, value_name = "URL", env = "TALLY_PSP_URL")]
    psp: Option<String>,
    /// A secret API key with payments:write (and the scopes to create customers and sellers).
    #[arg(long, env = "TALLY_PAY_KEY", hide_env_values = true)]
    key: Option<String>,
    /// How many checkouts to send.
    #[arg(long, default_value_t = 1000)]
    payments: u64,
    /// How many run at once.
    #[arg(long, default_value_t = 16)]
    clients: u64,
    /// Print only the final JSON line.
    #[arg(long)]
    json: bool,
}

/// Settings of `make run`'s stack: the environment, else the dev cluster's `tally.env`.
fn dev_setting(name: &str) -> Option<String> {
    if let Ok(value) = std::env::var(name) {
        return Some(value);
    }
    let env_file = std::env::var_os("TALLY_DEV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tally-dev"))
        .join("tally.env");
    let text = std::fs::read_to_string(env_file).ok()?;
    text.lines().find_map(|line| {
        let value = line
            .strip_prefix("export ")?
            .strip_prefix(name)?
            .strip_prefix('=')?;
        Some(value.trim_matches('\'').to_string())
    })
}

struct Setup {
    http: reqwest::Client,
    url: String,
    sellers: Vec<String>,
    /// (customer id, card id), one per PAYMENTS_PER_CUSTOMER payments.
    payers: Vec<(String, String)>,
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {url} answered {status}: {body}");
    }
    Ok(body)
}

fn id_of(value: &Value) -> anyhow::Result<String> {
    value["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no id in {value}"))
}

async fn setup(args: &BenchArgs) -> anyhow::Result<Setup> {
    let url = args
        .url
        .clone()
        .or_else(|| dev_setting("TALLY_PAY_URL"))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let psp = args
        .psp
        .clone()
        .or_else(|| dev_setting("TALLY_PSP_URL"))
        .unwrap_or_else(|| "http://127.0.0.1:7400".into());
    let key = args
        .key
        .clone()
        .or_else(|| dev_setting("TALLY_PAY_KEY"))
        .context(
            "no API key: pass --key or set TALLY_PAY_KEY (`source` the dev cluster's tally.env)",
        )?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}")
            .parse()
            .context("the API key is not a valid header value")?,
    );
    let http = tally_payments::edges::psp::http_client(
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(60)),
        None,
    )
    .map_err(anyhow::Error::msg)?;
    let tokenizer = tally_payments::edges::psp::http_client(reqwest::Client::builder(), None)
        .map_err(anyhow::Error::msg)?;
    let mut sellers = Vec::new();
    for n in 0..SELLERS {
        let seller = post(
            &http,
            &format!("{url}/v1/sellers"),
            &json!({"name": format!("Bench seller {n}"), "email": format!("seller{n}@bench.example")}),
        )
        .await?;
        sellers.push(id_of(&seller)?);
    }
    let customers = args.payments.div_ceil(PAYMENTS_PER_CUSTOMER).max(1);
    let mut payers = Vec::new();
    for n in 0..customers {
        let customer = post(
            &http,
            &format!("{url}/v1/customers"),
            &json!({"name": format!("Bench buyer {n}"), "email": format!("buyer{n}@bench.example")}),
        )
        .await?;
        let customer = id_of(&customer)?;
        let token = tokenizer
            .post(format!("{psp}/v1/tokens"))
            .bearer_auth("pk_test_bench")
            .json(&json!({"number": CARD_OK, "exp_month": 12, "exp_year": 2034, "cvc": "123"}))
            .send()
            .await
            .with_context(|| format!("tokenizing the test card at {psp}"))?
            .json::<Value>()
            .await?;
        let token = token["token"]
            .as_str()
            .with_context(|| format!("the PSP gave no token: {token}"))?;
        let card = post(
            &http,
            &format!("{url}/v1/customers/{customer}/cards"),
            &json!({ "token": token }),
        )
        .await?;
        payers.push((customer, id_of(&card)?));
    }
    Ok(Setup {
        http,
        url,
        sellers,
        payers,
    })
}

/// One checkout, retried with its key after a 429; its latency, or why it failed.
async fn checkout(setup: &Setup, n: u64, run: &str) -> (Result<u64, String>, u64) {
    let (customer, card) = &setup.payers[(n / PAYMENTS_PER_CUSTOMER) as usize % setup.payers.len()];
    let orders = 1 + n % 3;
    let body = json!({
        "customer_id": customer,
        "card_id": card,
        "currency": "USD",
        "orders": (0..orders).map(|o| json!({
            "seller_id": setup.sellers[((n + o) as usize) % setup.sellers.len()],
            "amount": 1_000 + (n % 97) * 10,
        })).collect::<Vec<_>>(),
    });
    let key = format!("bench-{run}-{n}");
    let mut throttled = 0;
    let started = Instant::now();
    loop {
        let sent = setup
            .http
            .post(format!("{}/v1/payments", setup.url))
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return (Err(error.to_string()), throttled),
        };
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait.clamp(1, 10))).await;
            continue;
        }
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return (Err(format!("{status}: {text}")), throttled);
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        return (Ok(micros), throttled);
    }
}

fn percentile_ms(sorted_micros: &[u64], permille: usize) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let index = (sorted_micros.len() * permille)
        .div_ceil(1000)
        .saturating_sub(1);
    let micros = sorted_micros[index.min(sorted_micros.len() - 1)];
    (micros as f64 / 10.0).round() / 100.0
}

/// Exit code 0 when every checkout succeeded, 1 when some failed, 2 when the run could not be set
/// up (tally-pay or the PSP unreachable, no key).
pub fn run(runtime: &tokio::runtime::Runtime, args: BenchArgs) -> anyhow::Result<()> {
    let code = match runtime.block_on(bench(args)) {
        Ok(true) => return Ok(()),
        Ok(false) => 1,
        Err(error) => {
            eprintln!("tally-pay bench: {error:#}");
            2
        }
    };
    std::process::exit(code)
}

/// True when every checkout succeeded.
async fn bench(args: BenchArgs) -> anyhow::Result<bool> {
    if !(1..=PAYMENTS_MAX).contains(&args.payments) {
        bail!("--payments must be 1 to {PAYMENTS_MAX}");
    }
    if !(1..=CLIENTS_MAX).contains(&args.clients) {
        bail!("--clients must be 1 to {CLIENTS_MAX}");
    }
    if !args.json {
        eprintln!("setting up sellers, customers and cards...");
    }
    let setup = Arc::new(setup(&args).await?);
    let run = format!("{:x}", tally_payments::flows::now_ms());
    // On standard error, drawn only when it is a terminal; with `--json` too, as standard
    // output keeps only the JSON line.
    let bar = indicatif::ProgressBar::new(args.payments);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "  {bar:40} {pos}/{len} payments  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let (setup, next, bar, run) = (setup.clone(), next.clone(), bar.clone(), run.clone());
        let total = args.payments;
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            let (mut orders, mut throttled) = (0u64, 0u64);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return (latencies, failures, orders, throttled);
                }
                let (outcome, waits) = checkout(&setup, n, &run).await;
                throttled += waits;
                match outcome {
                    Ok(micros) => {
                        latencies.push(micros);
                        orders += 1 + n % 3;
                    }
                    Err(error) => failures.push(error),
                }
                bar.inc(1);
            }
        });
    }
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let (mut orders, mut throttled) = (0u64, 0u64);
    while let Some(joined) = workers.join_next().await {
        let (l, f, o, t) = joined.context("a bench client failed")?;
        latencies.extend(l);
        failures.extend(f);
        orders += o;
        throttled += t;
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    latencies.sort_unstable();
    let succeeded = latencies.len() as u64;
    let rate = |count: u64| ((count as f64 / seconds.max(1e-9)) * 10.0).round() / 10.0;
    let report = json!({
        "payments": succeeded,
        "orders": orders,
        "clients": args.clients,
        "failed": failures.len(),
        "throttled": throttled,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "payments_per_sec": rate(succeeded),
        "orders_per_sec": rate(orders),
        "p50_ms": percentile_ms(&latencies, 500),
        "p99_ms": percentile_ms(&latencies, 990),
        "p999_ms": percentile_ms(&latencies, 999),
    });
    if !args.json {
        println!(
            "payments:  {succeeded} ok, {} failed, {throttled} throttled (429) in {seconds:.1} s",
            failures.len()
        );
        println!(
            "rate:      {} payments/s, {} orders/s ({} clients)",
            report["payments_per_sec"], report["orders_per_sec"], args.clients
        );
        println!(
            "latency:   p50 {} ms  p99 {} ms  p999 {} ms (per checkout)",
            report["p50_ms"], report["p99_ms"], report["p999_ms"]
        );
        if let Some(first) = failures.first() {
            println!("first failure: {first}");
        }
    }
    println!("{report}");
    Ok(failures.is_empty())
}
