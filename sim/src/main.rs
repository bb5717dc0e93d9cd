//! `tally-sim`: run one seed (`--seed N`) or a range (`--seeds A..B`, both ends included),
//! optionally with a planted bug (`--plant BUG`) to prove the checks catch it.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use clap::Parser;
use tally_sim::{run_seed_sized, Outcome, Plant};

#[derive(Parser)]
#[command(
    name = "tally-sim",
    about = "Deterministic simulator: a whole Tally cluster in one thread, every fault, any seed replayed",
    after_help = "Examples:\n  tally-sim --seed 42\n  tally-sim --seeds 1..1000\n  \
tally-sim --plant ack-before-sync --seeds 1..200\n  tally-sim --replicas 5 --seeds 1..100"
)]
struct Args {
    /// Run one seed; the last line is `seed=N result=ok|fail requests=R faults=F sim_ms=T trace=HEX16`.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run seeds A through B (inclusive) and print `seeds=K failed=X first_failure=SEED|none`.
    #[arg(long, value_parser = parse_range)]
    seeds: Option<(u64, u64)>,
    /// Switch on a planted bug: ack-before-sync, skip-idempotency, skip-balance-check,
    /// stale-read, forget-vote.
    #[arg(long)]
    plant: Option<Plant>,
    /// Seeds run in parallel with --seeds (each on its own thread; a seed itself is one thread).
    #[arg(long)]
    jobs: Option<usize>,
    /// With --seeds, print every seed's result line.
    #[arg(long)]
    verbose: bool,
    /// With --seeds, stop starting new seeds once one fails (the report names the lowest
    /// failing seed among those run).
    #[arg(long)]
    fail_fast: bool,
    /// With --seed, print every event to stderr as it happens (for debugging a failure).
    #[arg(long)]
    events: bool,
    /// Force the cluster size (3 or 5) instead of drawing it from each seed.
    #[arg(long, value_parser = parse_replicas)]
    replicas: Option<u64>,
}

fn parse_replicas(text: &str) -> Result<u64, String> {
    match text {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err(format!("{text:?}: the simulator runs 3 or 5 replicas")),
    }
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (first, last) = text
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {text:?}"))?;
    let first: u64 = first
        .trim()
        .parse()
        .map_err(|e| format!("{first:?}: {e}"))?;
    let last: u64 = last
        .trim()
        .trim_start_matches('=')
        .parse()
        .map_err(|e| format!("{last:?}: {e}"))?;
    if first > last {
        return Err(format!("empty range {text}"));
    }
    Ok((first, last))
}

fn run_one(seed: u64, plant: Option<Plant>, events: bool, replicas: Option<u64>) -> ExitCode {
    let outcome = run_seed_sized(seed, plant, events, replicas);
    println!("config: {}", outcome.config);
    if outcome.failure.is_some() {
        print!("{}", outcome.report());
    }
    println!("{}", outcome.summary());
    if outcome.failure.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// How `--seeds` runs.
struct RangeOptions {
    jobs: usize,
    verbose: bool,
    fail_fast: bool,
    replicas: Option<u64>,
}

fn run_range((first, last): (u64, u64), plant: Option<Plant>, options: RangeOptions) -> ExitCode {
    let RangeOptions {
        jobs,
        verbose,
        fail_fast,
        replicas,
    } = options;
    let ran = AtomicU64::new(0);
    let coverage: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    let next = AtomicU64::new(first);
    let failures: Mutex<BTreeMap<u64, Outcome>> = Mutex::new(BTreeMap::new());
    // Seeds are independent worlds: running several at once on real threads changes nothing
    // inside any of them.
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            #[allow(clippy::disallowed_methods)]
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed > last {
                    return;
                }
                if fail_fast
                    && !failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_empty()
                {
                    return;
                }
                ran.fetch_add(1, Ordering::Relaxed);
                let outcome = run_seed_sized(seed, plant, false, replicas);
                {
                    let mut coverage = coverage.lock().unwrap_or_else(|p| p.into_inner());
                    for (kind, count) in &outcome.fault_kinds {
                        *coverage.entry(kind.clone()).or_default() += count;
                    }
                }
                if verbose || outcome.failure.is_some() {
                    println!("{}", outcome.summary());
                }
                if outcome.failure.is_some() {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(seed, outcome);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    let first_failure = failures.values().next();
    if let Some(outcome) = first_failure {
        print!("{}", outcome.report());
    }
    let coverage = coverage.into_inner().unwrap_or_else(|p| p.into_inner());
    let kinds: Vec<String> = coverage
        .iter()
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect();
    println!("faults injected: {}", kinds.join(", "));
    println!(
        "seeds={} failed={} first_failure={}",
        ran.into_inner(),
        failures.len(),
        first_failure.map_or("none".to_string(), |o| o.seed.to_string())
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    match (args.seed, args.seeds) {
        (Some(seed), _) => run_one(seed, args.plant, args.events, args.replicas),
        (None, Some(range)) => {
            let options = RangeOptions {
                jobs: jobs.max(1),
                verbose: args.verbose,
                fail_fast: args.fail_fast,
                replicas: args.replicas,
            };
            run_range(range, args.plant, options)
        }
        (None, None) => {
            eprintln!("tally-sim: give --seed N or --seeds A..B (see --help)");
            ExitCode::from(2)
        }
    }
}
