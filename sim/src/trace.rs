//! The event trace: every event is hashed (FNV-1a, 64 bits) into the run's `trace=` value, and
//! kept as text, so a failure report can show the events around the moment an invariant broke
//! even when the checker finds it only after the run.

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Events kept as text for a failure report.
const EVENTS_KEPT: usize = 60;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug)]
pub struct Trace {
    hash: u64,
    events: u64,
    recent: VecDeque<String>,
    /// Every event: (simulated ms, line).
    all: Vec<(u64, String)>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: FNV_OFFSET,
            events: 0,
            recent: VecDeque::with_capacity(EVENTS_KEPT),
            all: Vec::new(),
        }
    }
}

impl Trace {
    /// Records one event that happened at `sim_ms`.
    pub fn record(&mut self, sim_ms: u64, text: &str) {
        let mut line = String::with_capacity(text.len() + 12);
        let _ = write!(line, "{sim_ms:>6}ms {text}");
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        self.events += 1;
        if self.recent.len() == EVENTS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(line.clone());
        self.all.push((sim_ms, line));
    }

    /// The `before` events up to `at_ms` and the `after` events past it, with a marker line at
    /// `at_ms` itself.
    pub fn around(&self, at_ms: u64, before: usize, after: usize) -> Vec<String> {
        let split = self.all.partition_point(|(ms, _)| *ms <= at_ms);
        let first = split.saturating_sub(before);
        let last = (split + after).min(self.all.len());
        let mut lines: Vec<String> = self.all[first..split]
            .iter()
            .map(|(_, line)| line.clone())
            .collect();
        lines.push(format!(
            "{at_ms:>6}ms <<< the violation concerns this moment >>>"
        ));
        lines.extend(self.all[split..last].iter().map(|(_, line)| line.clone()));
        lines
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn recent(&self) -> impl Iterator<Item = &String> {
        self.recent.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_event() {
        let mut first = Trace::default();
        let mut second = Trace::default();
        first.record(1, "a");
        second.record(1, "a");
        assert_eq!(first.hash(), second.hash());
        second.record(2, "b");
        assert_ne!(first.hash(), second.hash());
        assert_eq!(second.recent().count(), 2);
    }

    #[test]
    fn around_shows_the_events_either_side_of_a_moment() {
        let mut trace = Trace::default();
        for ms in 0..100 {
            trace.record(ms, &format!("event {ms}"));
        }
        let lines = trace.around(50, 3, 2);
        assert_eq!(lines.len(), 6);
        assert!(lines[0].ends_with("event 48"), "{lines:?}");
        assert!(lines[2].ends_with("event 50"), "{lines:?}");
        assert!(lines[3].contains("violation"), "{lines:?}");
        assert!(lines[5].ends_with("event 52"), "{lines:?}");
        // Clamped at both ends.
        assert_eq!(trace.around(0, 10, 0).len(), 2);
        assert_eq!(trace.around(99, 0, 10).len(), 1);
    }
}
