//! `tallyctl bench`: create accounts, then send batches of random transfers from concurrent
//! tasks (optionally paced to an offered rate), and report throughput and latency percentiles.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tally_client::{
    AccountBuilder, Client, CreateAccountResult, CreateTransferResult, Transfer, TransferBuilder,
};
use tokio::time::Instant;

use crate::cli::BenchArgs;
use crate::Context;

/// The node's limit on events per request (`EVENTS_PER_REQUEST_MAX`).
const BATCH_MAX: u32 = 8192;
/// Accounts per create request while setting up.
const ACCOUNT_CHUNK: usize = 1000;
/// Account and transfer code the benchmark uses.
const BENCH_CODE: u16 = 1;
/// Transfer ids live in the upper half of the run's 64-bit id space, accounts in the lower.
const TRANSFER_ID_OFFSET: u128 = 1 << 63;

/// SplitMix64: small, fast, good enough to pick accounts; seeded, so workloads are reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0); the modulo bias is irrelevant for a benchmark.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// What the transfers of a run look like.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Ids of this run: accounts are `base + 1 ..= base + accounts`.
    pub id_base: u128,
    pub accounts: u64,
    pub hot: bool,
    pub ledger: u32,
    pub seed: u64,
}

impl Workload {
    pub fn account_id(&self, index: u64) -> u128 {
        self.id_base + 1 + u128::from(index)
    }

    /// Transfer number `index` of the run. Its accounts depend only on the seed and the index, so
    /// the workload is the same whichever task happens to send it.
    pub fn transfer(&self, index: u64) -> Transfer {
        let mut rng = Rng::new(self.seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let (debit, credit) = if self.hot && rng.below(2) == 0 {
            let other = 1 + rng.below(self.accounts - 1);
            if rng.below(2) == 0 {
                (0, other)
            } else {
                (other, 0)
            }
        } else {
            let debit = rng.below(self.accounts);
            let credit = (debit + 1 + rng.below(self.accounts - 1)) % self.accounts;
            (debit, credit)
        };
        let amount = 1 + u128::from(rng.below(1000));
        let id = self.id_base + TRANSFER_ID_OFFSET + 1 + u128::from(index);
        TransferBuilder::new(
            id,
            self.account_id(debit),
            self.account_id(credit),
            amount,
            self.ledger,
            BENCH_CODE,
        )
        .build()
    }
}

/// The `p`-quantile (0 < p <= 1) of `sorted` by the nearest-rank method; 0 for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Summary {
    /// Transfers that got a result code (ok or not).
    pub transfers: u64,
    pub requests: u64,
    pub elapsed: Duration,
    /// Per-request latencies in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Transfers with a result other than ok, plus those of failed requests.
    pub errors: u64,
    pub failed_requests: u64,
    pub batch: u32,
    pub clients: u32,
    pub hot: bool,
}

impl Summary {
    fn per_second(&self, count: u64) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        }
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) as f64 / 1000.0
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "transfers": self.transfers,
            "transfers_per_sec": round2(self.per_second(self.transfers)),
            "requests": self.requests,
            "requests_per_sec": round2(self.per_second(self.requests)),
            "elapsed_sec": round2(self.elapsed.as_secs_f64()),
            "p50_ms": round2(self.percentile_ms(0.50)),
            "p99_ms": round2(self.percentile_ms(0.99)),
            "p999_ms": round2(self.percentile_ms(0.999)),
            "batch": self.batch,
            "clients": self.clients,
            "hot": self.hot,
            "errors": self.errors,
            "failed_requests": self.failed_requests,
        })
    }

    pub fn to_text(&self) -> String {
        format!(
            "transfers:   {} in {:.2} s = {:.0} transfers/s\n\
             requests:    {} = {:.0} requests/s (batch {}, clients {}{})\n\
             latency:     p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms (per request)\n\
             errors:      {} transfers not ok, {} requests failed\n",
            self.transfers,
            self.elapsed.as_secs_f64(),
            self.per_second(self.transfers),
            self.requests,
            self.per_second(self.requests),
            self.batch,
            self.clients,
            if self.hot { ", hot" } else { "" },
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.errors,
            self.failed_requests,
        )
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn check_args(args: &BenchArgs) -> anyhow::Result<()> {
    if args.accounts < 2 {
        bail!("--accounts must be at least 2 (a transfer needs two different accounts)");
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if args.batch == 0 || args.batch > BATCH_MAX {
        bail!("--batch must be between 1 and {BATCH_MAX} (the node's limit per request)");
    }
    if args.ledger == 0 {
        bail!("--ledger must not be zero");
    }
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of transfers per second");
        }
    }
    Ok(())
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(1)
}

pub async fn run(context: &Context, args: BenchArgs) -> anyhow::Result<ExitCode> {
    check_args(&args)?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    // Ids always vary between runs, even with the same --seed, so runs never collide. (Not
    // `seed ^ clock`: without --seed the seed is the clock too, and the two would cancel.)
    let id_high = Rng::new(clock_seed().rotate_left(29)).next_u64() | 1;
    let workload = Workload {
        id_base: u128::from(id_high) << 64,
        accounts: args.accounts,
        hot: args.hot,
        ledger: args.ledger,
        seed,
    };
    if !context.json {
        eprintln!(
            "seed {seed}; accounts {}..={}",
            workload.account_id(0),
            workload.account_id(args.accounts - 1)
        );
    }
    create_accounts(&context.client, &workload).await?;
    let progress = progress_bar(args.transfers, "transfers");
    let summary = send_transfers(&context.client, &workload, &args, &progress).await;
    progress.finish_and_clear();
    if context.json {
        outln!("{}", summary.to_json());
    } else {
        out!("{}", summary.to_text());
    }
    Ok(if summary.failed_requests > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn create_accounts(client: &Client, workload: &Workload) -> anyhow::Result<()> {
    let ids: Vec<u128> = (0..workload.accounts)
        .map(|i| workload.account_id(i))
        .collect();
    let progress = progress_bar(workload.accounts, "accounts");
    for chunk in ids.chunks(ACCOUNT_CHUNK) {
        let accounts = chunk
            .iter()
            .map(|id| AccountBuilder::new(*id, workload.ledger, BENCH_CODE).build())
            .collect();
        let results = client
            .create_accounts(accounts)
            .await
            .context("creating the benchmark accounts failed")?;
        if let Some((index, result)) = results
            .iter()
            .enumerate()
            .find(|(_, result)| **result != CreateAccountResult::Ok)
        {
            bail!(
                "creating account {} failed: {}",
                chunk[index],
                result.name()
            );
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(())
}

/// A bar on standard error when it is a terminal (with `--json` too: standard output keeps only
/// the JSON line).
fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what}  {{per_sec}}  elapsed {{elapsed}}  eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

#[derive(Default)]
struct TaskStats {
    latencies_us: Vec<u64>,
    transfers: u64,
    errors: u64,
    failed_requests: u64,
    first_failure: Option<String>,
}

struct Shared {
    client: Client,
    workload: Workload,
    next_batch: AtomicU64,
    stop: AtomicBool,
    progress: ProgressBar,
    transfers: u64,
    batch: u64,
    rate: Option<f64>,
    started: Instant,
}

async fn send_transfers(
    client: &Client,
    workload: &Workload,
    args: &BenchArgs,
    progress: &ProgressBar,
) -> Summary {
    let shared = Arc::new(Shared {
        client: client.clone(),
        workload: workload.clone(),
        next_batch: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        progress: progress.clone(),
        transfers: args.transfers,
        batch: u64::from(args.batch),
        rate: args.rate,
        started: Instant::now(),
    });
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| tokio::spawn(client_task(Arc::clone(&shared))))
        .collect();
    let mut total = TaskStats::default();
    for task in futures::future::join_all(tasks).await {
        let Ok(stats) = task else { continue };
        total.latencies_us.extend(stats.latencies_us);
        total.transfers += stats.transfers;
        total.errors += stats.errors;
        total.failed_requests += stats.failed_requests;
        total.first_failure = total.first_failure.or(stats.first_failure);
    }
    let elapsed = shared.started.elapsed();
    if let Some(failure) = &total.first_failure {
        eprintln!("a request failed: {failure}");
    }
    total.latencies_us.sort_unstable();
    Summary {
        transfers: total.transfers,
        requests: total.latencies_us.len() as u64,
        elapsed,
        latencies_us: total.latencies_us,
        errors: total.errors,
        failed_requests: total.failed_requests,
        batch: args.batch,
        clients: args.clients,
        hot: args.hot,
    }
}

async fn client_task(shared: Arc<Shared>) -> TaskStats {
    let mut stats = TaskStats::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let batch_index = shared.next_batch.fetch_add(1, Ordering::Relaxed);
        let first = batch_index.saturating_mul(shared.batch);
        if first >= shared.transfers {
            break;
        }
        let count = shared.batch.min(shared.transfers - first);
        // Open loop: each batch has a due time; latency counts from it, so queueing shows.
        let due = match shared.rate {
            Some(rate) => {
                let due = shared.started + Duration::from_secs_f64(first as f64 / rate);
                tokio::time::sleep_until(due).await;
                due
            }
            None => Instant::now(),
        };
        let transfers = (first..first + count)
            .map(|index| shared.workload.transfer(index))
            .collect();
        let result = shared.client.create_transfers(transfers).await;
        match result {
            Ok(results) => {
                stats.latencies_us.push(due.elapsed().as_micros() as u64);
                stats.transfers += count;
                stats.errors += results
                    .iter()
                    .filter(|result| **result != CreateTransferResult::Ok)
                    .count() as u64;
            }
            Err(error) => {
                stats.failed_requests += 1;
                stats.errors += count;
                if error.is_unreachable() {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                stats.first_failure.get_or_insert_with(|| error.to_string());
            }
        }
        shared.progress.inc(count);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_client::TransferFlags;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 0.5), 500);
        assert_eq!(percentile(&samples, 0.99), 990);
        assert_eq!(percentile(&samples, 0.999), 999);
        assert_eq!(percentile(&samples, 1.0), 1000);
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[7], 0.999), 7);
        assert_eq!(percentile(&[1, 2], 0.5), 1);
        assert_eq!(percentile(&[1, 2], 0.51), 2);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    fn workload(accounts: u64, hot: bool) -> Workload {
        Workload {
            id_base: 5 << 64,
            accounts,
            hot,
            ledger: 3,
            seed: 42,
        }
    }

    #[test]
    fn transfers_use_two_different_accounts_of_the_run() {
        let workload = workload(2, false);
        let accounts = [workload.account_id(0), workload.account_id(1)];
        for index in 0..1000 {
            let transfer = workload.transfer(index);
            let debit = transfer.debit_account_id;
            let credit = transfer.credit_account_id;
            assert_ne!(debit, credit);
            assert!(accounts.contains(&debit) && accounts.contains(&credit));
            assert!((1..=1000).contains(&transfer.amount));
            assert_eq!(
                (transfer.ledger, transfer.code, transfer.flags),
                (3, 1, TransferFlags::empty())
            );
        }
    }

    #[test]
    fn transfer_ids_are_unique_and_disjoint_from_account_ids() {
        let workload = workload(10, false);
        let ids: std::collections::BTreeSet<u128> =
            (0..10_000).map(|i| workload.transfer(i).id).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| *id > workload.account_id(9)));
        assert!(ids.iter().all(|id| id >> 64 == 5));
    }

    #[test]
    fn workload_is_reproducible() {
        let a = workload(100, true);
        let b = workload(100, true);
        for index in 0..100 {
            assert_eq!(a.transfer(index), b.transfer(index));
        }
    }

    #[test]
    fn hot_mode_puts_half_the_transfers_on_account_zero() {
        let count_hot = |hot| {
            let workload = workload(1000, hot);
            let hot_account = workload.account_id(0);
            (0..10_000)
                .map(|i| workload.transfer(i))
                .filter(|t| t.debit_account_id == hot_account || t.credit_account_id == hot_account)
                .count()
        };
        let hot = count_hot(true);
        assert!((4500..=5500).contains(&hot), "{hot}");
        assert!(count_hot(false) < 100);
    }

    #[test]
    fn summary_json_has_the_documented_fields() {
        let summary = Summary {
            transfers: 1000,
            requests: 10,
            elapsed: Duration::from_secs(2),
            latencies_us: (1..=10).map(|ms| ms * 1000).collect(),
            errors: 3,
            failed_requests: 0,
            batch: 100,
            clients: 4,
            hot: true,
        };
        let value = summary.to_json();
        assert_eq!(value["transfers"], 1000);
        assert_eq!(value["transfers_per_sec"], 500.0);
        assert_eq!(value["requests_per_sec"], 5.0);
        assert_eq!(value["p50_ms"], 5.0);
        assert_eq!(value["p99_ms"], 10.0);
        assert_eq!(value["p999_ms"], 10.0);
        assert_eq!(value["batch"], 100);
        assert_eq!(value["clients"], 4);
        assert_eq!(value["hot"], true);
        assert_eq!(value["errors"], 3);
        assert!(summary.to_text().contains("500 transfers/s"));
    }

    #[test]
    fn bench_arguments_are_checked() {
        let args = |accounts, batch, rate| BenchArgs {
            accounts,
            transfers: 10,
            clients: 1,
            batch,
            hot: false,
            ledger: 1,
            seed: None,
            rate,
        };
        assert!(check_args(&args(2, 1, None)).is_ok());
        assert!(check_args(&args(1, 1, None)).is_err());
        assert!(check_args(&args(2, 0, None)).is_err());
        assert!(check_args(&args(2, BATCH_MAX + 1, None)).is_err());
        assert!(check_args(&args(2, 1, Some(0.0))).is_err());
        assert!(check_args(&args(2, 1, Some(f64::NAN))).is_err());
    }
}
