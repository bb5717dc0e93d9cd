//! The workload reaches the ledger's edges the reference judges: posts and voids stamped one ns
//! before, at and one ns after their hold's expiry, holds expired by an entry starting exactly
//! at their expiry, linked chains failing first, in the middle and last, and `Txn`s failing on a
//! condition after their transfers would have gone through. Each run ends with the checker's
//! line in its trace; a few seeds together must reach every edge.

use tally_sim::run_seed;

/// The numbers right after `label` in `line`: a bracketed list ("[1, 2, 3]") or a single number.
fn numbers_after(line: &str, label: &str) -> Vec<u64> {
    let Some(start) = line.find(label) else {
        return Vec::new();
    };
    let rest = &line[start + label.len()..];
    let rest = rest.trim_start();
    let text = match rest.strip_prefix('[') {
        Some(list) => list.split(']').next().unwrap_or(""),
        None => rest.split(',').next().unwrap_or(""),
    };
    text.split(',')
        .filter_map(|part| part.trim().parse().ok())
        .collect()
}

#[test]
fn a_few_seeds_reach_every_ledger_edge() {
    let mut at_expiry = [0u64; 3];
    let mut expired_at_start = 0;
    let mut chains = [0u64; 3];
    let mut conditions = 0;
    for seed in 1u64..=6 {
        let outcome = run_seed(seed, None);
        assert!(outcome.failure.is_none(), "{}", outcome.report());
        let line = outcome
            .recent_events
            .iter()
            .find(|event| event.contains("checker:"))
            .unwrap_or_else(|| {
                panic!(
                    "seed {seed}: no checker line in {:?}",
                    outcome.recent_events
                )
            })
            .clone();
        let resolved = numbers_after(&line, "-1ns/0/+1ns");
        let failed = numbers_after(&line, "first/middle/last");
        assert_eq!((resolved.len(), failed.len()), (3, 3), "{line}");
        for edge in 0..3 {
            at_expiry[edge] += resolved[edge];
            chains[edge] += failed[edge];
        }
        expired_at_start += numbers_after(&line, "expired at entry start")
            .first()
            .copied()
            .unwrap_or(0);
        conditions += numbers_after(&line, "condition with transfers")
            .first()
            .copied()
            .unwrap_or(0);
    }
    assert!(
        at_expiry.iter().all(|hits| *hits > 0),
        "posts and voids at expiry -1ns/0/+1ns: {at_expiry:?}"
    );
    assert!(expired_at_start > 0, "no hold expired at an entry's start");
    assert!(
        chains.iter().all(|hits| *hits > 0),
        "chains failed first/middle/last: {chains:?}"
    );
    assert!(
        conditions > 0,
        "no Txn failed on a condition with transfers"
    );
}
