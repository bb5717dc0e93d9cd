//! Retry policy: which gRPC statuses are retried and where, and the exponential backoff with
//! jitter between attempts. Pure, so it is unit-tested without a server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::{Code, Status};

use crate::address::{parse_leader_hint, NodeAddress, LEADER_METADATA_KEY};

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The node is not the leader and named it: resend there at once.
    Redirect {
        /// The leader's node id.
        leader_id: u64,
        /// The leader's address.
        addr: NodeAddress,
    },
    /// A transport problem, a timeout, or "not leader" without a hint: back off, then resend the
    /// same request to the next node.
    RetryNextNode,
    /// The cluster refused the request: return the error to the caller.
    Reject,
}

/// Decides how to handle a failed attempt. Every retry resends the *same* request, which is safe
/// because the ledger deduplicates by id.
pub fn classify(status: &Status) -> Disposition {
    match status.code() {
        Code::Unavailable => {
            let hint = status
                .metadata()
                .get(LEADER_METADATA_KEY)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_leader_hint);
            match hint {
                Some((leader_id, addr)) => Disposition::Redirect { leader_id, addr },
                None => Disposition::RetryNextNode,
            }
        }
        // Timeouts and cancellations say nothing about the request itself; ABORTED means "retry at
        // a higher level", which an idempotent request may always do.
        Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => Disposition::RetryNextNode,
        // tonic reports some broken connections (resets, h2 errors) as UNKNOWN.
        Code::Unknown if is_transport_message(status.message()) => Disposition::RetryNextNode,
        _ => Disposition::Reject,
    }
}

fn is_transport_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "transport",
        "connection",
        "h2 protocol",
        "broken pipe",
        "reset",
        "hyper",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Exponential backoff with "equal jitter": attempt `n` waits a uniformly random time in
/// `[d/2, d]` where `d = min(initial * 2^n, max)`. The jitter keeps many clients that failed
/// together from retrying in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max` (`max` is raised to `initial` if lower).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt, given a uniformly random `u64` for the jitter.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let half = ceiling_nanos / 2;
        let spread = ceiling_nanos - half;
        // Scales `random` onto 0..=spread (multiply-high: no modulo bias, and the extremes of
        // `random` map to the extremes of the range).
        let jitter = ((u128::from(random) * (u128::from(spread) + 1)) >> 64) as u64;
        Duration::from_nanos(half + jitter)
    }

    /// The un-jittered delay of the next attempt.
    fn ceiling(&self) -> Duration {
        // 2^20 times any sane initial delay is already far past any sane maximum.
        let factor = 1u32 << self.attempt.min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Starts over, e.g. after a successful redirect to a new leader.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A lock-free SplitMix64 generator for jitter, seeded from the clock. Not for anything that needs
/// real randomness.
#[derive(Debug)]
pub(crate) struct Jitter {
    state: AtomicU64,
}

impl Jitter {
    pub(crate) fn from_clock() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Jitter::with_seed(nanos)
    }

    pub(crate) fn with_seed(seed: u64) -> Jitter {
        Jitter {
            state: AtomicU64::new(seed),
        }
    }

    pub(crate) fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let state = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn not_leader(hint: Option<&'static str>) -> Status {
        let mut status = Status::unavailable("not leader");
        if let Some(hint) = hint {
            status
                .metadata_mut()
                .insert(LEADER_METADATA_KEY, MetadataValue::from_static(hint));
        }
        status
    }

    #[test]
    fn not_leader_with_hint_redirects() {
        let disposition = classify(&not_leader(Some("3=10.0.0.3:7100")));
        assert_eq!(
            disposition,
            Disposition::Redirect {
                leader_id: 3,
                addr: NodeAddress::parse("10.0.0.3:7100").unwrap()
            }
        );
    }

    #[test]
    fn not_leader_without_or_with_bad_hint_tries_next_node() {
        assert_eq!(classify(&not_leader(None)), Disposition::RetryNextNode);
        assert_eq!(
            classify(&not_leader(Some("garbage"))),
            Disposition::RetryNextNode
        );
    }

    #[test]
    fn transport_failures_are_retried() {
        for status in [
            Status::unavailable("tcp connect error: Connection refused"),
            Status::deadline_exceeded("timeout expired"),
            Status::cancelled("operation was canceled"),
            Status::aborted("leadership changed"),
            Status::unknown("transport error"),
            Status::unknown("h2 protocol error: connection reset"),
        ] {
            assert_eq!(classify(&status), Disposition::RetryNextNode, "{status:?}");
        }
    }

    #[test]
    fn refusals_are_returned_at_once() {
        for status in [
            Status::invalid_argument("accounts[0].id must not be zero"),
            Status::failed_precondition("cluster already initialized"),
            Status::resource_exhausted("batch too large"),
            Status::permission_denied("no"),
            Status::unimplemented("no such method"),
            Status::internal("bug"),
            Status::unknown("handler panicked"),
        ] {
            assert_eq!(classify(&status), Disposition::Reject, "{status:?}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_caps() {
        let initial = Duration::from_millis(20);
        let max = Duration::from_secs(1);
        let jitter = Jitter::with_seed(7);
        let mut backoff = Backoff::new(initial, max);
        for attempt in 0..40u32 {
            let ceiling = initial.saturating_mul(1 << attempt.min(20)).min(max);
            let delay = backoff.next_delay(jitter.next_u64());
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
            assert!(delay >= ceiling / 2, "attempt {attempt}: {delay:?} < half");
        }
    }

    #[test]
    fn backoff_extremes_of_the_random_input() {
        let mut low = Backoff::new(Duration::from_millis(20), Duration::from_secs(1));
        let mut high = low.clone();
        assert_eq!(low.next_delay(0), Duration::from_millis(10));
        assert_eq!(high.next_delay(u64::MAX), Duration::from_millis(20));
        assert_eq!(low.next_delay(0), Duration::from_millis(20));
        low.reset();
        assert_eq!(low.next_delay(0), Duration::from_millis(10));
    }

    #[test]
    fn backoff_max_below_initial_is_raised() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(1));
        assert_eq!(backoff.next_delay(u64::MAX), Duration::from_millis(50));
        assert_eq!(backoff.next_delay(u64::MAX), Duration::from_millis(50));
    }

    #[test]
    fn jitter_is_spread_out() {
        let jitter = Jitter::with_seed(1);
        let values: Vec<u64> = (0..1000).map(|_| jitter.next_u64() % 10).collect();
        for bucket in 0..10 {
            let count = values.iter().filter(|value| **value == bucket).count();
            assert!((50..=150).contains(&count), "bucket {bucket}: {count}");
        }
    }
}
