//! The faults the sandbox PSP injects, and their text form
//! (`latency=20ms,error_rate=0.05,hang=10s,seed=42`).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Longest latency that can be injected into each API response.
pub const LATENCY_MAX: Duration = Duration::from_secs(10);
/// Longest a response can be held after success (`timeout_after_success`).
pub const HANG_MAX: Duration = Duration::from_secs(600);
/// How long a response is held when `hang` is not given: longer than any sane client timeout.
pub const HANG_DEFAULT: Duration = Duration::from_secs(30);

const KEYS: &str = "latency, error_rate, timeout_after_success, hang, duplicate_webhooks, \
                    lost_webhooks, reorder_webhooks, seed";

/// What goes wrong, and how often. Probabilities are per request (or per webhook event) and
/// drawn from one RNG seeded with `seed`, so a run with the same requests in the same order
/// gets the same faults. Probabilities are `f64`: they are not money.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Added to every API response.
    pub latency: Duration,
    /// Chance that a `/v1` call (any, tokens included) is answered 500 before it is looked at:
    /// it has no effect.
    pub error_rate: f64,
    /// Chance that a charge, capture, refund or payout is processed and stored and its response
    /// then held for `hang`, so the client times out not knowing the outcome.
    pub timeout_after_success: f64,
    pub hang: Duration,
    /// Chance that a webhook event is delivered twice (same event id).
    pub duplicate_webhooks: f64,
    /// Chance that a webhook event is never delivered.
    pub lost_webhooks: f64,
    /// Chance that a webhook event is held back so that later events overtake it.
    pub reorder_webhooks: f64,
    /// `None`: the sandbox draws a seed and reports it (`GET /_sandbox/faults`).
    pub seed: Option<u64>,
}

impl Default for Faults {
    /// No faults.
    fn default() -> Faults {
        Faults {
            latency: Duration::ZERO,
            error_rate: 0.0,
            timeout_after_success: 0.0,
            hang: HANG_DEFAULT,
            duplicate_webhooks: 0.0,
            lost_webhooks: 0.0,
            reorder_webhooks: 0.0,
            seed: None,
        }
    }
}

impl Faults {
    /// Parses a comma-separated `key=value` list; every key is optional, the rest keep their
    /// [`Default`]. Durations are whole `ms` or `s`; probabilities are in `[0, 1]`.
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut faults = Faults::default();
        let mut seen = HashSet::new();
        for item in spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("fault `{item}`: expected key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            if !seen.insert(key) {
                return Err(format!("fault `{key}` given twice"));
            }
            match key {
                "latency" => faults.latency = parse_duration(key, value, LATENCY_MAX)?,
                "hang" => faults.hang = parse_duration(key, value, HANG_MAX)?,
                "error_rate" => faults.error_rate = parse_probability(key, value)?,
                "timeout_after_success" => {
                    faults.timeout_after_success = parse_probability(key, value)?;
                }
                "duplicate_webhooks" => faults.duplicate_webhooks = parse_probability(key, value)?,
                "lost_webhooks" => faults.lost_webhooks = parse_probability(key, value)?,
                "reorder_webhooks" => faults.reorder_webhooks = parse_probability(key, value)?,
                "seed" => {
                    let seed = value
                        .parse::<u64>()
                        .map_err(|_| format!("seed `{value}`: expected an unsigned integer"))?;
                    faults.seed = Some(seed);
                }
                _ => return Err(format!("unknown fault `{key}` (known: {KEYS})")),
            }
        }
        Ok(faults)
    }
}

impl FromStr for Faults {
    type Err = String;

    fn from_str(spec: &str) -> Result<Faults, String> {
        Faults::parse(spec)
    }
}

impl fmt::Display for Faults {
    /// Every key, in a form [`Faults::parse`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency={},error_rate={},timeout_after_success={},hang={},duplicate_webhooks={},\
             lost_webhooks={},reorder_webhooks={}",
            DisplayDuration(self.latency),
            self.error_rate,
            self.timeout_after_success,
            DisplayDuration(self.hang),
            self.duplicate_webhooks,
            self.lost_webhooks,
            self.reorder_webhooks,
        )?;
        if let Some(seed) = self.seed {
            write!(f, ",seed={seed}")?;
        }
        Ok(())
    }
}

struct DisplayDuration(Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let milliseconds = self.0.as_millis();
        if milliseconds.is_multiple_of(1000) {
            write!(f, "{}s", milliseconds / 1000)
        } else {
            write!(f, "{milliseconds}ms")
        }
    }
}

fn parse_duration(key: &str, value: &str, maximum: Duration) -> Result<Duration, String> {
    let expected = || format!("{key} `{value}`: expected a whole number of ms or s, like 20ms");
    let duration = if let Some(number) = value.strip_suffix("ms") {
        Duration::from_millis(number.parse().map_err(|_| expected())?)
    } else if let Some(number) = value.strip_suffix('s') {
        Duration::from_secs(number.parse().map_err(|_| expected())?)
    } else {
        return Err(expected());
    };
    if duration > maximum {
        return Err(format!(
            "{key} `{value}`: at most {}",
            DisplayDuration(maximum)
        ));
    }
    Ok(duration)
}

fn parse_probability(key: &str, value: &str) -> Result<f64, String> {
    let probability = value
        .parse::<f64>()
        .map_err(|_| format!("{key} `{value}`: expected a probability like 0.05"))?;
    if !(0.0..=1.0).contains(&probability) {
        return Err(format!("{key} `{value}`: a probability is between 0 and 1"));
    }
    Ok(probability)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_spec_parses_and_prints_back() {
        let spec = "latency=20ms,error_rate=0.05,timeout_after_success=0.1,hang=10s,\
                    duplicate_webhooks=0.1,lost_webhooks=0.05,reorder_webhooks=0.1,seed=42";
        let faults = Faults::parse(spec).unwrap();
        assert_eq!(faults.latency, Duration::from_millis(20));
        assert_eq!(faults.error_rate, 0.05);
        assert_eq!(faults.hang, Duration::from_secs(10));
        assert_eq!(faults.lost_webhooks, 0.05);
        assert_eq!(faults.seed, Some(42));
        assert_eq!(faults.to_string(), spec);
        assert_eq!(Faults::parse(&faults.to_string()), Ok(faults));
    }

    #[test]
    fn every_key_is_optional() {
        assert_eq!(Faults::parse(""), Ok(Faults::default()));
        assert_eq!(Faults::parse(" , "), Ok(Faults::default()));
        let faults = Faults::parse(" hang = 1500ms ").unwrap();
        assert_eq!(faults.hang, Duration::from_millis(1500));
        assert_eq!(faults.to_string().split(',').nth(3), Some("hang=1500ms"));
        let default = Faults::default();
        assert_eq!(Faults::parse(&default.to_string()), Ok(default));
    }

    #[test]
    fn bad_specs_are_rejected_with_a_reason() {
        let cases = [
            ("speed=3", "unknown fault `speed`"),
            ("latency", "expected key=value"),
            ("latency=20", "whole number of ms or s"),
            ("latency=1.5s", "whole number of ms or s"),
            ("latency=11s", "at most 10s"),
            ("hang=601s", "at most 600s"),
            ("error_rate=1.5", "between 0 and 1"),
            ("lost_webhooks=-0.1", "between 0 and 1"),
            ("lost_webhooks=NaN", "between 0 and 1"),
            ("duplicate_webhooks=often", "expected a probability"),
            ("seed=-1", "unsigned integer"),
            ("seed=1,seed=2", "given twice"),
        ];
        for (spec, reason) in cases {
            let error = Faults::parse(spec).unwrap_err();
            assert!(error.contains(reason), "{spec}: {error}");
        }
    }
}
