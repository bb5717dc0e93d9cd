//! The simulator's own guarantees: a seed replays byte for byte, and a planted bug is caught.

use tally_sim::{run_seed, Plant};

#[test]
fn a_seed_replays_to_the_same_trace() {
    let seeds = [1u64, 2, 3, 4, 5];
    let mut traces = Vec::new();
    for seed in seeds {
        let first = run_seed(seed, None);
        let second = run_seed(seed, None);
        assert_eq!(first.summary(), second.summary(), "seed {seed} diverged");
        assert!(first.failure.is_none(), "{}", first.report());
        assert!(first.requests > 0, "seed {seed} acknowledged nothing");
        traces.push(first.trace);
    }
    traces.sort_unstable();
    traces.dedup();
    assert_eq!(
        traces.len(),
        seeds.len(),
        "different seeds gave the same trace"
    );
}

#[test]
fn a_planted_stale_read_is_caught() {
    let caught = (1u64..=5)
        .map(|seed| run_seed(seed, Some(Plant::StaleRead)))
        .find(|outcome| outcome.failure.is_some())
        .expect("stale reads went unnoticed on seeds 1..=5");
    let failure = caught.failure.clone().unwrap_or_default();
    assert!(failure.contains("stale read"), "{}", caught.report());
    assert!(caught.report().contains("replay: tally-sim --seed"));
}

#[test]
fn the_cluster_size_can_be_forced() {
    for replicas in [3u64, 5] {
        for seed in 1u64..=3 {
            let outcome = tally_sim::run_seed_sized(seed, None, false, Some(replicas));
            assert!(
                outcome.config.contains(&format!("replicas={replicas} ")),
                "{}",
                outcome.config
            );
            assert!(outcome.failure.is_none(), "{}", outcome.report());
        }
    }
}
