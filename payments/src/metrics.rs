//! Counters served at `GET /metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::edges::psp::PspError;

/// Named counters; labels are part of the name (`tally_pay_psp_calls_total{op="charge",...}`).
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn inc(&self, name: &str) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *counters.entry(name.to_string()).or_default() += 1;
    }

    /// Counts a PSP call by operation and outcome.
    pub fn psp_call<T>(&self, op: &str, outcome: &Result<T, PspError>) {
        let result = match outcome {
            Ok(_) => "ok",
            Err(PspError::Declined { .. }) => "declined",
            Err(PspError::Retryable { .. }) => "retryable",
            Err(PspError::Unknown { .. }) => "unknown",
            Err(PspError::NotFound) => "not_found",
            Err(PspError::Invalid { .. }) => "invalid",
        };
        self.inc(&format!(
            "tally_pay_psp_calls_total{{op=\"{op}\",result=\"{result}\"}}"
        ));
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut typed = std::collections::BTreeSet::new();
        for (name, value) in counters.iter() {
            let family = name.split('{').next().unwrap_or(name);
            if typed.insert(family.to_string()) {
                let _ = writeln!(out, "# TYPE {family} counter");
            }
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_one_type_line_per_family() {
        let metrics = Metrics::default();
        metrics.inc("a_total");
        metrics.inc("a_total");
        metrics.psp_call::<()>("charge", &Ok(()));
        metrics.psp_call::<()>("charge", &Err(PspError::NotFound));
        let text = metrics.render();
        assert!(text.contains("a_total 2\n"));
        assert_eq!(
            text.matches("# TYPE tally_pay_psp_calls_total counter")
                .count(),
            1
        );
        assert!(text.contains("tally_pay_psp_calls_total{op=\"charge\",result=\"ok\"} 1"));
    }
}
