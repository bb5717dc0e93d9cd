//! Token buckets keyed by a name (an API key id, a source address): per-process rate limits.
//! Each tally-pay process limits on its own, so N processes behind a balancer allow N times the
//! rate; the docs say so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets one limiter keeps; the oldest-touched half is dropped beyond it, so a flood of
/// distinct names cannot grow memory without bound.
const BUCKETS_MAX: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    touched: Instant,
}

/// Buckets of `capacity` tokens refilled at `per_second`.
#[derive(Debug)]
pub struct TokenBuckets {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TokenBuckets {
    pub fn new(capacity: u32, per_second: f64) -> TokenBuckets {
        assert!(
            capacity > 0 && per_second > 0.0,
            "a limit must allow something"
        );
        TokenBuckets {
            capacity: f64::from(capacity),
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `name`: `Ok` when there was one, else `Err(seconds until there is)`.
    pub fn take(&self, name: &str) -> Result<(), u64> {
        self.take_at(name, Instant::now())
    }

    /// Whether `name` has a token, without taking it: `Err(seconds until it has one)`.
    pub fn check(&self, name: &str) -> Result<(), u64> {
        let now = Instant::now();
        let buckets = self.buckets.lock().expect("token buckets");
        match buckets.get(name) {
            Some(bucket) => self.wait_s(self.refilled(bucket, now)),
            None => Ok(()),
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.touched).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.capacity)
    }

    fn wait_s(&self, tokens: f64) -> Result<(), u64> {
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err((((1.0 - tokens) / self.per_second).ceil() as u64).max(1))
        }
    }

    fn take_at(&self, name: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().expect("token buckets");
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(name) {
            let mut ages: Vec<Instant> = buckets.values().map(|b| b.touched).collect();
            ages.sort();
            let cutoff = ages[ages.len() / 2];
            buckets.retain(|_, b| b.touched > cutoff);
        }
        let bucket = buckets.entry(name.to_string()).or_insert(Bucket {
            tokens: self.capacity,
            touched: now,
        });
        let tokens = self.refilled(bucket, now);
        let outcome = self.wait_s(tokens);
        bucket.tokens = if outcome.is_ok() {
            tokens - 1.0
        } else {
            tokens
        };
        bucket.touched = now;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_empties_refills_and_says_how_long_to_wait() {
        let buckets = TokenBuckets::new(2, 1.0);
        let start = Instant::now();
        assert_eq!(buckets.take_at("k", start), Ok(()));
        assert_eq!(buckets.take_at("k", start), Ok(()));
        assert_eq!(buckets.take_at("k", start), Err(1));
        assert_eq!(
            buckets.take_at("other", start),
            Ok(()),
            "buckets are per name"
        );
        let later = start + Duration::from_millis(1100);
        assert_eq!(buckets.take_at("k", later), Ok(()));
        assert_eq!(buckets.take_at("k", later), Err(1));
    }
}
